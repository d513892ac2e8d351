//! Node registration: every started client registers itself, heartbeats
//! its row, and learns from it whether an operator asked it to drain.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use rota_driver::{NodeDrainParams, NodeRow, NodeUpsertParams};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::Result;
use crate::runtime::engine::Engine;

/// Whether this node was asked to drain (stop claiming new work).
#[derive(Debug, Clone, Default)]
pub(crate) struct Draining(Arc<AtomicBool>);

impl Draining {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, v: bool) {
        self.0.store(v, Ordering::Release);
    }
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Registers the node, then heartbeats it until `stop`; deregisters at the
/// end.
pub(crate) async fn run(
    engine: Arc<Engine>,
    draining: Draining,
    started_at: Timestamp,
    stop: CancellationToken,
) {
    let queues: BTreeMap<String, u32> = engine
        .config
        .queues
        .iter()
        .map(|q| (q.name.clone(), q.concurrency))
        .collect();
    let host = host();
    let mut tick = tokio::time::interval(engine.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let r = engine
            .control
            .node_upsert(&NodeUpsertParams {
                id: engine.config.node_id.clone(),
                host: host.clone(),
                labels: engine.config.node_labels.clone(),
                queues: queues.clone(),
                running: engine.running.len() as i64,
                started_at,
                now: engine.now(),
            })
            .await;
        match r {
            Ok(row) => {
                let d = row.draining_at.is_some();
                if d && !draining.get() {
                    tracing::info!(node = %row.id, "drain requested: no new work will be claimed");
                }
                draining.set(d);
            }
            Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
        }
    }
    if let Err(e) = engine.driver.node_delete(&engine.config.node_id).await {
        tracing::warn!(error = %e, "deregistering node failed; it will be pruned");
    }
}

impl Client {
    /// Every registered node.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        Ok(self.driver().node_list().await?)
    }

    /// Asks a node to stop claiming new work; its running jobs finish.
    pub async fn drain_node(&self, id: &str) -> Result<NodeRow> {
        Ok(self
            .driver()
            .node_drain(&NodeDrainParams {
                id: id.to_owned(),
                now: self.config().clock.now(),
            })
            .await?)
    }
}
