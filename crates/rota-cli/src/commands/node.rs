//! `rota node list|drain` over the HTTP API.

use rota_server::dto::{NodeList, NodeView};

use super::Ctx;
use super::queue::encode;
use crate::cli::{Format, NodeCommand};
use crate::exit::Exit;
use crate::output;

fn status(n: &NodeView) -> String {
    if n.draining {
        output::paint("draining", anstyle::AnsiColor::Yellow.on_default())
    } else {
        "active".to_owned()
    }
}

pub(crate) async fn run(cmd: NodeCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    match cmd {
        NodeCommand::List { .. } => {
            let list: NodeList = api.get("/v1/nodes", &[]).await?;
            match ctx.format {
                Format::Json => output::json(&list)?,
                Format::Table => {
                    let mut t = output::table(&[
                        "NODE",
                        "HOST",
                        "STATUS",
                        "LABELS",
                        "QUEUES",
                        "RUNNING",
                        "HEARTBEAT",
                        "STARTED",
                    ]);
                    for n in &list.nodes {
                        t.add_row(vec![
                            n.id.clone(),
                            n.host.clone(),
                            status(n),
                            output::or_dash(Some(output::pairs(&n.labels))),
                            output::or_dash(Some(output::pairs(&n.queues))),
                            n.running.to_string(),
                            format!("{} ago", output::age(n.heartbeat_age_seconds)),
                            format!("{} ago", output::ago(n.started_at)),
                        ]);
                    }
                    output::print_table(&t)?;
                }
            }
        }
        NodeCommand::Drain { id, .. } => {
            let n: NodeView = api
                .action(&format!("/v1/nodes/{}/drain", encode(&id)))
                .await?;
            match ctx.format {
                Format::Json => output::json(&n)?,
                Format::Table => output::line(&format!(
                    "node {}: {}; it claims no new work, its running jobs finish",
                    n.id,
                    status(&n)
                ))?,
            }
        }
    }
    Ok(Exit::Success)
}
