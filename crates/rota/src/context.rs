//! What a handler sees of its job while it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rota_core::JobState;
use rota_core::{Job, OutputBuffer};
use rota_driver::{JobCheckinParams, JobFinishParams};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::runtime::engine::Engine;
use crate::store::TxConnection;

/// Default cap on stored output per job.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;

/// Why a running job was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Someone canceled the job.
    Requested,
    /// The attempt exceeded its timeout.
    Timeout,
    /// The client is shutting down and the grace period ran out.
    Shutdown,
    /// The lease was lost (the job was rescued or finished elsewhere).
    LeaseLost,
}

/// Per-run state shared by the handler's context and the runtime.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) token: CancellationToken,
    reason: Mutex<Option<CancelReason>>,
    output: Mutex<OutputBuffer>,
    output_dirty: AtomicBool,
    progress: Mutex<Option<serde_json::Value>>,
    exit_code: Mutex<Option<i32>>,
    completed_in_tx: AtomicBool,
}

impl RunState {
    pub(crate) fn new(output_cap: usize) -> Self {
        Self {
            token: CancellationToken::new(),
            reason: Mutex::new(None),
            output: Mutex::new(OutputBuffer::new(output_cap)),
            output_dirty: AtomicBool::new(false),
            progress: Mutex::new(None),
            exit_code: Mutex::new(None),
            completed_in_tx: AtomicBool::new(false),
        }
    }

    /// Whether the handler finished the job inside its own transaction.
    pub(crate) fn completed_in_tx(&self) -> bool {
        self.completed_in_tx.load(Ordering::Acquire)
    }

    pub(crate) fn exit_code(&self) -> Option<i32> {
        *self.exit_code.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fires the token; the first reason wins.
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<CancelReason> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self, bytes: &[u8]) {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(bytes);
        self.output_dirty.store(true, Ordering::Release);
    }

    /// The output, if anything was written.
    pub(crate) fn output(&self) -> Option<String> {
        let out = self.output.lock().unwrap_or_else(|p| p.into_inner());
        (!out.is_empty()).then(|| out.render())
    }

    /// The output if it changed since the last call.
    pub(crate) fn take_dirty_output(&self) -> Option<String> {
        if self.output_dirty.swap(false, Ordering::AcqRel) {
            self.output()
        } else {
            None
        }
    }

    pub(crate) fn progress(&self) -> Option<serde_json::Value> {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_progress(&self, v: serde_json::Value) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
}

/// The running job, its cancellation token, and sinks for progress and
/// output. Handed to [`Worker::work`](crate::Worker::work).
#[derive(Debug, Clone)]
pub struct JobContext {
    job: Arc<Job>,
    lease_token: i64,
    run: Arc<RunState>,
    engine: Option<Arc<Engine>>,
}

impl JobContext {
    pub(crate) fn new(
        job: Arc<Job>,
        lease_token: i64,
        run: Arc<RunState>,
        engine: Arc<Engine>,
    ) -> Self {
        Self {
            job,
            lease_token,
            run,
            engine: Some(engine),
        }
    }

    /// A context not connected to any store, for running a handler inline
    /// in tests (see the `rota-test` crate). Check-ins are kept in memory.
    pub fn detached(job: Job) -> Self {
        Self {
            job: Arc::new(job),
            lease_token: 0,
            run: Arc::new(RunState::new(DEFAULT_OUTPUT_CAP)),
            engine: None,
        }
    }

    /// The job as claimed (attempt already counted).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job id.
    pub fn id(&self) -> i64 {
        self.job.id
    }

    /// This attempt's number (1-based).
    pub fn attempt(&self) -> u32 {
        self.job.attempt
    }

    /// A token that fires when the job must stop (cancel, timeout,
    /// shutdown, lost lease).
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.run.token
    }

    /// Resolves when the job must stop; use in `tokio::select!`.
    pub async fn cancelled(&self) {
        self.run.token.cancelled().await
    }

    /// Whether the job was told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.run.token.is_cancelled()
    }

    /// Why the job was told to stop, if it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.run.reason()
    }

    /// Appends a line to the job's stored output (capped, head and tail
    /// kept). Flushed with each heartbeat and when the run ends.
    pub fn log(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        self.run.write(line.as_bytes());
        if !line.ends_with('\n') {
            self.run.write(b"\n");
        }
    }

    /// Appends raw bytes to the job's stored output.
    pub fn write_output(&self, bytes: &[u8]) {
        self.run.write(bytes);
    }

    /// The output written so far.
    pub fn output(&self) -> String {
        self.run.output().unwrap_or_default()
    }

    /// Reports progress: stored at once (visible in queries), fenced by the
    /// run's lease. Returns `false` when the lease was lost.
    pub async fn checkin(&self, progress: serde_json::Value) -> Result<bool> {
        self.run.set_progress(progress.clone());
        let Some(engine) = &self.engine else {
            return Ok(true);
        };
        let held = engine
            .driver
            .job_checkin(&JobCheckinParams {
                id: self.job.id,
                lease_token: self.lease_token,
                progress: Some(progress),
                output: self.run.take_dirty_output(),
            })
            .await?;
        if held {
            let hooks = &engine.hooks;
            if hooks.wants_jobs() {
                hooks.job(&crate::hooks::JobStatusEvent {
                    job_id: self.job.id,
                    kind: self.job.kind.clone(),
                    queue: self.job.queue.clone(),
                    state: JobState::Running,
                    attempt: self.job.attempt,
                    execution_id: self.job.execution_id,
                    progress: self.run.progress(),
                    error: None,
                });
            }
            // Webhook subscribers get a `progress` event (a no-op without
            // subscriptions; not every store supports it).
            if let Err(e) = engine
                .driver
                .event_progress(self.job.id, engine.now())
                .await
            {
                tracing::debug!(error = %e, "progress event not recorded");
            }
        }
        Ok(held)
    }

    /// Records the exit code of a process the job ran (shell jobs); stored
    /// with the job when the run ends.
    pub fn set_exit_code(&self, code: i32) {
        *self.run.exit_code.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
    }

    /// The exit code recorded in this run, if any.
    pub fn exit_code(&self) -> Option<i32> {
        self.run.exit_code()
    }

    /// Transactional completion: marks the job `succeeded` on the caller's
    /// connection (`&mut *tx`, SQLite or PostgreSQL), so the handler's own writes and
    /// the job's success commit together — or, on rollback, neither. Fenced
    /// by the run's lease: returns `false` (roll back!) when the lease was
    /// lost. Return `Ok(JobOutcome::Done)` afterwards; if the transaction
    /// rolls back, the runtime's own completion still applies.
    pub async fn complete_tx<C: TxConnection + ?Sized>(&self, conn: &mut C) -> Result<bool> {
        let Some(engine) = &self.engine else {
            self.run.completed_in_tx.store(true, Ordering::Release);
            return Ok(true);
        };
        let now = engine.now();
        let params = JobFinishParams {
            id: self.job.id,
            execution_id: self.job.execution_id,
            lease_token: self.lease_token,
            lease_expired_before: None,
            state: JobState::Succeeded,
            attempt: self.job.attempt,
            run_at: None,
            finished_at: Some(now),
            error: None,
            output: self.run.output(),
            progress: self.run.progress(),
            exit_code: self.run.exit_code(),
        };
        let r = conn.finish_job(&engine.store, params).await?;
        if r.applied {
            self.run.completed_in_tx.store(true, Ordering::Release);
        }
        Ok(r.applied)
    }

    /// The last progress reported in this run.
    pub fn progress(&self) -> Option<serde_json::Value> {
        self.run.progress()
    }
}
