//! `rota server`: the HTTP API, workers and leader maintenance in one
//! process.

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rota::ValidationError;
use rota_server::{ArgsValidator, ServerOptions};
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::engine;
use crate::exit::{Exit, Fail};

/// Default `body_limit`.
const DEFAULT_BODY_LIMIT: &str = "1MiB";
/// How often the Prometheus recorder drains its histogram buffers.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// How long open HTTP connections (followers of job output stream until
/// their job ends) may take to close once the workers have stopped.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Shell job args are checked before anything is written, so a bad job is
/// a 422 naming the field (`args.command`), not a job that fails later.
fn shell_args_validator() -> ArgsValidator {
    Arc::new(|kind: &str, args: &serde_json::Value| {
        if kind != rota_shell::KIND {
            return Ok(());
        }
        rota_shell::ShellArgs::parse(args).map(|_| ()).map_err(|e| {
            let field = if e.field == "args" {
                e.field
            } else {
                format!("args.{}", e.field)
            };
            ValidationError::new(field, e.message)
        })
    })
}

/// Installs the process-wide Prometheus recorder the library's `metrics`
/// calls report to.
fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<Exit> {
    let cfg = &ctx.cfg;
    let (addrs, listen) = cfg.listen()?;
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    // Shell jobs run arbitrary commands: on by default only when nobody
    // beyond this machine can submit them.
    let node = engine::node_settings(cfg, loopback)?;
    let body_limit = cfg.size("body_limit", "body limit", DEFAULT_BODY_LIMIT)?;
    let accept_unknown_kinds = cfg
        .flag("accept_unknown_kinds", "accept_unknown_kinds setting")?
        .unwrap_or(false);

    let store = engine::open_store(&node.database).await?;
    let client = engine::build_client(store, &node)?;

    let keys = client.api_keys().await.context("reading API keys")?;
    let active_keys = keys.iter().filter(|k| k.revoked_at.is_none()).count();
    if !loopback && active_keys == 0 {
        return Err(Fail::usage(format!(
            "refusing to listen on {listen}: it is reachable beyond this machine and the store \
             has no API key, so anyone could submit jobs. Create a key first \
             (rota key create --database {} --name admin --scope admin), or listen on 127.0.0.1",
            crate::config::redact_url(&node.database)
        ))
        .into());
    }
    // Once keys exist they are required, on loopback too: a key is only
    // worth having if it is checked.
    let require_auth = !loopback || active_keys > 0;

    let metrics = install_metrics()?;
    let options = ServerOptions {
        body_limit,
        require_auth,
        accept_unknown_kinds,
        metrics: Some(Arc::new(move || metrics.render())),
        validate_args: Some(shell_args_validator()),
    };

    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .map_err(|e| Fail::new(Exit::Failure, format!("cannot listen on {listen}: {e}")))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;

    client.start().await.context("starting the workers")?;
    tracing::info!(
        address = %format!("http://{local}"),
        node = %node.engine.node_id,
        store = client.driver().name(),
        queues = %node.engine.queues.iter().map(|q| format!("{}={}", q.name, q.concurrency)).collect::<Vec<_>>().join(","),
        shell = node.shell.allowed,
        auth = require_auth,
        "rota server listening"
    );

    let app = rota_server::router(client.clone(), options);
    let stop = CancellationToken::new();
    let mut http = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );

    tokio::select! {
        sig = engine::signal() => {
            tracing::info!("{} received", sig?);
        }
        res = &mut http => {
            // The HTTP server ended on its own: stop the workers cleanly
            // before reporting it.
            engine::shutdown(&client, node.grace).await?;
            return match res {
                Ok(Ok(())) => Err(anyhow::anyhow!("the HTTP server stopped unexpectedly")),
                Ok(Err(e)) => Err(anyhow::Error::new(e).context("the HTTP server failed")),
                Err(e) => Err(anyhow::Error::new(e).context("the HTTP server task failed")),
            };
        }
    }
    engine::exit_on_second_signal();
    // Stop accepting connections, and let workers finish, at the same time.
    stop.cancel();
    engine::shutdown(&client, node.grace).await?;
    if tokio::time::timeout(HTTP_DRAIN, &mut http).await.is_err() {
        http.abort();
    }
    Ok(Exit::Success)
}
