//! `rota execution list|show|jobs|stop` over the HTTP API.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use rota::{ExecutionStatus, JobState};
use rota_server::dto::{ExecutionList, ExecutionView, JobList};
use tokio::time::Instant;

use super::job::{kv_map, print_jobs};
use super::{Ctx, fetch_pages};
use crate::cli::{ExecutionCommand, ExecutionListArgs, Format, PageArgs};
use crate::config::parse_duration;
use crate::exit::{Exit, Fail};
use crate::http::Api;
use crate::output;

/// Longest `?wait=` the server takes per stop request; longer waits are
/// several requests (a stop is idempotent).
const STOP_WAIT_CHUNK: Duration = Duration::from_secs(25);
/// Jobs listed under `execution show`.
const SHOW_JOBS: u32 = 20;

pub(crate) async fn run(cmd: ExecutionCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    match cmd {
        ExecutionCommand::List(a) => list(&api, a, ctx.format).await,
        ExecutionCommand::Show { id, .. } => show(&api, id, ctx.format).await,
        ExecutionCommand::Jobs { id, page, .. } => jobs(&api, id, &page, ctx.format).await,
        ExecutionCommand::Stop {
            id,
            wait,
            wait_timeout,
            ..
        } => stop(&api, id, wait, wait_timeout.as_deref(), ctx.format).await,
    }
}

fn path(id: i64) -> String {
    format!("/v1/executions/{id}")
}

/// An execution status, coloured.
fn status(s: ExecutionStatus) -> String {
    output::status(s.as_str())
}

/// Job counts in state order: `running=1,succeeded=3`.
fn counts(c: &BTreeMap<String, i64>) -> String {
    let parts: Vec<String> = JobState::ALL
        .iter()
        .filter_map(|s| c.get(s.as_str()).map(|n| format!("{}={n}", s.as_str())))
        .collect();
    output::or_dash(Some(parts.join(",")))
}

/// `finished/total` jobs.
fn progress(e: &ExecutionView) -> String {
    let finished: i64 = JobState::ALL
        .iter()
        .filter(|s| s.is_finished())
        .filter_map(|s| e.counts.get(s.as_str()))
        .sum();
    format!("{finished}/{}", e.total_jobs)
}

async fn list(api: &Api, a: ExecutionListArgs, format: Format) -> anyhow::Result<Exit> {
    let mut q = Vec::new();
    if let Some(k) = &a.owner_kind {
        q.push(("owner_kind".to_owned(), k.clone()));
    }
    if let Some(id) = &a.owner_id {
        q.push(("owner_id".to_owned(), id.clone()));
    }
    if let Some(s) = &a.status {
        q.push(("status".to_owned(), s.clone()));
    }
    for (k, v) in kv_map(&a.attrs, "--attr")? {
        q.push((format!("attribute.{k}"), v));
    }
    let (executions, next) = fetch_pages(api, "/v1/executions", q, &a.page, |p: ExecutionList| {
        (p.executions, p.next)
    })
    .await?;
    match format {
        Format::Json => output::json(&ExecutionList {
            executions,
            next: next.clone(),
        })?,
        Format::Table => {
            let mut t = output::table(&[
                "ID", "OWNER", "TRIGGER", "STATUS", "JOBS", "COUNTS", "CREATED", "ENDED", "MESSAGE",
            ]);
            for e in &executions {
                t.add_row(vec![
                    e.id.to_string(),
                    format!("{}/{}", e.owner_kind, e.owner_id),
                    e.trigger.as_str().to_owned(),
                    status(e.status),
                    progress(e),
                    counts(&e.counts),
                    format!("{} ago", output::ago(e.created_at)),
                    output::or_dash(e.ended_at.map(|t| format!("{} ago", output::ago(t)))),
                    output::or_dash(e.status_message.as_deref().map(one_line)),
                ]);
            }
            output::print_table(&t)?;
            if let Some(n) = &next {
                output::note(&format!("more executions: add --after {n} (or --all)"));
            }
        }
    }
    Ok(Exit::Success)
}

/// A message on one line, short.
fn one_line(s: &str) -> String {
    const WIDTH: usize = 60;
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() > WIDTH {
        format!("{}…", s.chars().take(WIDTH - 1).collect::<String>())
    } else {
        s
    }
}

fn fields(e: &ExecutionView) -> Vec<(&'static str, String)> {
    let opt_time = |t: Option<jiff::Timestamp>| output::or_dash(t.map(output::time));
    vec![
        ("id", e.id.to_string()),
        ("owner", format!("{}/{}", e.owner_kind, e.owner_id)),
        ("trigger", e.trigger.as_str().to_owned()),
        ("status", status(e.status)),
        ("message", output::or_dash(e.status_message.clone())),
        ("jobs", format!("{} finished", progress(e))),
        ("counts", counts(&e.counts)),
        (
            "attributes",
            output::or_dash(Some(output::pairs(&e.attributes))),
        ),
        ("created", output::time(e.created_at)),
        ("updated", output::time(e.updated_at)),
        ("ended", opt_time(e.ended_at)),
    ]
}

async fn show(api: &Api, id: i64, format: Format) -> anyhow::Result<Exit> {
    let e: ExecutionView = api.get(&path(id), &[]).await?;
    if format == Format::Json {
        output::json(&e)?;
        return Ok(Exit::Success);
    }
    let q = [("limit".to_owned(), SHOW_JOBS.to_string())];
    let page: JobList = api.get(&format!("{}/jobs", path(id)), &q).await?;
    output::print_fields(fields(&e))?;
    if !page.jobs.is_empty() {
        output::line("")?;
        print_jobs(&page.jobs)?;
    }
    if page.next.is_some() {
        output::note(&format!(
            "showing the newest {SHOW_JOBS} of {} jobs: rota execution jobs {id}",
            e.total_jobs
        ));
    }
    Ok(Exit::Success)
}

async fn jobs(api: &Api, id: i64, page: &PageArgs, format: Format) -> anyhow::Result<Exit> {
    let (jobs, next) = fetch_pages(
        api,
        &format!("{}/jobs", path(id)),
        Vec::new(),
        page,
        |p: JobList| (p.jobs, p.next),
    )
    .await?;
    match format {
        Format::Json => output::json(&JobList {
            jobs,
            next: next.clone(),
        })?,
        Format::Table => {
            print_jobs(&jobs)?;
            if let Some(n) = &next {
                output::note(&format!("more jobs: add --after {n} (or --all)"));
            }
        }
    }
    Ok(Exit::Success)
}

/// `POST /v1/executions/{id}/stop`; with `wait`, repeated (`?wait=` at
/// most [`STOP_WAIT_CHUNK`] each) until the execution has finished or the
/// timeout passed.
async fn stop(
    api: &Api,
    id: i64,
    wait: bool,
    timeout: Option<&str>,
    format: Format,
) -> anyhow::Result<Exit> {
    let deadline = timeout
        .map(|s| parse_duration(s).map_err(|e| Fail::usage(format!("--wait-timeout: {e}"))))
        .transpose()?
        .map(|t| Instant::now() + t);
    let stop_path = format!("{}/stop", path(id));
    let (e, timed_out) = if wait {
        loop {
            let mut chunk = STOP_WAIT_CHUNK;
            if let Some(d) = deadline {
                chunk = chunk.min(d.saturating_duration_since(Instant::now()));
            }
            // The server takes whole milliseconds at best; at least 1 ms.
            let ms = chunk.as_millis().max(1);
            let q = [("wait".to_owned(), format!("{ms}ms"))];
            let (code, e): (StatusCode, ExecutionView) = api.action_with(&stop_path, &q).await?;
            let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
            if code != StatusCode::ACCEPTED || e.status.is_finished() || out_of_time {
                break (e.clone(), !e.status.is_finished());
            }
        }
    } else {
        let (_, e): (StatusCode, ExecutionView) = api.action_with(&stop_path, &[]).await?;
        (e, false)
    };
    match format {
        Format::Json => output::json(&e)?,
        Format::Table => {
            let running = e
                .counts
                .get(JobState::Running.as_str())
                .copied()
                .unwrap_or(0);
            let msg = if e.status.is_finished() {
                format!(
                    "execution {id}: {} ({})",
                    status(e.status),
                    counts(&e.counts)
                )
            } else if running > 0 {
                format!(
                    "execution {id}: stop requested; {running} running job(s) are stopping ({})",
                    counts(&e.counts)
                )
            } else {
                format!(
                    "execution {id}: {} ({})",
                    status(e.status),
                    counts(&e.counts)
                )
            };
            output::line(&msg)?;
        }
    }
    if timed_out {
        output::note(&format!(
            "timed out waiting for execution {id} to stop; its running jobs go on stopping"
        ));
        return Ok(Exit::Timeout);
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_state_order() {
        let c: BTreeMap<String, i64> = [("succeeded", 3), ("running", 1), ("failed", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(counts(&c), "running=1,succeeded=3,failed=2");
        assert_eq!(counts(&BTreeMap::new()), "-");
    }
}
