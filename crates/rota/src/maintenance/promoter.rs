//! Makes due `scheduled` and `retrying` jobs `available`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rota_driver::JobPromoteParams;

use super::{Report, Service};
use crate::error::Result;
use crate::runtime::engine::Engine;

/// Rows promoted per call.
pub(crate) const PROMOTE_BATCH: u32 = 5000;

/// Promotes due jobs; the driver wakes producers of the affected queues.
#[derive(Debug)]
pub struct Promoter {
    pub(crate) engine: Arc<Engine>,
}

#[async_trait]
impl Service for Promoter {
    fn name(&self) -> &'static str {
        "promoter"
    }

    fn interval(&self) -> Duration {
        self.engine.config.promote_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let mut total = 0u64;
        loop {
            let counts = self
                .engine
                .driver
                .job_promote_due(&JobPromoteParams {
                    now: self.engine.now(),
                    limit: PROMOTE_BATCH,
                })
                .await?;
            let n: u64 = counts.iter().map(|c| c.count).sum();
            total += n;
            if n < u64::from(PROMOTE_BATCH) {
                break;
            }
        }
        Ok(Report {
            affected: total,
            summary: format!("promoted {total} due jobs"),
        })
    }
}
