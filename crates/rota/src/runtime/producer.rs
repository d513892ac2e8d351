//! One producer per queue: claims jobs in batches as worker slots free up,
//! wakes at once on a store wake-up, and polls as a fallback.

use std::sync::Arc;
use std::time::Duration;

use rota_core::{QueueConfig, clock};
use rota_driver::{JobClaimParams, Retracted};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runtime::completer::Finish;
use crate::runtime::engine::Engine;
use crate::runtime::executor;

/// Claims and dispatches jobs of `queue` until `stop` fires.
pub(crate) async fn run(
    engine: Arc<Engine>,
    queue: QueueConfig,
    stop: CancellationToken,
    tracker: TaskTracker,
    completer: mpsc::UnboundedSender<Finish>,
) {
    let slots = Arc::new(Semaphore::new(queue.concurrency as usize));
    let most = engine.config.claim_size(queue.concurrency) as usize;
    // The node's labels plus its own id, so `common` schedules can address
    // a job to exactly this node.
    let mut node_labels = engine.config.node_labels.clone();
    node_labels.insert(
        crate::schedules::NODE_LABEL.to_owned(),
        engine.config.node_id.clone(),
    );
    // Claim only kinds this node can run: a job of another kind waits for a
    // node that has its worker, instead of failing here.
    let kinds: Vec<String> = engine.registry.kinds().map(str::to_owned).collect();
    if kinds.is_empty() {
        // Only kinds run elsewhere (API-only node): nothing to claim.
        return;
    }
    let mut wake = engine.driver.subscribe();
    let mut error_delay = Duration::from_millis(100);
    // Set after a parked claim came back short: park again at once instead
    // of claiming first, so the handler of the job just dispatched runs
    // before any claim of ours reaches the writer (traced: it waited
    // 250-450 us behind that claim). The wake-up of the commit that fed
    // the parked claim usually ends the new park at once, and the claim
    // then runs as usual; a later commit is never missed, since its
    // wake-up waits in `wake`.
    let mut park_next = false;
    // Set while the last claim came back full: the queue has more.
    let mut deep = false;
    loop {
        if stop.is_cancelled() {
            return;
        }
        if engine.draining.get() {
            tokio::select! {
                _ = tokio::time::sleep(engine.config.poll_interval) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                p = slots.clone().acquire_owned() => drop(p),
                _ = stop.cancelled() => return,
            }
            continue;
        }
        if deep && gather(&slots, most, &stop).await {
            return;
        }
        let want = slots.available_permits().min(most);
        if !std::mem::take(&mut park_next) {
            let lease_token = rand::random::<i64>();
            let params = claim_params(
                &engine,
                &queue.name,
                &node_labels,
                &kinds,
                want,
                lease_token,
            );
            let jobs = match engine.driver.job_claim(&params).await {
                Ok(jobs) => {
                    error_delay = Duration::from_millis(100);
                    jobs
                }
                Err(e) => {
                    tracing::warn!(queue = %queue.name, error = %e, "claim failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(error_delay) => {}
                        _ = stop.cancelled() => return,
                    }
                    error_delay = (error_delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let got = jobs.len();
            deep = got == want;
            dispatch(&engine, &slots, &tracker, &completer, jobs, lease_token);
            if deep {
                continue;
            }
        }
        // Idle. Where the store can, park the next claim in it: the store
        // runs it right after committing a job of this queue, without the
        // wake-up -> producer -> store round trip.
        let lease_token = rand::random::<i64>();
        let want = slots.available_permits().min(most);
        let make = {
            let engine = engine.clone();
            let (queue, labels, kinds) = (queue.name.clone(), node_labels.clone(), kinds.clone());
            Box::new(move || claim_params(&engine, &queue, &labels, &kinds, want, lease_token))
        };
        let Some(mut parked) = engine.driver.job_claim_park(&queue.name, make) else {
            wait_for_work(&mut wake, &queue.name, engine.config.poll_interval, &stop).await;
            continue;
        };
        let jobs = tokio::select! {
            r = parked.wait() => r,
            () = wait_for_work(&mut wake, &queue.name, engine.config.poll_interval, &stop) => {
                match parked.retract() {
                    Retracted::Withdrawn => continue,
                    // The store took it just now: its jobs may be claimed.
                    Retracted::Taken(rx) => rx.await.unwrap_or_else(|_| Ok(Vec::new())),
                }
            }
        };
        match jobs {
            Ok(jobs) => {
                park_next = jobs.len() < want;
                dispatch(&engine, &slots, &tracker, &completer, jobs, lease_token);
            }
            // Nothing was claimed; the next round claims as usual.
            Err(e) => tracing::debug!(queue = %queue.name, error = %e, "parked claim failed"),
        }
    }
}

/// How long a producer with a deep queue waits for slots to gather before
/// it claims a few. Finishes free slots a batch at a time, and a claim
/// only takes up to `most`, so a release of more than that leaves a
/// remainder; claimed at once, it became a claim of a few jobs with most
/// of a full claim's fixed cost (traced on PostgreSQL: a fifth of the
/// claims carried 19-65 jobs). Waiting for the next release joins the two.
/// Bounded, because with long-running handlers the next release may be
/// seconds away.
const GATHER: Duration = Duration::from_millis(5);

/// Waits until half a claim's worth of slots is free (at once if it is),
/// or [`GATHER`]; returns whether `stop` fired.
async fn gather(slots: &Arc<Semaphore>, most: usize, stop: &CancellationToken) -> bool {
    let half = most.div_ceil(2);
    if slots.available_permits() >= half {
        return false;
    }
    let half = u32::try_from(half).unwrap_or(u32::MAX);
    tokio::select! {
        // Dropped at once: only this task takes slots, so they stay free
        // for the claim that follows.
        p = slots.acquire_many(half) => drop(p),
        _ = tokio::time::sleep(GATHER) => {}
        _ = stop.cancelled() => return true,
    }
    false
}

/// The parameters of one claim of `want` jobs, timed by the engine's clock.
fn claim_params(
    engine: &Engine,
    queue: &str,
    node_labels: &std::collections::BTreeMap<String, String>,
    kinds: &[String],
    want: usize,
    lease_token: i64,
) -> JobClaimParams {
    let now = engine.now();
    JobClaimParams {
        queue: queue.to_owned(),
        max: u32::try_from(want).unwrap_or(u32::MAX),
        node_id: engine.config.node_id.clone(),
        node_labels: node_labels.clone(),
        kinds: Some(kinds.to_vec()),
        lease_token,
        lease_expires_at: clock::add(now, engine.config.lease),
        now,
    }
}

/// Starts an executor for each claimed job, each holding one queue slot.
fn dispatch(
    engine: &Arc<Engine>,
    slots: &Arc<Semaphore>,
    tracker: &TaskTracker,
    completer: &mpsc::UnboundedSender<Finish>,
    jobs: Vec<rota_core::Job>,
    lease_token: i64,
) {
    for job in jobs {
        engine.hooks.job_from(&job);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Cannot happen (only this task takes slots), but never run
            // beyond the concurrency limit: let the lease expire instead.
            tracing::error!(job.id = job.id, "no free slot for a claimed job");
            continue;
        };
        // Boxed: the run's future is ~1.7 KB, and unboxed it was copied
        // whole at each of the wrappers spawning passes it through.
        tracker.spawn(Box::pin(executor::execute(
            engine.clone(),
            job,
            lease_token,
            permit,
            completer.clone(),
        )));
    }
}

/// Waits for a wake-up naming this queue (or all queues), the poll
/// interval, or stop.
async fn wait_for_work(
    wake: &mut broadcast::Receiver<rota_driver::Wakeup>,
    queue: &str,
    poll: Duration,
    stop: &CancellationToken,
) {
    let sleep = tokio::time::sleep(poll);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            w = wake.recv() => match w {
                Ok(w) if w.queue.as_deref().is_none_or(|q| q == queue) => return,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    (&mut sleep).await;
                    return;
                }
            },
            _ = &mut sleep => return,
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: sleeps end when the runtime is otherwise idle, so the
    // bound is exact and the tests take no real time.

    #[tokio::test(start_paused = true)]
    async fn gather_waits_no_longer_than_its_bound() {
        let slots = Arc::new(Semaphore::new(0));
        let t = tokio::time::Instant::now();
        assert!(!gather(&slots, 500, &CancellationToken::new()).await);
        assert_eq!(t.elapsed(), GATHER);
    }

    #[tokio::test(start_paused = true)]
    async fn gather_ends_once_half_a_claim_is_free_and_leaves_the_slots_free() {
        let slots = Arc::new(Semaphore::new(10));
        let held = slots.clone().acquire_many_owned(10).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(held);
        });
        let t = tokio::time::Instant::now();
        assert!(!gather(&slots, 10, &CancellationToken::new()).await);
        assert_eq!(t.elapsed(), Duration::from_millis(1));
        assert_eq!(slots.available_permits(), 10);
        release.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gather_does_not_wait_when_half_a_claim_is_free() {
        let slots = Arc::new(Semaphore::new(5));
        let t = tokio::time::Instant::now();
        assert!(!gather(&slots, 10, &CancellationToken::new()).await);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gather_reports_stop() {
        let slots = Arc::new(Semaphore::new(0));
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(gather(&slots, 500, &stop).await);
    }
}
