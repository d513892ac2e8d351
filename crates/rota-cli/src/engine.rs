//! What `rota server` and `rota worker` share: node settings, opening the
//! store, a client with the shell worker, signals and shutdown.

use std::time::Duration;

use anyhow::Context as _;
use rota::{Client, Store};
use rota_shell::{ShellOptions, ShellWorker};

use crate::config::{Config, redact_url};

/// Default `shutdown_grace`.
const DEFAULT_GRACE: &str = "30s";
/// Default `shell_kill_grace`.
const DEFAULT_KILL_GRACE: &str = "5s";
/// Default `lease` (the engine's).
const DEFAULT_LEASE: &str = "30s";
/// Shortest `lease`: heartbeats run at a quarter of it at most.
const MIN_LEASE: Duration = Duration::from_secs(1);
/// Default `output_cap` (the engine's).
const DEFAULT_OUTPUT_CAP: &str = "1MiB";
/// Extra time the engine gives a stopping handler beyond the shell kind's
/// SIGTERM→SIGKILL grace, so the kind (not an abort) ends the process group.
const CANCEL_GRACE_MARGIN: Duration = Duration::from_secs(2);

/// Everything a node is built from.
#[derive(Debug)]
pub(crate) struct NodeSettings {
    /// Store URL.
    pub(crate) database: String,
    /// Engine settings (queues, labels, node id, output cap, ...).
    pub(crate) engine: rota::Config,
    /// Shell kind settings.
    pub(crate) shell: ShellOptions,
    /// Graceful-shutdown grace.
    pub(crate) grace: Duration,
}

/// Reads the node settings; `shell_by_default` is whether shell jobs run
/// when `allow_shell` is not set.
pub(crate) fn node_settings(cfg: &Config, shell_by_default: bool) -> anyhow::Result<NodeSettings> {
    let database = cfg.database()?;
    let queues = cfg.queues()?;
    let labels = cfg.labels()?;
    let node_id = cfg.opt_text("node_id", "node id")?;
    let allowed = cfg
        .flag("allow_shell", "allow_shell setting")?
        .unwrap_or(shell_by_default);
    let grace = cfg.duration("shutdown_grace", "shutdown grace", DEFAULT_GRACE)?;
    let lease = cfg.duration("lease", "lease", DEFAULT_LEASE)?;
    if lease < MIN_LEASE {
        return Err(crate::exit::Fail::usage("invalid lease: must be at least 1s").into());
    }
    let output_cap = cfg.size("output_cap", "output cap", DEFAULT_OUTPUT_CAP)?;
    let kill_grace = cfg.duration("shell_kill_grace", "shell kill grace", DEFAULT_KILL_GRACE)?;
    let shell_timeout = cfg.opt_duration("shell_timeout", "shell timeout")?;

    let mut engine = rota::Config {
        queues,
        node_labels: labels,
        output_cap,
        maintenance: true,
        ..rota::Config::default()
    };
    if let Some(id) = node_id {
        engine.node_id = id;
    }
    engine.lease = lease;
    // A quarter of the lease leaves room for one late heartbeat.
    engine.heartbeat_interval = engine.heartbeat_interval.min(lease / 4);
    engine.cancel_grace = engine.cancel_grace.max(kill_grace + CANCEL_GRACE_MARGIN);
    engine.validate().map_err(|e| {
        crate::exit::Fail::usage(format!("invalid setting {}: {}", e.field, e.message))
    })?;
    Ok(NodeSettings {
        database,
        engine,
        shell: ShellOptions {
            allowed,
            kill_grace,
            default_timeout: shell_timeout,
        },
        grace,
    })
}

/// Opens (and migrates) the store.
pub(crate) async fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the store {}", redact_url(url)))
}

/// A client on `store`. With `allow_shell` the shell worker runs here;
/// without it the node still accepts `shell` jobs (over the API) but never
/// claims them — nodes started with `--allow-shell` run them.
pub(crate) fn build_client(store: Store, node: &NodeSettings) -> anyhow::Result<Client> {
    let builder = Client::builder(store).config(node.engine.clone());
    let builder = if node.shell.allowed {
        builder.raw_worker(rota_shell::KIND, ShellWorker::new(node.shell.clone()))
    } else {
        builder.accept_kind(rota_shell::KIND)
    };
    Ok(builder.build()?)
}

/// Waits for SIGINT or SIGTERM; returns its name.
pub(crate) async fn signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// After the first signal, a second one ends the process at once (running
/// jobs are then rescued by the cluster after their lease expires).
pub(crate) fn exit_on_second_signal() {
    tokio::spawn(async {
        if let Ok(sig) = signal().await {
            tracing::warn!("{sig} again: exiting without waiting for running jobs");
            std::process::exit(130);
        }
    });
}

/// Graceful shutdown of the client, logged.
pub(crate) async fn shutdown(client: &Client, grace: Duration) -> anyhow::Result<()> {
    tracing::info!(grace = ?grace, "stopping: running jobs get the grace period to finish");
    let report = client.shutdown(grace).await.context("shutting down")?;
    if report.interrupted > 0 {
        tracing::warn!(
            interrupted = report.interrupted,
            "jobs still running at the end of the grace period were stopped and handed back"
        );
    }
    tracing::info!("stopped");
    Ok(())
}
