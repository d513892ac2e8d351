//! The running side of a client: producers and executors per queue, the
//! completer, heartbeats, and leader maintenance.

pub(crate) mod completer;
pub(crate) mod engine;
pub(crate) mod executor;
pub(crate) mod heartbeat;
pub(crate) mod producer;
pub(crate) mod running;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::CancelReason;
use crate::maintenance::{self, LeaderState, Service};
use engine::Engine;

/// What a graceful shutdown did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs still running when the grace period ended, stopped and handed
    /// back (or failed if that was their last attempt).
    pub interrupted: usize,
    /// Whether every handler had returned before the grace period ended.
    pub clean: bool,
}

/// Handles to the tasks of a started client.
#[derive(Debug)]
pub(crate) struct Runtime {
    stop_claiming: CancellationToken,
    stop_background: CancellationToken,
    executors: TaskTracker,
    producers: Vec<JoinHandle<()>>,
    completer: JoinHandle<()>,
    completer_tx: mpsc::UnboundedSender<completer::Finish>,
    background: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Spawns every task.
    pub(crate) fn start(
        engine: Arc<Engine>,
        leader: LeaderState,
        services: Vec<Arc<dyn Service>>,
    ) -> Self {
        let stop_claiming = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let executors = TaskTracker::new();
        let (completer_tx, completer_rx) = mpsc::unbounded_channel();
        let completer = tokio::spawn(completer::run(engine.clone(), completer_rx));
        let producers = engine
            .config
            .queues
            .iter()
            .map(|q| {
                tokio::spawn(producer::run(
                    engine.clone(),
                    q.clone(),
                    stop_claiming.clone(),
                    executors.clone(),
                    completer_tx.clone(),
                ))
            })
            .collect();
        let mut background = vec![tokio::spawn(heartbeat::run(
            engine.clone(),
            stop_background.clone(),
        ))];
        if !engine.config.queues.is_empty() {
            background.push(tokio::spawn(crate::nodes::run(
                engine.clone(),
                engine.draining.clone(),
                engine.started_at,
                stop_background.clone(),
            )));
        }
        if engine.config.maintenance {
            background.push(tokio::spawn(maintenance::run_elector(
                engine.control.clone(),
                engine.config.clone(),
                leader.clone(),
                stop_background.clone(),
            )));
            for s in services {
                background.push(tokio::spawn(maintenance::run_service(
                    s,
                    leader.clone(),
                    stop_background.clone(),
                )));
            }
        }
        Self {
            stop_claiming,
            stop_background,
            executors,
            producers,
            completer,
            completer_tx,
            background,
        }
    }

    /// Stops claiming, waits up to `grace` for running handlers, then stops
    /// the rest (they are handed back), writes every result and stops the
    /// background tasks. Nothing claimed is left `running`.
    pub(crate) async fn shutdown(self, engine: &Engine, grace: Duration) -> ShutdownReport {
        self.stop_claiming.cancel();
        for p in self.producers {
            let _ = p.await;
        }
        self.executors.close();
        let clean = tokio::time::timeout(grace, self.executors.wait())
            .await
            .is_ok();
        let mut interrupted = 0;
        if !clean {
            for (_, entry) in engine.running.snapshot() {
                if !entry.run.token.is_cancelled() {
                    interrupted += 1;
                }
                entry.run.cancel(CancelReason::Shutdown);
            }
            // Executors abort handlers that ignore their token after
            // `cancel_grace`, so this wait is bounded.
            self.executors.wait().await;
        }
        drop(self.completer_tx);
        let _ = self.completer.await;
        self.stop_background.cancel();
        for b in self.background {
            let _ = b.await;
        }
        tracing::info!(clean, interrupted, "client stopped");
        ShutdownReport { interrupted, clean }
    }
}
