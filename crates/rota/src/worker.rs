//! Typed jobs: the [`JobArgs`] a job carries and the [`Worker`] that runs it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rota_core::BackoffPolicy;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::JobContext;
use crate::enqueue::EnqueueOpts;

/// The arguments of one kind of job. The type *is* the kind.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
/// impl rota::JobArgs for SendEmail {
///     const KIND: &'static str = "send_email";
/// }
/// ```
pub trait JobArgs: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored kind name; stable across deployments.
    const KIND: &'static str;

    /// Default enqueue options for this kind (queue, priority, ...).
    fn default_opts() -> EnqueueOpts {
        EnqueueOpts::default()
    }
}

/// What a handler asks for when it does not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done: the job succeeds.
    Done,
    /// Run again after this long, without using up an attempt.
    Snooze(Duration),
    /// Stop for good: the job ends `canceled` with this reason.
    Cancel(String),
}

/// A failed attempt.
///
/// Any `std::error::Error` converts into a retryable `JobError` with `?`;
/// use [`JobError::fatal`] for failures that retrying cannot fix.
pub struct JobError {
    pub(crate) message: String,
    pub(crate) fatal: bool,
    pub(crate) retry_after: Option<Duration>,
}

impl JobError {
    /// A retryable failure (retried per the backoff policy).
    pub fn retry(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            fatal: false,
            retry_after: None,
        }
    }

    /// A retryable failure with an explicit wait instead of the backoff.
    pub fn retry_after(message: impl fmt::Display, after: Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..Self::retry(message)
        }
    }

    /// A failure that is not retried: the job ends `failed`.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Self {
            fatal: true,
            ..Self::retry(message)
        }
    }

    /// The message stored with the attempt.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether it is fatal.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("message", &self.message)
            .field("fatal", &self.fatal)
            .finish()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e)
    }
}

/// What a handler returns.
pub type JobResult = Result<JobOutcome, JobError>;

/// Runs jobs of one [`JobArgs`] type.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    /// The job type this worker runs.
    type Args: JobArgs;

    /// Runs one attempt. Watch `ctx.cancelled()` in long work.
    async fn work(&self, ctx: &JobContext, args: Self::Args) -> JobResult;

    /// Per-attempt time limit, overriding the client default (a job's own
    /// `timeout` wins over both).
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Backoff between attempts, overriding the client default.
    fn backoff(&self) -> Option<BackoffPolicy> {
        None
    }
}

/// A worker with its args type erased, so handlers of any kind share one
/// registry. Also the way to register handlers over raw JSON (e.g. built-in
/// kinds).
#[async_trait]
pub trait RawWorker: Send + Sync + 'static {
    /// Runs one attempt on raw JSON args.
    async fn work_raw(&self, ctx: &JobContext, args: serde_json::Value) -> JobResult;

    /// See [`Worker::timeout`].
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// See [`Worker::backoff`].
    fn backoff(&self) -> Option<BackoffPolicy> {
        None
    }
}

pub(crate) struct Typed<W>(pub(crate) W);

#[async_trait]
impl<W: Worker> RawWorker for Typed<W> {
    async fn work_raw(&self, ctx: &JobContext, args: serde_json::Value) -> JobResult {
        let args: W::Args = serde_json::from_value(args).map_err(|e| {
            JobError::fatal(format!("cannot decode args of {}: {e}", W::Args::KIND))
        })?;
        self.0.work(ctx, args).await
    }

    fn timeout(&self) -> Option<Duration> {
        self.0.timeout()
    }

    fn backoff(&self) -> Option<BackoffPolicy> {
        self.0.backoff()
    }
}

/// Registered handlers by kind.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    by_kind: HashMap<String, Arc<dyn RawWorker>>,
    /// Kinds accepted for enqueue that this node does not run.
    elsewhere: std::collections::BTreeSet<String>,
}

impl Registry {
    pub(crate) fn insert(&mut self, kind: String, worker: Arc<dyn RawWorker>) {
        self.by_kind.insert(kind, worker);
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Arc<dyn RawWorker>> {
        self.by_kind.get(kind)
    }

    pub(crate) fn kinds(&self) -> impl Iterator<Item = &str> {
        self.by_kind.keys().map(String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    pub(crate) fn accept_elsewhere(&mut self, kind: String) {
        self.elsewhere.insert(kind);
    }

    /// Kinds run here plus kinds accepted to be run by other nodes.
    pub(crate) fn known(&self) -> impl Iterator<Item = &str> {
        self.kinds()
            .chain(self.elsewhere.iter().map(String::as_str))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}
