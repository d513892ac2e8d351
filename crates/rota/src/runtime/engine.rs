//! State shared by every runtime task of one client.

use std::sync::Arc;

use rota_core::{BackoffPolicy, Job};
use rota_driver::Driver;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::nodes::Draining;
use crate::runtime::running::Running;
use crate::worker::Registry;

/// The shared core of a client: store, settings, handlers, running jobs.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) store: crate::store::Store,
    pub(crate) driver: Arc<dyn Driver>,
    /// Small separate pool for heartbeats, leader renewals and node rows.
    pub(crate) control: Arc<dyn Driver>,
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) running: Running,
    pub(crate) hooks: Hooks,
    pub(crate) draining: Draining,
    pub(crate) started_at: jiff::Timestamp,
}

impl Engine {
    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.config.clock.now()
    }

    /// The backoff for a job: its worker's, else the client default.
    pub(crate) fn backoff_for(&self, job: &Job) -> BackoffPolicy {
        self.registry
            .get(&job.kind)
            .and_then(|w| w.backoff())
            .unwrap_or_else(|| self.config.backoff.clone())
    }
}
