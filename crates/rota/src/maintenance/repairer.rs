//! Fixes executions whose stored status and counts no longer match their
//! jobs (the stores keep them in step with every job write they make; this
//! catches anything else, e.g. rows edited by hand, which on SQLite nothing
//! else counts, or a crash of an older version between writes) and says
//! what it fixed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Report, Service};
use crate::error::Result;
use crate::runtime::engine::Engine;

/// Executions checked per pass.
pub(crate) const REPAIR_BATCH: u32 = 1000;

/// Repairs dangling executions.
#[derive(Debug)]
pub struct Repairer {
    pub(crate) engine: Arc<Engine>,
}

#[async_trait]
impl Service for Repairer {
    fn name(&self) -> &'static str {
        "repairer"
    }

    fn interval(&self) -> Duration {
        self.engine.config.repair_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let fixed = self.engine.driver.execution_repair(REPAIR_BATCH).await?;
        for f in &fixed {
            tracing::warn!(
                execution.id = f.id,
                was = f.was.as_str(),
                now = f.now.as_str(),
                stored = ?f.stored_counts,
                actual = ?f.actual_counts,
                "repaired execution whose status did not match its jobs"
            );
            if f.now.is_finished()
                && let Ok(Some(ex)) = self.engine.driver.execution_get(f.id).await
            {
                self.engine.hooks.execution(&ex);
            }
        }
        Ok(Report {
            affected: fixed.len() as u64,
            summary: format!("repaired {} executions", fixed.len()),
        })
    }
}
