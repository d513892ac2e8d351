//! Runs one claimed job: timeout, cancellation, panic capture, and the
//! translation of what happened into the job's next state.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use jiff::Timestamp;
use rota_core::{AttemptError, ErrorKind, Job, JobEvent, JobState, clock};
use rota_driver::JobFinishParams;
use std::panic::AssertUnwindSafe;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

use crate::context::{CancelReason, JobContext, RunState};
use crate::runtime::completer::Finish;
use crate::runtime::engine::Engine;
use crate::runtime::running::RunEntry;
use crate::worker::{JobOutcome, JobResult};

/// How one attempt ended, before it is mapped onto the state machine.
#[derive(Debug)]
pub(crate) enum Ended {
    Returned(JobResult),
    Panicked(String),
    /// The handler did not return within the grace after its token fired.
    Abandoned,
}

/// Runs `job` and hands the result to the completer. The worker slot
/// (`permit`) travels with the result and is freed only once the result is
/// committed, so a node never has more than `concurrency` jobs of a queue
/// in flight — which bounds the duplicate runs a crash can cause.
pub(crate) async fn execute(
    engine: Arc<Engine>,
    job: Job,
    lease_token: i64,
    permit: OwnedSemaphorePermit,
    completer: mpsc::UnboundedSender<Finish>,
) {
    let run = Arc::new(RunState::new(engine.config.output_cap));
    engine.running.insert(
        job.id,
        Arc::new(RunEntry {
            lease_token,
            run: run.clone(),
        }),
    );
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "rota.job",
        job.id = job.id,
        job.kind = %job.kind,
        job.queue = %job.queue,
        job.attempt = job.attempt,
        traceparent = job.trace_context.as_deref().unwrap_or(""),
    );
    metrics::counter!("rota_jobs_started_total", "queue" => job.queue.clone()).increment(1);
    let job = Arc::new(job);
    let ended = run_handler(&engine, job.clone(), lease_token, run.clone())
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    metrics::histogram!("rota_job_duration_seconds", "queue" => job.queue.clone())
        .record(elapsed.as_secs_f64());
    let now = engine.now();
    let params = finish_params(&engine, &job, lease_token, &run, ended, now);
    let _enter = span.enter();
    match params {
        Some(params) => {
            tracing::debug!(state = %params.state, ?elapsed, "attempt ended");
            if completer
                .send(Finish {
                    params,
                    queue: job.queue.clone(),
                    kind: job.kind.clone(),
                    execution_id: job.execution_id,
                    expect_stale: run.completed_in_tx(),
                    permit: Some(permit),
                })
                .is_err()
            {
                // The completer is gone (runtime torn down): the lease will
                // expire and the rescuer returns the job; nothing is lost.
                tracing::warn!("completer stopped; job left to lease expiry");
                engine.running.remove(job.id, lease_token);
            }
        }
        None => {
            tracing::warn!("lease lost while running; result discarded");
            engine.running.remove(job.id, lease_token);
        }
    }
}

async fn run_handler(
    engine: &Arc<Engine>,
    job: Arc<Job>,
    lease_token: i64,
    run: Arc<RunState>,
) -> Ended {
    let Some(worker) = engine.registry.get(&job.kind).cloned() else {
        return Ended::Returned(Err(crate::JobError::retry(format!(
            "no worker registered for kind {:?} on node {}",
            job.kind, engine.config.node_id
        ))));
    };
    let timeout = job
        .timeout
        .or(worker.timeout())
        .or(engine.config.default_timeout);
    let ctx = JobContext::new(job.clone(), lease_token, run.clone(), engine.clone());
    let args = job.args.clone();
    // The handler runs inside this task (no extra spawn per job); a panic is
    // caught here, and dropping the future is how an ignored stop request
    // is enforced.
    let handler = AssertUnwindSafe(async move { worker.work_raw(&ctx, args).await }).catch_unwind();
    tokio::pin!(handler);
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = &mut handler => return caught(r),
        _ = deadline => run.cancel(CancelReason::Timeout),
        _ = run.token.cancelled() => {}
    }
    // Told to stop: give the handler the grace period to return.
    match tokio::time::timeout(engine.config.cancel_grace, &mut handler).await {
        Ok(r) => caught(r),
        Err(_) => Ended::Abandoned,
    }
}

fn caught(r: Result<JobResult, Box<dyn std::any::Any + Send>>) -> Ended {
    match r {
        Ok(res) => Ended::Returned(res),
        Err(p) => Ended::Panicked(
            p.downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned()),
        ),
    }
}

/// Maps an ended attempt to the job's next state through the transition
/// table. `None` when the lease was lost (any write would be stale).
pub(crate) fn finish_params(
    engine: &Engine,
    job: &Job,
    lease_token: i64,
    run: &RunState,
    ended: Ended,
    now: Timestamp,
) -> Option<JobFinishParams> {
    let reason = run.reason();
    if reason == Some(CancelReason::LeaseLost) {
        return None;
    }
    let (event, kind, message, retry_after) = classify(ended, reason);
    let step = match JobState::Running.apply(event, job.attempt, job.max_attempts) {
        Ok(step) => step,
        Err(e) => {
            // Unreachable by construction (every event used here is allowed
            // from running), but never panic on it: fail the job loudly.
            tracing::error!(error = %e, "state machine refused a run's end");
            rota_core::state::Step {
                to: JobState::Failed,
                attempt: job.attempt,
            }
        }
    };
    let run_at = match step.to {
        JobState::Retrying => Some(match retry_after {
            Some(d) => clock::add(now, d),
            None => engine
                .backoff_for(job)
                .next_run_at(now, job.attempt, rand::random::<f64>()),
        }),
        JobState::Scheduled => Some(clock::add(now, retry_after.unwrap_or_default())),
        JobState::Available => Some(now),
        _ => None,
    };
    let error = kind.map(|kind| AttemptError {
        attempt: job.attempt,
        at: now,
        kind,
        message,
    });
    Some(JobFinishParams {
        id: job.id,
        execution_id: job.execution_id,
        lease_token,
        lease_expired_before: None,
        state: step.to,
        attempt: step.attempt,
        run_at,
        finished_at: step.to.is_finished().then_some(now),
        error,
        output: run.output(),
        progress: run.progress(),
        exit_code: run.exit_code(),
    })
}

type Classified = (JobEvent, Option<ErrorKind>, String, Option<Duration>);

fn classify(ended: Ended, reason: Option<CancelReason>) -> Classified {
    // A handler that finished its work wins over a late stop request.
    if let Ended::Returned(Ok(JobOutcome::Done)) = ended {
        return (JobEvent::Succeed, None, String::new(), None);
    }
    match reason {
        Some(CancelReason::Requested) => {
            return (
                JobEvent::CancelAck,
                Some(ErrorKind::Canceled),
                "canceled by request".to_owned(),
                None,
            );
        }
        Some(CancelReason::Shutdown) => {
            return (
                JobEvent::HandBack,
                Some(ErrorKind::Shutdown),
                "interrupted by shutdown; handed back".to_owned(),
                None,
            );
        }
        Some(CancelReason::Timeout) => {
            return (
                JobEvent::Error,
                Some(ErrorKind::Timeout),
                "attempt timed out".to_owned(),
                None,
            );
        }
        Some(CancelReason::LeaseLost) | None => {}
    }
    match ended {
        Ended::Returned(Ok(JobOutcome::Done)) => (JobEvent::Succeed, None, String::new(), None),
        Ended::Returned(Ok(JobOutcome::Snooze(d))) => {
            (JobEvent::Snooze, None, String::new(), Some(d))
        }
        Ended::Returned(Ok(JobOutcome::Cancel(msg))) => {
            (JobEvent::CancelAck, Some(ErrorKind::Canceled), msg, None)
        }
        Ended::Returned(Err(e)) if e.fatal => {
            (JobEvent::Fatal, Some(ErrorKind::Fatal), e.message, None)
        }
        Ended::Returned(Err(e)) => (
            JobEvent::Error,
            Some(ErrorKind::Error),
            e.message,
            e.retry_after,
        ),
        Ended::Panicked(msg) => (
            JobEvent::Error,
            Some(ErrorKind::Panic),
            format!("panic: {msg}"),
            None,
        ),
        Ended::Abandoned => (
            JobEvent::Error,
            Some(ErrorKind::Error),
            "handler aborted".to_owned(),
            None,
        ),
    }
}
