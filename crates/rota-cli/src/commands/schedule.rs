//! `rota schedule create|list|show|pause|resume|trigger|delete|runs` over
//! the HTTP API.

use rota::{CatchUp, FireStatus, OnOverlap, OverlapPolicy};
use rota_server::dto::{
    BackoffInput, OwnerIdInput, RunList, RunOutcome, RunView, ScheduleJob, ScheduleList,
    ScheduleOwner, ScheduleRequest, ScheduleView,
};
use serde_json::{Value, json};

use super::job::{command_line, kv_map, non_empty, payload, short_command};
use super::{Ctx, fetch_pages};
use crate::cli::{Format, OnOverlapArg, PageArgs, Policy, ScheduleCommand, ScheduleCreateArgs};
use crate::exit::{Exit, Fail};
use crate::http::Api;
use crate::output;

/// Job ids shown per run in `schedule runs` before `…`.
const RUN_JOBS_SHOWN: usize = 3;

pub(crate) async fn run(cmd: ScheduleCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    let f = ctx.format;
    match cmd {
        ScheduleCommand::Create(a) => create(&api, *a, f).await,
        ScheduleCommand::List { .. } => list(&api, f).await,
        ScheduleCommand::Show { schedule, .. } => show(&api, &schedule, f).await,
        ScheduleCommand::Pause { schedule, .. } => change(&api, &schedule, "pause", f).await,
        ScheduleCommand::Resume { schedule, .. } => change(&api, &schedule, "resume", f).await,
        ScheduleCommand::Trigger { schedule, .. } => trigger(&api, &schedule, f).await,
        ScheduleCommand::Delete { schedule, .. } => delete(&api, &schedule, f).await,
        ScheduleCommand::Runs { schedule, page, .. } => runs(&api, &schedule, &page, f).await,
    }
}

fn path(id: i64) -> String {
    format!("/v1/schedules/{id}")
}

/// The id of a schedule given by id or, when not all digits, by name.
async fn resolve(api: &Api, schedule: &str) -> anyhow::Result<i64> {
    if !schedule.is_empty() && schedule.bytes().all(|b| b.is_ascii_digit()) {
        return schedule
            .parse()
            .map_err(|_| Fail::usage(format!("schedule id {schedule} is out of range")).into());
    }
    let list: ScheduleList = api.get("/v1/schedules", &[]).await?;
    list.schedules
        .iter()
        .find(|s| s.name == schedule)
        .map(|s| s.id)
        .ok_or_else(|| Fail::new(Exit::Failure, format!("no schedule named {schedule:?}")).into())
}

/// `none`, `latest`, `all:N` as the API wants it.
fn catch_up_value(s: &str) -> Result<Value, Fail> {
    let bad = || {
        Fail::usage(format!(
            "--catch-up: expected none, latest or all:N (e.g. all:10), got {s:?}"
        ))
    };
    match s.trim() {
        "none" => Ok(json!("none")),
        "latest" => Ok(json!("latest")),
        other => {
            let n = other
                .strip_prefix("all:")
                .and_then(|n| n.trim().parse::<u32>().ok())
                .ok_or_else(bad)?;
            Ok(json!({"all": {"limit": n}}))
        }
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Interval => "interval",
        Policy::Alone => "alone",
        Policy::Common => "common",
    }
}

/// The request body of `schedule create`.
fn request(a: &ScheduleCreateArgs) -> Result<ScheduleRequest, Fail> {
    // Checked here: clap skips `conflicts_with` on members of a group
    // (clap-rs/clap#5041).
    if a.timezone.is_some() && a.cron.is_none() {
        return Err(Fail::usage(
            "--tz applies only to --cron rules (an interval is independent of time zones)",
        ));
    }
    let (kind, args) = payload(&a.payload)?;
    let backoff = (a.backoff
        || a.backoff_initial.is_some()
        || a.backoff_max.is_some()
        || a.backoff_reset.is_some())
    .then(|| BackoffInput {
        initial_interval: a.backoff_initial.clone().map(Value::String),
        max_interval: a.backoff_max.clone().map(Value::String),
        reset_interval: a.backoff_reset.as_deref().map(|r| match r.trim() {
            "never" => Value::Null,
            r => Value::String(r.to_owned()),
        }),
        ..BackoffInput::default()
    });
    Ok(ScheduleRequest {
        name: a.name.clone(),
        cron: a.cron.clone(),
        every: a.every.clone().map(Value::String),
        timezone: a.timezone.clone(),
        policy: a.policy.map(|p| policy_name(p).to_owned()),
        on_overlap: a.on_overlap.map(|o| {
            match o {
                OnOverlapArg::Skip => "skip",
                OnOverlapArg::Queue => "queue",
            }
            .to_owned()
        }),
        catch_up: a.catch_up.as_deref().map(catch_up_value).transpose()?,
        job: ScheduleJob {
            kind,
            args,
            queue: a.queue.clone(),
            priority: a.priority,
            max_attempts: a.max_attempts,
            timeout: a.timeout.clone().map(Value::String),
            labels: non_empty(kv_map(&a.labels, "--label")?),
            attributes: non_empty(kv_map(&a.attrs, "--attr")?),
        },
        execution: match (&a.owner_kind, &a.owner_id) {
            (Some(kind), Some(id)) => Some(ScheduleOwner {
                owner_kind: kind.clone(),
                owner_id: OwnerIdInput::Text(id.clone()),
            }),
            _ => None,
        },
        backoff,
    })
}

async fn create(api: &Api, a: ScheduleCreateArgs, format: Format) -> anyhow::Result<Exit> {
    let req = request(&a)?;
    let (_, s): (_, ScheduleView) = api.post("/v1/schedules", &req).await?;
    match format {
        Format::Json => output::json(&s)?,
        Format::Table => {
            output::line(&s.id.to_string())?;
            output::note(&format!(
                "schedule {} ({}): {}; next fire {}",
                s.id,
                s.name,
                rule(&s),
                next_fire(&s)
            ));
        }
    }
    Ok(Exit::Success)
}

/// An interval in seconds, short: `30s`, `5m`, `2h`, `1.5s`.
fn every_text(secs: f64) -> String {
    if secs.fract() != 0.0 {
        return format!("{secs}s");
    }
    let s = secs as u64;
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// `cron "*/5 * * * * *" Europe/Berlin` or `every 30s`.
fn rule(s: &ScheduleView) -> String {
    match (&s.cron, s.every) {
        (Some(expr), _) => format!("cron {expr:?} {}", s.timezone.as_deref().unwrap_or("UTC")),
        (None, Some(secs)) => format!("every {}", every_text(secs)),
        (None, None) => "-".to_owned(),
    }
}

fn policy(s: &ScheduleView) -> String {
    let name = serde_json::to_value(s.policy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match (s.policy, s.on_overlap) {
        (OverlapPolicy::Alone, OnOverlap::Queue) => format!("{name} (queue overlaps)"),
        (OverlapPolicy::Alone, OnOverlap::Skip) => format!("{name} (skip overlaps)"),
        _ => name,
    }
}

fn catch_up_text(c: CatchUp) -> String {
    match c {
        CatchUp::None => "none".to_owned(),
        CatchUp::Latest => "latest".to_owned(),
        CatchUp::All { limit } => format!("all:{limit}"),
    }
}

fn state(s: &ScheduleView) -> String {
    output::status(if s.paused { "paused" } else { "active" })
}

/// The next fire, relative (and `-` when it never fires again).
fn next_fire(s: &ScheduleView) -> String {
    match s.next_fire_at {
        None => "never".to_owned(),
        Some(_) if s.paused => "paused".to_owned(),
        Some(t) => output::relative(t),
    }
}

async fn list(api: &Api, format: Format) -> anyhow::Result<Exit> {
    let list: ScheduleList = api.get("/v1/schedules", &[]).await?;
    match format {
        Format::Json => output::json(&list)?,
        Format::Table => {
            let mut t = output::table(&[
                "ID", "NAME", "RULE", "POLICY", "STATUS", "NEXT", "LAST", "JOB",
            ]);
            for s in &list.schedules {
                t.add_row(vec![
                    s.id.to_string(),
                    s.name.clone(),
                    rule(s),
                    policy(s),
                    state(s),
                    next_fire(s),
                    output::or_dash(s.last_fire_at.map(output::relative)),
                    short_command(&s.job.kind, &s.job.args),
                ]);
            }
            output::print_table(&t)?;
        }
    }
    Ok(Exit::Success)
}

fn fields(s: &ScheduleView) -> Vec<(&'static str, String)> {
    let opt_time = |t: Option<jiff::Timestamp>| {
        output::or_dash(t.map(|t| format!("{} ({})", output::time(t), output::relative(t))))
    };
    let j = &s.job;
    let mut rows = vec![
        ("id", s.id.to_string()),
        ("name", s.name.clone()),
        ("rule", rule(s)),
        ("policy", policy(s)),
        ("catch up", catch_up_text(s.catch_up)),
        ("status", state(s)),
    ];
    if let Some(t) = s.paused_at {
        rows.push(("paused", output::time(t)));
    }
    rows.extend([
        (
            "next fire",
            match s.next_fire_at {
                None => "never".to_owned(),
                Some(t) if s.paused => format!("{} (paused)", output::time(t)),
                t => opt_time(t),
            },
        ),
        ("last fire", opt_time(s.last_fire_at)),
        (
            "average run",
            output::or_dash(s.average_run_seconds.map(output::duration)),
        ),
        ("kind", j.kind.clone()),
        ("runs", command_line(&j.kind, &j.args)),
        ("queue", j.queue.clone().unwrap_or_else(|| "default".into())),
        ("priority", j.priority.unwrap_or(0).to_string()),
        (
            "max attempts",
            output::or_dash(j.max_attempts.map(|n| n.to_string())),
        ),
        (
            "timeout",
            output::or_dash(j.timeout.map(|t| format!("{t}s"))),
        ),
        ("labels", output::or_dash(Some(output::pairs(&j.labels)))),
        (
            "attributes",
            output::or_dash(Some(output::pairs(&j.attributes))),
        ),
        (
            "execution",
            output::or_dash(
                s.execution
                    .as_ref()
                    .map(|o| format!("{}/{}", o.owner_kind, o.owner_id)),
            ),
        ),
        (
            "backoff",
            output::or_dash(s.backoff.as_ref().map(|b| {
                format!(
                    "{}s ×{} up to {}s, jitter {}, reset {}",
                    b.initial_interval,
                    b.multiplier,
                    b.max_interval,
                    b.jitter,
                    b.reset_interval
                        .map(|r| format!("after {r}s"))
                        .unwrap_or_else(|| "never".into())
                )
            })),
        ),
        ("created", output::time(s.created_at)),
        ("updated", output::time(s.updated_at)),
    ]);
    rows
}

async fn show(api: &Api, schedule: &str, format: Format) -> anyhow::Result<Exit> {
    let id = resolve(api, schedule).await?;
    let s: ScheduleView = api.get(&path(id), &[]).await?;
    match format {
        Format::Json => output::json(&s)?,
        Format::Table => output::print_fields(fields(&s))?,
    }
    Ok(Exit::Success)
}

/// `pause` and `resume`.
async fn change(api: &Api, schedule: &str, action: &str, format: Format) -> anyhow::Result<Exit> {
    let id = resolve(api, schedule).await?;
    let s: ScheduleView = api.action(&format!("{}/{action}", path(id))).await?;
    match format {
        Format::Json => output::json(&s)?,
        Format::Table => {
            let msg = if s.paused {
                format!("schedule {} ({}): {}", s.id, s.name, state(&s))
            } else {
                format!(
                    "schedule {} ({}): {}; next fire {}",
                    s.id,
                    s.name,
                    state(&s),
                    next_fire(&s)
                )
            };
            output::line(&msg)?;
        }
    }
    Ok(Exit::Success)
}

/// A fire time: to the second, or to the millisecond for a manual run
/// (fired at the moment it was asked for).
fn fire_time(t: jiff::Timestamp) -> String {
    if t.subsec_nanosecond() == 0 {
        output::time(t)
    } else {
        t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

fn outcome(r: &RunView) -> String {
    output::status(match r.outcome {
        RunOutcome::Skipped => "skipped",
        RunOutcome::Running => "running",
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::Failed => "failed",
    })
}

/// The jobs of a run: `12`, `12,13,14,…(+5)`, or the execution.
fn run_jobs(r: &RunView) -> String {
    let mut s = r
        .job_ids
        .iter()
        .take(RUN_JOBS_SHOWN)
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if r.job_ids.len() > RUN_JOBS_SHOWN {
        s.push_str(&format!(",…(+{})", r.job_ids.len() - RUN_JOBS_SHOWN));
    }
    if let Some(e) = r.execution_id {
        s = if s.is_empty() {
            format!("execution {e}")
        } else {
            format!("{s} (execution {e})")
        };
    }
    output::or_dash(Some(s))
}

async fn trigger(api: &Api, schedule: &str, format: Format) -> anyhow::Result<Exit> {
    let id = resolve(api, schedule).await?;
    let r: RunView = api.action(&format!("{}/trigger", path(id))).await?;
    match format {
        Format::Json => output::json(&r)?,
        Format::Table => {
            if r.status == FireStatus::Skipped {
                output::line(&format!(
                    "schedule {id}: run at {} {}: {}",
                    fire_time(r.fire_at),
                    outcome(&r),
                    r.reason.as_deref().unwrap_or("no reason given")
                ))?;
            } else {
                output::line(&format!(
                    "schedule {id}: run at {} fired; jobs {}",
                    fire_time(r.fire_at),
                    run_jobs(&r)
                ))?;
            }
        }
    }
    Ok(Exit::Success)
}

async fn delete(api: &Api, schedule: &str, format: Format) -> anyhow::Result<Exit> {
    let id = resolve(api, schedule).await?;
    let s: ScheduleView = api.delete(&path(id)).await?;
    match format {
        Format::Json => output::json(&s)?,
        Format::Table => output::line(&format!("schedule {} ({}) deleted", s.id, s.name))?,
    }
    Ok(Exit::Success)
}

async fn runs(api: &Api, schedule: &str, page: &PageArgs, format: Format) -> anyhow::Result<Exit> {
    let id = resolve(api, schedule).await?;
    let (runs, next) = fetch_pages(
        api,
        &format!("{}/runs", path(id)),
        Vec::new(),
        page,
        |p: RunList| (p.runs, p.next),
    )
    .await?;
    match format {
        Format::Json => output::json(&RunList {
            runs,
            next: next.clone(),
        })?,
        Format::Table => {
            let mut t = output::table(&["FIRE", "OUTCOME", "DURATION", "JOBS", "NODE", "NOTE"]);
            for r in &runs {
                t.add_row(vec![
                    fire_time(r.fire_at),
                    outcome(r),
                    output::or_dash(r.duration_seconds.map(output::duration)),
                    run_jobs(r),
                    r.node.clone(),
                    output::or_dash(r.reason.clone()),
                ]);
            }
            output::print_table(&t)?;
            if let Some(n) = &next {
                output::note(&format!("more runs: add --after {n} (or --all)"));
            }
        }
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn create_args(argv: &[&str]) -> Result<ScheduleCreateArgs, clap::Error> {
        let mut full = vec!["rota", "schedule", "create"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Schedule(ScheduleCommand::Create(a)) => Ok(*a),
            _ => panic!("not schedule create"),
        }
    }

    #[test]
    fn create_bodies() {
        let a = create_args(&[
            "tick",
            "--cron",
            "*/5 * * * * *",
            "--tz",
            "Europe/Berlin",
            "--policy",
            "alone",
            "--on-overlap",
            "queue",
            "--catch-up",
            "all:3",
            "--label",
            "region=eu",
            "--timeout",
            "10s",
            "--",
            "echo",
            "-n",
            "tick",
        ])
        .unwrap();
        let body = serde_json::to_value(request(&a).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "name": "tick",
                "cron": "*/5 * * * * *",
                "timezone": "Europe/Berlin",
                "policy": "alone",
                "on_overlap": "queue",
                "catch_up": {"all": {"limit": 3}},
                "job": {
                    "kind": "shell",
                    "args": {"command": ["echo", "-n", "tick"]},
                    "timeout": "10s",
                    "labels": {"region": "eu"}
                }
            })
        );
        let a = create_args(&[
            "r",
            "--every",
            "30s",
            "--kind",
            "report",
            "--args",
            "{\"d\":1}",
            "--owner-kind",
            "rep",
            "--owner-id",
            "42",
            "--backoff-reset",
            "never",
        ])
        .unwrap();
        let body = serde_json::to_value(request(&a).unwrap()).unwrap();
        assert_eq!(body["every"], "30s");
        assert_eq!(body["job"], json!({"kind": "report", "args": {"d": 1}}));
        assert_eq!(
            body["execution"],
            json!({"owner_kind": "rep", "owner_id": "42"})
        );
        assert_eq!(body["backoff"], json!({"reset_interval": null}));
    }

    #[test]
    fn create_usage_errors() {
        // A rule is required, and only one; --tz only with --cron.
        assert!(create_args(&["x", "--", "true"]).is_err());
        assert!(create_args(&["x", "--cron", "* * * * *", "--every", "1s", "--", "true"]).is_err());
        let a = create_args(&["x", "--every", "1s", "--tz", "UTC", "--", "true"]).unwrap();
        assert_eq!(request(&a).unwrap_err().exit, Exit::Usage);
        assert!(
            create_args(&["x", "--every", "1s", "--policy", "sometimes", "--", "true"]).is_err()
        );
        let a = create_args(&["x", "--every", "1s", "--catch-up", "all", "--", "true"]).unwrap();
        assert_eq!(request(&a).unwrap_err().exit, Exit::Usage);
        let a = create_args(&["x", "--every", "1s"]).unwrap();
        assert_eq!(request(&a).unwrap_err().exit, Exit::Usage);
    }

    #[test]
    fn texts() {
        assert_eq!(every_text(30.0), "30s");
        assert_eq!(every_text(300.0), "5m");
        assert_eq!(every_text(7200.0), "2h");
        assert_eq!(every_text(90.0), "90s");
        assert_eq!(every_text(1.5), "1.5s");
        assert_eq!(catch_up_text(CatchUp::All { limit: 4 }), "all:4");
        let t: jiff::Timestamp = "2030-01-02T03:04:05.25Z".parse().unwrap();
        assert_eq!(fire_time(t), "2030-01-02T03:04:05.250Z");
        let t: jiff::Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(fire_time(t), "2030-01-02T03:04:05Z");
    }
}
