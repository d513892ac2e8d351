//! Unit tests of the writer's claim (a read and an update whose effect is
//! also applied to the jobs as read) and of its finish of plain successes
//! (the statement without `RETURNING` when every run applies, the
//! returning one when a lease is stale or an execution is not the job's;
//! an id repeated in one batch in later statements), and that neither
//! leaves a transaction behind.

use crate::row::{JOB_COLUMNS, job_from_row};
use crate::runs::{FinishPlan, claim_native, finish_many_native};
use crate::tests::{connection, native};
use jiff::Timestamp;
use rota_core::{Job, JobState};
use rota_driver::{FinishResult, JobClaimParams, JobFinishParams};

/// A migrated database with `n` running jobs (ids 1..=n) of lease token 7.
async fn running_jobs(dir: &tempfile::TempDir, n: usize) -> rusqlite::Connection {
    let (_conn, opts) = connection(dir).await;
    let native = native(&opts);
    for _ in 0..n {
        native
            .execute(
                "INSERT INTO rota_jobs (kind, queue, state, attempt, max_attempts, run_at, \
                 created_at, lease_token, lease_expires_at) \
                 VALUES ('k', 'q', 'running', 1, 3, 0, 0, 7, 1000)",
                [],
            )
            .unwrap();
    }
    native
}

fn success(id: i64, lease_token: i64) -> JobFinishParams {
    JobFinishParams {
        id,
        execution_id: None,
        lease_token,
        lease_expired_before: None,
        state: JobState::Succeeded,
        attempt: 1,
        run_at: None,
        finished_at: Some(Timestamp::from_second(1_000_000).unwrap()),
        error: None,
        output: None,
        progress: None,
        exit_code: None,
    }
}

fn finish(native: &rusqlite::Connection, params: &[JobFinishParams]) -> Vec<FinishResult> {
    let plan = FinishPlan::new(params).unwrap();
    let (results, woken) = finish_many_native(native, plan, params).unwrap();
    assert!(woken.is_empty(), "a success wakes no queue");
    assert!(native.is_autocommit(), "no transaction left open");
    results
}

fn states(native: &rusqlite::Connection) -> Vec<String> {
    let mut st = native
        .prepare("SELECT state FROM rota_jobs ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn applied(results: &[FinishResult]) -> Vec<bool> {
    results.iter().map(|r| r.applied).collect()
}

#[tokio::test]
async fn every_run_applying_is_reported_and_committed() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 3).await;
    let results = finish(&native, &[success(3, 7), success(1, 7), success(2, 7)]);
    assert_eq!(applied(&results), [true, true, true]);
    assert_eq!(
        results.iter().map(|r| r.id).collect::<Vec<_>>(),
        [3, 1, 2],
        "results keep input order"
    );
    assert_eq!(states(&native), ["succeeded"; 3]);
    let tokens: i64 = native
        .query_row(
            "SELECT count(*) FROM rota_jobs WHERE lease_token IS NULL AND finished_at = 1000000000000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tokens, 3);
}

#[tokio::test]
async fn a_stale_lease_applies_nothing_of_its_own_and_the_rest_still_applies() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 3).await;
    let results = finish(&native, &[success(1, 7), success(2, 8), success(3, 7)]);
    assert_eq!(applied(&results), [true, false, true]);
    assert_eq!(states(&native), ["succeeded", "running", "succeeded"]);
    // Finished already: nothing applies a second time.
    let again = finish(&native, &[success(1, 7)]);
    assert_eq!(applied(&again), [false]);
}

#[tokio::test]
async fn a_repeated_id_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 2).await;
    let results = finish(&native, &[success(1, 7), success(1, 7), success(2, 7)]);
    assert_eq!(applied(&results), [true, false, true]);
    assert_eq!(states(&native), ["succeeded"; 2]);
}

/// Finishes of one run in one batch take turns, in input order: a stale
/// one first does not take the credit for the valid one after it (one
/// statement applies one of its rows of an id, and does not say which).
#[tokio::test]
async fn a_repeated_id_is_credited_to_the_finish_that_applied() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 1).await;
    // Both with output: the same kind of statement.
    let with_output = |token: i64, output: &str| JobFinishParams {
        output: Some(output.into()),
        ..success(1, token)
    };
    let results = finish(&native, &[with_output(8, "stale"), with_output(7, "valid")]);
    assert_eq!(applied(&results), [false, true]);
    assert_eq!(states(&native), ["succeeded"]);
    let output: String = native
        .query_row("SELECT output FROM rota_jobs WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(output, "valid");
    let quiet_first = finish(&native, &[success(1, 7)]);
    assert_eq!(applied(&quiet_first), [false], "already finished");
}

/// A plain success whose execution is not the job's still applies (by the
/// form that returns rows), and keeps the counters of the job's own.
#[tokio::test]
async fn a_wrong_execution_makes_the_finish_slower_not_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 2).await;
    native
        .execute_batch(
            "INSERT INTO rota_executions (owner_kind, owner_id, trigger, created_at, updated_at, running) \
             VALUES ('o', 'x', 'manual', 0, 0, 1); \
             UPDATE rota_jobs SET execution_id = 1 WHERE id = 1;",
        )
        .unwrap();
    let results = finish(&native, &[success(1, 7), success(2, 7)]);
    assert_eq!(applied(&results), [true, true]);
    let counts: (i64, i64) = native
        .query_row(
            "SELECT running, succeeded FROM rota_executions WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(counts, (0, 1));
}

#[tokio::test]
async fn inside_a_transaction_it_neither_commits_nor_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let native = running_jobs(&dir, 2).await;
    native.execute_batch("BEGIN IMMEDIATE").unwrap();
    let plan = FinishPlan::new(&[success(1, 7), success(2, 9)]).unwrap();
    let (results, _) = finish_many_native(&native, plan, &[success(1, 7), success(2, 9)]).unwrap();
    assert_eq!(applied(&results), [true, false]);
    assert!(!native.is_autocommit(), "the caller's transaction goes on");
    native.execute_batch("ROLLBACK").unwrap();
    assert_eq!(states(&native), ["running"; 2]);
}

/// Jobs as stored, by id.
fn stored(native: &rusqlite::Connection) -> Vec<Job> {
    let mut st = native
        .prepare(&format!("SELECT {JOB_COLUMNS} FROM rota_jobs ORDER BY id"))
        .unwrap();
    let mut rows = st.query([]).unwrap();
    let mut jobs = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        jobs.push(job_from_row(r).unwrap());
    }
    jobs
}

fn claim_params(max: u32) -> JobClaimParams {
    JobClaimParams {
        queue: "q".into(),
        max,
        node_id: "node-1".into(),
        node_labels: Default::default(),
        kinds: None,
        lease_token: 42,
        // Sub-microsecond parts: stored, and so returned, as microseconds.
        lease_expires_at: Timestamp::from_nanosecond(2_000_000_000_000_123_456).unwrap(),
        now: Timestamp::from_nanosecond(1_000_000_000_000_654_321).unwrap(),
    }
}

/// A migrated database with `n` available jobs of queue `q`, priorities
/// descending so claim order is not id order.
async fn available_jobs(dir: &tempfile::TempDir, n: i64) -> rusqlite::Connection {
    let native = running_jobs(dir, 0).await;
    for i in 0..n {
        native
            .execute(
                "INSERT INTO rota_jobs (kind, queue, state, priority, max_attempts, run_at, \
                 created_at, args, errors) VALUES ('k', 'q', 'available', ?1, 3, 0, 0, '{\"i\":1}', '[]')",
                [n - i],
            )
            .unwrap();
    }
    native
}

#[tokio::test]
async fn claimed_jobs_are_returned_exactly_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let native = available_jobs(&dir, 5).await;
    let claimed = claim_native(&native, &claim_params(3)).unwrap();
    assert!(native.is_autocommit(), "no transaction left open");
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        [5, 4, 3],
        "claim order: priority first"
    );
    let stored = stored(&native);
    for job in &claimed {
        assert_eq!(job, &stored[(job.id - 1) as usize]);
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.attempt, 1);
        assert_eq!(job.lease_token, Some(42));
        assert_eq!(job.node.as_deref(), Some("node-1"));
        assert_eq!(job.revision, 2);
        assert_eq!(
            job.started_at,
            Some(Timestamp::from_microsecond(1_000_000_000_000_654).unwrap())
        );
    }
    assert_eq!(
        stored
            .iter()
            .filter(|j| j.state == JobState::Available)
            .count(),
        2
    );
    // The rest, then nothing.
    assert_eq!(claim_native(&native, &claim_params(10)).unwrap().len(), 2);
    assert!(claim_native(&native, &claim_params(10)).unwrap().is_empty());
    assert!(native.is_autocommit());
}

#[tokio::test]
async fn a_claim_in_a_caller_transaction_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let native = available_jobs(&dir, 2).await;
    native.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(claim_native(&native, &claim_params(5)).unwrap().len(), 2);
    assert!(!native.is_autocommit(), "the caller's transaction goes on");
    native.execute_batch("ROLLBACK").unwrap();
    assert!(
        stored(&native)
            .iter()
            .all(|j| j.state == JobState::Available)
    );
}

#[tokio::test]
async fn a_paused_queue_gives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let native = available_jobs(&dir, 2).await;
    native
        .execute(
            "INSERT INTO rota_queues (name, paused_at, updated_at) VALUES ('q', 1, 1)",
            [],
        )
        .unwrap();
    assert!(claim_native(&native, &claim_params(5)).unwrap().is_empty());
    assert!(native.is_autocommit());
}
