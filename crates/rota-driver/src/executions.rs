//! Params and rows of executions: runs of an action for an owner, grouping
//! jobs, with a status derived from them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rota_core::JobState;
use serde::{Deserialize, Serialize};

use crate::params::JobInsertParams;

/// What started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Started by hand (API, CLI, library call).
    Manual,
    /// Started by a schedule.
    Schedule,
    /// Started in reaction to an event.
    Event,
}

impl Trigger {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Event => "event",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Trigger::Manual, Trigger::Schedule, Trigger::Event]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// An execution's status, derived from its jobs by this rule (applied by
/// the store in the same transaction as every job change):
///
/// 1. any job unfinished (scheduled, available, running, retrying) → `running`;
/// 2. else any job `failed` → `failed`;
/// 3. else any job `canceled` → `canceled`;
/// 4. else (all `succeeded`) → `succeeded`.
///
/// An execution without jobs stays `running` until it is marked
/// explicitly `succeeded` or `error` (with a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Some job is unfinished (or no job yet).
    Running,
    /// Every job succeeded (or marked done without jobs).
    Succeeded,
    /// No job unfinished, at least one failed.
    Failed,
    /// No job unfinished or failed, at least one canceled.
    Canceled,
    /// Marked as an error without jobs (e.g. failed before creating any).
    Error,
}

impl ExecutionStatus {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Canceled => "canceled",
            ExecutionStatus::Error => "error",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Canceled,
            ExecutionStatus::Error,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// Whether the execution is over.
    pub const fn is_finished(self) -> bool {
        !matches!(self, ExecutionStatus::Running)
    }

    /// The status the rule derives from per-state job counts; `None` for
    /// an execution without jobs (its status is set explicitly).
    pub fn derive(counts: &BTreeMap<JobState, i64>) -> Option<Self> {
        let n = |s: JobState| counts.get(&s).copied().unwrap_or(0);
        let total: i64 = counts.values().sum();
        if total == 0 {
            return None;
        }
        let unfinished = n(JobState::Scheduled)
            + n(JobState::Available)
            + n(JobState::Running)
            + n(JobState::Retrying);
        Some(if unfinished > 0 {
            ExecutionStatus::Running
        } else if n(JobState::Failed) > 0 {
            ExecutionStatus::Failed
        } else if n(JobState::Canceled) > 0 {
            ExecutionStatus::Canceled
        } else {
            ExecutionStatus::Succeeded
        })
    }
}

/// A new execution, optionally with its first jobs (one transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInsertParams {
    /// Owner type, e.g. `replication`.
    pub owner_kind: String,
    /// Owner id, e.g. `42`.
    pub owner_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// Queryable attributes.
    pub attributes: BTreeMap<String, String>,
    /// Initial status message.
    pub status_message: Option<String>,
    /// Jobs created with it; their `execution_id` is set by the store.
    pub jobs: Vec<JobInsertParams>,
    /// Current time.
    pub now: Timestamp,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRow {
    /// Id.
    pub id: i64,
    /// Owner type.
    pub owner_kind: String,
    /// Owner id.
    pub owner_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Derived (or explicitly marked) status.
    pub status: ExecutionStatus,
    /// Explanation of the status.
    pub status_message: Option<String>,
    /// Jobs per state (the execution's metrics).
    pub counts: BTreeMap<JobState, i64>,
    /// Start time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it reached a final status.
    pub ended_at: Option<Timestamp>,
}

/// Filters for listing executions, newest first, keyset by id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionListParams {
    /// Owner type.
    pub owner_kind: Option<String>,
    /// Owner id.
    pub owner_id: Option<String>,
    /// Any of these statuses.
    pub statuses: Vec<ExecutionStatus>,
    /// Attributes that must all be equal.
    pub attributes: BTreeMap<String, String>,
    /// Only ids below this.
    pub before_id: Option<i64>,
    /// Page size (capped at 10,000; 0 means the cap).
    pub limit: u32,
}

/// Jobs added to an existing execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionAddJobsParams {
    /// Execution id.
    pub id: i64,
    /// The jobs.
    pub jobs: Vec<JobInsertParams>,
    /// Current time.
    pub now: Timestamp,
}

/// Explicit status of an execution without jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionMarkParams {
    /// Execution id.
    pub id: i64,
    /// `Succeeded` or `Error`.
    pub status: ExecutionStatus,
    /// Why.
    pub message: Option<String>,
    /// Current time.
    pub now: Timestamp,
}

/// Stop: cancel every unfinished job of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionStopParams {
    /// Execution id.
    pub id: i64,
    /// Current time.
    pub now: Timestamp,
}

/// Retention: keep the newest `keep_last` finished executions per owner.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPruneParams {
    /// Only owners of this type (`None`: every owner type).
    pub owner_kind: Option<String>,
    /// Finished executions kept per (owner_kind, owner_id).
    pub keep_last: u64,
    /// Most executions deleted per call.
    pub limit: u32,
}

/// What a repair pass fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRepair {
    /// Execution id.
    pub id: i64,
    /// Status before.
    pub was: ExecutionStatus,
    /// Status after.
    pub now: ExecutionStatus,
    /// Counts before the fix.
    pub stored_counts: BTreeMap<JobState, i64>,
    /// Counts recomputed from the jobs.
    pub actual_counts: BTreeMap<JobState, i64>,
}
