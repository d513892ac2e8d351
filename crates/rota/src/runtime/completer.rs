//! Batches the ends of runs into few store writes.
//!
//! Executors send their computed [`JobFinishParams`]; the completer takes
//! whatever has queued up (up to [`MAX_BATCH`]) and writes it with one
//! `job_finish_many` call. A transient store error is retried with backoff
//! for up to one lease period; after that the lease expires and the rescuer
//! returns the jobs, so nothing is lost.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rota_core::JobState;
use rota_driver::JobFinishParams;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::hooks::JobStatusEvent;
use crate::runtime::engine::Engine;

/// Most finishes written per call.
pub(crate) const MAX_BATCH: usize = 1000;

/// One run's end, on its way to the store.
#[derive(Debug)]
pub(crate) struct Finish {
    pub(crate) params: JobFinishParams,
    pub(crate) queue: String,
    /// Job kind (for status hooks).
    pub(crate) kind: String,
    /// The job's execution (for execution hooks).
    pub(crate) execution_id: Option<i64>,
    /// The handler already finished the job in its own transaction; a
    /// rejected write is then expected, not a stale run.
    pub(crate) expect_stale: bool,
    /// The queue slot, freed when the result is committed (the store says
    /// when; see `Driver::job_finish_many_then`).
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Runs until every sender is dropped and the channel is drained.
pub(crate) async fn run(engine: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Finish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while collect(&mut rx, &mut batch, MAX_BATCH).await {
        write(&engine, std::mem::take(&mut batch)).await;
    }
}

/// Waits for the next items, then keeps taking more (up to `max` in all)
/// for as long as each yield brings some. `false` once every sender is
/// dropped and the channel is drained.
///
/// Executors about to finish get to add theirs: a yield costs
/// microseconds, and writes (and commits) become fewer and larger. A
/// claim's jobs end over a millisecond or two; with a single yield a write
/// often took part of them and the rest needed a write of their own
/// (traced on PostgreSQL: 85 of 300 finishes carried fewer than 150 jobs,
/// each with most of a full write's fixed cost).
async fn collect<T>(rx: &mut mpsc::UnboundedReceiver<T>, batch: &mut Vec<T>, max: usize) -> bool {
    if rx.recv_many(batch, max).await == 0 {
        return false;
    }
    while batch.len() < max {
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            break;
        }
    }
    true
}

async fn write(engine: &Engine, mut batch: Vec<Finish>) {
    let params: Vec<JobFinishParams> = batch.iter().map(|f| f.params.clone()).collect();
    // The slots go free once a write commits, which a store may report
    // before the write is durable and this call returns; a failed write
    // leaves them here, held across the retries, and freed at the end.
    let slots: Arc<Mutex<Vec<OwnedSemaphorePermit>>> = Arc::new(Mutex::new(
        batch.iter_mut().filter_map(|f| f.permit.take()).collect(),
    ));
    let mut delay = Duration::from_millis(50);
    let deadline = std::time::Instant::now() + engine.config.lease;
    let results = loop {
        let free = slots.clone();
        let committed = Box::new(move || drop(take_slots(&free)));
        match engine
            .driver
            .job_finish_many_then(params.clone(), committed)
            .await
        {
            Ok(r) => break Some(r),
            Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, jobs = params.len(), "finishing jobs failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = params.len(), "finishing jobs failed; leases will expire and the rescuer returns them");
                break None;
            }
        }
    };
    let mut executions = Vec::new();
    for (i, f) in batch.iter().enumerate() {
        engine.running.remove(f.params.id, f.params.lease_token);
        let applied = results
            .as_ref()
            .and_then(|r| r.get(i))
            .is_some_and(|r| r.applied);
        if !applied {
            if results.is_some() && !f.expect_stale {
                tracing::warn!(
                    job.id = f.params.id,
                    "stale completion rejected (lease no longer held)"
                );
            }
            continue;
        }
        let name = match f.params.state {
            JobState::Succeeded => "rota_jobs_succeeded_total",
            JobState::Failed => "rota_jobs_failed_total",
            JobState::Retrying => "rota_jobs_retried_total",
            JobState::Canceled => "rota_jobs_canceled_total",
            JobState::Scheduled => "rota_jobs_snoozed_total",
            _ => "rota_jobs_handed_back_total",
        };
        metrics::counter!(name, "queue" => f.queue.clone()).increment(1);
        if engine.hooks.wants_jobs() {
            engine.hooks.job(&JobStatusEvent {
                job_id: f.params.id,
                kind: f.kind.clone(),
                queue: f.queue.clone(),
                state: f.params.state,
                attempt: f.params.attempt,
                execution_id: f.execution_id,
                progress: f.params.progress.clone(),
                error: f.params.error.clone(),
            });
        }
        if let Some(x) = f.execution_id {
            executions.push(x);
        }
    }
    if engine.hooks.wants_executions() && !executions.is_empty() {
        executions.sort_unstable();
        executions.dedup();
        crate::executions::report_finished(engine, &executions).await;
    }
}

/// The slots still held in `slots` (none once a write committed).
fn take_slots(slots: &Mutex<Vec<OwnedSemaphorePermit>>) -> Vec<OwnedSemaphorePermit> {
    // A poisoned lock still holds plain permits.
    std::mem::take(&mut *slots.lock().unwrap_or_else(PoisonError::into_inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that sends `n` items, yielding after each.
    fn trickle(tx: mpsc::UnboundedSender<u32>, n: u32) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for i in 0..n {
                let _ = tx.send(i);
                tokio::task::yield_now().await;
            }
        })
    }

    #[tokio::test]
    async fn collects_for_as_long_as_each_yield_brings_more() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sender = trickle(tx, 6);
        let mut batch = Vec::new();
        assert!(collect(&mut rx, &mut batch, 100).await);
        // One yield would have taken two of them.
        assert_eq!(batch, vec![0, 1, 2, 3, 4, 5]);
        sender.await.unwrap();
        assert!(!collect(&mut rx, &mut batch, 100).await);
    }

    #[tokio::test]
    async fn stops_at_the_first_yield_that_brings_nothing() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let later = tx.clone();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let sender = tokio::spawn(async move {
            let _ = wait.await;
            let _ = later.send(3);
        });
        let mut batch = Vec::new();
        assert!(collect(&mut rx, &mut batch, 100).await);
        assert_eq!(batch, vec![1, 2]);
        go.send(()).unwrap();
        sender.await.unwrap();
        drop(tx);
        batch.clear();
        assert!(collect(&mut rx, &mut batch, 100).await);
        assert_eq!(batch, vec![3]);
    }

    #[tokio::test]
    async fn takes_at_most_max() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..7 {
            tx.send(i).unwrap();
        }
        let sender = trickle(tx, 3);
        let mut batch = Vec::new();
        assert!(collect(&mut rx, &mut batch, 4).await);
        assert_eq!(batch, vec![0, 1, 2, 3]);
        batch.clear();
        assert!(collect(&mut rx, &mut batch, 4).await);
        assert_eq!(batch.len(), 4);
        sender.await.unwrap();
    }
}
