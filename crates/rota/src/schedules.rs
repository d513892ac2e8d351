//! Schedules: cron rules or fixed intervals that create jobs (or executions
//! with jobs) from a template, fired exactly once per (schedule, fire time)
//! however many schedulers run.
//!
//! The scheduler is a leader maintenance service, but correctness does not
//! rest on there being one leader: every fire is recorded under a unique
//! `(schedule, fire_at)` key in the same transaction that creates its jobs
//! and advances the schedule, and that transaction applies only if the
//! schedule's `next_fire_at` is still what the decision was based on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rota_core::{
    BackoffPolicy, BackoffTracker, OnOverlap, OverlapPolicy, ScheduleSpec, ValidationError,
    due_fires,
};
use rota_driver::{
    FireListParams, FireRecord, FireRow, FireStatus, JobInsertParams, ScheduleFireParams,
    ScheduleInsertParams, ScheduleRow, ScheduleUpdateParams,
};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::enqueue::{EnqueueOpts, JobRequest};
use crate::error::{Error, Result};
use crate::maintenance::{Report, Service};
use crate::runtime::engine::Engine;

/// The implicit node label every node carries, so `common` schedules can
/// address one job to each node.
pub const NODE_LABEL: &str = "rota.node";

/// What each fire creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// Kind (e.g. `shell`).
    pub kind: String,
    /// Args.
    #[serde(default)]
    pub args: serde_json::Value,
    /// Queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<i16>,
    /// Attempts per job.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Per-attempt timeout in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Node selector.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A schedule: when (rule and policies), what (job template, optionally
/// wrapped in an execution), and how to back off while it fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDefinition {
    /// Name, rule and policies.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// The job each fire creates.
    pub job: JobTemplate,
    /// Wrap each fire's jobs in an execution of this owner (kind, id).
    #[serde(default)]
    pub execution: Option<(String, String)>,
    /// Backoff while fires keep failing; with its reset interval, a
    /// schedule healthy for that long starts afresh.
    #[serde(default)]
    pub backoff: Option<BackoffPolicy>,
}

impl ScheduleDefinition {
    /// Checks the rule, policies and template.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.spec.validate()?;
        if self.job.kind.is_empty() {
            return Err(ValidationError::new("job.kind", "must not be empty"));
        }
        self.template_request(Timestamp::UNIX_EPOCH)
            .into_params(Timestamp::UNIX_EPOCH, 1)
            .map_err(|e| ValidationError::new(format!("job.{}", e.field), e.message))?;
        if let Some(b) = &self.backoff {
            b.validate()
                .map_err(|e| ValidationError::new(format!("backoff.{}", e.field), e.message))?;
        }
        Ok(())
    }

    fn template_request(&self, _fire_at: Timestamp) -> JobRequest {
        let t = &self.job;
        let opts = EnqueueOpts {
            queue: t.queue.clone(),
            priority: t.priority,
            max_attempts: t.max_attempts,
            timeout: t.timeout_ms.map(Duration::from_millis),
            labels: t.labels.clone(),
            attributes: t.attributes.clone(),
            ..EnqueueOpts::default()
        };
        JobRequest::raw(t.kind.clone(), t.args.clone(), opts)
    }
}

/// The scheduler's per-schedule state, stored with the schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ScheduleState {
    #[serde(default)]
    tracker: BackoffTracker,
    /// The newest fire whose outcome the tracker has seen.
    #[serde(default)]
    outcome_seen: Option<Timestamp>,
}

/// A schedule with its decoded definition and figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    /// Stored row (raw spec and state included).
    pub row: ScheduleRow,
    /// Decoded definition.
    pub definition: ScheduleDefinition,
    /// Average run time over the recent finished fires, in seconds.
    pub average_run_seconds: Option<f64>,
}

impl Client {
    async fn schedule_now(&self) -> Result<Timestamp> {
        now(self.inner_engine()).await
    }

    /// Creates a schedule; it first fires at the rule's next time.
    pub async fn create_schedule(&self, def: ScheduleDefinition) -> Result<ScheduleRow> {
        def.validate()?;
        let now = self.schedule_now().await?;
        let next = def.spec.rule.next_after(now);
        Ok(self
            .driver()
            .schedule_insert(&ScheduleInsertParams {
                name: def.spec.name.clone(),
                spec: serde_json::to_value(&def)?,
                next_fire_at: next,
                now,
            })
            .await?)
    }

    /// One schedule, decoded, with its average run time.
    pub async fn schedule(&self, id: i64) -> Result<ScheduleView> {
        let row = self
            .driver()
            .schedule_get(id)
            .await?
            .ok_or(Error::Missing {
                entity: "schedule",
                id: id.to_string(),
            })?;
        let definition: ScheduleDefinition = serde_json::from_value(row.spec.clone())?;
        let history = self.schedule_history(id, None, 100).await?;
        let runs: Vec<f64> = history
            .iter()
            .filter_map(|f| Some(f.finished_at?.duration_since(f.started_at?).as_secs_f64()))
            .collect();
        let average_run_seconds =
            (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64);
        Ok(ScheduleView {
            row,
            definition,
            average_run_seconds,
        })
    }

    /// Every schedule.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        Ok(self.driver().schedule_list().await?)
    }

    /// Replaces a schedule's definition; the next fire is recomputed.
    pub async fn update_schedule(&self, id: i64, def: ScheduleDefinition) -> Result<ScheduleRow> {
        def.validate()?;
        let now = self.schedule_now().await?;
        Ok(self
            .driver()
            .schedule_update(&ScheduleUpdateParams {
                id,
                next_fire_at: Some(def.spec.rule.next_after(now)),
                spec: Some(serde_json::to_value(&def)?),
                paused_at: None,
                now,
            })
            .await?)
    }

    /// Deletes a schedule and its history (its jobs stay).
    pub async fn delete_schedule(&self, id: i64) -> Result<ScheduleRow> {
        Ok(self.driver().schedule_delete(id).await?)
    }

    /// Pauses a schedule: no fires until resumed.
    pub async fn pause_schedule(&self, id: i64) -> Result<ScheduleRow> {
        let now = self.schedule_now().await?;
        Ok(self
            .driver()
            .schedule_update(&ScheduleUpdateParams {
                id,
                spec: None,
                next_fire_at: None,
                paused_at: Some(Some(now)),
                now,
            })
            .await?)
    }

    /// Resumes a paused schedule from now (fires missed while paused are
    /// not made up).
    pub async fn resume_schedule(&self, id: i64) -> Result<ScheduleRow> {
        let view = self.schedule(id).await?;
        let now = self.schedule_now().await?;
        Ok(self
            .driver()
            .schedule_update(&ScheduleUpdateParams {
                id,
                spec: None,
                next_fire_at: Some(view.definition.spec.rule.next_after(now)),
                paused_at: Some(None),
                now,
            })
            .await?)
    }

    /// Fires a schedule now (a manual fire, recorded like any other; the
    /// regular next fire is unchanged). Overlap policies apply.
    pub async fn trigger_schedule(&self, id: i64) -> Result<FireRow> {
        let engine = self.inner_engine();
        for _ in 0..5 {
            let row = self
                .driver()
                .schedule_get(id)
                .await?
                .ok_or(Error::Missing {
                    entity: "schedule",
                    id: id.to_string(),
                })?;
            let def: ScheduleDefinition = serde_json::from_value(row.spec.clone())?;
            let now = now(engine).await?;
            let mut unfinished = self.driver().schedule_unfinished(id).await?;
            let record =
                match fire_record(engine, &def, now, &mut unfinished, "manual trigger").await? {
                    Decision::Record(r) => r,
                    Decision::Queue => FireRecord {
                        fire_at: now,
                        status: FireStatus::Skipped,
                        reason: Some("manual trigger: previous run unfinished".into()),
                        jobs: Vec::new(),
                        execution_owner: None,
                    },
                };
            let out = self
                .driver()
                .schedule_fire(ScheduleFireParams {
                    id,
                    expected_next_fire_at: row.next_fire_at,
                    fires: vec![record],
                    next_fire_at: row.next_fire_at,
                    state: row.state.clone(),
                    node_id: engine.config.node_id.clone(),
                    now,
                })
                .await?;
            if out.applied {
                let fires = self.schedule_history(id, None, 20).await?;
                return fires.into_iter().find(|f| f.fire_at == now).ok_or_else(|| {
                    Error::Conflict("the triggered run was not recorded; trigger again".into())
                });
            }
        }
        Err(Error::Conflict(
            "the schedule kept changing; trigger again".into(),
        ))
    }

    /// Fire history, newest first, with each fire's outcome.
    pub async fn schedule_history(
        &self,
        id: i64,
        before: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<FireRow>> {
        Ok(self
            .driver()
            .schedule_fires(&FireListParams {
                schedule_id: id,
                before,
                limit,
            })
            .await?)
    }
}

/// Where fire decisions get their time: the database clock, so nodes with
/// skewed clocks agree, unless the client is configured to use its own
/// (injected) clock, e.g. in tests.
async fn now(engine: &Engine) -> Result<Timestamp> {
    Ok(micros(db_or_local_now(engine).await?))
}

/// Stores keep microseconds; deciding on finer times would make a fire time
/// differ from its own record.
fn micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

async fn db_or_local_now(engine: &Engine) -> Result<Timestamp> {
    let local = engine.now();
    if !engine.config.schedule_on_db_clock {
        return Ok(local);
    }
    let db = engine.driver.db_now().await?;
    let skew = local.duration_since(db).abs();
    if skew > jiff::SignedDuration::from_secs(2) {
        tracing::warn!(
            ?skew,
            "local clock differs from the database clock; schedules use the database's"
        );
    }
    Ok(db)
}

enum Decision {
    Record(FireRecord),
    /// `alone` + `queue` while a run is unfinished: keep the fire due.
    Queue,
}

/// Decides what one fire creates, applying the overlap policy.
async fn fire_record(
    engine: &Engine,
    def: &ScheduleDefinition,
    fire_at: Timestamp,
    unfinished: &mut i64,
    note: &str,
) -> Result<Decision> {
    let skipped = |reason: String| {
        Decision::Record(FireRecord {
            fire_at,
            status: FireStatus::Skipped,
            reason: Some(reason),
            jobs: Vec::new(),
            execution_owner: None,
        })
    };
    let mut jobs: Vec<JobInsertParams> = Vec::new();
    let base = def.template_request(fire_at);
    match def.spec.overlap {
        OverlapPolicy::Alone if *unfinished > 0 => {
            return Ok(match def.spec.on_overlap {
                OnOverlap::Skip => skipped("previous run unfinished (alone)".into()),
                OnOverlap::Queue => Decision::Queue,
            });
        }
        OverlapPolicy::Alone | OverlapPolicy::Interval => {
            jobs.push(base.into_params(engine.now(), engine.config.default_max_attempts)?);
        }
        OverlapPolicy::Common => {
            let alive_after = rota_core::clock::sub(engine.now(), engine.config.lease * 3);
            let nodes = engine.driver.node_list().await?;
            for node in nodes.iter().filter(|n| {
                n.heartbeat_at >= alive_after
                    && n.draining_at.is_none()
                    && def
                        .job
                        .labels
                        .iter()
                        .all(|(k, v)| n.labels.get(k) == Some(v))
            }) {
                let mut req = base.clone();
                req.opts
                    .labels
                    .insert(NODE_LABEL.to_owned(), node.id.clone());
                jobs.push(req.into_params(engine.now(), engine.config.default_max_attempts)?);
            }
            if jobs.is_empty() {
                return Ok(skipped(
                    "no live node matches the schedule's labels (common)".into(),
                ));
            }
        }
    }
    *unfinished += jobs.len() as i64;
    Ok(Decision::Record(FireRecord {
        fire_at,
        status: FireStatus::Fired,
        reason: (!note.is_empty()).then(|| note.to_owned()),
        jobs,
        execution_owner: def.execution.clone(),
    }))
}

/// Fires due schedules.
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) engine: Arc<Engine>,
}

impl Scheduler {
    async fn fire_one(&self, row: ScheduleRow, now: Timestamp) -> Result<u64> {
        let engine = &self.engine;
        let def: ScheduleDefinition = match serde_json::from_value(row.spec.clone()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(schedule = %row.name, error = %e, "undecodable schedule; skipping");
                return Ok(0);
            }
        };
        let Some(next) = row.next_fire_at else {
            return Ok(0);
        };
        let compiled = def.spec.rule.compile()?;
        let mut state: ScheduleState =
            serde_json::from_value(row.state.clone()).unwrap_or_default();
        if let Some(policy) = &def.backoff {
            let recent = engine
                .driver
                .schedule_fires(&FireListParams {
                    schedule_id: row.id,
                    before: None,
                    limit: 10,
                })
                .await?;
            let mut finished: Vec<&FireRow> = recent
                .iter()
                .filter(|f| f.status == FireStatus::Fired && f.unfinished == 0)
                .filter(|f| state.outcome_seen.is_none_or(|seen| f.fire_at > seen))
                .collect();
            finished.sort_by_key(|f| f.fire_at);
            for f in finished {
                if f.unsuccessful > 0 {
                    state.tracker.failure(policy, now, rand::random::<f64>());
                } else {
                    state.tracker.success(policy, now);
                }
                state.outcome_seen = Some(f.fire_at);
            }
        }
        let plan = due_fires(&compiled, row.last_fire_at, next, now, &def.spec.catch_up);
        if plan.skipped_missed > 0 {
            tracing::info!(schedule = %row.name, missed = plan.skipped_missed, "missed fires dropped by the catch-up policy");
        }
        let mut unfinished = if def.spec.overlap == OverlapPolicy::Alone {
            engine.driver.schedule_unfinished(row.id).await?
        } else {
            0
        };
        let mut records = Vec::new();
        let mut next_fire = Some(plan.next_fire).filter(|t| *t != Timestamp::MAX);
        for fire_at in plan.fires {
            if let Some(policy) = &def.backoff
                && !state.tracker.allow(now)
            {
                let _ = policy;
                records.push(FireRecord {
                    fire_at,
                    status: FireStatus::Skipped,
                    reason: Some(format!(
                        "backing off after {} failed runs",
                        state.tracker.failures
                    )),
                    jobs: Vec::new(),
                    execution_owner: None,
                });
                continue;
            }
            match fire_record(engine, &def, fire_at, &mut unfinished, "").await? {
                Decision::Record(r) => records.push(r),
                Decision::Queue => {
                    // Stay due at this fire until the running one finishes.
                    next_fire = Some(fire_at);
                    break;
                }
            }
        }
        let fired = records
            .iter()
            .filter(|r| r.status == FireStatus::Fired)
            .count() as u64;
        if records.is_empty() && next_fire == row.next_fire_at {
            return Ok(0);
        }
        let out = engine
            .driver
            .schedule_fire(ScheduleFireParams {
                id: row.id,
                expected_next_fire_at: row.next_fire_at,
                fires: records,
                next_fire_at: next_fire,
                state: serde_json::to_value(&state)?,
                node_id: engine.config.node_id.clone(),
                now,
            })
            .await?;
        if !out.applied {
            tracing::debug!(schedule = %row.name, "another scheduler fired it first");
            return Ok(0);
        }
        Ok(fired)
    }
}

#[async_trait]
impl Service for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn interval(&self) -> Duration {
        self.engine.config.schedule_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let now = now(&self.engine).await?;
        let due = self.engine.driver.schedule_due(now, 100).await?;
        let mut fired = 0;
        for row in due {
            let name = row.name.clone();
            match self.fire_one(row, now).await {
                Ok(n) => fired += n,
                Err(e) => tracing::warn!(schedule = %name, error = %e, "firing a schedule failed"),
            }
        }
        Ok(Report {
            affected: fired,
            summary: format!("fired {fired} schedule runs"),
        })
    }
}
