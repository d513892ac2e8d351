//! `rota queue list|pause|resume` over the HTTP API.

use rota::JobState;
use rota_server::dto::{QueueList, QueueView};

use super::Ctx;
use crate::cli::{Format, QueueCommand};
use crate::exit::Exit;
use crate::output;

pub(crate) async fn run(cmd: QueueCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    match cmd {
        QueueCommand::List { .. } => {
            let list: QueueList = api.get("/v1/queues", &[]).await?;
            match ctx.format {
                Format::Json => output::json(&list)?,
                Format::Table => {
                    let mut headers = vec!["QUEUE".to_owned(), "STATUS".to_owned()];
                    headers.extend(JobState::ALL.iter().map(|s| s.as_str().to_uppercase()));
                    let mut t =
                        output::table(&headers.iter().map(String::as_str).collect::<Vec<_>>());
                    for q in &list.queues {
                        let mut row = vec![q.name.clone(), status(q)];
                        row.extend(
                            JobState::ALL.iter().map(|s| {
                                q.counts.get(s.as_str()).copied().unwrap_or(0).to_string()
                            }),
                        );
                        t.add_row(row);
                    }
                    output::print_table(&t)?;
                }
            }
        }
        QueueCommand::Pause { name, .. } => change(ctx, &api, &name, "pause").await?,
        QueueCommand::Resume { name, .. } => change(ctx, &api, &name, "resume").await?,
    }
    Ok(Exit::Success)
}

fn status(q: &QueueView) -> String {
    if q.paused {
        output::paint("paused", anstyle::AnsiColor::Yellow.on_default())
    } else {
        "active".to_owned()
    }
}

async fn change(ctx: &Ctx, api: &crate::http::Api, name: &str, action: &str) -> anyhow::Result<()> {
    let path = format!("/v1/queues/{}/{action}", encode(name));
    let q: QueueView = api.action(&path).await?;
    match ctx.format {
        Format::Json => output::json(&q)?,
        Format::Table => output::line(&format!("queue {}: {}", q.name, status(&q)))?,
    }
    Ok(())
}

/// Percent-encodes a path segment (queue names allow `:` and `.`; anything
/// else a user types must not change the route).
pub(crate) fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_encoded() {
        assert_eq!(super::encode("reports:eu.1"), "reports:eu.1");
        assert_eq!(super::encode("a/b c"), "a%2Fb%20c");
    }
}
