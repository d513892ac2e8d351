//! Extends the leases of this process's running jobs, flushes their output,
//! and delivers cancel requests made elsewhere (another process, the HTTP
//! API) to their handlers.

use std::collections::HashMap;
use std::sync::Arc;

use rota_core::clock;
use rota_driver::{HeartbeatResult, JobCheckinParams, JobHeartbeatParams};
use tokio_util::sync::CancellationToken;

use crate::context::CancelReason;
use crate::runtime::engine::Engine;
use crate::runtime::running::RunEntry;

/// Beats every `heartbeat_interval` until `stop` fires.
pub(crate) async fn run(engine: Arc<Engine>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(engine.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = beat(&engine).await {
            tracing::warn!(error = %e, "heartbeat failed; will retry next tick");
        }
    }
}

/// One heartbeat over every running job.
pub(crate) async fn beat(engine: &Engine) -> crate::Result<()> {
    let held = engine.running.snapshot();
    if held.is_empty() {
        return Ok(());
    }
    let now = engine.now();
    let results = engine
        .control
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: held.iter().map(|(id, e)| (*id, e.lease_token)).collect(),
            lease_expires_at: clock::add(now, engine.config.lease),
            now,
        })
        .await?;
    deliver(&held, &results);
    for (id, entry) in held {
        if let Some(output) = entry.run.take_dirty_output() {
            engine
                .driver
                .job_checkin(&JobCheckinParams {
                    id,
                    lease_token: entry.lease_token,
                    progress: None,
                    output: Some(output),
                })
                .await?;
        }
    }
    Ok(())
}

/// Cancels the runs a heartbeat found lost or asked to stop. Each result
/// is about the run whose lease token was sent (`held`, the snapshot the
/// heartbeat was built from), not whatever run of that job this process
/// holds by now: a job finished back to `available` may already run here
/// again, under a new token, and must not be cancelled for the old run.
fn deliver(held: &HashMap<i64, Arc<RunEntry>>, results: &[HeartbeatResult]) {
    for r in results {
        let Some(entry) = held.get(&r.id) else {
            continue;
        };
        if !r.held {
            entry.run.cancel(CancelReason::LeaseLost);
        } else if r.cancel_requested {
            entry.run.cancel(CancelReason::Requested);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RunState;
    use crate::runtime::running::Running;

    fn entry(lease_token: i64) -> Arc<RunEntry> {
        Arc::new(RunEntry {
            lease_token,
            run: Arc::new(RunState::new(1024)),
        })
    }

    #[test]
    fn a_lost_lease_cancels_the_run_it_was_sent_for_not_a_newer_one() {
        let running = Running::default();
        let old = entry(1);
        running.insert(7, old.clone());
        let held = running.snapshot();
        // While the heartbeat is out, the old run's finish lands and this
        // node claims the job again.
        running.remove(7, 1);
        let new = entry(2);
        running.insert(7, new.clone());
        deliver(
            &held,
            &[HeartbeatResult {
                id: 7,
                held: false,
                cancel_requested: false,
            }],
        );
        assert_eq!(old.run.reason(), Some(CancelReason::LeaseLost));
        assert_eq!(new.run.reason(), None);
    }

    #[test]
    fn results_cancel_as_they_say() {
        let (lost, asked, fine) = (entry(1), entry(2), entry(3));
        let held = HashMap::from([(1, lost.clone()), (2, asked.clone()), (3, fine.clone())]);
        let result = |id, held, cancel_requested| HeartbeatResult {
            id,
            held,
            cancel_requested,
        };
        // A lost lease wins over a cancel request; unknown ids are ignored.
        deliver(
            &held,
            &[
                result(1, false, true),
                result(2, true, true),
                result(3, true, false),
                result(4, false, false),
            ],
        );
        assert_eq!(lost.run.reason(), Some(CancelReason::LeaseLost));
        assert_eq!(asked.run.reason(), Some(CancelReason::Requested));
        assert_eq!(fine.run.reason(), None);
    }
}
