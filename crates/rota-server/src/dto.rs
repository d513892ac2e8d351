//! Request and response bodies of the HTTP API (shared with HTTP clients
//! such as the `rota` CLI: everything here is `Serialize + Deserialize`).

use std::collections::BTreeMap;

use std::time::Duration;

use jiff::Timestamp;
use rota::{
    ApiKeyRow, ApiKeyScope, AttemptError, BackoffPolicy, CatchUp, DeliveryRow, DeliveryStatus,
    ErrorKind, ExecutionRow, ExecutionStatus, FireRow, FireStatus, Job, JobState, NodeRow,
    OnOverlap, OverlapPolicy, QueueRow, ScheduleDefinition, ScheduleRow, ScheduleRule, Trigger,
    WebhookRow,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A job state (schema only; the value is the lowercase name).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    /// Waiting for its `run_at`.
    Scheduled,
    /// Ready to be claimed.
    Available,
    /// Claimed by a worker.
    Running,
    /// Failed with attempts left; runs again at its `run_at`.
    Retrying,
    /// Finished successfully.
    Succeeded,
    /// Attempts exhausted or a fatal error.
    Failed,
    /// Canceled.
    Canceled,
}

/// Why an attempt failed (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKindName {
    /// Retryable handler error.
    Error,
    /// Fatal handler error.
    Fatal,
    /// The handler panicked.
    Panic,
    /// The attempt timed out.
    Timeout,
    /// The worker's lease expired and the job was rescued.
    Rescued,
    /// A graceful shutdown handed the job back.
    Shutdown,
    /// Canceled while running.
    Canceled,
}

/// A duration: integer seconds, or a human duration such as `30s`, `10m`,
/// `1h30m` (or ISO 8601 `PT10M`). Must be positive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DurationInput {
    /// Whole seconds.
    Seconds(u64),
    /// Human or ISO 8601 duration.
    Text(String),
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptErrorView {
    /// The attempt (1-based).
    pub attempt: u32,
    /// When it failed (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Classification.
    #[schema(value_type = ErrorKindName)]
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
}

impl From<AttemptError> for AttemptErrorView {
    fn from(e: AttemptError) -> Self {
        Self {
            attempt: e.attempt,
            at: e.at,
            kind: e.kind,
            message: e.message,
        }
    }
}

/// A job. Times are RFC 3339 in UTC. Output is served separately
/// (`GET /v1/jobs/{id}/output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Id, increasing with insertion order.
    pub id: i64,
    /// What runs it.
    pub kind: String,
    /// Queue.
    pub queue: String,
    /// Lifecycle state.
    #[schema(value_type = JobStateName)]
    pub state: JobState,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Handler arguments.
    pub args: Value,
    /// 0 runs first, 9 last.
    pub priority: i16,
    /// When it may run next.
    #[schema(value_type = String, format = DateTime)]
    pub run_at: Timestamp,
    /// When it was enqueued.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the current or last attempt started.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal state.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// Failures, one per failed attempt, oldest first.
    pub errors: Vec<AttemptErrorView>,
    /// Last progress check-in.
    pub progress: Option<Value>,
    /// Node selector.
    pub labels: BTreeMap<String, String>,
    /// Queryable attributes.
    pub attributes: BTreeMap<String, String>,
    /// Node running (or that last ran) it.
    pub node: Option<String>,
    /// Exit code of a shell job's process.
    pub exit_code: Option<i32>,
    /// Uniqueness key among unfinished jobs.
    pub unique_key: Option<String>,
    /// Per-attempt timeout in seconds.
    pub timeout: Option<f64>,
    /// When cancellation was requested (running jobs end `canceled` once
    /// their handler stops).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancel_requested_at: Option<Timestamp>,
    /// When the current lease expires (running jobs).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub lease_expires_at: Option<Timestamp>,
    /// W3C `traceparent` of the enqueue.
    pub trace_context: Option<String>,
    /// The execution the job belongs to.
    #[serde(default)]
    pub execution_id: Option<i64>,
    /// The schedule that created the job.
    #[serde(default)]
    pub schedule_id: Option<i64>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            queue: j.queue,
            state: j.state,
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            args: j.args,
            priority: j.priority,
            run_at: j.run_at,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            errors: j.errors.into_iter().map(Into::into).collect(),
            progress: j.progress,
            labels: j.labels,
            attributes: j.attributes,
            node: j.node,
            exit_code: j.exit_code,
            unique_key: j.unique_key,
            timeout: j.timeout.map(|d| d.as_secs_f64()),
            cancel_requested_at: j.cancel_requested_at,
            lease_expires_at: j.lease_expires_at,
            trace_context: j.trace_context,
            execution_id: j.execution_id,
            schedule_id: j.schedule_id,
        }
    }
}

/// `POST /v1/jobs`: one job to enqueue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The kind (a worker must be registered for it unless the server
    /// accepts unknown kinds).
    pub kind: String,
    /// Handler arguments (any JSON; no NUL characters in strings).
    pub args: Value,
    /// Queue (default `default`): letters, digits, `_`, `-`, `.`, `:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// 0 (first) ..= 9 (last); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<i64>,
    /// Run at this RFC 3339 time (exclusive with `delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub run_at: Option<String>,
    /// Run after this duration (exclusive with `run_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub delay: Option<Value>,
    /// Attempts allowed (≥ 1); default from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_attempts: Option<i64>,
    /// Per-attempt time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub timeout: Option<Value>,
    /// At most one unfinished job carries this key; a duplicate returns the
    /// existing job with status 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Node selector: only nodes with all these labels run the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Queryable attributes (filter with `attribute.<name>=<value>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// `POST /v1/jobs/batch`: jobs enqueued all-or-nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1..=10,000 jobs.
    pub jobs: Vec<EnqueueRequest>,
}

/// The result of a batch enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The jobs, in request order (the existing job for a unique duplicate).
    pub jobs: Vec<JobView>,
    /// Per job: `false` when it was a unique duplicate.
    pub inserted: Vec<bool>,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// Jobs.
    pub jobs: Vec<JobView>,
    /// Cursor for the next page (pass as `after`); `null` at the end.
    pub next: Option<String>,
}

/// Stored output of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputView {
    /// Captured output (capped: head and tail kept, the cut marked); empty
    /// when nothing was recorded.
    pub output: String,
    /// Exit code of a shell job's process.
    pub exit_code: Option<i32>,
    /// The job's state.
    #[schema(value_type = JobStateName)]
    pub state: JobState,
}

/// One SSE `output` event of `GET /v1/jobs/{id}/output?follow=true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputChunk {
    /// New output since the previous event.
    pub chunk: String,
}

/// The SSE `end` event: the job finished (or vanished).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputEnd {
    /// Final state; `null` when the job was deleted meanwhile.
    #[schema(value_type = Option<JobStateName>)]
    pub state: Option<JobState>,
    /// Exit code, if any.
    pub exit_code: Option<i32>,
}

/// A queue with its job counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// Name.
    pub name: String,
    /// Whether claiming is paused.
    pub paused: bool,
    /// When it was paused.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paused_at: Option<Timestamp>,
    /// Jobs per state (states without jobs omitted).
    pub counts: BTreeMap<String, i64>,
}

impl From<QueueRow> for QueueView {
    fn from(q: QueueRow) -> Self {
        Self {
            name: q.name,
            paused: q.paused_at.is_some(),
            paused_at: q.paused_at,
            counts: q
                .counts
                .into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
        }
    }
}

/// Every queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    /// Queues by name.
    pub queues: Vec<QueueView>,
}

/// A worker node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
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
    /// Process start.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Last heartbeat.
    #[schema(value_type = String, format = DateTime)]
    pub heartbeat_at: Timestamp,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_seconds: f64,
    /// Whether the node was asked to drain.
    pub draining: bool,
    /// When the drain was requested.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub draining_at: Option<Timestamp>,
}

impl NodeView {
    /// The view of `n` as seen at `now`.
    pub fn new(n: NodeRow, now: Timestamp) -> Self {
        let age = now.duration_since(n.heartbeat_at).as_secs_f64().max(0.0);
        Self {
            id: n.id,
            host: n.host,
            labels: n.labels,
            queues: n.queues,
            running: n.running,
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
            heartbeat_age_seconds: (age * 1000.0).round() / 1000.0,
            draining: n.draining_at.is_some(),
            draining_at: n.draining_at,
        }
    }
}

/// Every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// Nodes by id.
    pub nodes: Vec<NodeView>,
}

/// A key scope (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    /// Read-only routes.
    Read,
    /// Read and mutate jobs and queues.
    Write,
    /// Everything, including keys and node drain.
    Admin,
}

/// An API key (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scope.
    #[schema(value_type = ScopeName)]
    pub scope: ApiKeyScope,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Revocation time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        Self {
            id: k.id,
            name: k.name,
            scope: k.scope,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Every API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// Keys by creation time.
    pub keys: Vec<ApiKeyView>,
}

/// `POST /v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Name, 1..=128 printable characters.
    pub name: String,
    /// `read`, `write` or `admin`.
    #[schema(value_type = ScopeName)]
    pub scope: String,
}

/// A created key: the only time its token is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKeyView,
    /// The bearer token (`rota_<id>_<secret>`); not retrievable later.
    pub token: String,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (store reachable).
    pub status: String,
    /// Store name (`readyz` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Store version (`readyz` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn state_counts(counts: BTreeMap<JobState, i64>) -> BTreeMap<String, i64> {
    counts
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect()
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Deserializes a present field, `null` included, as `Some` (so `null` can
/// mean something other than "absent").
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

// ---------------------------------------------------------------- executions

/// What started an execution (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerName {
    /// By hand (API, CLI, library call).
    Manual,
    /// By a schedule.
    Schedule,
    /// In reaction to an event.
    Event,
}

/// An execution's status (schema only). Derived from its jobs: `running`
/// while any job is unfinished; then `failed` if any failed, else
/// `canceled` if any was canceled, else `succeeded`. An execution without
/// jobs stays `running` until marked `succeeded` or `error`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatusName {
    /// Some job unfinished (or no job yet).
    Running,
    /// Every job succeeded (or marked done without jobs).
    Succeeded,
    /// Finished, at least one job failed.
    Failed,
    /// Finished, none failed, at least one canceled.
    Canceled,
    /// Marked as an error without jobs.
    Error,
}

/// The explicit status of an execution without jobs (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarkStatusName {
    /// Done.
    Succeeded,
    /// Failed before creating any job.
    Error,
}

/// An owner id: a string, or an integer (stored as its decimal string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OwnerIdInput {
    /// Text id.
    Text(String),
    /// Numeric id.
    Number(i64),
}

impl OwnerIdInput {
    /// The id as stored.
    pub fn into_string(self) -> String {
        match self {
            OwnerIdInput::Text(s) => s,
            OwnerIdInput::Number(n) => n.to_string(),
        }
    }
}

/// `POST /v1/executions`: an execution and, optionally, its first jobs
/// (created in one transaction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecutionRequest {
    /// Owner type, e.g. `replication` (1..=128 printable characters).
    pub owner_kind: String,
    /// Owner id, e.g. `42` or `"db-eu-1"` (1..=128 printable characters).
    pub owner_id: OwnerIdInput,
    /// `manual` (default), `schedule` or `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TriggerName>)]
    pub trigger: Option<String>,
    /// Queryable attributes (filter with `attribute.<name>=<value>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Initial status message (at most 4096 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Jobs created with it (0..=10,000), all or nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<EnqueueRequest>>,
}

/// An execution: one run of an action for an owner, grouping jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionView {
    /// Id, increasing with creation order.
    pub id: i64,
    /// Owner type.
    pub owner_kind: String,
    /// Owner id.
    pub owner_id: String,
    /// What started it.
    #[schema(value_type = TriggerName)]
    pub trigger: Trigger,
    /// Queryable attributes.
    pub attributes: BTreeMap<String, String>,
    /// Derived from its jobs, or marked explicitly when it has none.
    #[schema(value_type = ExecutionStatusName)]
    pub status: ExecutionStatus,
    /// Explanation of the status.
    pub status_message: Option<String>,
    /// Its jobs per state (the execution's metrics; states without jobs
    /// omitted).
    pub counts: BTreeMap<String, i64>,
    /// Its jobs in all.
    pub total_jobs: i64,
    /// Start.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When it reached a final status.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

impl From<ExecutionRow> for ExecutionView {
    fn from(e: ExecutionRow) -> Self {
        let total_jobs = e.counts.values().sum();
        Self {
            id: e.id,
            owner_kind: e.owner_kind,
            owner_id: e.owner_id,
            trigger: e.trigger,
            attributes: e.attributes,
            status: e.status,
            status_message: e.status_message,
            counts: state_counts(e.counts),
            total_jobs,
            created_at: e.created_at,
            updated_at: e.updated_at,
            ended_at: e.ended_at,
        }
    }
}

/// A created execution with its jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedExecution {
    /// The execution.
    pub execution: ExecutionView,
    /// Its jobs, in request order (the existing job for a unique-key
    /// duplicate).
    pub jobs: Vec<JobView>,
    /// Per job: `false` when it was a unique-key duplicate.
    pub inserted: Vec<bool>,
}

/// A page of executions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    /// Executions.
    pub executions: Vec<ExecutionView>,
    /// Cursor for the next page (pass as `after`); `null` at the end.
    pub next: Option<String>,
}

/// `POST /v1/executions/{id}/mark`: the status of an execution without
/// jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkExecutionRequest {
    /// `succeeded` or `error`.
    #[schema(value_type = MarkStatusName)]
    pub status: String,
    /// Why (at most 4096 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ----------------------------------------------------------------- schedules

/// How a schedule's fires relate to nodes and to each other's runs (schema
/// only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    /// One job per live node matching the job's labels, per fire.
    Common,
    /// Never two runs at once cluster-wide (see `on_overlap`).
    Alone,
    /// One job per fire however many schedulers run (the default).
    Interval,
}

/// What an `alone` schedule does with a fire while a run is unfinished
/// (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnOverlapName {
    /// Record it as skipped (the default).
    Skip,
    /// Keep it due until the running one ends.
    Queue,
}

/// A named catch-up policy (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpName {
    /// Skip every missed fire.
    None,
    /// Run the most recent missed fire once (the default).
    Latest,
}

/// `{"limit": N}` of the `all` catch-up policy (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct CatchUpLimit {
    /// Most missed fires run, the newest ones (1..=1000).
    pub limit: u32,
}

/// `{"all": {"limit": N}}`: run missed fires too, oldest first (schema
/// only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct CatchUpAll {
    /// The limit.
    pub all: CatchUpLimit,
}

/// What happens to fires missed while no scheduler ran: `"none"`,
/// `"latest"` (default) or `{"all": {"limit": N}}` (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CatchUpPolicy {
    /// `none` or `latest`.
    Name(CatchUpName),
    /// `{"all": {"limit": N}}`.
    All(CatchUpAll),
}

/// The job each fire creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleJob {
    /// The kind (a worker must be registered for it unless the server
    /// accepts unknown kinds).
    pub kind: String,
    /// Handler arguments.
    pub args: Value,
    /// Queue (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// 0 (first) ..= 9 (last); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<i64>,
    /// Attempts per job (≥ 1); default from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_attempts: Option<i64>,
    /// Per-attempt time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub timeout: Option<Value>,
    /// Node selector (with `policy: common`, also which nodes get a job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Queryable attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// Wrap each fire's jobs in an execution of this owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOwner {
    /// Owner type (1..=128 printable characters).
    pub owner_kind: String,
    /// Owner id (1..=128 printable characters, or an integer).
    pub owner_id: OwnerIdInput,
}

/// Backoff while fires keep failing. Omitted fields take the defaults
/// shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffInput {
    /// Wait after the first failed run (default `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub initial_interval: Option<Value>,
    /// Growth per further failure, ≥ 1 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Longest wait (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub max_interval: Option<Value>,
    /// Random spread, 0..=1 (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// Failures counted before the backoff stops growing (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_attempts: Option<i64>,
    /// After this long without a failure the backoff starts afresh
    /// (default `1h`; `null`: never).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DurationInput>)]
    pub reset_interval: Option<Value>,
}

/// `POST /v1/schedules`: a named rule and the job each fire creates. Give
/// exactly one of `cron` and `every`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Unique name: letters, digits, `_`, `-`, `.`, `:` (1..=128).
    pub name: String,
    /// Cron expression: 5 fields, or 6 with leading seconds
    /// (`*/5 * * * * *`), or `@hourly`, `@daily`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Fixed interval instead of cron (≥ 1 s, aligned to the Unix epoch):
    /// `30s`, `5m`, or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub every: Option<Value>,
    /// IANA time zone of a cron rule (default `UTC`), e.g. `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `interval` (default), `alone` or `common`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PolicyName>)]
    pub policy: Option<String>,
    /// For `alone`: `skip` (default) or `queue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OnOverlapName>)]
    pub on_overlap: Option<String>,
    /// Missed fires after downtime: `none`, `latest` (default) or
    /// `{"all": {"limit": N}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CatchUpPolicy>)]
    pub catch_up: Option<Value>,
    /// The job each fire creates.
    pub job: ScheduleJob,
    /// Wrap each fire's jobs in an execution of this owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ScheduleOwner>,
    /// Back off while runs keep failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffInput>,
}

/// `PATCH /v1/schedules/{id}`: the fields given replace the stored ones;
/// `null` resets one to its default (`execution: null`, `backoff: null`
/// remove them). `job` and `backoff` are merged field by field. Giving
/// `cron` drops `every` and vice versa. Content type `application/json`
/// or `application/merge-patch+json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SchedulePatch {
    /// The name (it cannot be changed: a different one is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New cron expression (replaces `every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// New interval (replaces `cron` and `timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DurationInput>)]
    pub every: Option<Value>,
    /// New time zone of the cron rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// New overlap policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PolicyName>)]
    pub policy: Option<String>,
    /// New `on_overlap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OnOverlapName>)]
    pub on_overlap: Option<String>,
    /// New catch-up policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CatchUpPolicy>)]
    pub catch_up: Option<Value>,
    /// Job fields to change (each replaces the stored one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub job: Option<Value>,
    /// New execution owner (`null`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ScheduleOwner>,
    /// Backoff fields to change (`null`: no backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffInput>,
}

/// The job a schedule creates, as stored. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleJobView {
    /// Kind.
    pub kind: String,
    /// Args.
    pub args: Value,
    /// Queue (`null`: `default`).
    pub queue: Option<String>,
    /// Priority (`null`: 0).
    pub priority: Option<i16>,
    /// Attempts per job (`null`: the server's default).
    pub max_attempts: Option<u32>,
    /// Per-attempt timeout in seconds.
    pub timeout: Option<f64>,
    /// Node selector.
    pub labels: BTreeMap<String, String>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
}

/// The execution owner of a schedule's fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleOwnerView {
    /// Owner type.
    pub owner_kind: String,
    /// Owner id.
    pub owner_id: String,
}

/// A schedule's backoff. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackoffView {
    /// Wait after the first failed run.
    pub initial_interval: f64,
    /// Growth per further failure.
    pub multiplier: f64,
    /// Longest wait.
    pub max_interval: f64,
    /// Random spread.
    pub jitter: f64,
    /// Failures counted.
    pub max_attempts: u32,
    /// Healthy time after which the backoff starts afresh (`null`: never).
    pub reset_interval: Option<f64>,
}

impl From<&BackoffPolicy> for BackoffView {
    fn from(b: &BackoffPolicy) -> Self {
        Self {
            initial_interval: seconds(b.initial_interval),
            multiplier: b.multiplier,
            max_interval: seconds(b.max_interval),
            jitter: b.jitter,
            max_attempts: b.max_attempts,
            reset_interval: b.reset_interval.map(seconds),
        }
    }
}

/// A schedule. Times are RFC 3339 in UTC, durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Cron expression (`null` for an interval schedule).
    pub cron: Option<String>,
    /// Time zone of the cron rule (`null` for an interval schedule).
    pub timezone: Option<String>,
    /// Interval in seconds (`null` for a cron schedule).
    pub every: Option<f64>,
    /// Overlap policy.
    #[schema(value_type = PolicyName)]
    pub policy: OverlapPolicy,
    /// What an `alone` schedule does with a fire while a run is unfinished.
    #[schema(value_type = OnOverlapName)]
    pub on_overlap: OnOverlap,
    /// Missed-fire policy.
    #[schema(value_type = CatchUpPolicy)]
    pub catch_up: CatchUp,
    /// The job each fire creates.
    pub job: ScheduleJobView,
    /// Execution owner of each fire's jobs.
    pub execution: Option<ScheduleOwnerView>,
    /// Backoff while runs fail.
    pub backoff: Option<BackoffView>,
    /// Whether it is paused.
    pub paused: bool,
    /// When it was paused.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paused_at: Option<Timestamp>,
    /// Next due fire (`null`: never again; while paused, the fire due when
    /// it was paused).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_fire_at: Option<Timestamp>,
    /// Last recorded fire.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_fire_at: Option<Timestamp>,
    /// Average run time of recent finished runs, in seconds (only on
    /// `GET /v1/schedules/{id}` and the responses of its actions; `null`
    /// in lists and before any run finished).
    pub average_run_seconds: Option<f64>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl ScheduleView {
    /// The view of a stored schedule and its decoded definition.
    pub fn new(
        row: ScheduleRow,
        def: ScheduleDefinition,
        average_run_seconds: Option<f64>,
    ) -> Self {
        let (cron, timezone, every) = match def.spec.rule {
            ScheduleRule::Cron { expr, timezone } => (Some(expr), Some(timezone), None),
            ScheduleRule::Every { interval } => (None, None, Some(seconds(interval))),
        };
        let t = def.job;
        Self {
            id: row.id,
            name: row.name,
            cron,
            timezone,
            every,
            policy: def.spec.overlap,
            on_overlap: def.spec.on_overlap,
            catch_up: def.spec.catch_up,
            job: ScheduleJobView {
                kind: t.kind,
                args: t.args,
                queue: t.queue,
                priority: t.priority,
                max_attempts: t.max_attempts,
                timeout: t.timeout_ms.map(|ms| seconds(Duration::from_millis(ms))),
                labels: t.labels,
                attributes: t.attributes,
            },
            execution: def
                .execution
                .map(|(owner_kind, owner_id)| ScheduleOwnerView {
                    owner_kind,
                    owner_id,
                }),
            backoff: def.backoff.as_ref().map(BackoffView::from),
            paused: row.paused_at.is_some(),
            paused_at: row.paused_at,
            next_fire_at: row.next_fire_at,
            last_fire_at: row.last_fire_at,
            average_run_seconds,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Every schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    /// Schedules by id.
    pub schedules: Vec<ScheduleView>,
}

/// How a fire was handled (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FireStatusName {
    /// Jobs (or an execution) were created.
    Fired,
    /// Skipped (overlap, backoff, catch-up); `reason` says why.
    Skipped,
}

/// A run's outcome (schema only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The fire was skipped: nothing ran.
    Skipped,
    /// Some of its jobs are unfinished.
    Running,
    /// Every job succeeded.
    Succeeded,
    /// Some job failed or was canceled.
    Failed,
}

/// One fire of a schedule (a run), with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    /// Schedule id.
    pub schedule_id: i64,
    /// The fire time (unique per schedule).
    #[schema(value_type = String, format = DateTime)]
    pub fire_at: Timestamp,
    /// Fired or skipped.
    #[schema(value_type = FireStatusName)]
    pub status: FireStatus,
    /// Outcome of its jobs.
    pub outcome: RunOutcome,
    /// Why it was skipped, or a note (`manual trigger`).
    pub reason: Option<String>,
    /// Node that recorded it.
    pub node: String,
    /// When it was recorded.
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    /// Execution created for it.
    pub execution_id: Option<i64>,
    /// Jobs created for it.
    pub job_ids: Vec<i64>,
    /// Of those, still unfinished.
    pub unfinished: i64,
    /// Of those, failed or canceled.
    pub unsuccessful: i64,
    /// Earliest start of its jobs.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    /// Latest finish of its jobs, once all finished.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// `finished_at - started_at` in seconds.
    pub duration_seconds: Option<f64>,
}

impl From<FireRow> for RunView {
    fn from(f: FireRow) -> Self {
        let outcome = if f.status == FireStatus::Skipped {
            RunOutcome::Skipped
        } else if f.unfinished > 0 {
            RunOutcome::Running
        } else if f.unsuccessful > 0 {
            RunOutcome::Failed
        } else {
            RunOutcome::Succeeded
        };
        let duration_seconds = match (f.started_at, f.finished_at) {
            (Some(s), Some(e)) => Some(e.duration_since(s).as_secs_f64().max(0.0)),
            _ => None,
        };
        Self {
            schedule_id: f.schedule_id,
            fire_at: f.fire_at,
            status: f.status,
            outcome,
            reason: f.reason,
            node: f.node_id,
            recorded_at: f.recorded_at,
            execution_id: f.execution_id,
            job_ids: f.job_ids,
            unfinished: f.unfinished,
            unsuccessful: f.unsuccessful,
            started_at: f.started_at,
            finished_at: f.finished_at,
            duration_seconds,
        }
    }
}

/// A page of runs, newest fire first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    /// Runs.
    pub runs: Vec<RunView>,
    /// Cursor for the next page (pass as `after`); `null` at the end.
    pub next: Option<String>,
}

// ------------------------------------------------------------------ webhooks

/// `POST /v1/webhooks`: subscribe a URL to status events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `http://` or `https://` URL (at most 2048 bytes).
    pub url: String,
    /// Event patterns: `job.*`, `job.succeeded`, `job.progress`,
    /// `execution.*`, `execution.failed`, `*` (omitted or empty: every
    /// event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Only jobs of these kinds (omitted or empty: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Only executions of these owner kinds (omitted or empty: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kinds: Option<Vec<String>>,
    /// HMAC-SHA256 signing secret, 16..=1024 bytes; never returned.
    /// Requests carry `Rota-Signature: t=<unix>,v1=<hex HMAC(secret,
    /// "<t>.<body>")>`.
    pub secret: String,
}

/// A webhook subscription (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: i64,
    /// Target URL.
    pub url: String,
    /// Event patterns (empty: every event).
    pub events: Vec<String>,
    /// Kind filter (empty: any).
    pub kinds: Vec<String>,
    /// Owner-kind filter (empty: any).
    pub owner_kinds: Vec<String>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<WebhookRow> for WebhookView {
    fn from(w: WebhookRow) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            kinds: w.kinds,
            owner_kinds: w.owner_kinds,
            created_at: w.created_at,
        }
    }
}

/// Every webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Subscriptions by id.
    pub webhooks: Vec<WebhookView>,
}

/// State of a delivery (schema only).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by the receiver (2xx).
    Delivered,
    /// Given up after the last attempt.
    Dead,
}

/// One delivery of an event to a subscription, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// Id.
    pub id: i64,
    /// Subscription.
    pub webhook_id: i64,
    /// Event id (also sent as `Rota-Event-Id`).
    pub event_id: i64,
    /// The JSON body sent: `type`, `event_id`, `entity`, `id`, `revision`,
    /// `status`, `kind`, `execution_id`, `at`.
    #[schema(value_type = Object)]
    pub event: Value,
    /// State.
    #[schema(value_type = DeliveryStatusName)]
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt due (pending only).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it was delivered.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event: d.body,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// Deliveries.
    pub deliveries: Vec<DeliveryView>,
    /// Cursor for the next page (pass as `after`); `null` at the end.
    pub next: Option<String>,
}
