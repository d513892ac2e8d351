//! Request and response bodies of the HTTP API (shared with HTTP clients
//! such as the `rota` CLI: everything here is `Serialize + Deserialize`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use rota::{ApiKeyRow, ApiKeyScope, AttemptError, ErrorKind, Job, JobState, NodeRow, QueueRow};
use serde::{Deserialize, Serialize};
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
