//! Params and rows of schedules and their fires. The rule, template and
//! policies are opaque JSON to the store (the engine owns their meaning);
//! the store indexes only what it must query.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::params::{InsertedJob, JobInsertParams};

/// A new schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInsertParams {
    /// Unique name.
    pub name: String,
    /// The engine's schedule definition (rule, template, policies).
    pub spec: serde_json::Value,
    /// First fire time.
    pub next_fire_at: Option<Timestamp>,
    /// Current time.
    pub now: Timestamp,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRow {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The engine's definition.
    pub spec: serde_json::Value,
    /// The engine's failure/backoff state.
    pub state: serde_json::Value,
    /// When it was paused; `None` when active.
    pub paused_at: Option<Timestamp>,
    /// Next due fire (`None`: never again).
    pub next_fire_at: Option<Timestamp>,
    /// Last recorded fire.
    pub last_fire_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change of definition or state.
    pub updated_at: Timestamp,
}

/// A change of definition (PATCH) or pause state.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleUpdateParams {
    /// Schedule id.
    pub id: i64,
    /// New definition, if changed.
    pub spec: Option<serde_json::Value>,
    /// New next fire, if changed (`Some(None)`: never).
    pub next_fire_at: Option<Option<Timestamp>>,
    /// Pause (`Some(Some(t))`), resume (`Some(None)`), or leave.
    pub paused_at: Option<Option<Timestamp>>,
    /// Current time.
    pub now: Timestamp,
}

/// How one fire time was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FireStatus {
    /// Jobs (or an execution) were created.
    Fired,
    /// Skipped (overlap, backoff, catch-up policy); `reason` says why.
    Skipped,
}

impl FireStatus {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FireStatus::Fired => "fired",
            FireStatus::Skipped => "skipped",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [FireStatus::Fired, FireStatus::Skipped]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// One fire to record.
#[derive(Debug, Clone, PartialEq)]
pub struct FireRecord {
    /// The rule's fire time (with the schedule, the record's unique key).
    pub fire_at: Timestamp,
    /// Fired or skipped.
    pub status: FireStatus,
    /// Why it was skipped, or a note.
    pub reason: Option<String>,
    /// Jobs to create for this fire (empty when skipped); their
    /// `schedule_id` and `fire_at` are set by the store.
    pub jobs: Vec<JobInsertParams>,
    /// Create the jobs inside a new execution for this owner
    /// (`owner_kind`, `owner_id`), trigger `schedule`.
    pub execution_owner: Option<(String, String)>,
}

/// Records fires of one schedule and advances it, in one transaction, only
/// if its `next_fire_at` still equals `expected_next_fire_at` (another
/// scheduler did not get there first). Each `(schedule, fire_at)` is
/// recorded at most once, ever.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFireParams {
    /// Schedule id.
    pub id: i64,
    /// The `next_fire_at` this decision was based on.
    pub expected_next_fire_at: Option<Timestamp>,
    /// Fires to record, oldest first.
    pub fires: Vec<FireRecord>,
    /// The new `next_fire_at`.
    pub next_fire_at: Option<Timestamp>,
    /// The engine's new failure/backoff state.
    pub state: serde_json::Value,
    /// Node deciding the fire.
    pub node_id: String,
    /// Current time.
    pub now: Timestamp,
}

/// What a fire call did.
#[derive(Debug, Clone, PartialEq)]
pub struct FireOutcome {
    /// `false`: the schedule moved on meanwhile; nothing was written.
    pub applied: bool,
    /// Jobs created, per recorded fire in order.
    pub jobs: Vec<Vec<InsertedJob>>,
    /// Executions created, per recorded fire in order.
    pub executions: Vec<Option<i64>>,
}

/// One recorded fire, with the outcome of its jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FireRow {
    /// Schedule id.
    pub schedule_id: i64,
    /// Fire time.
    pub fire_at: Timestamp,
    /// Fired or skipped.
    pub status: FireStatus,
    /// Why skipped / note.
    pub reason: Option<String>,
    /// Node that recorded it.
    pub node_id: String,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Execution created, if any.
    pub execution_id: Option<i64>,
    /// Jobs created.
    pub job_ids: Vec<i64>,
    /// Jobs of this fire still unfinished.
    pub unfinished: i64,
    /// Jobs of this fire that failed or were canceled.
    pub unsuccessful: i64,
    /// Earliest start of its jobs.
    pub started_at: Option<Timestamp>,
    /// Latest finish of its jobs, once all finished.
    pub finished_at: Option<Timestamp>,
}

/// History query.
#[derive(Debug, Clone, PartialEq)]
pub struct FireListParams {
    /// Schedule id.
    pub schedule_id: i64,
    /// Only fires before this time (keyset, newest first).
    pub before: Option<Timestamp>,
    /// Page size (capped at 10,000; 0 means the cap).
    pub limit: u32,
}
