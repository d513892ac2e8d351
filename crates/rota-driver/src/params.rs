//! Parameter structs and result rows of the [`Driver`](crate::Driver) methods.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::{AttemptError, Job, JobState};
use serde::{Deserialize, Serialize};

/// A wake-up for producers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wakeup {
    /// The queue with new work; `None` means "look at every queue".
    pub queue: Option<String>,
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// Sequential version.
    pub version: i64,
    /// Short description.
    pub name: String,
    /// When it was applied, if it was.
    pub applied_at: Option<Timestamp>,
}

/// What a store is and how durable it is configured to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// `sqlite` or `postgres`.
    pub store: String,
    /// Server or library version.
    pub version: String,
    /// Durability-relevant settings (journal mode, synchronous, fsync, ...).
    pub settings: BTreeMap<String, String>,
}

/// A job to insert: a validated [`rota_core::JobSpec`] resolved against the
/// clock.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInsertParams {
    /// Handler kind.
    pub kind: String,
    /// Handler arguments.
    pub args: serde_json::Value,
    /// Queue.
    pub queue: String,
    /// Priority (0 first).
    pub priority: i16,
    /// `Scheduled` when `run_at > now`, else `Available`.
    pub state: JobState,
    /// When it may run.
    pub run_at: Timestamp,
    /// Insert time.
    pub created_at: Timestamp,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Uniqueness among unfinished jobs.
    pub unique_key: Option<String>,
    /// Node selector.
    pub labels: BTreeMap<String, String>,
    /// User attributes.
    pub attributes: BTreeMap<String, String>,
    /// W3C traceparent.
    pub trace_context: Option<String>,
}

impl JobInsertParams {
    /// The job a fresh insert of these params stores, as reading the row
    /// back returns it: both stores keep times to the microsecond and the
    /// timeout to the millisecond. Lets a driver answer an insert without
    /// returning whole rows.
    pub fn into_stored_job(
        self,
        id: i64,
        execution_id: Option<i64>,
        schedule_id: Option<i64>,
    ) -> Job {
        // Truncating a valid time toward zero stays in range.
        let micros = |t: Timestamp| Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t);
        // Stored as an i64 of milliseconds, saturating.
        let millis = |d: Duration| {
            Duration::from_millis(
                u64::try_from(d.as_millis().min(i64::MAX as u128)).unwrap_or(u64::MAX),
            )
        };
        Job {
            id,
            kind: self.kind,
            queue: self.queue,
            state: self.state,
            priority: self.priority,
            args: self.args,
            attempt: 0,
            max_attempts: self.max_attempts,
            run_at: micros(self.run_at),
            created_at: micros(self.created_at),
            started_at: None,
            finished_at: None,
            errors: Vec::new(),
            progress: None,
            output: None,
            labels: self.labels,
            attributes: self.attributes,
            unique_key: self.unique_key,
            timeout: self.timeout.map(millis),
            node: None,
            lease_expires_at: None,
            lease_token: None,
            cancel_requested_at: None,
            trace_context: self.trace_context,
            exit_code: None,
            execution_id,
            schedule_id,
            revision: 1,
        }
    }
}

/// A job after an insert attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertedJob {
    /// The stored job (the existing one for a unique duplicate).
    pub job: Job,
    /// `false` when a unique duplicate was found instead.
    pub inserted: bool,
}

/// Filters for [`Driver::job_list`](crate::Driver::job_list). Empty filters
/// match everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobListParams {
    /// Any of these states.
    pub states: Vec<JobState>,
    /// This queue.
    pub queue: Option<String>,
    /// This kind.
    pub kind: Option<String>,
    /// Attributes that must all be equal.
    pub attributes: BTreeMap<String, String>,
    /// Only these ids.
    pub ids: Option<Vec<i64>>,
    /// Only jobs of this execution.
    pub execution_id: Option<i64>,
    /// Only jobs created by this schedule.
    pub schedule_id: Option<i64>,
    /// Keyset cursor: only ids below this one.
    pub before_id: Option<i64>,
    /// Page size (drivers cap it at 10,000).
    pub limit: u32,
}

/// Number of jobs in one queue and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCount {
    /// Queue.
    pub queue: String,
    /// State.
    pub state: JobState,
    /// How many.
    pub count: i64,
}

/// Parameters of a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct JobClaimParams {
    /// Queue to claim from.
    pub queue: String,
    /// Most jobs to claim (free worker slots).
    pub max: u32,
    /// Claiming node.
    pub node_id: String,
    /// The node's labels; a job's selector must be a subset.
    pub node_labels: BTreeMap<String, String>,
    /// Only jobs of these kinds (the kinds the node has workers for);
    /// `None`: any kind.
    pub kinds: Option<Vec<String>>,
    /// Fencing token for this claim's runs.
    pub lease_token: i64,
    /// Lease expiry to set.
    pub lease_expires_at: Timestamp,
    /// Current time.
    pub now: Timestamp,
}

/// The end of one run (or a rescue/hand-back), as computed by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFinishParams {
    /// Job id.
    pub id: i64,
    /// The run's lease token; the write applies only if it still matches.
    pub lease_token: i64,
    /// The execution the job belongs to, as the claim returned it. A store
    /// may use it to keep the execution's counters without reading the row
    /// back; a value that does not match the job makes the finish slower,
    /// never wrong.
    pub execution_id: Option<i64>,
    /// Additional fence for rescues: apply only if the lease expired before
    /// this instant (a fresh heartbeat wins).
    pub lease_expired_before: Option<Timestamp>,
    /// New state (never `Running`).
    pub state: JobState,
    /// New attempt counter.
    pub attempt: u32,
    /// New `run_at` for `Retrying`, `Scheduled` and `Available`.
    pub run_at: Option<Timestamp>,
    /// Set for terminal states.
    pub finished_at: Option<Timestamp>,
    /// Error to append to the job's errors.
    pub error: Option<AttemptError>,
    /// Output to store (replaces what was stored), if any.
    pub output: Option<String>,
    /// Progress to store, if any.
    pub progress: Option<serde_json::Value>,
    /// Exit code of a shell process.
    pub exit_code: Option<i32>,
}

/// Whether one finish applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishResult {
    /// Job id.
    pub id: i64,
    /// `false`: the lease token no longer matched (stale run); nothing changed.
    pub applied: bool,
}

/// Lease extension for the running jobs one node holds.
#[derive(Debug, Clone, PartialEq)]
pub struct JobHeartbeatParams {
    /// `(job id, lease token)` pairs.
    pub jobs: Vec<(i64, i64)>,
    /// New lease expiry.
    pub lease_expires_at: Timestamp,
    /// Current time.
    pub now: Timestamp,
}

/// Heartbeat outcome for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResult {
    /// Job id.
    pub id: i64,
    /// Whether our lease is still held (false: rescued or finished elsewhere).
    pub held: bool,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
}

/// A check-in from a running job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCheckinParams {
    /// Job id.
    pub id: i64,
    /// The run's lease token.
    pub lease_token: i64,
    /// New progress data, if any.
    pub progress: Option<serde_json::Value>,
    /// Output so far (replaces the stored output), if any.
    pub output: Option<String>,
}

/// A cancel request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCancelParams {
    /// Job id.
    pub id: i64,
    /// Current time.
    pub now: Timestamp,
}

/// An operator retry.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRetryParams {
    /// Job id.
    pub id: i64,
    /// Current time (the new `run_at`).
    pub now: Timestamp,
}

/// Which expired leases to list.
#[derive(Debug, Clone, PartialEq)]
pub struct JobExpiredParams {
    /// Current time.
    pub now: Timestamp,
    /// Most rows.
    pub limit: u32,
}

/// Promotion of due jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPromoteParams {
    /// Current time.
    pub now: Timestamp,
    /// Most rows per call.
    pub limit: u32,
}

/// Jobs counted per queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    /// Queue.
    pub queue: String,
    /// How many.
    pub count: u64,
}

/// Retention of finished jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPruneParams {
    /// Delete finished jobs that finished before this.
    pub finished_before: Option<Timestamp>,
    /// Keep at most this many finished jobs (newest by `finished_at`).
    pub keep_last: Option<u64>,
    /// Most rows deleted per call.
    pub limit: u32,
}

/// Pause or resume of a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePauseParams {
    /// Queue name.
    pub name: String,
    /// Current time.
    pub now: Timestamp,
}

/// A queue and its job counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    /// Queue name.
    pub name: String,
    /// When it was paused; `None` when running.
    pub paused_at: Option<Timestamp>,
    /// Jobs per state (states without jobs omitted).
    pub counts: BTreeMap<JobState, i64>,
}

/// A leadership bid.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElectParams {
    /// Bidding node.
    pub node_id: String,
    /// Lease length.
    pub ttl: Duration,
    /// Current time.
    pub now: Timestamp,
}

/// Renewal or resignation of a held term.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderReelectParams {
    /// The leader node.
    pub node_id: String,
    /// The term it holds.
    pub term: i64,
    /// Lease length.
    pub ttl: Duration,
    /// Current time.
    pub now: Timestamp,
}

/// One leadership term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderTerm {
    /// Leader node.
    pub node_id: String,
    /// Term number, increasing.
    pub term: i64,
    /// Start of the term.
    pub elected_at: Timestamp,
    /// Lease expiry (for history rows: last known expiry or resignation).
    pub expires_at: Timestamp,
}

/// Registration or heartbeat of a node (a worker process).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeUpsertParams {
    /// Node id (unique per process).
    pub id: String,
    /// Host name.
    pub host: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Queues served, with their concurrency.
    pub queues: BTreeMap<String, u32>,
    /// Jobs running on the node now.
    pub running: i64,
    /// Process start time (kept from the first upsert).
    pub started_at: Timestamp,
    /// Current time (the heartbeat).
    pub now: Timestamp,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// Node id.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Queues served, with their concurrency.
    pub queues: BTreeMap<String, u32>,
    /// Jobs running at the last heartbeat.
    pub running: i64,
    /// When the process started.
    pub started_at: Timestamp,
    /// Last heartbeat.
    pub heartbeat_at: Timestamp,
    /// When a drain was requested: the node stops claiming new work.
    pub draining_at: Option<Timestamp>,
}

/// Drain of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDrainParams {
    /// Node id.
    pub id: String,
    /// Current time.
    pub now: Timestamp,
}

/// Removal of nodes that stopped heartbeating.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePruneParams {
    /// Delete nodes whose last heartbeat is before this.
    pub heartbeat_before: Timestamp,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Read-only routes.
    Read,
    /// Read and mutate jobs, queues, schedules.
    Write,
    /// Everything, including key management and node drain.
    Admin,
}

impl ApiKeyScope {
    /// Stable lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Read => "read",
            ApiKeyScope::Write => "write",
            ApiKeyScope::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        [ApiKeyScope::Read, ApiKeyScope::Write, ApiKeyScope::Admin]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A new API key; only the hash of its secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInsertParams {
    /// Public key id (the prefix shown in listings).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Current time.
    pub now: Timestamp,
}

/// An API key as stored (never the secret itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    /// Public key id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// Hex SHA-256 of the secret.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Revocation time; revoked keys authenticate nothing.
    pub revoked_at: Option<Timestamp>,
}
