//! Executions: jobs grouped under an owner, with per-state counters and a
//! status the store derives from its jobs (the rule in
//! [`ExecutionStatus`]), stop, mark, retention, repair and listing.
//!
//! Counts are compared with zero entries dropped (a store may list every
//! state or only the non-empty ones). `updated_at` and `ended_at` are set by
//! the store's own triggers (from a job's `finished_at` or the current time),
//! so only their presence is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rota_core::{Job, JobState};
use rota_driver::{
    Driver, ExecutionInsertParams, ExecutionListParams, ExecutionMarkParams, ExecutionPruneParams,
    ExecutionRow, ExecutionStatus, ExecutionStopParams, JobCancelParams, JobHeartbeatParams,
    JobListParams, JobPruneParams, JobRetryParams, Trigger,
};

use crate::fixtures::{
    assert_conflict, assert_not_found_entity, at, claim, counts, execution, exists, finish,
    finish_all, finish_params, get, get_execution, id_list, ids, insert, insert_execution, job_in,
    list, map, nonzero, queue, scheduled, token,
};

use JobState::{Available, Canceled, Failed, Retrying, Running, Scheduled, Succeeded};

/// Asserts the execution's status, non-zero counts and whether it ended.
fn assert_exec(row: &ExecutionRow, status: ExecutionStatus, want: &[(JobState, i64)], what: &str) {
    assert_eq!(row.status, status, "{what}: status of {row:?}");
    assert_eq!(
        nonzero(&row.counts),
        counts(want),
        "{what}: counts of {row:?}"
    );
    assert_eq!(
        row.ended_at.is_some(),
        status.is_finished(),
        "{what}: ended_at is set exactly when the execution is over: {row:?}"
    );
}

/// Asserts the stored execution's status, counts and ended_at.
async fn expect_exec(
    driver: &Arc<dyn Driver>,
    id: i64,
    status: ExecutionStatus,
    want: &[(JobState, i64)],
    what: &str,
) -> ExecutionRow {
    let row = get_execution(driver, id).await;
    assert_exec(&row, status, want, what);
    row
}

/// Everything of an execution row but `updated_at` (store-maintained).
fn same_execution(a: &ExecutionRow, b: &ExecutionRow, what: &str) {
    let strip = |r: &ExecutionRow| ExecutionRow {
        updated_at: r.created_at,
        counts: nonzero(&r.counts),
        ..r.clone()
    };
    assert_eq!(strip(a), strip(b), "{what}");
}

async fn mark(
    driver: &Arc<dyn Driver>,
    id: i64,
    status: ExecutionStatus,
    message: &str,
    secs: i64,
) -> ExecutionRow {
    let params = ExecutionMarkParams {
        id,
        status,
        message: Some(message.to_owned()),
        now: at(secs),
    };
    driver
        .execution_mark(&params)
        .await
        .unwrap_or_else(|e| panic!("execution_mark({params:?}) failed: {e}"))
}

/// `execution_insert` creates the execution and its jobs in one go: status
/// `running`, counts per state of the jobs, `created_at = now`; every job
/// carries the execution id and is listed by `JobListParams.execution_id`.
/// An execution without jobs is `running` with no counts.
pub async fn execution_insert_with_jobs_counts_and_links(driver: Arc<dyn Driver>) {
    let q = queue("exec");
    let unrelated = insert(&driver, job_in("solo", &q)).await;
    let params = ExecutionInsertParams {
        attributes: map(&[("tenant", "acme"), ("it's", "o'neil \"x\"")]),
        status_message: Some("started by 'ops'".into()),
        ..execution(
            "replication",
            "42",
            vec![
                job_in("copy", &q),
                job_in("copy", &q),
                scheduled("verify", &q, at(600)),
            ],
            at(1),
        )
    };
    let (row, jobs) = insert_execution(&driver, params.clone()).await;
    assert_eq!(row.owner_kind, "replication");
    assert_eq!(row.owner_id, "42");
    assert_eq!(row.trigger, Trigger::Manual);
    assert_eq!(row.attributes, params.attributes, "attributes round-trip");
    assert_eq!(row.status_message, params.status_message);
    assert_eq!(row.created_at, at(1), "created_at = now");
    assert_exec(
        &row,
        ExecutionStatus::Running,
        &[(Available, 2), (Scheduled, 1)],
        "after insert with jobs",
    );
    for (j, p) in jobs.iter().zip(&params.jobs) {
        assert_eq!((j.kind.as_str(), j.state), (p.kind.as_str(), p.state));
        assert_eq!(j.execution_id, Some(row.id), "job carries execution_id");
        assert_eq!(j.schedule_id, None);
        assert_eq!(j.revision, 1, "a new job starts at revision 1");
        assert_eq!(&get(&driver, j.id).await, j, "returned job = stored job");
    }
    same_execution(
        &get_execution(&driver, row.id).await,
        &row,
        "execution_get returns the inserted execution",
    );
    assert_eq!(get(&driver, unrelated.id).await.execution_id, None);

    let (empty, none) = insert_execution(
        &driver,
        ExecutionInsertParams {
            trigger: Trigger::Event,
            ..execution("replication", "42", Vec::new(), at(2))
        },
    )
    .await;
    assert!(none.is_empty());
    assert!(empty.id > row.id, "execution ids increase");
    assert_eq!(empty.trigger, Trigger::Event);
    assert_eq!(empty.status_message, None);
    assert!(empty.attributes.is_empty());
    assert_exec(
        &empty,
        ExecutionStatus::Running,
        &[],
        "an execution without jobs",
    );
    let (other, other_jobs) = insert_execution(
        &driver,
        execution("backup", "1", vec![job_in("b", &q)], at(3)),
    )
    .await;

    let by_exec = |id: i64, states: Vec<JobState>| {
        let d = Arc::clone(&driver);
        async move {
            id_list(
                &list(
                    &d,
                    &JobListParams {
                        execution_id: Some(id),
                        states,
                        limit: 100,
                        ..Default::default()
                    },
                )
                .await,
            )
        }
    };
    let mut want = id_list(&jobs);
    want.reverse();
    assert_eq!(
        by_exec(row.id, Vec::new()).await,
        want,
        "jobs of the execution, newest first"
    );
    assert_eq!(
        by_exec(row.id, vec![Scheduled]).await,
        vec![jobs[2].id],
        "execution_id combines with states"
    );
    assert!(by_exec(empty.id, Vec::new()).await.is_empty());
    assert_eq!(by_exec(other.id, Vec::new()).await, id_list(&other_jobs));
    assert!(
        driver
            .execution_get(empty.id + 1_000_000)
            .await
            .unwrap_or_else(|e| panic!("execution_get failed: {e}"))
            .is_none(),
        "unknown execution: None"
    );
}

/// Claims and finishes move the counters; once every job succeeded the
/// execution is `succeeded` with `ended_at`.
pub async fn execution_all_succeeded_is_succeeded(driver: Arc<dyn Driver>) {
    let q = queue("exec-ok");
    let (row, _) = insert_execution(
        &driver,
        execution(
            "replication",
            "1",
            (0..3).map(|_| job_in("c", &q)).collect(),
            at(0),
        ),
    )
    .await;
    let t = token();
    let claimed = claim(&driver, &q, 10, t, at(1)).await;
    assert_eq!(claimed.len(), 3);
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Running, 3)],
        "after the claim",
    )
    .await;
    finish_all(&driver, &claimed[..2], t, Succeeded, at(2)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Running, 1), (Succeeded, 2)],
        "two of three succeeded",
    )
    .await;
    finish_all(&driver, &claimed[2..], t, Succeeded, at(3)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Succeeded,
        &[(Succeeded, 3)],
        "all succeeded",
    )
    .await;
}

/// 100 jobs, 97 succeed and 3 fail: the execution is `failed` with counts
/// 97 / 3, and stays `running` while any job is unfinished.
pub async fn execution_any_failed_is_failed(driver: Arc<dyn Driver>) {
    let q = queue("exec-100");
    let (row, jobs) = insert_execution(
        &driver,
        execution(
            "replication",
            "1",
            (0..100).map(|_| job_in("c", &q)).collect(),
            at(0),
        ),
    )
    .await;
    assert_exec(
        &row,
        ExecutionStatus::Running,
        &[(Available, 100)],
        "insert",
    );
    let t = token();
    let mut claimed = claim(&driver, &q, 100, t, at(1)).await;
    assert_eq!(ids(&claimed), ids(&jobs), "all 100 claimed");
    claimed.sort_by_key(|j| j.id);
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Running, 100)],
        "all running",
    )
    .await;
    finish_all(&driver, &claimed[..60], t, Succeeded, at(2)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Running, 40), (Succeeded, 60)],
        "60 succeeded",
    )
    .await;
    finish_all(&driver, &claimed[60..62], t, Failed, at(3)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Running, 38), (Succeeded, 60), (Failed, 2)],
        "a failure does not end a running execution",
    )
    .await;
    finish_all(&driver, &claimed[62..99], t, Succeeded, at(4)).await;
    finish_all(&driver, &claimed[99..], t, Failed, at(5)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Failed,
        &[(Succeeded, 97), (Failed, 3)],
        "97 succeeded + 3 failed",
    )
    .await;
}

/// Canceled jobs with none failed make the execution `canceled`; a failure
/// outranks cancellations; a retrying job is unfinished.
pub async fn execution_canceled_unless_failed(driver: Arc<dyn Driver>) {
    // Succeeded + canceled → canceled.
    let (qa, qb) = (queue("ex-a"), queue("ex-b"));
    let (a, a_jobs) = insert_execution(
        &driver,
        execution("o", "1", vec![job_in("x", &qa), job_in("y", &qb)], at(0)),
    )
    .await;
    let t = token();
    let run = claim(&driver, &qa, 1, t, at(1)).await;
    finish_all(&driver, &run, t, Succeeded, at(2)).await;
    driver
        .job_cancel(&JobCancelParams {
            id: a_jobs[1].id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    expect_exec(
        &driver,
        a.id,
        ExecutionStatus::Canceled,
        &[(Succeeded, 1), (Canceled, 1)],
        "succeeded + canceled",
    )
    .await;

    // Failed + canceled → failed.
    let (qa, qb) = (queue("ex-a"), queue("ex-b"));
    let (b, b_jobs) = insert_execution(
        &driver,
        execution("o", "1", vec![job_in("x", &qa), job_in("y", &qb)], at(0)),
    )
    .await;
    let run = claim(&driver, &qa, 1, t, at(1)).await;
    finish_all(&driver, &run, t, Failed, at(2)).await;
    driver
        .job_cancel(&JobCancelParams {
            id: b_jobs[1].id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    expect_exec(
        &driver,
        b.id,
        ExecutionStatus::Failed,
        &[(Failed, 1), (Canceled, 1)],
        "failed + canceled",
    )
    .await;

    // Retrying is unfinished; a cancel request on a running job keeps it
    // running until the worker acknowledges.
    let (qa, qb) = (queue("ex-a"), queue("ex-b"));
    let (c, c_jobs) = insert_execution(
        &driver,
        execution("o", "2", vec![job_in("x", &qa), job_in("y", &qb)], at(0)),
    )
    .await;
    let run = claim(&driver, &qa, 1, t, at(1)).await;
    finish_all(&driver, &run, t, Retrying, at(2)).await;
    let t2 = token();
    let run_b = claim(&driver, &qb, 1, t2, at(2)).await;
    driver
        .job_cancel(&JobCancelParams {
            id: c_jobs[1].id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel request failed: {e}"));
    expect_exec(
        &driver,
        c.id,
        ExecutionStatus::Running,
        &[(Retrying, 1), (Running, 1)],
        "retrying + cancel-requested running job",
    )
    .await;
    driver
        .job_cancel(&JobCancelParams {
            id: c_jobs[0].id,
            now: at(4),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    finish_all(&driver, &run_b, t2, Canceled, at(5)).await;
    expect_exec(
        &driver,
        c.id,
        ExecutionStatus::Canceled,
        &[(Canceled, 2)],
        "all canceled",
    )
    .await;
}

/// An operator retry of a failed job reopens its execution: `running` again
/// with `ended_at` cleared; it ends again when the job does.
pub async fn execution_retry_of_failed_job_reopens_it(driver: Arc<dyn Driver>) {
    let q = queue("ex-retry");
    let (row, _) = insert_execution(
        &driver,
        execution("o", "1", vec![job_in("x", &q), job_in("x", &q)], at(0)),
    )
    .await;
    let t = token();
    let mut run = claim(&driver, &q, 2, t, at(1)).await;
    run.sort_by_key(|j| j.id);
    finish_all(&driver, &run[..1], t, Succeeded, at(2)).await;
    finish_all(&driver, &run[1..], t, Failed, at(3)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Failed,
        &[(Succeeded, 1), (Failed, 1)],
        "before the retry",
    )
    .await;
    driver
        .job_retry(&JobRetryParams {
            id: run[1].id,
            now: at(10),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Running,
        &[(Succeeded, 1), (Available, 1)],
        "after the operator retry (ended_at cleared)",
    )
    .await;
    let t2 = token();
    let again = claim(&driver, &q, 1, t2, at(11)).await;
    assert_eq!(id_list(&again), vec![run[1].id]);
    finish_all(&driver, &again, t2, Succeeded, at(12)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Succeeded,
        &[(Succeeded, 2)],
        "the retried job succeeded",
    )
    .await;
}

/// `execution_mark` sets status, message and `ended_at` of an execution
/// without jobs; one with jobs is a `Conflict` and unchanged; an unknown id
/// is `NotFound` (entity `execution`).
pub async fn execution_mark_only_without_jobs(driver: Arc<dyn Driver>) {
    let (done, _) = insert_execution(&driver, execution("o", "1", Vec::new(), at(0))).await;
    let out = mark(
        &driver,
        done.id,
        ExecutionStatus::Succeeded,
        "nothing to do",
        5,
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.status_message.as_deref(), Some("nothing to do"));
    assert!(out.ended_at.is_some(), "a marked execution has ended");
    assert!(nonzero(&out.counts).is_empty());
    same_execution(
        &get_execution(&driver, done.id).await,
        &out,
        "mark returns the stored row",
    );

    let (err, _) = insert_execution(&driver, execution("o", "1", Vec::new(), at(0))).await;
    let out = mark(
        &driver,
        err.id,
        ExecutionStatus::Error,
        "source 'db' unreachable",
        6,
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Error);
    assert_eq!(
        out.status_message.as_deref(),
        Some("source 'db' unreachable")
    );
    assert!(out.ended_at.is_some());

    let (busy, _) = insert_execution(
        &driver,
        execution("o", "1", vec![job_in("x", &queue("m"))], at(0)),
    )
    .await;
    let before = get_execution(&driver, busy.id).await;
    for status in [ExecutionStatus::Succeeded, ExecutionStatus::Error] {
        assert_conflict(
            driver
                .execution_mark(&ExecutionMarkParams {
                    id: busy.id,
                    status,
                    message: Some("no".into()),
                    now: at(7),
                })
                .await,
            "mark of an execution with jobs",
        );
    }
    same_execution(
        &get_execution(&driver, busy.id).await,
        &before,
        "a refused mark changed the execution",
    );
    assert_eq!(before.status, ExecutionStatus::Running);

    let missing = busy.id + 1_000_000;
    assert_not_found_entity(
        driver
            .execution_mark(&ExecutionMarkParams {
                id: missing,
                status: ExecutionStatus::Succeeded,
                message: None,
                now: at(8),
            })
            .await,
        "execution",
        &missing.to_string(),
        "mark",
    );
}

/// `execution_stop` cancels the waiting jobs (`finished_at = now`), asks the
/// running ones to stop (`cancel_requested_at = now` unless already set) and
/// returns their ids; finished jobs are untouched. The execution ends
/// `canceled` once the running jobs acknowledge.
pub async fn execution_stop_cancels_waiting_and_requests_running(driver: Arc<dyn Driver>) {
    let (q_run, q_wait, q_done, q_retry) = (queue("rn"), queue("wt"), queue("dn"), queue("rt"));
    let (row, jobs) = insert_execution(
        &driver,
        execution(
            "o",
            "1",
            vec![
                job_in("r", &q_run),
                job_in("r", &q_run),
                job_in("a", &q_wait),
                scheduled("s", &q_wait, at(600)),
                job_in("d", &q_done),
                job_in("t", &q_retry),
            ],
            at(0),
        ),
    )
    .await;
    let t = token();
    let mut running = claim(&driver, &q_run, 2, t, at(1)).await;
    running.sort_by_key(|j| j.id);
    let done = claim(&driver, &q_done, 1, t, at(1)).await;
    finish_all(&driver, &done, t, Succeeded, at(2)).await;
    let retrying = claim(&driver, &q_retry, 1, t, at(1)).await;
    finish_all(&driver, &retrying, t, Retrying, at(2)).await;
    driver
        .job_cancel(&JobCancelParams {
            id: running[1].id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel request failed: {e}"));
    let waiting = [jobs[2].id, jobs[3].id, jobs[5].id];
    let before: BTreeMap<i64, Job> = {
        let mut m = BTreeMap::new();
        for j in &jobs {
            m.insert(j.id, get(&driver, j.id).await);
        }
        m
    };

    let (out, told) = driver
        .execution_stop(&ExecutionStopParams {
            id: row.id,
            now: at(10),
        })
        .await
        .unwrap_or_else(|e| panic!("execution_stop failed: {e}"));
    assert_eq!(
        told.iter().copied().collect::<BTreeSet<i64>>(),
        ids(&running),
        "stop returns the ids of the running jobs"
    );
    assert_eq!(told.len(), 2, "each running id once: {told:?}");
    assert_exec(
        &out,
        ExecutionStatus::Running,
        &[(Running, 2), (Canceled, 3), (Succeeded, 1)],
        "the row stop returns",
    );
    for id in waiting {
        let j = get(&driver, id).await;
        assert_eq!(j.state, Canceled, "a waiting job is canceled by stop");
        assert_eq!(j.finished_at, Some(at(10)), "finished_at = now");
    }
    let r0 = get(&driver, running[0].id).await;
    assert_eq!(r0.state, Running, "a running job keeps running");
    assert_eq!(r0.cancel_requested_at, Some(at(10)), "cancel requested now");
    let r1 = get(&driver, running[1].id).await;
    assert_eq!(
        r1.cancel_requested_at,
        Some(at(3)),
        "an earlier cancel request is kept"
    );
    assert_eq!(
        get(&driver, done[0].id).await,
        before[&done[0].id],
        "a finished job is untouched"
    );
    let hb = driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: running.iter().map(|j| (j.id, t)).collect(),
            lease_expires_at: at(60),
            now: at(11),
        })
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    assert!(
        hb.iter().all(|r| r.held && r.cancel_requested) && hb.len() == 2,
        "the workers learn of the stop: {hb:?}"
    );

    finish_all(&driver, &running, t, Canceled, at(12)).await;
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Canceled,
        &[(Canceled, 5), (Succeeded, 1)],
        "stopped execution once its workers acknowledged",
    )
    .await;

    let (again, told) = driver
        .execution_stop(&ExecutionStopParams {
            id: row.id,
            now: at(20),
        })
        .await
        .unwrap_or_else(|e| panic!("a second execution_stop failed: {e}"));
    assert!(told.is_empty(), "nothing left to stop: {told:?}");
    assert_exec(
        &again,
        ExecutionStatus::Canceled,
        &[(Canceled, 5), (Succeeded, 1)],
        "stop of a finished execution",
    );

    let missing = row.id + 1_000_000;
    assert_not_found_entity(
        driver
            .execution_stop(&ExecutionStopParams {
                id: missing,
                now: at(21),
            })
            .await,
        "execution",
        &missing.to_string(),
        "stop",
    );
}

/// Retention keeps the newest `keep_last` finished executions per
/// (owner_kind, owner_id), deletes older finished ones with their jobs, at
/// most `limit` per call, honours the owner_kind filter and never deletes a
/// running execution.
pub async fn execution_prune_keeps_newest_per_owner(driver: Arc<dyn Driver>) {
    const N: usize = 2;
    let owners = [("replication", "1"), ("replication", "2"), ("backup", "1")];
    // Per owner: a running execution first (oldest), then 3N finished ones,
    // alternately with a succeeded job and marked without jobs, then a
    // running one again (newest).
    type Owner<'a> = (&'a str, &'a str);
    // Per owner, oldest first: (execution id, its job ids).
    let mut finished: BTreeMap<Owner<'_>, Vec<(i64, Vec<i64>)>> = BTreeMap::new();
    let mut open: Vec<(i64, i64)> = Vec::new();
    let mut secs = 0;
    for round in 0..(3 * N + 2) {
        for (kind, id) in owners {
            secs += 1;
            let q = queue("prune");
            if round == 0 || round == 3 * N + 1 {
                let (row, jobs) = insert_execution(
                    &driver,
                    execution(kind, id, vec![job_in("p", &q)], at(secs)),
                )
                .await;
                open.push((row.id, jobs[0].id));
            } else if round % 2 == 0 {
                let (row, jobs) = insert_execution(
                    &driver,
                    execution(kind, id, vec![job_in("p", &q)], at(secs)),
                )
                .await;
                let t = token();
                let run = claim(&driver, &q, 1, t, at(secs)).await;
                finish_all(&driver, &run, t, Succeeded, at(secs)).await;
                finished
                    .entry((kind, id))
                    .or_default()
                    .push((row.id, id_list(&jobs)));
            } else {
                let (row, _) =
                    insert_execution(&driver, execution(kind, id, Vec::new(), at(secs))).await;
                let status = if round % 4 == 1 {
                    ExecutionStatus::Succeeded
                } else {
                    ExecutionStatus::Error
                };
                mark(&driver, row.id, status, "marked", secs).await;
                finished
                    .entry((kind, id))
                    .or_default()
                    .push((row.id, Vec::new()));
            }
        }
    }
    let prune = |owner_kind: Option<&str>, limit: u32| {
        let d = Arc::clone(&driver);
        let params = ExecutionPruneParams {
            owner_kind: owner_kind.map(str::to_owned),
            keep_last: N as u64,
            limit,
        };
        async move {
            d.execution_prune(&params)
                .await
                .unwrap_or_else(|e| panic!("execution_prune({params:?}) failed: {e}"))
        }
    };
    let exists_exec = |id: i64| {
        let d = Arc::clone(&driver);
        async move {
            d.execution_get(id)
                .await
                .unwrap_or_else(|e| panic!("execution_get failed: {e}"))
                .is_some()
        }
    };

    // Only replication owners: 2 owners × 2N to delete, 3 per call.
    let mut deleted = Vec::new();
    for _ in 0..10 {
        let n = prune(Some("replication"), 3).await;
        assert!(n <= 3, "at most `limit` executions per call, got {n}");
        deleted.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(
        deleted.iter().sum::<u64>(),
        (2 * 2 * N) as u64,
        "2 replication owners × (3N - N) executions: {deleted:?}"
    );
    for (id, _) in &finished[&("backup", "1")] {
        assert!(
            exists_exec(*id).await,
            "owner_kind filter: backup untouched"
        );
    }
    assert_eq!(
        prune(None, 1_000).await,
        (2 * N) as u64,
        "then the backup owner's older ones"
    );
    assert_eq!(prune(None, 1_000).await, 0, "nothing more to prune");

    for (owner, rows) in &finished {
        let keep = rows.len() - N;
        for (i, (id, jobs)) in rows.iter().enumerate() {
            let kept = i >= keep;
            assert_eq!(
                exists_exec(*id).await,
                kept,
                "{owner:?}: execution {i} of {} (newest {N} kept)",
                rows.len()
            );
            for j in jobs {
                assert_eq!(
                    exists(&driver, *j).await,
                    kept,
                    "{owner:?}: jobs go with their execution"
                );
            }
        }
    }
    for (id, job) in open {
        assert!(exists_exec(id).await, "a running execution is never pruned");
        assert!(exists(&driver, job).await, "nor its jobs");
    }
    let left = driver
        .execution_list(&ExecutionListParams::default())
        .await
        .unwrap_or_else(|e| panic!("execution_list failed: {e}"));
    for (kind, id) in owners {
        let finished_left = left
            .iter()
            .filter(|r| r.owner_kind == kind && r.owner_id == id && r.status.is_finished())
            .count();
        assert_eq!(finished_left, N, "{kind}/{id}: N finished executions left");
    }
}

/// Deleting a job keeps the counters right (store triggers), job pruning
/// leaves execution jobs alone, and `execution_repair` on a consistent
/// store fixes nothing. (Breaking a
/// counter needs raw SQL, which the harness does not offer.)
pub async fn execution_repair_on_consistent_store_finds_nothing(driver: Arc<dyn Driver>) {
    let q = queue("repair");
    let (row, _) = insert_execution(
        &driver,
        execution("o", "1", (0..4).map(|_| job_in("x", &q)).collect(), at(0)),
    )
    .await;
    let t = token();
    let mut run = claim(&driver, &q, 4, t, at(1)).await;
    run.sort_by_key(|j| j.id);
    finish_all(&driver, &run[..3], t, Succeeded, at(2)).await;
    finish_all(&driver, &run[3..], t, Failed, at(3)).await;
    driver
        .job_delete(run[3].id)
        .await
        .unwrap_or_else(|e| panic!("job_delete failed: {e}"));
    expect_exec(
        &driver,
        row.id,
        ExecutionStatus::Succeeded,
        &[(Succeeded, 3)],
        "after deleting the failed job",
    )
    .await;
    let n = driver
        .job_prune(&JobPruneParams {
            finished_before: None,
            keep_last: Some(1),
            limit: 1_000,
        })
        .await
        .unwrap_or_else(|e| panic!("job_prune failed: {e}"));
    assert_eq!(
        n, 0,
        "job pruning leaves execution jobs to execution retention"
    );
    let after = get_execution(&driver, row.id).await;
    assert_eq!(
        nonzero(&after.counts),
        counts(&[(Succeeded, 3)]),
        "a finished execution's figures never change under job pruning"
    );
    let (_open, _) =
        insert_execution(&driver, execution("o", "2", vec![job_in("y", &q)], at(5))).await;
    let (marked, _) = insert_execution(&driver, execution("o", "3", Vec::new(), at(5))).await;
    mark(&driver, marked.id, ExecutionStatus::Error, "x", 6).await;

    let fixed = driver
        .execution_repair(100)
        .await
        .unwrap_or_else(|e| panic!("execution_repair failed: {e}"));
    assert!(
        fixed.is_empty(),
        "repair of consistent executions reports nothing: {fixed:?}"
    );
    let marked_now = get_execution(&driver, marked.id).await;
    assert_eq!(
        marked_now.status,
        ExecutionStatus::Error,
        "repair leaves marked executions alone"
    );
}

/// Listing: newest first; owner, status and attribute filters combine with
/// AND (attribute keys with dots, quotes and JSON-path characters match
/// literally); `before_id` pages; limit 0 means the cap.
pub async fn execution_list_filters_and_pagination(driver: Arc<dyn Driver>) {
    let injection = "'; DROP TABLE rota_executions; --";
    let new = |kind: &'static str, id: &'static str, attrs: Vec<(&'static str, &'static str)>| {
        let d = Arc::clone(&driver);
        async move {
            insert_execution(
                &d,
                ExecutionInsertParams {
                    attributes: map(&attrs),
                    ..execution(kind, id, Vec::new(), at(1))
                },
            )
            .await
            .0
        }
    };
    let e1 = new(
        "replication",
        "1",
        vec![("tenant", "acme"), ("a.b", "1"), ("it's", "x")],
    )
    .await;
    let e2 = new("replication", "2", vec![("tenant", "acme"), ("k\"q", "%")]).await;
    mark(&driver, e2.id, ExecutionStatus::Succeeded, "ok", 2).await;
    let e3 = new(
        "backup",
        "1",
        vec![("$.tenant", "acme"), ("tenant", injection)],
    )
    .await;
    mark(&driver, e3.id, ExecutionStatus::Error, "bad", 2).await;
    let q = queue("exlist");
    let (e4, _) = insert_execution(
        &driver,
        ExecutionInsertParams {
            attributes: map(&[("a", "{\"b\":\"1\"}")]),
            ..execution("replication", "1", vec![job_in("f", &q)], at(1))
        },
    )
    .await;
    let t = token();
    let run = claim(&driver, &q, 1, t, at(2)).await;
    assert!(finish(&driver, finish_params(&run[0], t, Failed, at(3))).await);
    let e5 = new("replication", "1", vec![("tenant", "acme2")]).await;
    let [i1, i2, i3, i4, i5] = [e1.id, e2.id, e3.id, e4.id, e5.id];

    let ls = |p: ExecutionListParams| {
        let d = Arc::clone(&driver);
        async move {
            d.execution_list(&p)
                .await
                .unwrap_or_else(|e| panic!("execution_list({p:?}) failed: {e}"))
        }
    };
    let q = |p: ExecutionListParams| async move {
        ls(p).await.iter().map(|r| r.id).collect::<Vec<i64>>()
    };
    let all = ls(ExecutionListParams::default()).await;
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![i5, i4, i3, i2, i1],
        "no filter, limit 0 (the cap): all, newest first"
    );
    for r in &all {
        same_execution(
            &get_execution(&driver, r.id).await,
            r,
            "execution_list returns full rows",
        );
    }
    let f = |owner_kind: Option<&str>, owner_id: Option<&str>| ExecutionListParams {
        owner_kind: owner_kind.map(str::to_owned),
        owner_id: owner_id.map(str::to_owned),
        ..Default::default()
    };
    assert_eq!(q(f(Some("replication"), None)).await, vec![i5, i4, i2, i1]);
    assert_eq!(q(f(Some("replication"), Some("1"))).await, vec![i5, i4, i1]);
    assert_eq!(q(f(None, Some("1"))).await, vec![i5, i4, i3, i1]);
    assert!(q(f(Some("Replication"), None)).await.is_empty(), "exact");
    let st = |statuses: Vec<ExecutionStatus>| ExecutionListParams {
        statuses,
        ..Default::default()
    };
    assert_eq!(q(st(vec![ExecutionStatus::Running])).await, vec![i5, i1]);
    assert_eq!(
        q(st(vec![ExecutionStatus::Succeeded, ExecutionStatus::Error])).await,
        vec![i3, i2],
        "statuses match any of"
    );
    assert_eq!(q(st(vec![ExecutionStatus::Failed])).await, vec![i4]);
    assert!(q(st(vec![ExecutionStatus::Canceled])).await.is_empty());
    let by = |attrs: &[(&str, &str)]| ExecutionListParams {
        attributes: map(attrs),
        ..Default::default()
    };
    assert_eq!(
        q(by(&[("tenant", "acme")])).await,
        vec![i2, i1],
        "exact value"
    );
    assert_eq!(
        q(by(&[("a.b", "1")])).await,
        vec![i1],
        "a dotted key is one key"
    );
    assert_eq!(q(by(&[("it's", "x"), ("tenant", "acme")])).await, vec![i1]);
    assert_eq!(
        q(by(&[("k\"q", "%")])).await,
        vec![i2],
        "quoted key, '%' literal"
    );
    assert!(
        q(by(&[("k\"q", "_")])).await.is_empty(),
        "'_' is not a wildcard"
    );
    assert_eq!(
        q(by(&[("$.tenant", "acme")])).await,
        vec![i3],
        "JSON-path-like key"
    );
    assert_eq!(q(by(&[("tenant", injection)])).await, vec![i3]);
    assert_eq!(q(by(&[("a", "{\"b\":\"1\"}")])).await, vec![i4]);
    assert!(q(by(&[("b", "1")])).await.is_empty(), "no nested matching");
    assert!(q(by(&[("tenant", "acme"), ("nope", "x")])).await.is_empty());
    assert_eq!(
        q(ExecutionListParams {
            owner_kind: Some("replication".into()),
            statuses: vec![ExecutionStatus::Running, ExecutionStatus::Succeeded],
            attributes: map(&[("tenant", "acme")]),
            ..Default::default()
        })
        .await,
        vec![i2, i1],
        "filters combine with AND"
    );

    // Keyset pagination.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = q(ExecutionListParams {
            before_id: before,
            limit: 2,
            ..Default::default()
        })
        .await;
        assert!(page.len() <= 2, "page larger than limit");
        if page.is_empty() {
            break;
        }
        before = page.last().copied();
        seen.extend(page);
        // A newer execution must not show up in later pages.
        new("replication", "9", Vec::new()).await;
    }
    assert_eq!(
        seen,
        vec![i5, i4, i3, i2, i1],
        "pages of 2 walk every row once"
    );
    assert_eq!(
        q(ExecutionListParams {
            before_id: Some(i3),
            owner_kind: Some("replication".into()),
            ..Default::default()
        })
        .await,
        vec![i2, i1],
        "before_id is exclusive and combines with filters"
    );
    assert_eq!(
        q(ExecutionListParams {
            limit: 1,
            statuses: vec![ExecutionStatus::Failed],
            ..Default::default()
        })
        .await,
        vec![i4]
    );
}
