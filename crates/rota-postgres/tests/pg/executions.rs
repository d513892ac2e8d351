//! Executions: the rota_jobs triggers keep counters, status and revisions
//! right on every path (driver calls, users' own SQL, pruning); job
//! revisions; wake-ups; deadlocks between multi-execution statements.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rota_core::JobState;
use rota_driver::{
    Driver, DriverError, ExecutionAddJobsParams, ExecutionInsertParams, ExecutionMarkParams,
    ExecutionPruneParams, ExecutionRow, ExecutionStatus, ExecutionStopParams, JobCancelParams,
    JobFinishParams, JobListParams, JobPromoteParams, JobPruneParams, JobRetryParams, Trigger,
};
use rota_postgres::PgDriver;

use crate::common::{claim_params, job, now, subscribe_ready, wait_for_queue, with_default_driver};

pub(crate) fn new_execution(jobs: Vec<rota_driver::JobInsertParams>) -> ExecutionInsertParams {
    ExecutionInsertParams {
        owner_kind: "replication".into(),
        owner_id: "42".into(),
        trigger: Trigger::Manual,
        attributes: BTreeMap::new(),
        status_message: None,
        jobs,
        now: now(),
    }
}

pub(crate) fn finish(id: i64, token: i64, state: JobState, attempt: u32) -> JobFinishParams {
    let t = now();
    JobFinishParams {
        id,
        execution_id: None,
        lease_token: token,
        lease_expired_before: None,
        state,
        attempt,
        run_at: (!state.is_finished()).then_some(t),
        finished_at: state.is_finished().then_some(t),
        error: None,
        output: None,
        progress: None,
        exit_code: None,
    }
}

async fn exec(driver: &PgDriver, id: i64) -> ExecutionRow {
    driver.execution_get(id).await.unwrap().unwrap()
}

/// Stored (counts, status, revision) of an execution, straight from SQL.
async fn stored(driver: &PgDriver, id: i64) -> (BTreeMap<JobState, i64>, String, i32) {
    let e = exec(driver, id).await;
    let revision: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT revision FROM \"{}\".rota_executions WHERE id = $1",
        driver.schema().unwrap()
    )))
    .bind(id)
    .fetch_one(driver.pool())
    .await
    .unwrap();
    (e.counts, e.status.as_str().to_owned(), revision)
}

fn counts(pairs: &[(JobState, i64)]) -> BTreeMap<JobState, i64> {
    pairs.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_insert_claim_finish_retry_delete() {
    with_default_driver(|driver, _| async move {
        use JobState::*;
        let (e, jobs) = driver
            .execution_insert(new_execution(vec![job("ex"), job("ex"), job("ex")]))
            .await
            .unwrap();
        assert_eq!(e.status, ExecutionStatus::Running);
        assert_eq!(e.counts, counts(&[(Available, 3)]));
        assert!(
            jobs.iter()
                .all(|j| j.inserted && j.job.execution_id == Some(e.id))
        );
        assert!(
            jobs.iter()
                .all(|j| j.job.revision == 1 && j.job.schedule_id.is_none())
        );
        let ids: Vec<i64> = jobs.iter().map(|j| j.job.id).collect();

        // Claim two: running.
        let claimed = driver.job_claim(&claim_params("ex", 2, 7)).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(
            claimed.iter().all(|j| j.revision == 2),
            "claim bumps revision"
        );
        assert_eq!(
            exec(&driver, e.id).await.counts,
            counts(&[(Available, 1), (Running, 2)])
        );

        // One succeeds, one goes to retrying (engine-computed).
        let r = driver
            .job_finish_many(vec![
                finish(claimed[0].id, 7, Succeeded, 1),
                finish(claimed[1].id, 7, Retrying, 1),
            ])
            .await
            .unwrap();
        assert!(r.iter().all(|r| r.applied));
        assert_eq!(
            exec(&driver, e.id).await.counts,
            counts(&[(Available, 1), (Retrying, 1), (Succeeded, 1)])
        );
        let j = driver.job_get(claimed[0].id).await.unwrap().unwrap();
        assert_eq!(j.revision, 3, "finish bumps revision");

        // Promote the retrying one, cancel the waiting one.
        driver
            .job_promote_due(&JobPromoteParams {
                now: now() + Duration::from_secs(1),
                limit: 10,
            })
            .await
            .unwrap();
        let promoted = driver.job_get(claimed[1].id).await.unwrap().unwrap();
        assert_eq!((promoted.state, promoted.revision), (Available, 4));
        let waiting = ids
            .iter()
            .copied()
            .find(|id| !claimed.iter().any(|c| c.id == *id))
            .unwrap();
        let c = driver
            .job_cancel(&JobCancelParams {
                id: waiting,
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!((c.state, c.revision), (Canceled, 2));
        assert_eq!(
            exec(&driver, e.id).await.counts,
            counts(&[(Available, 1), (Succeeded, 1), (Canceled, 1)])
        );

        // The last one runs and fails: the execution is over, failed.
        let last = driver.job_claim(&claim_params("ex", 1, 8)).await.unwrap();
        assert_eq!(last[0].id, claimed[1].id);
        let before = stored(&driver, e.id).await;
        assert_eq!(before.2, 1, "no status change yet");
        driver
            .job_finish_many(vec![finish(last[0].id, 8, Failed, 2)])
            .await
            .unwrap();
        let done = exec(&driver, e.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(
            done.counts,
            counts(&[(Succeeded, 1), (Failed, 1), (Canceled, 1)])
        );
        let failed_job = driver.job_get(last[0].id).await.unwrap().unwrap();
        assert_eq!(
            done.ended_at, failed_job.finished_at,
            "ended_at = the job's finish"
        );
        assert_eq!(
            stored(&driver, e.id).await.2,
            2,
            "status change bumps revision"
        );

        // Operator retry of the failed job: running again, ended_at cleared.
        let retried = driver
            .job_retry(&JobRetryParams {
                id: failed_job.id,
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!(retried.revision, failed_job.revision + 1);
        let again = exec(&driver, e.id).await;
        assert_eq!(again.status, ExecutionStatus::Running);
        assert_eq!(again.ended_at, None);
        assert_eq!(stored(&driver, e.id).await.2, 3);
        let run = driver.job_claim(&claim_params("ex", 1, 9)).await.unwrap();
        driver
            .job_finish_many(vec![finish(run[0].id, 9, Succeeded, 1)])
            .await
            .unwrap();
        let e2 = exec(&driver, e.id).await;
        assert_eq!(
            e2.status,
            ExecutionStatus::Canceled,
            "no failure, one canceled"
        );
        assert_eq!(e2.counts, counts(&[(Succeeded, 2), (Canceled, 1)]));

        // Deleting a finished job takes it out; job pruning leaves
        // execution jobs alone (execution retention deletes them).
        driver.job_delete(waiting).await.unwrap();
        let e3 = exec(&driver, e.id).await;
        assert_eq!(e3.counts, counts(&[(Succeeded, 2)]));
        assert_eq!(e3.status, ExecutionStatus::Succeeded);
        let pruned = driver
            .job_prune(&JobPruneParams {
                finished_before: Some(now() + Duration::from_secs(60)),
                keep_last: Some(0),
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(pruned, 0);
        assert_eq!(exec(&driver, e.id).await.counts, counts(&[(Succeeded, 2)]));
        driver.job_delete(run[0].id).await.unwrap();
        driver.job_delete(claimed[0].id).await.unwrap();
        let e4 = exec(&driver, e.id).await;
        assert!(e4.counts.is_empty());
        assert_eq!(
            e4.status,
            ExecutionStatus::Succeeded,
            "no jobs left: status kept"
        );

        // Nothing for repair to fix: the triggers kept everything right.
        assert!(driver.execution_repair(100).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_own_sql_and_repair() {
    with_default_driver(|driver, _| async move {
        use JobState::*;
        let schema = driver.schema().unwrap().to_owned();
        let (e, _) = driver
            .execution_insert(new_execution(vec![job("own"), job("own")]))
            .await
            .unwrap();
        let (other, _) = driver
            .execution_insert(new_execution(vec![job("own")]))
            .await
            .unwrap();

        // A user's own transaction, on a connection whose search_path does
        // not include Rota's schema: the triggers still find their tables.
        let mut tx = driver.pool().begin().await.unwrap();
        sqlx::query("SET LOCAL search_path TO pg_catalog")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".rota_jobs SET state = 'succeeded', finished_at = now()
             WHERE execution_id = $1"
        )))
        .bind(e.id)
        .execute(&mut *tx)
        .await
        .unwrap();
        // Moving a job between executions counts on both sides.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".rota_jobs SET execution_id = $1 WHERE execution_id = $2"
        )))
        .bind(e.id)
        .bind(other.id)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let a = exec(&driver, e.id).await;
        assert_eq!(a.counts, counts(&[(Available, 1), (Succeeded, 2)]));
        assert_eq!(a.status, ExecutionStatus::Running);
        let b = exec(&driver, other.id).await;
        assert!(b.counts.is_empty());

        // A user's own DELETE of an unfinished job.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM \"{schema}\".rota_jobs WHERE execution_id = $1 AND state = 'available'"
        )))
        .bind(e.id)
        .execute(driver.pool())
        .await
        .unwrap();
        let a = exec(&driver, e.id).await;
        assert_eq!(a.counts, counts(&[(Succeeded, 2)]));
        assert_eq!(a.status, ExecutionStatus::Succeeded);
        assert!(a.ended_at.is_some());

        // Figures broken behind the triggers' back get repaired.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".rota_executions SET succeeded = 5, failed = 1, status = 'failed'
             WHERE id = $1"
        )))
        .bind(e.id)
        .execute(driver.pool())
        .await
        .unwrap();
        let fixed = driver.execution_repair(10).await.unwrap();
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].id, e.id);
        assert_eq!(
            (fixed[0].was, fixed[0].now),
            (ExecutionStatus::Failed, ExecutionStatus::Succeeded)
        );
        assert_eq!(
            fixed[0].stored_counts,
            counts(&[(Succeeded, 5), (Failed, 1)])
        );
        assert_eq!(fixed[0].actual_counts, counts(&[(Succeeded, 2)]));
        assert_eq!(exec(&driver, e.id).await.counts, counts(&[(Succeeded, 2)]));
        assert!(driver.execution_repair(10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_add_stop_and_prune() {
    with_default_driver(|driver, _| async move {
        use JobState::*;
        let mut rx = subscribe_ready(&driver).await;
        // Marked without jobs; refuses jobs afterwards.
        let (empty, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        assert_eq!(empty.status, ExecutionStatus::Running);
        let m = driver
            .execution_mark(&ExecutionMarkParams {
                id: empty.id,
                status: ExecutionStatus::Error,
                message: Some("no input".into()),
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!(m.status, ExecutionStatus::Error);
        assert_eq!(m.status_message.as_deref(), Some("no input"));
        assert!(m.ended_at.is_some());
        let err = driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: empty.id,
                jobs: vec![job("add")],
                now: now(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, DriverError::Conflict(_)), "{err}");

        // Adding jobs wakes their queue; marking one with jobs conflicts.
        let (e, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        let added = driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: e.id,
                jobs: vec![job("add"), job("add"), job("add")],
                now: now(),
            })
            .await
            .unwrap();
        assert!(wait_for_queue(&mut rx, "add", Duration::from_secs(5)).await);
        assert!(added.iter().all(|j| j.job.execution_id == Some(e.id)));
        let err = driver
            .execution_mark(&ExecutionMarkParams {
                id: e.id,
                status: ExecutionStatus::Succeeded,
                message: None,
                now: now(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, DriverError::Conflict(_)), "{err}");
        let missing = driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: 999_999,
                jobs: vec![job("add")],
                now: now(),
            })
            .await
            .unwrap_err();
        assert!(matches!(
            missing,
            DriverError::NotFound {
                entity: "execution",
                ..
            }
        ));

        // Listing by execution.
        let listed = driver
            .job_list(&JobListParams {
                execution_id: Some(e.id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 3);

        // Stop: waiting ones canceled, the running one asked to stop.
        let running = driver.job_claim(&claim_params("add", 1, 4)).await.unwrap();
        let (stopped, asked) = driver
            .execution_stop(&ExecutionStopParams {
                id: e.id,
                now: now(),
            })
            .await
            .unwrap();
        assert_eq!(asked, vec![running[0].id]);
        assert_eq!(stopped.counts, counts(&[(Running, 1), (Canceled, 2)]));
        assert_eq!(stopped.status, ExecutionStatus::Running);
        let r = driver.job_get(running[0].id).await.unwrap().unwrap();
        assert!(r.cancel_requested_at.is_some());
        assert_eq!(r.revision, 3, "claim + cancel request");
        driver
            .job_finish_many(vec![finish(running[0].id, 4, Canceled, 1)])
            .await
            .unwrap();
        assert_eq!(exec(&driver, e.id).await.status, ExecutionStatus::Canceled);

        // Prune: keep the newest finished one per owner, delete the rest
        // with their jobs; a running one stays.
        let (live, _) = driver
            .execution_insert(new_execution(vec![job("live")]))
            .await
            .unwrap();
        let (newest, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        driver
            .execution_mark(&ExecutionMarkParams {
                id: newest.id,
                status: ExecutionStatus::Succeeded,
                message: None,
                now: now(),
            })
            .await
            .unwrap();
        let n = driver
            .execution_prune(&ExecutionPruneParams {
                owner_kind: Some("replication".into()),
                keep_last: 1,
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(n, 2, "the marked-error one and the canceled one");
        assert!(driver.execution_get(empty.id).await.unwrap().is_none());
        assert!(driver.execution_get(e.id).await.unwrap().is_none());
        assert!(driver.execution_get(newest.id).await.unwrap().is_some());
        assert_eq!(
            exec(&driver, live.id).await.counts,
            counts(&[(Available, 1)])
        );
        let gone = driver
            .job_list(&JobListParams {
                execution_id: Some(e.id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(gone.is_empty(), "jobs of pruned executions are deleted");
    })
    .await;
}

/// Claims and finishes of jobs from two executions interleaved in one queue,
/// from several tasks at once: each statement locks both executions' rows
/// (counter triggers) in its own order. Deadlocks the server breaks are
/// retried by the driver; every counter ends right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_across_executions() {
    with_default_driver(|driver, _| async move {
        const PER: usize = 300;
        let (a, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        let (b, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        // Interleave: a, b, a, b, ... in id order.
        let setup = Instant::now();
        for _ in 0..PER {
            for id in [a.id, b.id] {
                driver
                    .execution_add_jobs(ExecutionAddJobsParams {
                        id,
                        jobs: vec![job("mix")],
                        now: now(),
                    })
                    .await
                    .unwrap();
            }
        }
        eprintln!("added {} jobs one by one in {:?}", 2 * PER, setup.elapsed());
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..4i64 {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let jobs = d.job_claim(&claim_params("mix", 10, w)).await.unwrap();
                    if jobs.is_empty() {
                        return done;
                    }
                    // Finish in reverse order to vary lock orders.
                    let params = jobs
                        .iter()
                        .rev()
                        .map(|j| finish(j.id, w, JobState::Succeeded, 1))
                        .collect();
                    let r = d.job_finish_many(params).await.unwrap();
                    done += r.iter().filter(|r| r.applied).count();
                }
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        eprintln!(
            "claimed and finished {} jobs in {:?}",
            2 * PER,
            started.elapsed()
        );
        assert_eq!(total, 2 * PER);
        for id in [a.id, b.id] {
            let e = exec(&driver, id).await;
            assert_eq!(e.counts, counts(&[(JobState::Succeeded, PER as i64)]));
            assert_eq!(e.status, ExecutionStatus::Succeeded);
        }
        assert!(driver.execution_repair(10).await.unwrap().is_empty());
    })
    .await;
}

/// A big execution is created and stopped with one counter update each
/// (not one per job, which is quadratic in the job count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_execution_insert_and_stop() {
    with_default_driver(|driver, _| async move {
        const N: usize = 20_000;
        let jobs: Vec<_> = (0..N).map(|_| job("big")).collect();
        let started = Instant::now();
        let (e, out) = driver.execution_insert(new_execution(jobs)).await.unwrap();
        eprintln!("execution insert: {N} jobs in {:?}", started.elapsed());
        assert_eq!(out.len(), N);
        assert_eq!(e.counts, counts(&[(JobState::Available, N as i64)]));
        let running = driver.job_claim(&claim_params("big", 3, 1)).await.unwrap();
        let started = Instant::now();
        let (stopped, asked) = driver
            .execution_stop(&ExecutionStopParams {
                id: e.id,
                now: now(),
            })
            .await
            .unwrap();
        eprintln!("execution stop: {N} jobs in {:?}", started.elapsed());
        assert_eq!(asked, running.iter().map(|j| j.id).collect::<Vec<_>>());
        assert_eq!(
            stopped.counts,
            counts(&[(JobState::Running, 3), (JobState::Canceled, N as i64 - 3)])
        );
        assert!(driver.execution_repair(10).await.unwrap().is_empty());
    })
    .await;
}

/// The driver's bulk paths switch the counter triggers off for their
/// execution only until their transaction ends: later statements on the
/// same connection are counted by the triggers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_switch_does_not_outlive_the_transaction() {
    let one_connection = |schema: String| rota_postgres::PgOptions {
        max_connections: 1,
        ..rota_postgres::PgOptions::with_schema(schema)
    };
    crate::common::with_driver(one_connection, |driver, _| async move {
        let (e, _) = driver
            .execution_insert(new_execution(vec![job("sw")]))
            .await
            .unwrap();
        let (e2, _) = driver
            .execution_insert(new_execution(vec![]))
            .await
            .unwrap();
        driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: e2.id,
                jobs: vec![job("sw")],
                now: now(),
            })
            .await
            .unwrap();
        let setting: Option<String> =
            sqlx::query_scalar("SELECT current_setting('rota.counted_execution', true)")
                .fetch_one(driver.pool())
                .await
                .unwrap();
        assert!(setting.unwrap_or_default().is_empty());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{}\".rota_jobs (kind, queue, state, max_attempts, run_at, created_at,
                                          execution_id)
             VALUES ('k', 'sw', 'scheduled', 1, now(), now(), $1)",
            driver.schema().unwrap()
        )))
        .bind(e2.id)
        .execute(driver.pool())
        .await
        .unwrap();
        assert_eq!(
            exec(&driver, e2.id).await.counts,
            counts(&[(JobState::Scheduled, 1), (JobState::Available, 1)])
        );
        assert_eq!(
            exec(&driver, e.id).await.counts,
            counts(&[(JobState::Available, 1)])
        );
    })
    .await;
}
