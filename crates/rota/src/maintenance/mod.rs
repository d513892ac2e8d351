//! Leader-only maintenance services.
//!
//! Every service shares one skeleton: named defaults in [`Config`](crate::Config),
//! a tick loop that acts only while this node leads, and a `run_once()` that
//! does one pass and reports what it did (tests call it directly instead of
//! waiting for ticks).

mod gauges;
mod leader;
mod promoter;
mod pruner;
mod repairer;
mod rescuer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use gauges::Gauges;
pub use leader::LeaderState;
pub(crate) use leader::run as run_elector;
pub use promoter::Promoter;
pub use pruner::Pruner;
pub use repairer::Repairer;
pub use rescuer::Rescuer;

use crate::error::Result;

/// What one pass of a service did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows the pass changed (promoted, rescued, deleted).
    pub affected: u64,
    /// Human summary for logs.
    pub summary: String,
}

/// A maintenance service run by the leader.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Short name for logs and metrics.
    fn name(&self) -> &'static str;
    /// Time between passes.
    fn interval(&self) -> Duration;
    /// One pass.
    async fn run_once(&self) -> Result<Report>;
}

/// Runs `service` every interval while `leader` says this node leads.
pub(crate) async fn run_service(
    service: Arc<dyn Service>,
    leader: LeaderState,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(service.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if !leader.is_leader() {
            continue;
        }
        match service.run_once().await {
            Ok(r) if r.affected > 0 => {
                tracing::info!(
                    service = service.name(),
                    affected = r.affected,
                    "{}",
                    r.summary
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(service = service.name(), error = %e, "maintenance pass failed")
            }
        }
    }
}
