//! Deletes finished jobs past retention.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rota_core::clock;
use rota_driver::JobPruneParams;

use super::{Report, Service};
use crate::error::Result;
use crate::runtime::engine::Engine;

/// Rows deleted per call (keeps each write transaction short).
pub(crate) const PRUNE_BATCH: u32 = 5000;

/// Applies [`Retention`](crate::config::Retention).
#[derive(Debug)]
pub struct Pruner {
    pub(crate) engine: Arc<Engine>,
}

#[async_trait]
impl Service for Pruner {
    fn name(&self) -> &'static str {
        "pruner"
    }

    fn interval(&self) -> Duration {
        self.engine.config.prune_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let r = &self.engine.config.retention;
        let finished_before = r.max_age.map(|age| clock::sub(self.engine.now(), age));
        let mut total = 0u64;
        while r.max_age.is_some() || r.keep_last.is_some() {
            let n = self
                .engine
                .driver
                .job_prune(&JobPruneParams {
                    finished_before,
                    keep_last: r.keep_last,
                    limit: PRUNE_BATCH,
                })
                .await?;
            total += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
        }
        metrics::counter!("rota_jobs_pruned_total").increment(total);
        // Nodes silent for ten leases are gone (a clean shutdown deletes its
        // own row; this prunes the killed ones).
        let cutoff = clock::sub(self.engine.now(), self.engine.config.lease * 10);
        self.engine
            .driver
            .node_prune(&rota_driver::NodePruneParams {
                heartbeat_before: cutoff,
            })
            .await?;
        // Executions: keep the newest N finished per owner, per owner kind.
        let er = &self.engine.config.execution_retention;
        let mut rules: Vec<(Option<String>, u64)> = er
            .per_owner_kind
            .iter()
            .map(|(k, n)| (Some(k.clone()), *n))
            .collect();
        if let Some(n) = er.keep_last {
            rules.push((None, n));
        }
        for (owner_kind, keep_last) in rules {
            loop {
                let n = self
                    .engine
                    .driver
                    .execution_prune(&rota_driver::ExecutionPruneParams {
                        owner_kind: owner_kind.clone(),
                        keep_last,
                        limit: PRUNE_BATCH,
                    })
                    .await?;
                total += n;
                if n < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
        }
        Ok(Report {
            affected: total,
            summary: format!("pruned {total} finished jobs"),
        })
    }
}
