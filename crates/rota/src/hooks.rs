//! Callbacks the embedding application registers.

use std::fmt;
use std::sync::Arc;

use rota_core::Job;

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

/// Registered callbacks.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) abnormal: Vec<AbnormalCallback>,
}

impl Hooks {
    /// Calls every abnormal-job callback; a panicking callback is logged and
    /// does not stop the others.
    pub(crate) fn abnormal(&self, job: &Job, reason: AbnormalReason) {
        metrics::counter!("rota_jobs_abnormal_total", "reason" => format!("{reason:?}"))
            .increment(1);
        tracing::warn!(job.id = job.id, job.kind = %job.kind, ?reason, "abnormal job");
        for cb in &self.abnormal {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(job, reason)));
            if r.is_err() {
                tracing::error!(job.id = job.id, "abnormal-job callback panicked");
            }
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("abnormal", &self.abnormal.len())
            .finish()
    }
}
