//! Executions, schedules and webhooks on SQLite: the triggers that keep
//! execution counters and status and write the outbox, job revisions, the
//! schedule fire compare-and-set, and wake-ups from execution inserts and
//! schedule fires.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::{Job, JobState};
use rota_driver::{
    DeliveryCreateParams, Driver, DriverError, EventRow, ExecutionAddJobsParams,
    ExecutionInsertParams, ExecutionListParams, ExecutionMarkParams, ExecutionPruneParams,
    ExecutionRow, ExecutionStatus, ExecutionStopParams, FireListParams, FireRecord, FireStatus,
    JobCancelParams, JobCheckinParams, JobClaimParams, JobFinishParams, JobHeartbeatParams,
    JobInsertParams, JobListParams, JobPromoteParams, JobPruneParams, JobRetryParams,
    ScheduleFireParams, ScheduleInsertParams, ScheduleUpdateParams, Trigger, Wakeup,
    WebhookInsertParams,
};
use rota_sqlite::{SqliteDriver, connect_options};
use sqlx::{ConnectOptions, Connection};
use tempfile::TempDir;
use tokio::sync::broadcast;

mod common;
use common::{at, claim_at, fresh, job};

/// A writable connection of our own (a user's transaction, or tampering).
async fn own_connection(dir: &TempDir) -> sqlx::SqliteConnection {
    connect_options(dir.path().join("rota.db").to_str().unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn new_execution(
    driver: &SqliteDriver,
    owner: &str,
    jobs: Vec<JobInsertParams>,
    now: Timestamp,
) -> (ExecutionRow, Vec<Job>) {
    let (row, jobs) = driver
        .execution_insert(ExecutionInsertParams {
            owner_kind: "replication".into(),
            owner_id: owner.into(),
            trigger: Trigger::Manual,
            attributes: BTreeMap::from([("team".to_owned(), "data".to_owned())]),
            status_message: Some("starting".into()),
            jobs,
            now,
        })
        .await
        .unwrap();
    (row, jobs.into_iter().map(|j| j.job).collect())
}

async fn execution(driver: &SqliteDriver, id: i64) -> ExecutionRow {
    driver.execution_get(id).await.unwrap().unwrap()
}

fn claim_params(queue: &str, max: u32, token: i64, now: Timestamp) -> JobClaimParams {
    claim_at(queue, max, token, now, now + Duration::from_secs(30))
}

async fn claim(
    driver: &SqliteDriver,
    queue: &str,
    max: u32,
    token: i64,
    now: Timestamp,
) -> Vec<Job> {
    driver
        .job_claim(&claim_params(queue, max, token, now))
        .await
        .unwrap()
}

fn finish(job: &Job, state: JobState, now: Timestamp) -> JobFinishParams {
    let terminal = state.is_finished();
    JobFinishParams {
        id: job.id,
        execution_id: job.execution_id,
        lease_token: job.lease_token.unwrap(),
        lease_expired_before: None,
        state,
        attempt: job.attempt,
        run_at: (!terminal).then_some(now),
        finished_at: terminal.then_some(now),
        error: None,
        output: None,
        progress: None,
        exit_code: None,
    }
}

async fn finish_all(driver: &SqliteDriver, params: Vec<JobFinishParams>) {
    let results = driver.job_finish_many(params).await.unwrap();
    assert!(results.iter().all(|r| r.applied), "{results:?}");
}

fn counts(pairs: &[(JobState, i64)]) -> BTreeMap<JobState, i64> {
    pairs.iter().copied().collect()
}

async fn add_webhook(driver: &SqliteDriver) -> i64 {
    driver
        .webhook_insert(&WebhookInsertParams {
            url: "https://example.test/hook".into(),
            events: vec!["job.*".into(), "execution.*".into()],
            kinds: Vec::new(),
            owner_kinds: Vec::new(),
            secret: "s3cret".into(),
            now: at(0),
        })
        .await
        .unwrap()
        .id
}

/// `(entity, entity_id, status, revision)` of every unconsumed event.
async fn events(driver: &SqliteDriver) -> Vec<(String, i64, String, i64)> {
    driver
        .event_list(0)
        .await
        .unwrap()
        .into_iter()
        .map(|e: EventRow| (e.entity, e.entity_id, e.status, e.revision))
        .collect()
}

#[tokio::test]
async fn counters_and_status_follow_jobs_to_succeeded() {
    let (_dir, driver) = fresh().await;
    let (x, jobs) = new_execution(&driver, "1", vec![job("a", "ex"), job("b", "ex")], at(0)).await;
    assert_eq!(x.status, ExecutionStatus::Running);
    assert_eq!(x.counts, counts(&[(JobState::Available, 2)]));
    assert_eq!(x.trigger, Trigger::Manual);
    assert_eq!(x.status_message.as_deref(), Some("starting"));
    assert_eq!(x.ended_at, None);
    assert!(
        jobs.iter()
            .all(|j| j.execution_id == Some(x.id) && j.revision == 1)
    );
    assert_eq!(driver.job_get(jobs[0].id).await.unwrap().unwrap(), jobs[0]);

    let running = claim(&driver, "ex", 10, 7, at(1)).await;
    assert_eq!(running.len(), 2);
    let x1 = execution(&driver, x.id).await;
    assert_eq!(x1.counts, counts(&[(JobState::Running, 2)]));
    assert_eq!(x1.status, ExecutionStatus::Running);
    assert_eq!(x1.updated_at, at(1), "moves to the claim time");

    finish_all(
        &driver,
        vec![finish(&running[0], JobState::Succeeded, at(2))],
    )
    .await;
    let x2 = execution(&driver, x.id).await;
    assert_eq!(
        x2.counts,
        counts(&[(JobState::Running, 1), (JobState::Succeeded, 1)])
    );
    assert_eq!(x2.status, ExecutionStatus::Running);

    finish_all(
        &driver,
        vec![finish(&running[1], JobState::Succeeded, at(3))],
    )
    .await;
    let x3 = execution(&driver, x.id).await;
    assert_eq!(x3.counts, counts(&[(JobState::Succeeded, 2)]));
    assert_eq!(x3.status, ExecutionStatus::Succeeded);
    assert_eq!(x3.ended_at, Some(at(3)), "the finishing job's finished_at");
    assert_eq!(x3.status_message.as_deref(), Some("starting"));
}

#[tokio::test]
async fn failed_beats_canceled_beats_succeeded_and_retry_reopens() {
    let (_dir, driver) = fresh().await;
    let (x, _) = new_execution(
        &driver,
        "2",
        vec![job("a", "mix"), job("b", "mix"), job("c", "mix")],
        at(0),
    )
    .await;
    let running = claim(&driver, "mix", 10, 7, at(1)).await;
    finish_all(
        &driver,
        vec![
            finish(&running[0], JobState::Succeeded, at(2)),
            finish(&running[1], JobState::Canceled, at(2)),
        ],
    )
    .await;
    assert_eq!(
        execution(&driver, x.id).await.status,
        ExecutionStatus::Running
    );
    finish_all(&driver, vec![finish(&running[2], JobState::Failed, at(4))]).await;
    let failed = execution(&driver, x.id).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.ended_at, Some(at(4)));

    // Operator retry of the failed job: back to running, ended_at cleared.
    driver
        .job_retry(&JobRetryParams {
            id: running[2].id,
            now: at(5),
        })
        .await
        .unwrap();
    let reopened = execution(&driver, x.id).await;
    assert_eq!(reopened.status, ExecutionStatus::Running);
    assert_eq!(reopened.ended_at, None);
    assert_eq!(
        reopened.counts,
        counts(&[
            (JobState::Available, 1),
            (JobState::Succeeded, 1),
            (JobState::Canceled, 1)
        ])
    );

    // It now ends canceled (no failure left).
    let again = claim(&driver, "mix", 1, 8, at(6)).await;
    finish_all(&driver, vec![finish(&again[0], JobState::Succeeded, at(7))]).await;
    let canceled = execution(&driver, x.id).await;
    assert_eq!(canceled.status, ExecutionStatus::Canceled);
    assert_eq!(canceled.ended_at, Some(at(7)));
}

#[tokio::test]
async fn cancel_stop_promote_and_retrying_keep_counters() {
    let (_dir, driver) = fresh().await;
    let later = JobInsertParams {
        state: JobState::Scheduled,
        run_at: at(50),
        ..job("later", "st")
    };
    let (x, jobs) = new_execution(
        &driver,
        "3",
        vec![job("a", "st"), job("b", "st"), later],
        at(0),
    )
    .await;
    assert_eq!(
        x.counts,
        counts(&[(JobState::Available, 2), (JobState::Scheduled, 1)])
    );
    let running = claim(&driver, "st", 1, 7, at(1)).await;
    // A retrying hand-back, then promotion.
    finish_all(
        &driver,
        vec![JobFinishParams {
            run_at: Some(at(10)),
            ..finish(&running[0], JobState::Retrying, at(2))
        }],
    )
    .await;
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[
            (JobState::Available, 1),
            (JobState::Retrying, 1),
            (JobState::Scheduled, 1)
        ])
    );
    driver
        .job_promote_due(&JobPromoteParams {
            now: at(10),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Available, 2), (JobState::Scheduled, 1)])
    );
    let running = claim(&driver, "st", 1, 8, at(11)).await;

    // Stop: waiting jobs end canceled, the running one is asked to stop.
    let (stopped, told) = driver
        .execution_stop(&ExecutionStopParams {
            id: x.id,
            now: at(12),
        })
        .await
        .unwrap();
    assert_eq!(told, vec![running[0].id]);
    assert_eq!(
        stopped.counts,
        counts(&[(JobState::Running, 1), (JobState::Canceled, 2)])
    );
    assert_eq!(stopped.status, ExecutionStatus::Running);
    let job = driver.job_get(running[0].id).await.unwrap().unwrap();
    assert_eq!(job.cancel_requested_at, Some(at(12)));
    let waiting = driver.job_get(jobs[2].id).await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Canceled);
    assert_eq!(waiting.finished_at, Some(at(12)));

    finish_all(
        &driver,
        vec![finish(&running[0], JobState::Canceled, at(13))],
    )
    .await;
    let done = execution(&driver, x.id).await;
    assert_eq!(done.status, ExecutionStatus::Canceled);
    assert_eq!(done.counts, counts(&[(JobState::Canceled, 3)]));
    assert_eq!(done.ended_at, Some(at(13)));
}

#[tokio::test]
async fn delete_prune_and_users_own_writes_keep_counters() {
    let (dir, driver) = fresh().await;
    let (x, _) = new_execution(
        &driver,
        "4",
        vec![job("a", "del"), job("b", "del"), job("c", "del")],
        at(0),
    )
    .await;
    let running = claim(&driver, "del", 3, 7, at(1)).await;
    finish_all(
        &driver,
        vec![
            finish(&running[0], JobState::Succeeded, at(2)),
            finish(&running[1], JobState::Succeeded, at(3)),
        ],
    )
    .await;

    driver.job_delete(running[0].id).await.unwrap();
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Running, 1), (JobState::Succeeded, 1)])
    );

    // A job's state changed by hand, behind the driver's back: its
    // execution's figures lag until the repair sweep recomputes them.
    let mut conn = own_connection(&dir).await;
    sqlx::query("UPDATE rota_jobs SET state = 'retrying', run_at = 0 WHERE id = ?")
        .bind(running[1].id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Running, 1), (JobState::Succeeded, 1)])
    );
    assert_eq!(driver.execution_repair(10).await.unwrap().len(), 1);
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Running, 1), (JobState::Retrying, 1)])
    );
    sqlx::query("UPDATE rota_jobs SET state = 'succeeded', run_at = 3 WHERE id = ?")
        .bind(running[1].id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(driver.execution_repair(10).await.unwrap().len(), 1);

    // A user's own transaction finishes the last job through the driver
    // (transactional completion): it counts, in that transaction.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let done = rota_sqlite::job_finish_in(&mut tx, finish(&running[2], JobState::Failed, at(4)))
        .await
        .unwrap();
    assert!(done.applied);
    tx.commit().await.unwrap();
    let failed = execution(&driver, x.id).await;
    assert_eq!(
        failed.counts,
        counts(&[(JobState::Succeeded, 1), (JobState::Failed, 1)])
    );
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.ended_at, Some(at(4)));

    // Job pruning leaves an execution's jobs to execution retention, so a
    // finished execution's figures never change under it.
    let pruned = driver
        .job_prune(&JobPruneParams {
            finished_before: None,
            keep_last: Some(0),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(pruned, 0);
    let kept = execution(&driver, x.id).await;
    assert_eq!(kept.counts, failed.counts);
    assert_eq!(kept.status, ExecutionStatus::Failed);
    assert_eq!(driver.execution_repair(0).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn execution_prune_keeps_the_newest_finished_per_owner() {
    let (_dir, driver) = fresh().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (x, _) = new_execution(&driver, "p", vec![job("a", "prune")], at(i)).await;
        let running = claim(&driver, "prune", 1, 7, at(i)).await;
        finish_all(
            &driver,
            vec![finish(&running[0], JobState::Succeeded, at(i))],
        )
        .await;
        ids.push(x.id);
    }
    // Another owner, and a running one of the same owner: untouched.
    let (other, _) = new_execution(&driver, "q", vec![job("a", "other")], at(9)).await;
    let (unfinished, _) = new_execution(&driver, "p", vec![job("a", "open")], at(9)).await;
    let n = driver
        .execution_prune(&ExecutionPruneParams {
            owner_kind: Some("replication".into()),
            keep_last: 1,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(n, 2, "at most `limit` per call, oldest first");
    assert!(driver.execution_get(ids[0]).await.unwrap().is_none());
    assert!(driver.execution_get(ids[2]).await.unwrap().is_some());
    let n = driver
        .execution_prune(&ExecutionPruneParams {
            owner_kind: None,
            keep_last: 1,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    let left: Vec<i64> = driver
        .execution_list(&ExecutionListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left, vec![unfinished.id, other.id, ids[3]]);
    let jobs = driver
        .job_list(&JobListParams {
            queue: Some("prune".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "the pruned executions' jobs are gone");
    assert_eq!(jobs[0].execution_id, Some(ids[3]));
}

#[tokio::test]
async fn job_revision_moves_on_every_state_change() {
    let (_dir, driver) = fresh().await;
    let revision = |j: &Job| j.revision;
    let inserted = driver
        .job_insert_many(vec![job("r", "rev")])
        .await
        .unwrap()
        .remove(0)
        .job;
    assert_eq!(revision(&inserted), 1);
    let get = |id| {
        let d = driver.clone();
        async move { d.job_get(id).await.unwrap().unwrap() }
    };
    let claimed = claim(&driver, "rev", 1, 7, at(1)).await.remove(0);
    assert_eq!(claimed.revision, 2, "claim");
    // Heartbeat and check-in change no state.
    driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(claimed.id, 7)],
            lease_expires_at: at(60),
            now: at(2),
        })
        .await
        .unwrap();
    driver
        .job_checkin(&JobCheckinParams {
            id: claimed.id,
            lease_token: 7,
            progress: Some(serde_json::json!({"pct": 50})),
            output: None,
        })
        .await
        .unwrap();
    assert_eq!(get(claimed.id).await.revision, 2);
    finish_all(
        &driver,
        vec![JobFinishParams {
            run_at: Some(at(5)),
            ..finish(&claimed, JobState::Retrying, at(3))
        }],
    )
    .await;
    assert_eq!(get(claimed.id).await.revision, 3, "finish");
    driver
        .job_promote_due(&JobPromoteParams {
            now: at(5),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(get(claimed.id).await.revision, 4, "promote");
    let claimed = claim(&driver, "rev", 1, 8, at(6)).await.remove(0);
    assert_eq!(claimed.revision, 5);
    let cancel = JobCancelParams {
        id: claimed.id,
        now: at(7),
    };
    assert_eq!(
        driver.job_cancel(&cancel).await.unwrap().revision,
        6,
        "cancel request"
    );
    assert_eq!(
        driver.job_cancel(&cancel).await.unwrap().revision,
        6,
        "a repeated cancel request changes nothing"
    );
    finish_all(&driver, vec![finish(&claimed, JobState::Canceled, at(8))]).await;
    assert_eq!(get(claimed.id).await.revision, 7);
    let retried = driver
        .job_retry(&JobRetryParams {
            id: claimed.id,
            now: at(9),
        })
        .await
        .unwrap();
    assert_eq!(retried.revision, 8, "retry");
    assert_eq!(
        driver.job_cancel(&cancel).await.unwrap().revision,
        9,
        "cancel"
    );
    // A stale finish changes nothing.
    let stale = driver
        .job_finish_many(vec![finish(&claimed, JobState::Succeeded, at(10))])
        .await
        .unwrap();
    assert!(!stale[0].applied);
    assert_eq!(get(claimed.id).await.revision, 9);
}

#[tokio::test]
async fn events_are_written_only_while_a_webhook_exists() {
    let (_dir, driver) = fresh().await;
    let (x, _) = new_execution(&driver, "5", vec![job("a", "ev")], at(0)).await;
    let running = claim(&driver, "ev", 1, 7, at(1)).await;
    driver.event_progress(running[0].id, at(1)).await.unwrap();
    assert!(events(&driver).await.is_empty(), "no webhook, no events");

    let hook = add_webhook(&driver).await;
    driver.event_progress(running[0].id, at(2)).await.unwrap();
    driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(running[0].id, 7)],
            lease_expires_at: at(60),
            now: at(2),
        })
        .await
        .unwrap();
    driver
        .job_cancel(&JobCancelParams {
            id: running[0].id,
            now: at(3),
        })
        .await
        .unwrap();
    finish_all(
        &driver,
        vec![finish(&running[0], JobState::Canceled, at(4))],
    )
    .await;
    let plain = driver
        .job_insert_many(vec![job("plain", "ev2")])
        .await
        .unwrap()
        .remove(0)
        .job;
    let j = running[0].id;
    let s = |v: &str| v.to_owned();
    assert_eq!(
        events(&driver).await,
        vec![
            (s("job"), j, s("progress"), 2),
            (s("job"), j, s("running"), 3),
            (s("job"), j, s("canceled"), 4),
            (s("execution"), x.id, s("canceled"), 2),
            (s("job"), plain.id, s("available"), 1),
        ],
        "the job's event precedes the execution event it causes; heartbeats write none"
    );
    let all = driver.event_list(0).await.unwrap();
    assert_eq!(all[2].execution_id, Some(x.id));
    assert_eq!(all[2].kind, "a");
    assert_eq!(all[3].kind, "replication");
    assert_eq!(all[4].execution_id, None);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));

    // Consuming: deliveries are created and the events through the id go.
    let created = driver
        .delivery_create(&DeliveryCreateParams {
            deliveries: vec![(hook, all[1].id, serde_json::json!({"n": 1.5, "s": "x"}))],
            consumed_through: all[3].id,
            now: at(5),
        })
        .await
        .unwrap();
    assert_eq!(created, 1);
    assert_eq!(events(&driver).await.len(), 1);
    let due = driver.delivery_due(at(5), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0.body, serde_json::json!({"n": 1.5, "s": "x"}));
    assert_eq!(due[0].1.secret, "s3cret");

    // A new execution: its insert event, then its jobs'.
    let (y, yj) = new_execution(&driver, "6", vec![job("b", "ev3")], at(6)).await;
    let tail: Vec<_> = events(&driver).await.into_iter().skip(1).collect();
    assert_eq!(
        tail,
        vec![
            (s("execution"), y.id, s("running"), 1),
            (s("job"), yj[0].id, s("available"), 1),
        ]
    );

    // Without webhooks again, nothing more is written.
    driver.webhook_delete(hook).await.unwrap();
    let before = events(&driver).await.len();
    claim(&driver, "ev3", 1, 9, at(7)).await;
    assert_eq!(events(&driver).await.len(), before);
    assert!(matches!(
        driver.webhook_delete(hook).await,
        Err(DriverError::NotFound {
            entity: "webhook",
            ..
        })
    ));
}

#[tokio::test]
async fn mark_add_jobs_and_list() {
    let (_dir, driver) = fresh().await;
    let (empty, _) = new_execution(&driver, "7", Vec::new(), at(0)).await;
    assert_eq!(empty.status, ExecutionStatus::Running);
    let marked = driver
        .execution_mark(&ExecutionMarkParams {
            id: empty.id,
            status: ExecutionStatus::Error,
            message: Some("no source".into()),
            now: at(1),
        })
        .await
        .unwrap();
    assert_eq!(marked.status, ExecutionStatus::Error);
    assert_eq!(marked.status_message.as_deref(), Some("no source"));
    assert_eq!(marked.ended_at, Some(at(1)));
    assert!(matches!(
        driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: empty.id,
                jobs: vec![job("a", "m")],
                now: at(2),
            })
            .await,
        Err(DriverError::Conflict(_))
    ));

    let (busy, _) = new_execution(&driver, "8", vec![job("a", "m")], at(0)).await;
    assert!(matches!(
        driver
            .execution_mark(&ExecutionMarkParams {
                id: busy.id,
                status: ExecutionStatus::Succeeded,
                message: None,
                now: at(1),
            })
            .await,
        Err(DriverError::Conflict(_))
    ));
    let added = driver
        .execution_add_jobs(ExecutionAddJobsParams {
            id: busy.id,
            jobs: vec![job("b", "m")],
            now: at(2),
        })
        .await
        .unwrap();
    assert_eq!(added[0].job.execution_id, Some(busy.id));
    assert_eq!(
        execution(&driver, busy.id).await.counts,
        counts(&[(JobState::Available, 2)])
    );
    assert!(matches!(
        driver
            .execution_add_jobs(ExecutionAddJobsParams {
                id: 999,
                jobs: Vec::new(),
                now: at(2),
            })
            .await,
        Err(DriverError::NotFound {
            entity: "execution",
            ..
        })
    ));

    let by_job: Vec<i64> = driver
        .job_list(&JobListParams {
            execution_id: Some(busy.id),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(by_job.len(), 2);
    let list = |p: ExecutionListParams| {
        let d = driver.clone();
        async move {
            d.execution_list(&p)
                .await
                .unwrap()
                .iter()
                .map(|x| x.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ExecutionListParams {
            statuses: vec![ExecutionStatus::Error],
            ..Default::default()
        })
        .await,
        vec![empty.id]
    );
    assert_eq!(
        list(ExecutionListParams {
            owner_kind: Some("replication".into()),
            owner_id: Some("8".into()),
            attributes: BTreeMap::from([("team".to_owned(), "data".to_owned())]),
            ..Default::default()
        })
        .await,
        vec![busy.id]
    );
    assert_eq!(
        list(ExecutionListParams {
            before_id: Some(busy.id),
            limit: 1,
            ..Default::default()
        })
        .await,
        vec![empty.id]
    );
}

#[tokio::test]
async fn repair_fixes_tampered_counters() {
    let (dir, driver) = fresh().await;
    let (x, _) = new_execution(&driver, "9", vec![job("a", "rep"), job("b", "rep")], at(0)).await;
    let running = claim(&driver, "rep", 2, 7, at(1)).await;
    finish_all(
        &driver,
        vec![
            finish(&running[0], JobState::Succeeded, at(2)),
            finish(&running[1], JobState::Succeeded, at(3)),
        ],
    )
    .await;
    let mut conn = own_connection(&dir).await;
    sqlx::query("UPDATE rota_executions SET succeeded = 0, running = 2, status = 'running', ended_at = NULL WHERE id = ?")
        .bind(x.id)
        .execute(&mut conn)
        .await
        .unwrap();
    let fixed = driver.execution_repair(10).await.unwrap();
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed[0].id, x.id);
    assert_eq!(fixed[0].was, ExecutionStatus::Running);
    assert_eq!(fixed[0].now, ExecutionStatus::Succeeded);
    assert_eq!(fixed[0].stored_counts, counts(&[(JobState::Running, 2)]));
    assert_eq!(fixed[0].actual_counts, counts(&[(JobState::Succeeded, 2)]));
    let row = execution(&driver, x.id).await;
    assert_eq!(row.status, ExecutionStatus::Succeeded);
    assert_eq!(row.ended_at, Some(at(3)));
    assert!(driver.execution_repair(10).await.unwrap().is_empty());
}

fn fire_params(
    id: i64,
    expected: Option<Timestamp>,
    fires: Vec<FireRecord>,
    next: Option<Timestamp>,
) -> ScheduleFireParams {
    ScheduleFireParams {
        id,
        expected_next_fire_at: expected,
        fires,
        next_fire_at: next,
        state: serde_json::json!({"failures": 0}),
        node_id: "node-1".into(),
        now: at(100),
    }
}

fn fired(fire_at: Timestamp, jobs: Vec<JobInsertParams>) -> FireRecord {
    FireRecord {
        fire_at,
        status: FireStatus::Fired,
        reason: None,
        jobs,
        execution_owner: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fire_is_a_compare_and_set_and_records_each_fire_once() {
    let (_dir, driver) = fresh().await;
    let schedule = driver
        .schedule_insert(&ScheduleInsertParams {
            name: "nightly".into(),
            spec: serde_json::json!({"cron": "0 3 * * *"}),
            next_fire_at: Some(at(60)),
            now: at(0),
        })
        .await
        .unwrap();
    assert_eq!(schedule.state, serde_json::json!({}));
    assert!(matches!(
        driver
            .schedule_insert(&ScheduleInsertParams {
                name: "nightly".into(),
                spec: serde_json::json!({}),
                next_fire_at: None,
                now: at(0),
            })
            .await,
        Err(DriverError::Conflict(_))
    ));
    assert!(driver.schedule_due(at(59), 10).await.unwrap().is_empty());
    assert_eq!(
        driver.schedule_due(at(60), 10).await.unwrap()[0].id,
        schedule.id
    );

    let mut rx = driver.subscribe();
    let first = driver
        .schedule_fire(fire_params(
            schedule.id,
            Some(at(60)),
            vec![fired(at(60), vec![job("nightly", "sched")])],
            Some(at(120)),
        ))
        .await
        .unwrap();
    assert!(first.applied);
    assert_eq!(first.executions, vec![None]);
    let created = &first.jobs[0][0].job;
    assert_eq!(created.schedule_id, Some(schedule.id));
    assert_eq!(driver.job_get(created.id).await.unwrap().unwrap(), *created);
    let woken = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Wakeup { queue: Some(q) }) = rx.recv().await
                && q == "sched"
            {
                return;
            }
        }
    })
    .await;
    assert!(
        woken.is_ok(),
        "a fire wakes the queue of its available jobs"
    );

    // Another scheduler decided on the same (now stale) expectation.
    let stale = driver
        .schedule_fire(fire_params(
            schedule.id,
            Some(at(60)),
            vec![fired(at(60), vec![job("nightly", "sched")])],
            Some(at(120)),
        ))
        .await
        .unwrap();
    assert!(!stale.applied);
    assert!(stale.jobs.is_empty());
    let row = driver.schedule_get(schedule.id).await.unwrap().unwrap();
    assert_eq!(row.next_fire_at, Some(at(120)));
    assert_eq!(row.last_fire_at, Some(at(60)));
    assert_eq!(row.state, serde_json::json!({"failures": 0}));

    // A fire time already recorded is not recorded (nor fired) again.
    let repeat = driver
        .schedule_fire(fire_params(
            schedule.id,
            Some(at(120)),
            vec![
                fired(at(60), vec![job("nightly", "sched")]),
                FireRecord {
                    execution_owner: Some(("report".into(), "r1".into())),
                    ..fired(at(120), vec![job("nightly", "sched")])
                },
            ],
            Some(at(180)),
        ))
        .await
        .unwrap();
    assert!(repeat.applied);
    assert!(repeat.jobs[0].is_empty());
    assert_eq!(repeat.executions[0], None);
    let x = repeat.executions[1].unwrap();
    let xrow = execution(&driver, x).await;
    assert_eq!(xrow.trigger, Trigger::Schedule);
    assert_eq!(xrow.owner_kind, "report");
    assert_eq!(repeat.jobs[1][0].job.execution_id, Some(x));
    let scheduled: Vec<i64> = driver
        .job_list(&JobListParams {
            schedule_id: Some(schedule.id),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(scheduled, vec![repeat.jobs[1][0].job.id, created.id]);
    assert_eq!(driver.schedule_unfinished(schedule.id).await.unwrap(), 2);

    // History: newest first, with each fire's job outcome.
    let running = claim(&driver, "sched", 1, 7, at(130)).await;
    assert_eq!(running[0].id, created.id);
    finish_all(
        &driver,
        vec![finish(&running[0], JobState::Failed, at(140))],
    )
    .await;
    let history = driver
        .schedule_fires(&FireListParams {
            schedule_id: schedule.id,
            before: None,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].fire_at, at(120));
    assert_eq!(history[0].execution_id, Some(x));
    assert_eq!(history[0].unfinished, 1);
    assert_eq!(history[0].finished_at, None);
    assert_eq!(history[1].fire_at, at(60));
    assert_eq!(history[1].job_ids, vec![created.id]);
    assert_eq!(history[1].unfinished, 0);
    assert_eq!(history[1].unsuccessful, 1);
    assert_eq!(history[1].started_at, Some(at(130)));
    assert_eq!(history[1].finished_at, Some(at(140)));
    let older = driver
        .schedule_fires(&FireListParams {
            schedule_id: schedule.id,
            before: Some(at(120)),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].fire_at, at(60));

    // Pause hides it from due; delete removes it and its history.
    let paused = driver
        .schedule_update(&ScheduleUpdateParams {
            id: schedule.id,
            spec: None,
            next_fire_at: None,
            paused_at: Some(Some(at(150))),
            now: at(150),
        })
        .await
        .unwrap();
    assert_eq!(paused.paused_at, Some(at(150)));
    assert_eq!(paused.next_fire_at, Some(at(180)));
    assert!(driver.schedule_due(at(1000), 10).await.unwrap().is_empty());
    driver.schedule_delete(schedule.id).await.unwrap();
    assert!(
        driver
            .schedule_fires(&FireListParams {
                schedule_id: schedule.id,
                before: None,
                limit: 0,
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        driver.schedule_delete(schedule.id).await,
        Err(DriverError::NotFound {
            entity: "schedule",
            ..
        })
    ));
}

#[tokio::test]
async fn schedule_fire_rejects_a_duplicate_fire_row_by_key() {
    let (dir, driver) = fresh().await;
    let s = driver
        .schedule_insert(&ScheduleInsertParams {
            name: "dup".into(),
            spec: serde_json::json!({}),
            next_fire_at: None,
            now: at(0),
        })
        .await
        .unwrap();
    let out = driver
        .schedule_fire(fire_params(
            s.id,
            None,
            vec![FireRecord {
                status: FireStatus::Skipped,
                reason: Some("overlap".into()),
                ..fired(at(10), vec![job("x", "dup")])
            }],
            None,
        ))
        .await
        .unwrap();
    assert!(out.applied, "NULL next fire matches a NULL expectation");
    assert!(out.jobs[0].is_empty(), "a skipped fire creates no jobs");
    let mut conn = own_connection(&dir).await;
    let again = sqlx::query(
        "INSERT INTO rota_schedule_fires (schedule_id, fire_at, status, node_id, recorded_at) \
         VALUES (?, ?, 'fired', 'n', 0)",
    )
    .bind(s.id)
    .bind(at(10).as_microsecond())
    .execute(&mut conn)
    .await;
    assert!(again.is_err(), "(schedule_id, fire_at) is unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_inserts_wake_their_queues() {
    let (_dir, driver) = fresh().await;
    let mut rx: broadcast::Receiver<Wakeup> = driver.subscribe();
    let (x, _) = new_execution(&driver, "w", vec![job("a", "wake-x")], at(0)).await;
    driver
        .execution_add_jobs(ExecutionAddJobsParams {
            id: x.id,
            jobs: vec![job("b", "wake-y")],
            now: at(1),
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while seen.len() < 2 {
            if let Ok(Wakeup { queue: Some(q) }) = rx.recv().await {
                seen.push(q);
            }
        }
    })
    .await;
    seen.sort();
    assert_eq!(seen, vec!["wake-x".to_owned(), "wake-y".to_owned()]);
}

/// A state change and its effects commit together, also when the writer
/// runs a lone claim or finish in autocommit mode: when the effects fail
/// (here a trigger refuses every change of the execution), the change is
/// undone. And `job_finish_in` on a connection outside any transaction
/// applies, counts, and leaves no transaction open.
#[tokio::test]
async fn a_change_whose_effects_fail_is_undone() {
    let (dir, driver) = fresh().await;
    let (x, jobs) = new_execution(&driver, "fx", vec![job("a", "fx"), job("b", "fx")], at(0)).await;
    let mut conn = own_connection(&dir).await;
    let refuse = "CREATE TRIGGER refuse BEFORE UPDATE ON rota_executions \
                  BEGIN SELECT RAISE(ABORT, 'refused'); END";
    sqlx::query(refuse).execute(&mut conn).await.unwrap();
    let e = driver
        .job_claim(&claim_params("fx", 1, 7, at(1)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let first = driver.job_get(jobs[0].id).await.unwrap().unwrap();
    assert_eq!(first.state, JobState::Available, "the claim was undone");

    sqlx::query("DROP TRIGGER refuse")
        .execute(&mut conn)
        .await
        .unwrap();
    let running = claim(&driver, "fx", 2, 7, at(1)).await;
    assert_eq!(running.len(), 2);
    sqlx::query(refuse).execute(&mut conn).await.unwrap();
    let e = driver
        .job_finish_many(vec![finish(&running[0], JobState::Succeeded, at(2))])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let first = driver.job_get(running[0].id).await.unwrap().unwrap();
    assert_eq!(first.state, JobState::Running, "the finish was undone");

    sqlx::query("DROP TRIGGER refuse")
        .execute(&mut conn)
        .await
        .unwrap();
    let done =
        rota_sqlite::job_finish_in(&mut conn, finish(&running[0], JobState::Succeeded, at(2)))
            .await
            .unwrap();
    assert!(done.applied);
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Running, 1), (JobState::Succeeded, 1)])
    );
    // No transaction left open on the connection: the driver can write.
    finish_all(
        &driver,
        vec![finish(&running[1], JobState::Succeeded, at(3))],
    )
    .await;
    assert_eq!(
        execution(&driver, x.id).await.counts,
        counts(&[(JobState::Succeeded, 2)])
    );
}
