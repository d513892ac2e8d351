//! Building blocks shared by the cases: a fixed clock origin, insert params
//! with defaults, and short-hands that drive a job into a given state through
//! the driver alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rota_core::{AttemptError, ErrorKind, Job, JobState};
use rota_driver::{
    Driver, DriverError, EventRow, ExecutionInsertParams, ExecutionRow, JobCancelParams,
    JobClaimParams, JobFinishParams, JobInsertParams, JobListParams, JobPromoteParams, Trigger,
    Wakeup, WebhookInsertParams, WebhookRow,
};
use tokio::sync::broadcast;

/// The suite's origin of time: 2030-01-01T00:00:00Z. Cases express every
/// instant as an offset from it, so a driver that reads the database's own
/// clock instead of the `now` it is given is caught.
pub const T0_SECONDS: i64 = 1_893_456_000;

/// [`T0_SECONDS`] as a timestamp.
pub fn t0() -> Timestamp {
    Timestamp::from_second(T0_SECONDS).unwrap_or_else(|e| panic!("T0 out of range: {e}"))
}

/// `T0 + secs` seconds (negative goes back).
pub fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

/// `T0 + ms` milliseconds.
pub fn at_ms(ms: i64) -> Timestamp {
    t0() + SignedDuration::from_millis(ms)
}

/// The default lease length cases use.
pub const LEASE: Duration = Duration::from_secs(30);

/// The node id cases claim with unless they say otherwise.
pub const NODE: &str = "node-1";

/// A process-wide unique lease token.
pub fn token() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A queue name no other job of the case uses (`<prefix>-<n>`).
pub fn queue(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Insert params with defaults: queue `default`, priority 0, available,
/// `run_at = created_at = T0`, 25 attempts, no key, labels or attributes.
pub fn job(kind: &str) -> JobInsertParams {
    JobInsertParams {
        kind: kind.to_owned(),
        args: serde_json::json!({}),
        queue: "default".to_owned(),
        priority: 0,
        state: JobState::Available,
        run_at: t0(),
        created_at: t0(),
        max_attempts: 25,
        timeout: None,
        unique_key: None,
        labels: BTreeMap::new(),
        attributes: BTreeMap::new(),
        trace_context: None,
    }
}

/// [`job`] in `queue`.
pub fn job_in(kind: &str, queue: &str) -> JobInsertParams {
    JobInsertParams {
        queue: queue.to_owned(),
        ..job(kind)
    }
}

/// [`job`] scheduled for `run_at` (state `Scheduled`, created at T0).
pub fn scheduled(kind: &str, queue: &str, run_at: Timestamp) -> JobInsertParams {
    JobInsertParams {
        state: JobState::Scheduled,
        run_at,
        ..job_in(kind, queue)
    }
}

/// A string map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An [`AttemptError`].
pub fn attempt_error(attempt: u32, at: Timestamp, kind: ErrorKind, message: &str) -> AttemptError {
    AttemptError {
        attempt,
        at,
        kind,
        message: message.to_owned(),
    }
}

/// Inserts one job, expecting it to be inserted.
pub async fn insert(driver: &Arc<dyn Driver>, params: JobInsertParams) -> Job {
    let mut out = driver
        .job_insert_many(vec![params.clone()])
        .await
        .unwrap_or_else(|e| panic!("job_insert_many({params:?}) failed: {e}"));
    assert_eq!(out.len(), 1, "one spec in, one result out");
    let row = out.remove(0);
    assert!(
        row.inserted,
        "expected a new job for {params:?}, got existing {:?}",
        row.job
    );
    row.job
}

/// Inserts jobs, expecting every one to be inserted; returns them in order.
pub async fn insert_all(driver: &Arc<dyn Driver>, params: Vec<JobInsertParams>) -> Vec<Job> {
    let n = params.len();
    let out = driver
        .job_insert_many(params)
        .await
        .unwrap_or_else(|e| panic!("job_insert_many of {n} specs failed: {e}"));
    assert_eq!(
        out.len(),
        n,
        "job_insert_many must return one result per spec"
    );
    out.into_iter()
        .map(|r| {
            assert!(r.inserted, "expected a new job, got existing {:?}", r.job);
            r.job
        })
        .collect()
}

/// The stored job, which must exist.
pub async fn get(driver: &Arc<dyn Driver>, id: i64) -> Job {
    driver
        .job_get(id)
        .await
        .unwrap_or_else(|e| panic!("job_get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

/// Whether a job with this id exists.
pub async fn exists(driver: &Arc<dyn Driver>, id: i64) -> bool {
    driver
        .job_get(id)
        .await
        .unwrap_or_else(|e| panic!("job_get({id}) failed: {e}"))
        .is_some()
}

/// Claim params for [`NODE`] with no labels, lease `now + LEASE`.
pub fn claim_params(queue: &str, max: u32, lease_token: i64, now: Timestamp) -> JobClaimParams {
    JobClaimParams {
        queue: queue.to_owned(),
        max,
        node_id: NODE.to_owned(),
        node_labels: BTreeMap::new(),
        kinds: None,
        lease_token,
        lease_expires_at: rota_core::clock::add(now, LEASE),
        now,
    }
}

/// Claims with [`claim_params`].
pub async fn claim(
    driver: &Arc<dyn Driver>,
    queue: &str,
    max: u32,
    lease_token: i64,
    now: Timestamp,
) -> Vec<Job> {
    claim_with(driver, &claim_params(queue, max, lease_token, now)).await
}

/// Claims with the given params.
pub async fn claim_with(driver: &Arc<dyn Driver>, params: &JobClaimParams) -> Vec<Job> {
    driver
        .job_claim(params)
        .await
        .unwrap_or_else(|e| panic!("job_claim({params:?}) failed: {e}"))
}

/// Ids of jobs, as a set.
pub fn ids(jobs: &[Job]) -> BTreeSet<i64> {
    jobs.iter().map(|j| j.id).collect()
}

/// Ids of jobs, in order.
pub fn id_list(jobs: &[Job]) -> Vec<i64> {
    jobs.iter().map(|j| j.id).collect()
}

/// A running job: inserts `params` (whose queue must hold no other available
/// job) and claims it at `now` with `lease_token`.
pub async fn running(
    driver: &Arc<dyn Driver>,
    params: JobInsertParams,
    lease_token: i64,
    now: Timestamp,
) -> Job {
    let queue = params.queue.clone();
    let inserted = insert(driver, params).await;
    let claimed = claim(driver, &queue, 1, lease_token, now).await;
    assert_eq!(
        id_list(&claimed),
        vec![inserted.id],
        "claiming the only available job of queue {queue}"
    );
    claimed.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// Finish params that move `job` to `state` at `now` the way the engine
/// would: `run_at = now + 60s` for `Retrying`/`Scheduled`, `now` for
/// `Available`, `finished_at = now` for terminal states, attempt kept (given
/// back for `Scheduled`), an error for `Retrying`/`Failed`.
pub fn finish_params(
    job: &Job,
    lease_token: i64,
    state: JobState,
    now: Timestamp,
) -> JobFinishParams {
    let later = now + SignedDuration::from_secs(60);
    JobFinishParams {
        id: job.id,
        execution_id: job.execution_id,
        lease_token,
        lease_expired_before: None,
        state,
        attempt: if state == JobState::Scheduled {
            job.attempt.saturating_sub(1)
        } else {
            job.attempt
        },
        run_at: match state {
            JobState::Retrying | JobState::Scheduled => Some(later),
            JobState::Available => Some(now),
            _ => None,
        },
        finished_at: state.is_finished().then_some(now),
        error: match state {
            JobState::Retrying => Some(attempt_error(job.attempt, now, ErrorKind::Error, "boom")),
            JobState::Failed => Some(attempt_error(
                job.attempt,
                now,
                ErrorKind::Fatal,
                "fatal boom",
            )),
            _ => None,
        },
        output: None,
        progress: None,
        exit_code: None,
    }
}

/// Runs one finish and returns whether it applied.
pub async fn finish(driver: &Arc<dyn Driver>, params: JobFinishParams) -> bool {
    let id = params.id;
    let out = driver
        .job_finish_many(vec![params.clone()])
        .await
        .unwrap_or_else(|e| panic!("job_finish_many({params:?}) failed: {e}"));
    assert_eq!(out.len(), 1, "one finish in, one result out");
    assert_eq!(out[0].id, id, "finish result names the job");
    out[0].applied
}

/// A job of kind `kind` in its own new queue, driven into `state` through
/// the driver. Jobs that went through a claim were claimed with
/// `lease_token` at `T0`; finishes and cancels happen at `T0 + 1s`.
/// `Retrying` jobs have `run_at = T0 + 61s`, `Scheduled` ones `T0 + 3600s`.
pub async fn job_in_state(driver: &Arc<dyn Driver>, state: JobState, lease_token: i64) -> Job {
    job_in_state_with(driver, job_in("sm", &queue("st")), state, lease_token).await
}

/// Like [`job_in_state`] with explicit insert params (their queue must hold
/// no other available job).
pub async fn job_in_state_with(
    driver: &Arc<dyn Driver>,
    params: JobInsertParams,
    state: JobState,
    lease_token: i64,
) -> Job {
    let now = at(1);
    let job = match state {
        JobState::Scheduled => {
            insert(
                driver,
                JobInsertParams {
                    state: JobState::Scheduled,
                    run_at: at(3600),
                    ..params
                },
            )
            .await
        }
        JobState::Available => insert(driver, params).await,
        JobState::Running => running(driver, params, lease_token, t0()).await,
        JobState::Canceled => {
            let job = insert(driver, params).await;
            driver
                .job_cancel(&JobCancelParams { id: job.id, now })
                .await
                .unwrap_or_else(|e| panic!("cancel of available job {} failed: {e}", job.id))
        }
        JobState::Retrying | JobState::Succeeded | JobState::Failed => {
            let job = running(driver, params, lease_token, t0()).await;
            let applied = finish(driver, finish_params(&job, lease_token, state, now)).await;
            assert!(
                applied,
                "finishing running job {} to {state} with its token",
                job.id
            );
            get(driver, job.id).await
        }
    };
    assert_eq!(job.state, state, "setting up a {state} job: {job:?}");
    get(driver, job.id).await
}

/// Lists with the given params.
pub async fn list(driver: &Arc<dyn Driver>, params: &JobListParams) -> Vec<Job> {
    driver
        .job_list(params)
        .await
        .unwrap_or_else(|e| panic!("job_list({params:?}) failed: {e}"))
}

/// Promotes everything due at `now` (limit 10,000); returns counts per queue
/// with zero entries dropped.
pub async fn promote(driver: &Arc<dyn Driver>, now: Timestamp) -> BTreeMap<String, u64> {
    promote_limit(driver, now, 10_000).await
}

/// Promotes with a limit; returns counts per queue with zero entries dropped.
pub async fn promote_limit(
    driver: &Arc<dyn Driver>,
    now: Timestamp,
    limit: u32,
) -> BTreeMap<String, u64> {
    let rows = driver
        .job_promote_due(&JobPromoteParams { now, limit })
        .await
        .unwrap_or_else(|e| panic!("job_promote_due at {now} failed: {e}"));
    let mut out = BTreeMap::new();
    for r in rows {
        if r.count > 0 {
            assert!(
                out.insert(r.queue.clone(), r.count).is_none(),
                "job_promote_due reported queue {} twice",
                r.queue
            );
        }
    }
    out
}

/// Asserts `result` is `InvalidState` naming `id`, `state` and `action`.
pub fn assert_invalid_state<T: std::fmt::Debug>(
    result: Result<T, DriverError>,
    id: i64,
    state: JobState,
    action: &str,
) {
    match result {
        Err(DriverError::InvalidState {
            id: got_id,
            state: got_state,
            action: got_action,
        }) => {
            assert_eq!(
                (got_id, got_state, got_action),
                (id, state, action),
                "InvalidState must name the job, its current state and the refused action"
            );
        }
        other => panic!(
            "{action} of {state} job {id}: expected DriverError::InvalidState, got {other:?}"
        ),
    }
}

/// Asserts `result` is `NotFound` for job `id`.
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, DriverError>, id: i64, action: &str) {
    match result {
        Err(DriverError::NotFound { entity, id: got }) => {
            assert_eq!(
                (entity, got.as_str()),
                ("job", id.to_string().as_str()),
                "NotFound must name entity `job` and the id"
            );
        }
        other => {
            panic!("{action} of missing job {id}: expected DriverError::NotFound, got {other:?}")
        }
    }
}

/// Waits up to `within` for a wake-up that concerns `queue` (or all queues).
pub async fn expect_wakeup(
    rx: &mut broadcast::Receiver<Wakeup>,
    queue: &str,
    within: Duration,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("no wake-up within {within:?} after {what}"),
            Ok(Ok(w)) => {
                assert!(
                    w.queue.is_none() || w.queue.as_deref() == Some(queue),
                    "wake-up after {what} names another queue: {w:?}"
                );
                return;
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("wake-up channel closed"),
        }
    }
}

/// Drops wake-ups already on their way (waits until none arrives for 300 ms,
/// at most 3 s), so that the next one is known to follow the next action.
pub async fn drain(rx: &mut broadcast::Receiver<Wakeup>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            Err(_) => return,
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("wake-up channel closed"),
        }
    }
}

/// Per-state counts from pairs (zero entries dropped).
pub fn counts(pairs: &[(JobState, i64)]) -> BTreeMap<JobState, i64> {
    pairs.iter().copied().filter(|(_, n)| *n != 0).collect()
}

/// `counts` without zero entries, so that a store listing every state and
/// one omitting empty states compare equal.
pub fn nonzero(counts: &BTreeMap<JobState, i64>) -> BTreeMap<JobState, i64> {
    counts
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(s, n)| (*s, *n))
        .collect()
}

/// Execution insert params: trigger `manual`, no attributes or message.
pub fn execution(
    owner_kind: &str,
    owner_id: &str,
    jobs: Vec<JobInsertParams>,
    now: Timestamp,
) -> ExecutionInsertParams {
    ExecutionInsertParams {
        owner_kind: owner_kind.to_owned(),
        owner_id: owner_id.to_owned(),
        trigger: Trigger::Manual,
        attributes: BTreeMap::new(),
        status_message: None,
        jobs,
        now,
    }
}

/// Inserts an execution, expecting every job to be inserted; returns the
/// row and the jobs in input order.
pub async fn insert_execution(
    driver: &Arc<dyn Driver>,
    params: ExecutionInsertParams,
) -> (ExecutionRow, Vec<Job>) {
    let n = params.jobs.len();
    let (row, jobs) = driver
        .execution_insert(params.clone())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "execution_insert for {}/{} with {n} jobs failed: {e}",
                params.owner_kind, params.owner_id
            )
        });
    assert_eq!(jobs.len(), n, "execution_insert returns one result per job");
    let jobs = jobs
        .into_iter()
        .map(|r| {
            assert!(r.inserted, "expected a new job, got existing {:?}", r.job);
            r.job
        })
        .collect();
    (row, jobs)
}

/// The stored execution, which must exist.
pub async fn get_execution(driver: &Arc<dyn Driver>, id: i64) -> ExecutionRow {
    driver
        .execution_get(id)
        .await
        .unwrap_or_else(|e| panic!("execution_get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("execution {id} should exist"))
}

/// Asserts `result` is `NotFound` naming `entity` and `id`.
pub fn assert_not_found_entity<T: std::fmt::Debug>(
    result: Result<T, DriverError>,
    entity: &str,
    id: &str,
    action: &str,
) {
    match result {
        Err(DriverError::NotFound {
            entity: got,
            id: got_id,
        }) => assert_eq!(
            (got, got_id.as_str()),
            (entity, id),
            "{action}: NotFound must name entity `{entity}` and the id"
        ),
        other => panic!("{action} of missing {entity} {id}: expected NotFound, got {other:?}"),
    }
}

/// Asserts `result` is `Conflict`.
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, DriverError>, action: &str) {
    match result {
        Err(DriverError::Conflict(_)) => {}
        other => panic!("{action}: expected DriverError::Conflict, got {other:?}"),
    }
}

/// Finishes every job (claimed with `lease_token`) to `state` at `now` in
/// one call, expecting every finish to apply.
pub async fn finish_all(
    driver: &Arc<dyn Driver>,
    jobs: &[Job],
    lease_token: i64,
    state: JobState,
    now: Timestamp,
) {
    let params: Vec<JobFinishParams> = jobs
        .iter()
        .map(|j| finish_params(j, lease_token, state, now))
        .collect();
    let out = driver
        .job_finish_many(params)
        .await
        .unwrap_or_else(|e| panic!("job_finish_many of {} jobs failed: {e}", jobs.len()));
    assert!(
        out.iter().all(|r| r.applied) && out.len() == jobs.len(),
        "every finish to {state} applies: {out:?}"
    );
}

/// Every unconsumed event (up to 10,000), oldest first.
pub async fn events(driver: &Arc<dyn Driver>) -> Vec<EventRow> {
    driver
        .event_list(10_000)
        .await
        .unwrap_or_else(|e| panic!("event_list failed: {e}"))
}

/// A webhook subscribed to every job and execution event.
pub async fn insert_webhook(driver: &Arc<dyn Driver>, url: &str, now: Timestamp) -> WebhookRow {
    let params = WebhookInsertParams {
        url: url.to_owned(),
        events: vec!["job.*".into(), "execution.*".into(), "job.progress".into()],
        kinds: Vec::new(),
        owner_kinds: Vec::new(),
        secret: "s3cret".into(),
        now,
    };
    driver
        .webhook_insert(&params)
        .await
        .unwrap_or_else(|e| panic!("webhook_insert({params:?}) failed: {e}"))
}
