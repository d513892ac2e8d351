//! The effects of a job's change of state, under random sequences of driver
//! operations on a real SQLite file.
//!
//! Until migration 8 the row trigger `rota_jobs_after_update` wrote them;
//! now every statement that changes a job's state writes them itself
//! (`src/change_effects.rs`), so a path that forgets one, or miscounts,
//! goes unnoticed by SQLite. After every operation this checks:
//!
//! - the execution counters: they match the jobs, the status is the one
//!   derived from them, `updated_at` moved to the latest own time of a job
//!   that changed state (never backwards), and `execution_repair` finds
//!   nothing to fix;
//! - the webhook outbox: while a webhook exists, exactly one `job` event
//!   per job that was inserted, changed state or got its first cancel
//!   request, with the job's new state, revision, kind and execution; no
//!   `job` event at all while none exists.
//!
//! Refused operations, stale finishes, a second cancel request and a
//! rolled-back transactional completion must change nothing.

#![allow(clippy::unwrap_used)] // setup failures panic; the checks use prop_assert

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::time::Duration;

use jiff::Timestamp;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rota_core::{AttemptError, ErrorKind, JobState};
use rota_driver::{
    Driver, DriverError, ExecutionAddJobsParams, ExecutionInsertParams, ExecutionListParams,
    ExecutionRow, ExecutionStatus, ExecutionStopParams, FinishResult, JobCancelParams,
    JobFinishParams, JobInsertParams, JobPromoteParams, JobRetryParams, Trigger,
    WebhookInsertParams,
};
use rota_sqlite::{SqliteDriver, SqliteOptions, Synchronous, connect_options};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tempfile::TempDir;

mod common;

type R<T = ()> = Result<T, TestCaseError>;

fn tc(e: impl Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Most jobs one case creates.
const MAX_JOBS: usize = 12;

/// A wrong execution hint on a plain success.
#[derive(Debug, Clone, Copy)]
enum Hint {
    Missing,
    Other,
    Unknown,
}

/// How one running job is finished.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Plain success: the quiet path.
    Succeed,
    /// Plain success with a wrong `execution_id`.
    Hinted(Hint),
    Retry,
    Fail,
    Cancel,
    /// Snooze back to `available` now.
    Snooze,
    /// Snooze to `scheduled` for later.
    SnoozeLater,
    /// A lease token that does not match, as a plain success or not.
    Stale {
        plain: bool,
    },
    /// A rescue, fenced by lease expiry; the lease is fresh unless `expired`.
    Rescue {
        expired: bool,
    },
}

/// One step of a case; indices pick among what exists, modulo its count.
#[derive(Debug, Clone)]
enum Op {
    Insert {
        n: usize,
        queue: usize,
        mask: u8,
        key: Option<u8>,
    },
    Execution {
        n: usize,
        queue: usize,
        mask: u8,
    },
    AddJobs {
        execution: usize,
        n: usize,
        queue: usize,
        mask: u8,
    },
    Claim {
        queue: usize,
        max: u32,
    },
    Finish(Vec<(usize, End)>),
    FinishIn {
        job: usize,
        end: End,
        commit: bool,
    },
    Cancel {
        job: usize,
        twice: bool,
    },
    Retry {
        job: usize,
    },
    Promote,
    Stop {
        execution: usize,
    },
    Delete {
        job: usize,
    },
    ToggleWebhook,
}

/// A random [`End`], plain successes first.
fn end() -> impl Strategy<Value = End> {
    let hint = prop_oneof![Just(Hint::Missing), Just(Hint::Other), Just(Hint::Unknown)];
    prop_oneof![
        4 => Just(End::Succeed),
        3 => hint.prop_map(End::Hinted),
        2 => Just(End::Retry),
        1 => Just(End::Fail),
        1 => Just(End::Cancel),
        1 => Just(End::Snooze),
        1 => Just(End::SnoozeLater),
        2 => any::<bool>().prop_map(|plain| End::Stale { plain }),
        1 => any::<bool>().prop_map(|expired| End::Rescue { expired }),
    ]
}

/// A random [`Op`], claims and finishes first.
fn op() -> impl Strategy<Value = Op> {
    let key = prop::option::weighted(0.2, 0..2u8);
    prop_oneof![
        2 => (1..=3usize, 0..2usize, any::<u8>(), key)
            .prop_map(|(n, queue, mask, key)| Op::Insert { n, queue, mask, key }),
        2 => (0..=3usize, 0..2usize, any::<u8>())
            .prop_map(|(n, queue, mask)| Op::Execution { n, queue, mask }),
        2 => (0..4usize, 1..=2usize, 0..2usize, any::<u8>())
            .prop_map(|(execution, n, queue, mask)| Op::AddJobs { execution, n, queue, mask }),
        5 => (0..2usize, 1..=4u32).prop_map(|(queue, max)| Op::Claim { queue, max }),
        7 => vec((0..8usize, end()), 1..=3).prop_map(Op::Finish),
        2 => (0..8usize, end(), prop::bool::weighted(0.7))
            .prop_map(|(job, end, commit)| Op::FinishIn { job, end, commit }),
        2 => (0..16usize, any::<bool>()).prop_map(|(job, twice)| Op::Cancel { job, twice }),
        2 => (0..16usize).prop_map(|job| Op::Retry { job }),
        1 => Just(Op::Promote),
        1 => (0..4usize).prop_map(|execution| Op::Stop { execution }),
        1 => (0..16usize).prop_map(|job| Op::Delete { job }),
        1 => Just(Op::ToggleWebhook),
    ]
}

/// What the checks read of one job.
#[derive(Debug, Clone, PartialEq)]
struct JobRow {
    state: JobState,
    cancel_requested: bool,
    revision: i64,
    execution_id: Option<i64>,
    lease_token: Option<i64>,
    lease_expires_at: Option<i64>,
    attempt: u32,
    kind: String,
    /// `COALESCE(finished_at, started_at, created_at)`: what the
    /// execution's `updated_at` moves to when the job changes state.
    at: i64,
}

/// Every job and every execution.
#[derive(Debug, Clone, PartialEq)]
struct Snap {
    jobs: BTreeMap<i64, JobRow>,
    executions: BTreeMap<i64, ExecutionRow>,
}

/// A `job` outbox row: `(entity_id, status, revision, execution_id, kind)`.
type Event = (i64, String, i64, Option<i64>, String);

/// A fresh store, the test's own connection to it, and the case's clock.
struct Store {
    _dir: TempDir,
    driver: SqliteDriver,
    conn: SqliteConnection,
    webhook: Option<i64>,
    queues: usize,
    clock: i64,
    token: i64,
    last_event: i64,
}

impl Store {
    async fn open(queues: usize, webhook: bool) -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rota.db");
        let path = path.to_str().unwrap();
        // Durability plays no part in the effects; NORMAL halves the run time.
        let options = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        };
        let driver = SqliteDriver::open(path, options).await.unwrap();
        let conn = connect_options(path).unwrap().connect().await.unwrap();
        let mut store = Store {
            _dir: dir,
            driver,
            conn,
            webhook: None,
            queues,
            clock: 0,
            token: 0,
            last_event: 0,
        };
        if webhook {
            store.toggle_webhook().await.unwrap();
        }
        store
    }

    /// The next instant of the case's clock (one second per call).
    fn now(&mut self) -> Timestamp {
        self.clock += 1;
        common::at(self.clock)
    }

    /// A job of queue `queue`, scheduled for later or available now.
    fn spec(&self, queue: usize, scheduled: bool, now: Timestamp) -> JobInsertParams {
        let queue = format!("q{}", queue % self.queues);
        JobInsertParams {
            state: if scheduled {
                JobState::Scheduled
            } else {
                JobState::Available
            },
            run_at: if scheduled {
                now + Duration::from_secs(3600)
            } else {
                now
            },
            created_at: now,
            max_attempts: 25,
            ..common::job(&format!("k-{queue}"), &queue)
        }
    }

    /// Up to `n` specs, as many as `MAX_JOBS` leaves room for.
    fn specs(&self, before: &Snap, n: usize, queue: usize, mask: u8) -> Vec<JobInsertParams> {
        let now = common::at(self.clock);
        let n = n.min(MAX_JOBS.saturating_sub(before.jobs.len()));
        (0..n)
            .map(|i| self.spec(queue, (mask >> i) & 1 == 1, now))
            .collect()
    }

    /// Registers the webhook, or deletes it if registered.
    async fn toggle_webhook(&mut self) -> rota_driver::Result<()> {
        match self.webhook.take() {
            Some(id) => {
                self.driver.webhook_delete(id).await?;
            }
            None => {
                let hook = self
                    .driver
                    .webhook_insert(&WebhookInsertParams {
                        url: "https://example.test/hook".into(),
                        events: vec!["job.*".into()],
                        kinds: Vec::new(),
                        owner_kinds: Vec::new(),
                        secret: "s".into(),
                        now: common::at(0),
                    })
                    .await?;
                self.webhook = Some(hook.id);
            }
        }
        Ok(())
    }

    /// Every job (plain SQL) and every execution (the driver's reading).
    async fn snap(&mut self) -> R<Snap> {
        type Row = (
            i64,
            String,
            bool,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            String,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, state, cancel_requested_at IS NOT NULL, revision, execution_id, \
             lease_token, lease_expires_at, attempt, kind, \
             COALESCE(finished_at, started_at, created_at) FROM rota_jobs ORDER BY id",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(tc)?;
        let mut jobs = BTreeMap::new();
        for (
            id,
            state,
            cancel_requested,
            revision,
            execution_id,
            token,
            expires,
            attempt,
            kind,
            at,
        ) in rows
        {
            let row = JobRow {
                state: state.parse().map_err(tc)?,
                cancel_requested,
                revision,
                execution_id,
                lease_token: token,
                lease_expires_at: expires,
                attempt: u32::try_from(attempt).map_err(tc)?,
                kind,
                at,
            };
            jobs.insert(id, row);
        }
        let all = ExecutionListParams {
            limit: 0,
            ..ExecutionListParams::default()
        };
        let executions = self.driver.execution_list(&all).await.map_err(tc)?;
        let executions = executions.into_iter().map(|x| (x.id, x)).collect();
        Ok(Snap { jobs, executions })
    }

    /// The `job` outbox rows written since the last call.
    async fn new_job_events(&mut self) -> R<Vec<Event>> {
        type Row = (i64, String, i64, String, i64, Option<i64>, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, entity, entity_id, status, revision, execution_id, kind \
             FROM rota_events WHERE id > ? ORDER BY id",
        )
        .bind(self.last_event)
        .fetch_all(&mut self.conn)
        .await
        .map_err(tc)?;
        let mut out = Vec::new();
        for (id, entity, entity_id, status, revision, execution_id, kind) in rows {
            self.last_event = self.last_event.max(id);
            if entity == "job" {
                out.push((entity_id, status, revision, execution_id, kind));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Checks the store after `what`, given the store before it; with
    /// `unchanged`, nothing at all may have changed. Returns the store after.
    async fn check(&mut self, before: &Snap, what: &str, unchanged: bool) -> R<Snap> {
        let after = self.snap().await?;
        if unchanged {
            prop_assert_eq!(&after, before, "{} must change nothing", what);
        }

        // The outbox: one event per new job, new state or first cancel request.
        let events = self.new_job_events().await?;
        let mut expected: Vec<Event> = Vec::new();
        if self.webhook.is_some() {
            for (id, j) in &after.jobs {
                let changed = before.jobs.get(id).is_none_or(|b| {
                    b.state != j.state || (!b.cancel_requested && j.cancel_requested)
                });
                if changed {
                    let status = j.state.as_str().to_owned();
                    expected.push((*id, status, j.revision, j.execution_id, j.kind.clone()));
                }
            }
        }
        prop_assert_eq!(events, expected, "job events written by {}", what);

        // The counters, status and `updated_at` of every execution.
        let mut actual: BTreeMap<i64, BTreeMap<JobState, i64>> = BTreeMap::new();
        let mut latest: BTreeMap<i64, i64> = BTreeMap::new();
        for (id, j) in &after.jobs {
            let Some(x) = j.execution_id else { continue };
            *actual.entry(x).or_default().entry(j.state).or_default() += 1;
            if before.jobs.get(id).is_none_or(|b| b.state != j.state) {
                let at = latest.entry(x).or_insert(j.at);
                *at = (*at).max(j.at);
            }
        }
        let lost: BTreeSet<i64> = before
            .jobs
            .iter()
            .filter(|(id, _)| !after.jobs.contains_key(id))
            .filter_map(|(_, j)| j.execution_id)
            .collect();
        for (id, x) in &after.executions {
            let counts = actual.remove(id).unwrap_or_default();
            prop_assert_eq!(
                &x.counts,
                &counts,
                "counters of execution {} after {}",
                id,
                what
            );
            if let Some(status) = ExecutionStatus::derive(&counts) {
                prop_assert_eq!(
                    x.status,
                    status,
                    "status of execution {} after {}",
                    id,
                    what
                );
            }
            // A delete moves it to the wall clock; new executions start now.
            if let Some(old) = before.executions.get(id)
                && !lost.contains(id)
            {
                let was = old.updated_at.as_microsecond();
                let want = latest.get(id).map_or(was, |at| was.max(*at));
                prop_assert_eq!(
                    x.updated_at.as_microsecond(),
                    want,
                    "updated_at of execution {} after {}",
                    id,
                    what
                );
            }
        }
        let fixed = self.driver.execution_repair(1000).await.map_err(tc)?;
        prop_assert!(fixed.is_empty(), "after {}, repair fixed {:?}", what, fixed);
        Ok(after)
    }

    /// Finish params for running job `id` ending as `end`, and whether the
    /// finish should apply.
    fn finish(&self, before: &Snap, id: i64, end: End) -> (JobFinishParams, bool) {
        let j = &before.jobs[&id];
        let now = common::at(self.clock);
        let error = |kind| {
            Some(AttemptError {
                attempt: j.attempt,
                at: now,
                kind,
                message: "boom".into(),
            })
        };
        let mut p = JobFinishParams {
            id,
            lease_token: j.lease_token.unwrap_or_default(),
            execution_id: j.execution_id,
            lease_expired_before: None,
            state: JobState::Succeeded,
            attempt: j.attempt,
            run_at: None,
            finished_at: Some(now),
            error: None,
            output: None,
            progress: None,
            exit_code: None,
        };
        let later = |p: &mut JobFinishParams, state, secs| {
            p.state = state;
            p.run_at = Some(now + Duration::from_secs(secs));
            p.finished_at = None;
        };
        match end {
            End::Succeed => {}
            End::Hinted(Hint::Missing) => p.execution_id = None,
            End::Hinted(Hint::Unknown) => p.execution_id = Some(9_999),
            End::Hinted(Hint::Other) => {
                let other = before
                    .executions
                    .keys()
                    .find(|x| Some(**x) != j.execution_id);
                p.execution_id = Some(other.copied().unwrap_or(9_999));
            }
            End::Retry => {
                later(&mut p, JobState::Retrying, 60);
                p.error = error(ErrorKind::Error);
            }
            End::Fail => {
                p.state = JobState::Failed;
                p.error = error(ErrorKind::Fatal);
            }
            End::Cancel => p.state = JobState::Canceled,
            End::Snooze => later(&mut p, JobState::Available, 0),
            End::SnoozeLater => {
                later(&mut p, JobState::Scheduled, 3600);
                p.attempt = j.attempt.saturating_sub(1);
            }
            End::Stale { plain } => {
                p.lease_token += 1_000_000;
                if !plain {
                    p.state = JobState::Failed;
                    p.error = error(ErrorKind::Fatal);
                }
            }
            End::Rescue { expired } => {
                later(&mut p, JobState::Retrying, 60);
                p.error = error(ErrorKind::Rescued);
                p.lease_expired_before = Some(if expired {
                    common::at(100_000_000)
                } else {
                    common::at(0)
                });
            }
        }
        let fence = p.lease_expired_before.map(|t| t.as_microsecond());
        let valid = j.state == JobState::Running
            && j.lease_token == Some(p.lease_token)
            && fence.is_none_or(|f| j.lease_expires_at.is_some_and(|e| e < f));
        (p, valid)
    }

    /// Runs `op` and checks what it did.
    async fn apply(&mut self, step: usize, op: &Op) -> R {
        let what = format!("step {step}: {op:?}");
        let before = self.snap().await?;
        let now = self.now();
        let ids: Vec<i64> = before.jobs.keys().copied().collect();
        let running: Vec<i64> = before
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Running)
            .map(|(id, _)| *id)
            .collect();
        let executions: Vec<i64> = before.executions.keys().copied().collect();
        let pick = |from: &[i64], i: usize| (!from.is_empty()).then(|| from[i % from.len()]);
        let d = &self.driver;
        match op {
            Op::Insert {
                n,
                queue,
                mask,
                key,
            } => {
                let mut specs = self.specs(&before, *n, *queue, *mask);
                if let Some(first) = specs.first_mut() {
                    first.unique_key = key.map(|k| format!("key-{k}"));
                    d.job_insert_many(specs).await.map_err(tc)?;
                }
            }
            Op::Execution { n, queue, mask } => {
                let jobs = self.specs(&before, *n, *queue, *mask);
                d.execution_insert(ExecutionInsertParams {
                    owner_kind: "test".into(),
                    owner_id: format!("o{step}"),
                    trigger: Trigger::Manual,
                    attributes: BTreeMap::new(),
                    status_message: None,
                    jobs,
                    now,
                })
                .await
                .map_err(tc)?;
            }
            Op::AddJobs {
                execution,
                n,
                queue,
                mask,
            } => {
                let jobs = self.specs(&before, *n, *queue, *mask);
                if let Some(id) = pick(&executions, *execution)
                    && !jobs.is_empty()
                {
                    let add = ExecutionAddJobsParams { id, jobs, now };
                    match d.execution_add_jobs(add).await {
                        Ok(_) => {}
                        // Emptied by deletes after it finished.
                        Err(DriverError::Conflict(_)) => {
                            prop_assert!(before.executions[&id].counts.is_empty());
                            self.check(&before, &what, true).await?;
                            return Ok(());
                        }
                        Err(e) => return Err(tc(e)),
                    }
                }
            }
            Op::Claim { queue, max } => {
                self.token += 1;
                let claimed = d
                    .job_claim(&common::claim_at(
                        &format!("q{}", queue % self.queues),
                        *max,
                        self.token,
                        now,
                        now + Duration::from_secs(30),
                    ))
                    .await
                    .map_err(tc)?;
                prop_assert!(claimed.len() <= *max as usize);
                for j in &claimed {
                    prop_assert_eq!(before.jobs[&j.id].state, JobState::Available);
                }
            }
            Op::Finish(ends) => {
                let inputs: Vec<(JobFinishParams, bool)> = ends
                    .iter()
                    .filter_map(|(i, end)| Some(self.finish(&before, pick(&running, *i)?, *end)))
                    .collect();
                let params: Vec<JobFinishParams> = inputs.iter().map(|(p, _)| p.clone()).collect();
                let results = d.job_finish_many(params).await.map_err(tc)?;
                let after = self.check(&before, &what, false).await?;
                check_results(&before, &after, &inputs, &results, &what)?;
                return Ok(());
            }
            Op::FinishIn { job, end, commit } => {
                if let Some(id) = pick(&running, *job) {
                    let (p, valid) = self.finish(&before, id, *end);
                    let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await.map_err(tc)?;
                    let done = rota_sqlite::job_finish_in(&mut tx, p).await.map_err(tc)?;
                    if *commit {
                        tx.commit().await.map_err(tc)?;
                    } else {
                        tx.rollback().await.map_err(tc)?;
                    }
                    prop_assert_eq!(done.applied, valid, "{}", what);
                    self.check(&before, &what, !(*commit && valid)).await?;
                    return Ok(());
                }
            }
            Op::Cancel { job, twice } => {
                if let Some(id) = pick(&ids, *job) {
                    for _ in 0..=usize::from(*twice) {
                        let before = self.snap().await?;
                        let j = &before.jobs[&id];
                        let finished = j.state.is_finished();
                        let again = j.state == JobState::Running && j.cancel_requested;
                        let cancel = JobCancelParams { id, now };
                        match self.driver.job_cancel(&cancel).await {
                            Ok(_) => prop_assert!(!finished, "{}", what),
                            Err(DriverError::InvalidState { .. }) => {
                                prop_assert!(finished, "{}", what)
                            }
                            Err(e) => return Err(tc(e)),
                        }
                        self.check(&before, &what, finished || again).await?;
                    }
                    return Ok(());
                }
            }
            Op::Retry { job } => {
                if let Some(id) = pick(&ids, *job) {
                    let state = before.jobs[&id].state;
                    let retryable = matches!(state, JobState::Scheduled | JobState::Retrying)
                        || state.is_finished();
                    let refused = match d.job_retry(&JobRetryParams { id, now }).await {
                        Ok(_) => {
                            prop_assert!(retryable, "{}", what);
                            false
                        }
                        // A finished job whose unique key another job now holds.
                        Err(DriverError::Conflict(_)) if state.is_finished() => true,
                        Err(DriverError::InvalidState { .. }) if !retryable => true,
                        Err(e) => return Err(tc(format!("{what}: {e}"))),
                    };
                    self.check(&before, &what, refused).await?;
                    return Ok(());
                }
            }
            Op::Promote => {
                let far = JobPromoteParams {
                    now: common::at(100_000_000),
                    limit: 1000,
                };
                d.job_promote_due(&far).await.map_err(tc)?;
            }
            Op::Stop { execution } => {
                if let Some(id) = pick(&executions, *execution) {
                    d.execution_stop(&ExecutionStopParams { id, now })
                        .await
                        .map_err(tc)?;
                }
            }
            Op::Delete { job } => {
                if let Some(id) = pick(&ids, *job) {
                    let finished = before.jobs[&id].state.is_finished();
                    match d.job_delete(id).await {
                        Ok(_) => prop_assert!(finished, "{}", what),
                        Err(DriverError::InvalidState { .. }) => {
                            prop_assert!(!finished, "{}", what)
                        }
                        Err(e) => return Err(tc(e)),
                    }
                    self.check(&before, &what, !finished).await?;
                    return Ok(());
                }
            }
            Op::ToggleWebhook => self.toggle_webhook().await.map_err(tc)?,
        }
        self.check(&before, &what, false).await?;
        Ok(())
    }
}

/// Checks a batch's answers: per job, the first input (in input order)
/// that could apply did, and no other (the job is in its state); when none
/// could, the job is untouched.
fn check_results(
    before: &Snap,
    after: &Snap,
    inputs: &[(JobFinishParams, bool)],
    results: &[FinishResult],
    what: &str,
) -> R {
    prop_assert_eq!(results.len(), inputs.len(), "{}", what);
    for id in inputs.iter().map(|(p, _)| p.id).collect::<BTreeSet<_>>() {
        let mine: Vec<_> = inputs
            .iter()
            .zip(results)
            .filter(|(i, _)| i.0.id == id)
            .collect();
        let applied = mine.iter().filter(|(_, r)| r.applied).count();
        let valid: Vec<JobState> = mine
            .iter()
            .filter(|(i, _)| i.1)
            .map(|(i, _)| i.0.state)
            .collect();
        let why = format!("job {id} in {what}");
        prop_assert_eq!(applied, usize::from(!valid.is_empty()), "{}", why);
        if valid.is_empty() {
            prop_assert_eq!(&after.jobs[&id], &before.jobs[&id], "{}", why);
        } else {
            prop_assert_eq!(after.jobs[&id].state, valid[0], "{}", why);
        }
        let first_valid = mine.iter().position(|(i, _)| i.1);
        for (k, (_, result)) in mine.iter().enumerate() {
            prop_assert_eq!(result.applied, Some(k) == first_valid, "{}", why);
        }
    }
    Ok(())
}

/// Runs `ops` on a fresh store with `queues` queues, checking after each.
async fn run(queues: usize, webhook: bool, ops: &[Op]) -> R {
    let mut store = Store::open(queues, webhook).await;
    for (step, op) in ops.iter().enumerate() {
        store.apply(step, op).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // `PROPTEST_CASES=2000` for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32),
        max_shrink_iters: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every operation's effects match the jobs it changed.
    #[test]
    fn effects_follow_every_change(
        queues in 1..=2usize,
        webhook in prop::bool::weighted(0.75),
        ops in vec(op(), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(queues, webhook, &ops))?;
    }
}
