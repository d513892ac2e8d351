//! Publishes job counts per queue and state as `rota_queue_depth` gauges
//! (leader only: the count is cluster-wide and costs a table scan).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Report, Service};
use crate::error::Result;
use crate::runtime::engine::Engine;

/// How often the gauges are refreshed.
pub(crate) const GAUGE_INTERVAL: Duration = Duration::from_secs(15);

/// Refreshes the queue-depth gauges.
#[derive(Debug)]
pub struct Gauges {
    pub(crate) engine: Arc<Engine>,
}

#[async_trait]
impl Service for Gauges {
    fn name(&self) -> &'static str {
        "gauges"
    }

    fn interval(&self) -> Duration {
        GAUGE_INTERVAL
    }

    async fn run_once(&self) -> Result<Report> {
        let counts = self.engine.driver.job_count().await?;
        for c in &counts {
            metrics::gauge!("rota_queue_depth", "queue" => c.queue.clone(), "state" => c.state.as_str())
                .set(c.count as f64);
        }
        Ok(Report {
            affected: 0,
            summary: format!("published {} queue-depth gauges", counts.len()),
        })
    }
}
