//! Callbacks the embedding application registers.

use std::fmt;
use std::sync::Arc;

use rota_core::{AttemptError, Job, JobState};
use rota_driver::ExecutionRow;

/// Why a job is reported as abnormal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbnormalReason {
    /// Its worker's lease expired (the worker presumably died) and the job
    /// was rescued.
    Rescued,
    /// It has been running longer than its timeout while its lease is still
    /// being renewed (a handler ignoring its cancellation token).
    StuckPastTimeout,
}

/// A callback for abnormal jobs.
pub type AbnormalCallback = Arc<dyn Fn(&Job, AbnormalReason) + Send + Sync>;

/// A job status change made by this process, reported after it committed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatusEvent {
    /// Job id.
    pub job_id: i64,
    /// Job kind.
    pub kind: String,
    /// Queue.
    pub queue: String,
    /// New state (for `progress` events: still `running`).
    pub state: JobState,
    /// Attempt counter after the change.
    pub attempt: u32,
    /// The job's execution, if any.
    pub execution_id: Option<i64>,
    /// Progress data, for check-in events.
    pub progress: Option<serde_json::Value>,
    /// The error recorded by this change, if any.
    pub error: Option<AttemptError>,
}

/// A callback for job status changes.
pub type JobStatusCallback = Arc<dyn Fn(&JobStatusEvent) + Send + Sync>;

/// A callback for execution status changes (called with the execution as
/// it is after the change).
pub type ExecutionStatusCallback = Arc<dyn Fn(&ExecutionRow) + Send + Sync>;

/// Registered callbacks.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) abnormal: Vec<AbnormalCallback>,
    /// Per kind (`None`: every kind).
    pub(crate) job: Vec<(Option<String>, JobStatusCallback)>,
    /// Per owner kind (`None`: every owner kind).
    pub(crate) execution: Vec<(Option<String>, ExecutionStatusCallback)>,
}

/// Runs `f`, logging instead of propagating a panic: a failing callback
/// never loses the change it reports.
fn guarded(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        tracing::error!(
            hook = what,
            "status callback panicked; the change itself is committed"
        );
    }
}

impl Hooks {
    /// Calls every abnormal-job callback; a panicking callback is logged and
    /// does not stop the others.
    pub(crate) fn abnormal(&self, job: &Job, reason: AbnormalReason) {
        metrics::counter!("rota_jobs_abnormal_total", "reason" => format!("{reason:?}"))
            .increment(1);
        tracing::warn!(job.id = job.id, job.kind = %job.kind, ?reason, "abnormal job");
        for cb in &self.abnormal {
            guarded("abnormal", || cb(job, reason));
        }
    }

    /// Whether any job callback is registered (skip building events if not).
    pub(crate) fn wants_jobs(&self) -> bool {
        !self.job.is_empty()
    }

    /// Calls the job callbacks registered for the event's kind.
    pub(crate) fn job(&self, ev: &JobStatusEvent) {
        for (kind, cb) in &self.job {
            if kind.as_deref().is_none_or(|k| k == ev.kind) {
                guarded("job", || cb(ev));
            }
        }
    }

    /// Whether any execution callback is registered.
    pub(crate) fn wants_executions(&self) -> bool {
        !self.execution.is_empty()
    }

    /// Calls the execution callbacks registered for its owner kind.
    pub(crate) fn execution(&self, ex: &ExecutionRow) {
        for (owner, cb) in &self.execution {
            if owner.as_deref().is_none_or(|o| o == ex.owner_kind) {
                guarded("execution", || cb(ex));
            }
        }
    }

    /// A job event from a stored job.
    pub(crate) fn job_from(&self, job: &Job) {
        if self.wants_jobs() {
            self.job(&JobStatusEvent {
                job_id: job.id,
                kind: job.kind.clone(),
                queue: job.queue.clone(),
                state: job.state,
                attempt: job.attempt,
                execution_id: job.execution_id,
                progress: None,
                error: None,
            });
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("abnormal", &self.abnormal.len())
            .field("job", &self.job.len())
            .field("execution", &self.execution.len())
            .finish()
    }
}
