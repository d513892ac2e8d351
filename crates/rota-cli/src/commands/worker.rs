//! `rota worker`: a node that works queues, takes part in leader election
//! and runs maintenance when leader; no HTTP.

use anyhow::Context as _;

use super::Ctx;
use crate::cli::Format;
use crate::engine;
use crate::exit::Exit;
use crate::output;

pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<Exit> {
    let node = engine::node_settings(&ctx.cfg, false)?;
    let store = engine::open_store(&node.database).await?;
    let client = engine::build_client(store, &node)?;
    client.start().await.context("starting the workers")?;
    // The node id on stdout, so scripts can find this node in `rota node
    // list` and drain it later.
    match ctx.format {
        Format::Json => output::json(&serde_json::json!({ "node_id": node.engine.node_id }))?,
        Format::Table => output::line(&node.engine.node_id)?,
    }
    tracing::info!(
        node = %node.engine.node_id,
        store = client.driver().name(),
        queues = %node.engine.queues.iter().map(|q| format!("{}={}", q.name, q.concurrency)).collect::<Vec<_>>().join(","),
        labels = %output::pairs(&node.engine.node_labels),
        shell = node.shell.allowed,
        "rota worker started"
    );
    let sig = engine::signal().await?;
    tracing::info!("{sig} received");
    engine::exit_on_second_signal();
    engine::shutdown(&client, node.grace).await?;
    Ok(Exit::Success)
}
