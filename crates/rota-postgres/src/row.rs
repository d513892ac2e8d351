//! Decoding stored rows into domain values, and encoding helpers for binds.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff_sqlx::ToSqlx;
use rota_core::{AttemptError, Job, JobState};
use rota_driver::{
    ApiKeyRow, ApiKeyScope, DeliveryRow, DeliveryStatus, DriverError, EventRow, ExecutionRow,
    ExecutionStatus, FireRow, FireStatus, LeaderTerm, NodeRow, Result, ScheduleRow, Trigger,
    WebhookRow,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::error::SqlxResultExt;

/// A timestamp as bound to / read from `timestamptz`.
pub(crate) type PgTs = jiff_sqlx::Timestamp;

/// Converts for binding.
pub(crate) fn ts(t: jiff::Timestamp) -> PgTs {
    t.to_sqlx()
}

/// Converts an optional time for binding.
pub(crate) fn ts_opt(t: Option<jiff::Timestamp>) -> Option<PgTs> {
    t.map(ts)
}

/// `u32` counters are stored as `integer`; values past `i32::MAX` saturate.
pub(crate) fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A duration in whole milliseconds (saturating), as stored in `timeout_ms`.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn counter(row: &PgRow, col: &str) -> Result<u32> {
    let v: i32 = row.try_get(col).db()?;
    u32::try_from(v).map_err(|_| DriverError::Corrupt(format!("{col} is negative: {v}")))
}

fn time(row: &PgRow, col: &str) -> Result<jiff::Timestamp> {
    Ok(row.try_get::<PgTs, _>(col).db()?.to_jiff())
}

fn time_opt(row: &PgRow, col: &str) -> Result<Option<jiff::Timestamp>> {
    Ok(row.try_get::<Option<PgTs>, _>(col).db()?.map(PgTs::to_jiff))
}

fn json_map(row: &PgRow, col: &str) -> Result<BTreeMap<String, String>> {
    let Json(map) = row.try_get::<Json<BTreeMap<String, String>>, _>(col).db()?;
    Ok(map)
}

/// Decodes a full `rota_jobs` row (selected with `*`).
pub(crate) fn job_from_row(row: &PgRow) -> Result<Job> {
    let state: String = row.try_get("state").db()?;
    let state = state_from_str(&state)?;
    let Json(errors) = row.try_get::<Json<Vec<AttemptError>>, _>("errors").db()?;
    let timeout_ms: Option<i64> = row.try_get("timeout_ms").db()?;
    let timeout = match timeout_ms {
        None => None,
        Some(ms) => Some(Duration::from_millis(u64::try_from(ms).map_err(|_| {
            DriverError::Corrupt(format!("timeout_ms is negative: {ms}"))
        })?)),
    };
    Ok(Job {
        id: row.try_get("id").db()?,
        kind: row.try_get("kind").db()?,
        queue: row.try_get("queue").db()?,
        state,
        priority: row.try_get("priority").db()?,
        args: row.try_get("args").db()?,
        attempt: counter(row, "attempt")?,
        max_attempts: counter(row, "max_attempts")?,
        run_at: time(row, "run_at")?,
        created_at: time(row, "created_at")?,
        started_at: time_opt(row, "started_at")?,
        finished_at: time_opt(row, "finished_at")?,
        errors,
        progress: row.try_get("progress").db()?,
        output: row.try_get("output").db()?,
        labels: json_map(row, "labels")?,
        attributes: json_map(row, "attributes")?,
        unique_key: row.try_get("unique_key").db()?,
        timeout,
        node: row.try_get("node").db()?,
        lease_expires_at: time_opt(row, "lease_expires_at")?,
        lease_token: row.try_get("lease_token").db()?,
        cancel_requested_at: time_opt(row, "cancel_requested_at")?,
        trace_context: row.try_get("trace_context").db()?,
        exit_code: row.try_get("exit_code").db()?,
        execution_id: row.try_get("execution_id").db()?,
        schedule_id: row.try_get("schedule_id").db()?,
        revision: i64::from(row.try_get::<i32, _>("revision").db()?),
    })
}

/// Decodes many job rows.
pub(crate) fn jobs_from_rows(rows: &[PgRow]) -> Result<Vec<Job>> {
    rota_driver::try_collect_exact(rows.iter().map(job_from_row))
}

/// Decodes a `(node_id, term, elected_at, expires_at)` row.
pub(crate) fn leader_from_row(row: &PgRow) -> Result<LeaderTerm> {
    Ok(LeaderTerm {
        node_id: row.try_get("node_id").db()?,
        term: row.try_get("term").db()?,
        elected_at: time(row, "elected_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

/// Decodes a `rota_nodes` row (selected with `*`).
pub(crate) fn node_from_row(row: &PgRow) -> Result<NodeRow> {
    let Json(queues) = row
        .try_get::<Json<BTreeMap<String, u32>>, _>("queues")
        .db()?;
    Ok(NodeRow {
        id: row.try_get("id").db()?,
        host: row.try_get("host").db()?,
        labels: json_map(row, "labels")?,
        queues,
        running: row.try_get("running").db()?,
        started_at: time(row, "started_at")?,
        heartbeat_at: time(row, "heartbeat_at")?,
        draining_at: time_opt(row, "draining_at")?,
    })
}

/// Decodes a `rota_api_keys` row (selected with `*`).
pub(crate) fn api_key_from_row(row: &PgRow) -> Result<ApiKeyRow> {
    let scope: String = row.try_get("scope").db()?;
    Ok(ApiKeyRow {
        id: row.try_get("id").db()?,
        name: row.try_get("name").db()?,
        scope: ApiKeyScope::parse(&scope)
            .ok_or_else(|| DriverError::Corrupt(format!("unknown API key scope {scope:?}")))?,
        secret_hash: row.try_get("secret_hash").db()?,
        created_at: time(row, "created_at")?,
        revoked_at: time_opt(row, "revoked_at")?,
    })
}

/// The job states in counter-column order of `rota_executions`.
pub(crate) const COUNTER_STATES: [JobState; 7] = [
    JobState::Scheduled,
    JobState::Available,
    JobState::Running,
    JobState::Retrying,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Canceled,
];

/// Reads the seven counter columns (named after the states, optionally
/// prefixed) into a map without the zero entries.
pub(crate) fn counts_from_row(row: &PgRow, prefix: &str) -> Result<BTreeMap<JobState, i64>> {
    let mut counts = BTreeMap::new();
    for state in COUNTER_STATES {
        let n: i64 = row
            .try_get(format!("{prefix}{}", state.as_str()).as_str())
            .db()?;
        if n != 0 {
            counts.insert(state, n);
        }
    }
    Ok(counts)
}

/// Decodes an execution status name.
pub(crate) fn execution_status(s: &str) -> Result<ExecutionStatus> {
    ExecutionStatus::parse(s)
        .ok_or_else(|| DriverError::Corrupt(format!("unknown execution status {s:?}")))
}

/// Decodes a `rota_executions` row (selected with `*`).
pub(crate) fn execution_from_row(row: &PgRow) -> Result<ExecutionRow> {
    let trigger: String = row.try_get("trigger").db()?;
    let status: String = row.try_get("status").db()?;
    Ok(ExecutionRow {
        id: row.try_get("id").db()?,
        owner_kind: row.try_get("owner_kind").db()?,
        owner_id: row.try_get("owner_id").db()?,
        trigger: Trigger::parse(&trigger)
            .ok_or_else(|| DriverError::Corrupt(format!("unknown trigger {trigger:?}")))?,
        attributes: json_map(row, "attributes")?,
        status: execution_status(&status)?,
        status_message: row.try_get("status_message").db()?,
        counts: counts_from_row(row, "")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        ended_at: time_opt(row, "ended_at")?,
    })
}

/// Decodes a `rota_schedules` row (selected with `*`).
pub(crate) fn schedule_from_row(row: &PgRow) -> Result<ScheduleRow> {
    Ok(ScheduleRow {
        id: row.try_get("id").db()?,
        name: row.try_get("name").db()?,
        spec: row.try_get("spec").db()?,
        state: row.try_get("state").db()?,
        paused_at: time_opt(row, "paused_at")?,
        next_fire_at: time_opt(row, "next_fire_at")?,
        last_fire_at: time_opt(row, "last_fire_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// Decodes a `rota_schedule_fires` row joined with its job outcome columns
/// (`unfinished`, `unsuccessful`, `started_at`, `finished_at`).
pub(crate) fn fire_from_row(row: &PgRow) -> Result<FireRow> {
    let status: String = row.try_get("status").db()?;
    let Json(job_ids) = row.try_get::<Json<Vec<i64>>, _>("job_ids").db()?;
    Ok(FireRow {
        schedule_id: row.try_get("schedule_id").db()?,
        fire_at: time(row, "fire_at")?,
        status: FireStatus::parse(&status)
            .ok_or_else(|| DriverError::Corrupt(format!("unknown fire status {status:?}")))?,
        reason: row.try_get("reason").db()?,
        node_id: row.try_get("node_id").db()?,
        recorded_at: time(row, "recorded_at")?,
        execution_id: row.try_get("execution_id").db()?,
        job_ids,
        unfinished: row.try_get("unfinished").db()?,
        unsuccessful: row.try_get("unsuccessful").db()?,
        started_at: time_opt(row, "started_at")?,
        finished_at: time_opt(row, "finished_at")?,
    })
}

fn json_list(row: &PgRow, col: &str) -> Result<Vec<String>> {
    let Json(list) = row.try_get::<Json<Vec<String>>, _>(col).db()?;
    Ok(list)
}

/// Decodes a `rota_webhooks` row; `prefix` selects aliased columns
/// (`w_id`, ...) of a join.
pub(crate) fn webhook_from_row(row: &PgRow, prefix: &str) -> Result<WebhookRow> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(WebhookRow {
        id: row.try_get(c("id").as_str()).db()?,
        url: row.try_get(c("url").as_str()).db()?,
        events: json_list(row, &c("events"))?,
        kinds: json_list(row, &c("kinds"))?,
        owner_kinds: json_list(row, &c("owner_kinds"))?,
        secret: row.try_get(c("secret").as_str()).db()?,
        created_at: time(row, &c("created_at"))?,
    })
}

/// Decodes a `rota_events` row; the published id is `seq`.
pub(crate) fn event_from_row(row: &PgRow) -> Result<EventRow> {
    Ok(EventRow {
        id: row.try_get("seq").db()?,
        entity: row.try_get("entity").db()?,
        entity_id: row.try_get("entity_id").db()?,
        revision: row.try_get("revision").db()?,
        status: row.try_get("status").db()?,
        kind: row.try_get("kind").db()?,
        execution_id: row.try_get("execution_id").db()?,
        at: time(row, "at")?,
    })
}

/// Decodes a `rota_deliveries` row (selected with `*` or `d.*`).
pub(crate) fn delivery_from_row(row: &PgRow) -> Result<DeliveryRow> {
    let status: String = row.try_get("status").db()?;
    Ok(DeliveryRow {
        id: row.try_get("id").db()?,
        webhook_id: row.try_get("webhook_id").db()?,
        event_id: row.try_get("event_id").db()?,
        body: row.try_get("body").db()?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| DriverError::Corrupt(format!("unknown delivery status {status:?}")))?,
        attempts: counter(row, "attempts")?,
        next_attempt_at: time_opt(row, "next_attempt_at")?,
        last_status_code: row.try_get("last_status_code").db()?,
        last_error: row.try_get("last_error").db()?,
        created_at: time(row, "created_at")?,
        delivered_at: time_opt(row, "delivered_at")?,
    })
}

/// Decodes a state name column.
pub(crate) fn state_from_str(s: &str) -> Result<JobState> {
    s.parse()
        .map_err(|e: rota_core::state::UnknownState| DriverError::Corrupt(e.to_string()))
}
