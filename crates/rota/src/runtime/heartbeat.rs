//! Extends the leases of this process's running jobs, flushes their output,
//! and delivers cancel requests made elsewhere (another process, the HTTP
//! API) to their handlers.

use std::sync::Arc;

use rota_core::clock;
use rota_driver::{JobCheckinParams, JobHeartbeatParams};
use tokio_util::sync::CancellationToken;

use crate::context::CancelReason;
use crate::runtime::engine::Engine;

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
    // Each result is about the run whose lease token was sent, not
    // whatever run of that job this process holds by now: a job finished
    // back to `available` may already run again here, under a new token.
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
