//! `rota job ...`: submit, list, show, logs, cancel, retry, wait, delete —
//! all over the HTTP API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use rota::JobState;
use rota_server::dto::{EnqueueRequest, JobList, JobView, OutputChunk, OutputEnd, OutputView};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Ctx;
use crate::cli::{Format, JobCommand, ListArgs, PayloadArgs, SubmitArgs, WaitArgs};
use crate::config::{parse_duration, parse_kv};
use crate::exit::{Exit, Fail};
use crate::http::{Api, HttpError, Problem};
use crate::output;

/// Jobs polled at once while waiting.
const POLL_CONCURRENCY: usize = 16;
/// First and longest pause between polls while waiting.
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);
/// How long waiting rides out an unreachable server (a restart) before
/// giving up with exit 5.
const UNREACHABLE_PATIENCE: Duration = Duration::from_secs(60);
/// Page size of `list --all`.
const ALL_PAGE: u32 = 1000;
/// Widest args shown in `job list`.
const ARGS_WIDTH: usize = 48;

pub(crate) async fn run(cmd: JobCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    match cmd {
        JobCommand::Submit(a) => submit(&api, *a, ctx.format).await,
        JobCommand::List(a) => list(&api, a, ctx.format).await,
        JobCommand::Show { id, .. } => show(&api, id, ctx.format).await,
        JobCommand::Logs { id, follow, .. } => logs(&api, id, follow, ctx.format).await,
        JobCommand::Cancel { id, .. } => act(&api, id, "cancel", ctx.format).await,
        JobCommand::Retry { id, .. } => act(&api, id, "retry", ctx.format).await,
        JobCommand::Delete { id, .. } => delete(&api, id, ctx.format).await,
        JobCommand::Wait(a) => wait(&api, a, ctx.format).await,
    }
}

pub(crate) fn job_path(id: i64) -> String {
    format!("/v1/jobs/{id}")
}

/// `K=V` items of a repeatable flag as a map.
pub(crate) fn kv_map(items: &[String], flag: &str) -> Result<BTreeMap<String, String>, Fail> {
    items
        .iter()
        .map(|i| parse_kv(i).map_err(|e| Fail::usage(format!("{flag}: {e}"))))
        .collect()
}

/// Reads `-` (stdin) or a file.
fn read_input(path: &Path, what: &str) -> Result<String, Fail> {
    let mut s = String::new();
    let res = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut s).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| s = t)
    };
    res.map_err(|e| Fail::usage(format!("{what}: cannot read {}: {e}", path.display())))?;
    Ok(s)
}

/// The kind and args of the job to submit (or to schedule).
pub(crate) fn payload(a: &PayloadArgs) -> Result<(String, Value), Fail> {
    if let Some(kind) = &a.kind {
        let text = match a.args.as_deref() {
            Some(s) => match s.strip_prefix('@') {
                Some(file) => read_input(Path::new(file), "--args")?,
                None => s.to_owned(),
            },
            None => "{}".to_owned(),
        };
        let args = serde_json::from_str(&text)
            .map_err(|e| Fail::usage(format!("--args is not valid JSON: {e}")))?;
        return Ok((kind.clone(), args));
    }
    let mut args = serde_json::Map::new();
    match (&a.script, a.command.is_empty()) {
        (Some(script), true) => {
            args.insert("script".into(), json!(script));
        }
        (None, false) => {
            args.insert("command".into(), json!(a.command));
        }
        (Some(_), false) => return Err(Fail::usage("give either a COMMAND or --script, not both")),
        (None, true) => {
            return Err(Fail::usage(
                "nothing to run: give `-- COMMAND ARGS...`, --script, or --kind with --args",
            ));
        }
    }
    if let Some(path) = &a.stdin {
        args.insert("stdin".into(), json!(read_input(path, "--stdin")?));
    }
    let env = kv_map(&a.env, "--env")?;
    if !env.is_empty() {
        args.insert("env".into(), json!(env));
    }
    if let Some(cwd) = &a.cwd {
        args.insert("cwd".into(), json!(cwd));
    }
    if let Some(user) = &a.user {
        args.insert("user".into(), json!(user));
    }
    Ok((rota_shell::KIND.to_owned(), Value::Object(args)))
}

pub(crate) fn non_empty(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

async fn submit(api: &Api, a: SubmitArgs, format: Format) -> anyhow::Result<Exit> {
    let (kind, args) = payload(&a.payload)?;
    let wait_timeout = a
        .wait_timeout
        .as_deref()
        .map(|s| parse_duration(s).map_err(|e| Fail::usage(format!("--wait-timeout: {e}"))))
        .transpose()?;
    let req = EnqueueRequest {
        kind,
        args,
        queue: a.queue.clone(),
        priority: a.priority,
        run_at: a.at.clone(),
        delay: a.delay.clone().map(Value::String),
        max_attempts: a.max_attempts,
        timeout: a.timeout.clone().map(Value::String),
        unique_key: a.unique.clone(),
        labels: non_empty(kv_map(&a.labels, "--label")?),
        attributes: non_empty(kv_map(&a.attrs, "--attr")?),
    };
    let (status, job): (StatusCode, JobView) = api.post("/v1/jobs", &req).await?;
    if status == StatusCode::OK {
        output::note(&format!(
            "job {} already exists with unique key {:?} ({}); not submitted again",
            job.id,
            job.unique_key.as_deref().unwrap_or_default(),
            job.state
        ));
    }
    if !a.wait {
        match format {
            Format::Json => output::json(&job)?,
            Format::Table => output::line(&job.id.to_string())?,
        }
        return Ok(Exit::Success);
    }
    let deadline = wait_timeout.map(|t| Instant::now() + t);
    match format {
        Format::Json => {
            let waited = wait_jobs(api, &[job.id], deadline, &ProgressBar::hidden()).await?;
            let exit = outcome(&waited.jobs, waited.timed_out);
            let job = waited.jobs.into_iter().next().unwrap_or(job);
            let out: OutputView = api
                .get(&format!("{}/output", job_path(job.id)), &[])
                .await?;
            output::json(&json!({ "job": job, "output": out.output }))?;
            Ok(exit)
        }
        Format::Table => {
            output::note(&format!("job {} submitted; waiting for it", job.id));
            follow_to_end(api, job.id, deadline).await
        }
    }
}

/// How following a job's output ended.
enum Followed {
    /// The job finished (`None`: it was deleted meanwhile).
    Finished(Option<JobState>),
    /// The deadline passed.
    TimedOut,
    /// The stream broke before the end (server restart, proxy timeout).
    Broken,
}

/// Streams the job's output to stdout (SSE `GET /v1/jobs/{id}/output?follow=true`)
/// until the job finishes or `deadline` passes.
async fn follow(api: &Api, id: i64, deadline: Option<Instant>) -> anyhow::Result<Followed> {
    let query = [("follow".to_owned(), "true".to_owned())];
    let mut stream = api
        .events(&format!("{}/output", job_path(id)), &query)
        .await?;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(n) => n,
                Err(_) => return Ok(Followed::TimedOut),
            },
            None => stream.next().await,
        };
        let ev = match next {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(HttpError::Unreachable { .. }) => return Ok(Followed::Broken),
            Err(e) => return Err(e.into()),
        };
        match ev.event.as_str() {
            "output" => {
                let c: OutputChunk =
                    serde_json::from_str(&ev.data).context("decoding an output event")?;
                output::raw(&c.chunk)?;
            }
            "end" => {
                let end: OutputEnd =
                    serde_json::from_str(&ev.data).context("decoding the end event")?;
                return Ok(Followed::Finished(end.state));
            }
            "error" => {
                let problem: Problem = serde_json::from_str(&ev.data).unwrap_or_default();
                return Err(HttpError::Api {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    problem,
                }
                .into());
            }
            _ => {}
        }
    }
}

/// `submit --wait` (table): follows the output, then reports the outcome on
/// stderr and exits with it.
async fn follow_to_end(api: &Api, id: i64, deadline: Option<Instant>) -> anyhow::Result<Exit> {
    match follow(api, id, deadline).await? {
        Followed::TimedOut => {
            output::note(&format!("timed out waiting for job {id}; it goes on"));
            return Ok(Exit::Timeout);
        }
        Followed::Finished(None) => {
            return Err(
                Fail::new(Exit::Failure, format!("job {id} was deleted while waiting")).into(),
            );
        }
        Followed::Broken => {
            output::warn("lost the output stream; waiting for the job without its output");
            let waited = wait_jobs(api, &[id], deadline, &ProgressBar::hidden()).await?;
            if waited.timed_out {
                output::note(&format!("timed out waiting for job {id}; it goes on"));
                return Ok(Exit::Timeout);
            }
            output::note(&format!("see the output with: rota job logs {id}"));
        }
        Followed::Finished(Some(_)) => {}
    }
    let job: JobView = api.get(&job_path(id), &[]).await?;
    report_end(&job);
    Ok(outcome(std::slice::from_ref(&job), false))
}

/// One line on stderr about how a job ended (unless it succeeded).
fn report_end(job: &JobView) {
    match job.state {
        JobState::Failed => {
            let why = job
                .errors
                .last()
                .map(|e| format!(": {}", e.message))
                .unwrap_or_default();
            output::error(&format!(
                "job {} failed after {} attempt(s){why}",
                job.id, job.attempt
            ));
        }
        JobState::Canceled => output::note(&format!("job {} was canceled", job.id)),
        _ => {}
    }
}

/// The exit code of waited-for jobs: timeout, then failure, then cancel.
fn outcome(jobs: &[JobView], timed_out: bool) -> Exit {
    if timed_out {
        Exit::Timeout
    } else if jobs.iter().any(|j| j.state == JobState::Failed) {
        Exit::Failure
    } else if jobs.iter().any(|j| j.state == JobState::Canceled) {
        Exit::Canceled
    } else {
        Exit::Success
    }
}

/// The jobs after waiting, in the order asked.
struct Waited {
    jobs: Vec<JobView>,
    timed_out: bool,
}

/// Polls the jobs until all are finished or `deadline` passes. Rides out a
/// server that is briefly unreachable (a restart).
async fn wait_jobs(
    api: &Api,
    ids: &[i64],
    deadline: Option<Instant>,
    bar: &ProgressBar,
) -> anyhow::Result<Waited> {
    let mut pending: BTreeSet<i64> = ids.iter().copied().collect();
    let mut last: BTreeMap<i64, JobView> = BTreeMap::new();
    let mut delay = POLL_MIN;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let polled: Vec<(i64, Result<JobView, HttpError>)> =
            futures::stream::iter(pending.iter().copied())
                .map(|id| async move { (id, api.get::<JobView>(&job_path(id), &[]).await) })
                .buffer_unordered(POLL_CONCURRENCY)
                .collect()
                .await;
        let mut unreachable = None;
        for (id, res) in polled {
            match res {
                Ok(job) => {
                    if job.state.is_finished() {
                        pending.remove(&id);
                        bar.inc(1);
                    }
                    last.insert(id, job);
                }
                Err(e) if e.exit() == Exit::Unreachable => unreachable = Some(e),
                Err(e) => return Err(anyhow::Error::new(e).context(format!("job {id}"))),
            }
        }
        match unreachable {
            Some(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_PATIENCE {
                    return Err(e.into());
                }
            }
            None => unreachable_since = None,
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if pending.is_empty() || timed_out {
            let jobs = ids.iter().filter_map(|id| last.get(id).cloned()).collect();
            return Ok(Waited {
                jobs,
                timed_out: !pending.is_empty(),
            });
        }
        let mut sleep = delay;
        if let Some(d) = deadline {
            sleep = sleep.min(d.saturating_duration_since(Instant::now()));
        }
        tokio::time::sleep(sleep).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

/// A progress bar on stderr, drawn only on a terminal and for more than
/// one job.
fn progress(len: usize) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} finished",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn wait(api: &Api, a: WaitArgs, format: Format) -> anyhow::Result<Exit> {
    let timeout = a
        .timeout
        .as_deref()
        .map(|s| parse_duration(s).map_err(|e| Fail::usage(format!("--timeout: {e}"))))
        .transpose()?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let bar = progress(a.ids.len());
    let waited = wait_jobs(api, &a.ids, deadline, &bar).await;
    bar.finish_and_clear();
    let waited = waited?;
    match format {
        Format::Json => output::json(&waited.jobs)?,
        Format::Table => {
            let mut t = output::table(&["ID", "STATE", "ATTEMPT", "EXIT", "FINISHED"]);
            for j in &waited.jobs {
                t.add_row(vec![
                    j.id.to_string(),
                    output::state(j.state),
                    format!("{}/{}", j.attempt, j.max_attempts),
                    output::or_dash(j.exit_code.map(|c| c.to_string())),
                    output::or_dash(j.finished_at.map(output::time)),
                ]);
            }
            output::print_table(&t)?;
        }
    }
    if waited.timed_out {
        let left = waited
            .jobs
            .iter()
            .filter(|j| !j.state.is_finished())
            .count();
        output::note(&format!("timed out with {left} job(s) unfinished"));
    }
    Ok(outcome(&waited.jobs, waited.timed_out))
}

/// Query parameters of `job list`.
fn list_query(a: &ListArgs) -> Result<Vec<(String, String)>, Fail> {
    let mut q = Vec::new();
    if let Some(s) = &a.state {
        q.push(("state".to_owned(), s.clone()));
    }
    if let Some(s) = &a.queue {
        q.push(("queue".to_owned(), s.clone()));
    }
    if let Some(s) = &a.kind {
        q.push(("kind".to_owned(), s.clone()));
    }
    for (k, v) in kv_map(&a.attrs, "--attr")? {
        q.push((format!("attribute.{k}"), v));
    }
    let limit = a.limit.unwrap_or(if a.all { ALL_PAGE } else { 50 });
    q.push(("limit".to_owned(), limit.to_string()));
    Ok(q)
}

/// What a job runs: the shell command line, or the args as JSON.
pub(crate) fn command_line(kind: &str, args: &Value) -> String {
    if kind == rota_shell::KIND {
        match (args.get("command"), args.get("script")) {
            (Some(Value::Array(argv)), _) => argv
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| a.to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
            (_, Some(Value::String(script))) => format!("sh -c {script:?}"),
            _ => args.to_string(),
        }
    } else {
        args.to_string()
    }
}

/// [`command_line`] on one line, cut to a table column's width.
pub(crate) fn short_command(kind: &str, args: &Value) -> String {
    let s = command_line(kind, args).replace(['\n', '\r', '\t'], " ");
    if s.chars().count() > ARGS_WIDTH {
        format!("{}…", s.chars().take(ARGS_WIDTH - 1).collect::<String>())
    } else {
        s
    }
}

/// What a job runs, short.
fn summary(job: &JobView) -> String {
    short_command(&job.kind, &job.args)
}

/// The table of `job list` (also under `execution show`).
pub(crate) fn print_jobs(jobs: &[JobView]) -> anyhow::Result<()> {
    let mut t = output::table(&[
        "ID", "STATE", "KIND", "QUEUE", "ATTEMPT", "NODE", "CREATED", "ARGS",
    ]);
    for j in jobs {
        t.add_row(vec![
            j.id.to_string(),
            output::state(j.state),
            j.kind.clone(),
            j.queue.clone(),
            format!("{}/{}", j.attempt, j.max_attempts),
            output::or_dash(j.node.clone()),
            format!("{} ago", output::ago(j.created_at)),
            summary(j),
        ]);
    }
    output::print_table(&t)
}

async fn list(api: &Api, a: ListArgs, format: Format) -> anyhow::Result<Exit> {
    let base = list_query(&a)?;
    let mut after = a.after.clone();
    let mut jobs = Vec::new();
    let next = loop {
        let mut q = base.clone();
        if let Some(c) = &after {
            q.push(("after".to_owned(), c.clone()));
        }
        let page: JobList = api.get("/v1/jobs", &q).await?;
        jobs.extend(page.jobs);
        match page.next {
            Some(n) if a.all => after = Some(n),
            other => break other,
        }
    };
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

async fn show(api: &Api, id: i64, format: Format) -> anyhow::Result<Exit> {
    let job: JobView = api.get(&job_path(id), &[]).await?;
    if format == Format::Json {
        output::json(&job)?;
        return Ok(Exit::Success);
    }
    let opt_time = |t: Option<jiff::Timestamp>| output::or_dash(t.map(output::time));
    let mut rows: Vec<(&str, String)> = vec![
        ("id", job.id.to_string()),
        ("kind", job.kind.clone()),
        ("queue", job.queue.clone()),
        ("state", output::state(job.state)),
        ("attempt", format!("{}/{}", job.attempt, job.max_attempts)),
        ("priority", job.priority.to_string()),
        ("args", job.args.to_string()),
        ("created", output::time(job.created_at)),
        ("run at", output::time(job.run_at)),
        ("started", opt_time(job.started_at)),
        ("finished", opt_time(job.finished_at)),
        ("node", output::or_dash(job.node.clone())),
        (
            "exit code",
            output::or_dash(job.exit_code.map(|c| c.to_string())),
        ),
        (
            "timeout",
            output::or_dash(job.timeout.map(|t| format!("{t}s"))),
        ),
        ("unique key", output::or_dash(job.unique_key.clone())),
        ("labels", output::or_dash(Some(output::pairs(&job.labels)))),
        (
            "attributes",
            output::or_dash(Some(output::pairs(&job.attributes))),
        ),
        (
            "progress",
            output::or_dash(job.progress.as_ref().map(Value::to_string)),
        ),
    ];
    if let Some(t) = job.cancel_requested_at {
        rows.push(("cancel requested", output::time(t)));
    }
    if let Some(e) = job.execution_id {
        rows.push(("execution", e.to_string()));
    }
    if let Some(s) = job.schedule_id {
        rows.push(("schedule", s.to_string()));
    }
    let errors: Vec<String> = job
        .errors
        .iter()
        .map(|e| {
            // The kind as the API spells it (`timeout`, `rescued`, ...).
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "#{} {} {kind}: {}",
                e.attempt,
                output::time(e.at),
                e.message
            )
        })
        .collect();
    if !errors.is_empty() {
        rows.push(("errors", errors.join("\n")));
    }
    output::print_fields(rows)?;
    Ok(Exit::Success)
}

async fn logs(api: &Api, id: i64, live: bool, format: Format) -> anyhow::Result<Exit> {
    if !live || format == Format::Json {
        let out: OutputView = api.get(&format!("{}/output", job_path(id)), &[]).await?;
        match format {
            Format::Json => output::json(&out)?,
            Format::Table => {
                output::raw(&out.output)?;
                if !out.output.is_empty() && !out.output.ends_with('\n') {
                    output::raw("\n")?;
                }
            }
        }
        return Ok(Exit::Success);
    }
    match follow(api, id, None).await? {
        Followed::Broken => {
            Err(Fail::new(Exit::Unreachable, "lost the connection to the server").into())
        }
        _ => Ok(Exit::Success),
    }
}

/// `cancel` and `retry`: `POST /v1/jobs/{id}/{action}`.
async fn act(api: &Api, id: i64, action: &str, format: Format) -> anyhow::Result<Exit> {
    let job: JobView = api.action(&format!("{}/{action}", job_path(id))).await?;
    match format {
        Format::Json => output::json(&job)?,
        Format::Table => {
            let msg = match (action, job.state) {
                ("cancel", JobState::Running) => {
                    format!("job {id}: cancel requested; it is stopping")
                }
                ("cancel", s) => format!("job {id}: {}", output::state(s)),
                (_, s) => format!("job {id}: {} again", output::state(s)),
            };
            output::line(&msg)?;
        }
    }
    Ok(Exit::Success)
}

async fn delete(api: &Api, id: i64, format: Format) -> anyhow::Result<Exit> {
    let job: JobView = api.delete(&job_path(id)).await?;
    match format {
        Format::Json => output::json(&job)?,
        Format::Table => output::line(&format!("job {id} deleted"))?,
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn submit_args(argv: &[&str]) -> SubmitArgs {
        let mut full = vec!["rota", "job", "submit"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Job(JobCommand::Submit(a)) => *a,
            _ => panic!("not submit"),
        }
    }

    #[test]
    fn shell_payloads() {
        let (kind, args) =
            payload(&submit_args(&["--env", "A=1", "--", "echo", "hi"]).payload).unwrap();
        assert_eq!(kind, "shell");
        assert_eq!(args, json!({"command": ["echo", "hi"], "env": {"A": "1"}}));
        let (_, args) = payload(&submit_args(&["--script", "echo $A"]).payload).unwrap();
        assert_eq!(args, json!({"script": "echo $A"}));
        assert!(payload(&submit_args(&[]).payload).is_err());
        assert!(payload(&submit_args(&["--env", "novalue", "--", "true"]).payload).is_err());
    }

    #[test]
    fn kind_payloads() {
        let (kind, args) =
            payload(&submit_args(&["--kind", "mail", "--args", r#"{"to":"a"}"#]).payload).unwrap();
        assert_eq!((kind.as_str(), args), ("mail", json!({"to": "a"})));
        let e = payload(&submit_args(&["--kind", "mail", "--args", "{nope"]).payload).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
    }

    #[test]
    fn outcomes() {
        let job = |state| JobView {
            state,
            ..serde_json::from_value(json!({
                "id": 1, "kind": "shell", "queue": "default", "state": "succeeded",
                "attempt": 1, "max_attempts": 1, "args": {}, "priority": 0,
                "run_at": "2030-01-01T00:00:00Z", "created_at": "2030-01-01T00:00:00Z",
                "started_at": null, "finished_at": null, "errors": [], "progress": null,
                "labels": {}, "attributes": {}, "node": null, "exit_code": null,
                "unique_key": null, "timeout": null, "cancel_requested_at": null,
                "lease_expires_at": null, "trace_context": null
            }))
            .unwrap()
        };
        assert_eq!(outcome(&[job(JobState::Succeeded)], false), Exit::Success);
        assert_eq!(
            outcome(&[job(JobState::Canceled), job(JobState::Failed)], false),
            Exit::Failure
        );
        assert_eq!(outcome(&[job(JobState::Canceled)], false), Exit::Canceled);
        assert_eq!(outcome(&[job(JobState::Succeeded)], true), Exit::Timeout);
        assert_eq!(summary(&job(JobState::Failed)), "{}");
    }
}
