//! Conversions between stored columns and Rota's types: times as unix
//! microseconds, JSON as text, rows into [`Job`], [`NodeRow`],
//! [`ApiKeyRow`], and the rows of executions, schedules and webhooks.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::{AttemptError, Job, JobState};
use rota_driver::{
    ApiKeyRow, ApiKeyScope, DeliveryRow, DeliveryStatus, DriverError, EventRow, ExecutionRow,
    ExecutionStatus, FireRow, FireStatus, NodeRow, Result, ScheduleRow, Trigger, WebhookRow,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::map_sqlx;

/// Every column of `rota_jobs` a [`Job`] holds, in table order, as a string literal for
/// `concat!` into static SQL (`SELECT` and `RETURNING` lists).
macro_rules! job_columns {
    () => {
        "id, kind, queue, state, priority, args, attempt, max_attempts, run_at, created_at, started_at, \
         finished_at, errors, progress, output, labels, attributes, unique_key, timeout_ms, node, lease_token, \
         lease_expires_at, cancel_requested_at, trace_context, exit_code, execution_id, schedule_id, revision"
    };
}
pub(crate) use job_columns;

/// [`job_columns!`] as a constant.
pub(crate) const JOB_COLUMNS: &str = job_columns!();

/// How many columns [`job_columns!`] lists.
pub(crate) const JOB_COLUMN_COUNT: usize = 28;

/// Where [`job_columns!`] lists `finished_at`.
pub(crate) const FINISHED_AT_COLUMN: usize = 11;

/// Where [`job_columns!`] lists `execution_id`.
pub(crate) const EXECUTION_ID_COLUMN: usize = 25;

/// A timestamp as stored: unix microseconds.
pub(crate) fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// An optional timestamp as stored.
pub(crate) fn opt_micros(ts: Option<Timestamp>) -> Option<i64> {
    ts.map(micros)
}

/// A stored time back into a timestamp.
pub(crate) fn timestamp(column: &str, us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| DriverError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn opt_timestamp(column: &str, us: Option<i64>) -> Result<Option<Timestamp>> {
    us.map(|v| timestamp(column, v)).transpose()
}

/// A duration as whole microseconds, saturating.
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A duration as whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `ts + d`, saturating at the largest representable instant.
pub(crate) fn add_micros(ts: Timestamp, d: Duration) -> i64 {
    micros(ts).saturating_add(duration_micros(d))
}

/// JSON text of a value (serialization of these types cannot fail; an
/// error is still reported rather than unwrapped).
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| DriverError::Database(format!("cannot encode JSON: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| DriverError::Corrupt(format!("{column}: {e}")))
}

/// A stored state name back into a [`JobState`].
pub(crate) fn parse_state(text: &str) -> Result<JobState> {
    text.parse()
        .map_err(|e| DriverError::Corrupt(format!("state: {e}")))
}

pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(map_sqlx)
}

pub(crate) fn narrow<T: TryFrom<i64>>(column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| DriverError::Corrupt(format!("{column}: {v} is out of range")))
}

/// A NULL where the schema has NOT NULL.
fn null(column: &str) -> DriverError {
    DriverError::Corrupt(format!("{column}: unexpected NULL"))
}

/// Positional access to the columns of one result row. Implemented for
/// sqlx's rows (reads, users' own transactions) and for the writer's
/// native rusqlite rows, so each row shape is decoded by one function.
pub(crate) trait Columns {
    /// An INTEGER column; `None` for NULL.
    fn int(&self, i: usize, name: &str) -> Result<Option<i64>>;
    /// A TEXT column, borrowed for `f`; `None` for NULL.
    fn with_text<R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(Option<&str>) -> Result<R>,
    ) -> Result<R>;

    /// A NOT NULL INTEGER column.
    fn req_int(&self, i: usize, name: &str) -> Result<i64> {
        self.int(i, name)?.ok_or_else(|| null(name))
    }
    /// A TEXT column, owned.
    fn opt_text(&self, i: usize, name: &str) -> Result<Option<String>> {
        self.with_text(i, name, |t| Ok(t.map(str::to_owned)))
    }
    /// A NOT NULL TEXT column, owned.
    fn req_text(&self, i: usize, name: &str) -> Result<String> {
        self.opt_text(i, name)?.ok_or_else(|| null(name))
    }
    /// A NOT NULL JSON column, parsed from the borrowed text.
    fn json<T: serde::de::DeserializeOwned>(&self, i: usize, name: &str) -> Result<T> {
        self.with_text(i, name, |t| match t {
            Some(t) => from_json(name, t),
            None => Err(null(name)),
        })
    }
    /// A NOT NULL job state column.
    fn state(&self, i: usize, name: &str) -> Result<JobState> {
        self.with_text(i, name, |t| parse_state(t.ok_or_else(|| null(name))?))
    }
    /// A JSON column that may be NULL.
    fn opt_json<T: serde::de::DeserializeOwned>(&self, i: usize, name: &str) -> Result<Option<T>> {
        self.with_text(i, name, |t| t.map(|t| from_json(name, t)).transpose())
    }
}

impl Columns for SqliteRow {
    fn int(&self, i: usize, _name: &str) -> Result<Option<i64>> {
        self.try_get(i).map_err(map_sqlx)
    }

    fn with_text<R>(
        &self,
        i: usize,
        _name: &str,
        f: impl FnOnce(Option<&str>) -> Result<R>,
    ) -> Result<R> {
        let t: Option<&str> = self.try_get(i).map_err(map_sqlx)?;
        f(t)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, i: usize, name: &str) -> Result<Option<i64>> {
        int_value(self.get_ref(i).map_err(crate::error::map_native)?, name)
    }

    fn with_text<R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(Option<&str>) -> Result<R>,
    ) -> Result<R> {
        text_value(self.get_ref(i).map_err(crate::error::map_native)?, name, f)
    }
}

/// An INTEGER (or NULL) value as rusqlite reads it, for [`Columns::int`].
pub(crate) fn int_value(v: rusqlite::types::ValueRef<'_>, name: &str) -> Result<Option<i64>> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        other => Err(DriverError::Corrupt(format!(
            "{name}: expected an integer, found {:?}",
            other.data_type()
        ))),
    }
}

/// A TEXT (or NULL) value as rusqlite reads it, borrowed for `f`, for
/// [`Columns::with_text`].
pub(crate) fn text_value<R>(
    v: rusqlite::types::ValueRef<'_>,
    name: &str,
    f: impl FnOnce(Option<&str>) -> Result<R>,
) -> Result<R> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => f(None),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(t) => f(Some(t)),
            Err(e) => Err(DriverError::Corrupt(format!("{name}: {e}"))),
        },
        other => Err(DriverError::Corrupt(format!(
            "{name}: expected text, found {:?}",
            other.data_type()
        ))),
    }
}

/// Decodes one `rota_jobs` row selected with [`JOB_COLUMNS`] (by position,
/// in that order).
pub(crate) fn job_from_row(row: &impl Columns) -> Result<Job> {
    let int = |i, name| row.req_int(i, name);
    let opt_ts = |i, name| opt_timestamp(name, row.int(i, name)?);
    Ok(Job {
        id: int(0, "id")?,
        kind: row.req_text(1, "kind")?,
        queue: row.req_text(2, "queue")?,
        state: row.state(3, "state")?,
        priority: narrow("priority", int(4, "priority")?)?,
        args: row.json(5, "args")?,
        attempt: narrow("attempt", int(6, "attempt")?)?,
        max_attempts: narrow("max_attempts", int(7, "max_attempts")?)?,
        run_at: timestamp("run_at", int(8, "run_at")?)?,
        created_at: timestamp("created_at", int(9, "created_at")?)?,
        started_at: opt_ts(10, "started_at")?,
        finished_at: opt_ts(11, "finished_at")?,
        errors: row.json::<Vec<AttemptError>>(12, "errors")?,
        progress: row.opt_json(13, "progress")?,
        output: row.opt_text(14, "output")?,
        labels: row.json::<BTreeMap<String, String>>(15, "labels")?,
        attributes: row.json::<BTreeMap<String, String>>(16, "attributes")?,
        unique_key: row.opt_text(17, "unique_key")?,
        timeout: row
            .int(18, "timeout_ms")?
            .map(|ms| narrow::<u64>("timeout_ms", ms).map(Duration::from_millis))
            .transpose()?,
        node: row.opt_text(19, "node")?,
        lease_token: row.int(20, "lease_token")?,
        lease_expires_at: opt_ts(21, "lease_expires_at")?,
        cancel_requested_at: opt_ts(22, "cancel_requested_at")?,
        trace_context: row.opt_text(23, "trace_context")?,
        exit_code: row
            .int(24, "exit_code")?
            .map(|c| narrow("exit_code", c))
            .transpose()?,
        execution_id: row.int(25, "execution_id")?,
        schedule_id: row.int(26, "schedule_id")?,
        revision: int(27, "revision")?,
    })
}

/// Decodes many rows.
pub(crate) fn jobs_from_rows(rows: &[SqliteRow]) -> Result<Vec<Job>> {
    rota_driver::try_collect_exact(rows.iter().map(job_from_row))
}

/// Every column of `rota_nodes`, as a string literal for `concat!` into
/// static SQL (`SELECT` and `RETURNING` lists).
macro_rules! node_columns {
    () => {
        "id, host, labels, queues, running, started_at, heartbeat_at, draining_at"
    };
}
pub(crate) use node_columns;

/// Decodes one `rota_nodes` row selected with [`node_columns!`].
pub(crate) fn node_from_row(row: &SqliteRow) -> Result<NodeRow> {
    let labels: String = get(row, "labels")?;
    let queues: String = get(row, "queues")?;
    Ok(NodeRow {
        id: get(row, "id")?,
        host: get(row, "host")?,
        labels: from_json::<BTreeMap<String, String>>("labels", &labels)?,
        queues: from_json::<BTreeMap<String, u32>>("queues", &queues)?,
        running: get(row, "running")?,
        started_at: timestamp("started_at", get(row, "started_at")?)?,
        heartbeat_at: timestamp("heartbeat_at", get(row, "heartbeat_at")?)?,
        draining_at: opt_timestamp("draining_at", get(row, "draining_at")?)?,
    })
}

/// Every column of `rota_api_keys`, as a string literal for `concat!` into
/// static SQL (`SELECT` and `RETURNING` lists).
macro_rules! api_key_columns {
    () => {
        "id, name, scope, secret_hash, created_at, revoked_at"
    };
}
pub(crate) use api_key_columns;

/// Decodes one `rota_api_keys` row selected with [`api_key_columns!`].
pub(crate) fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRow> {
    let scope: String = get(row, "scope")?;
    Ok(ApiKeyRow {
        id: get(row, "id")?,
        name: get(row, "name")?,
        scope: ApiKeyScope::parse(&scope).ok_or_else(|| {
            DriverError::Corrupt(format!("scope: unknown API key scope {scope:?}"))
        })?,
        secret_hash: get(row, "secret_hash")?,
        created_at: timestamp("created_at", get(row, "created_at")?)?,
        revoked_at: opt_timestamp("revoked_at", get(row, "revoked_at")?)?,
    })
}

/// The job states in the order of `rota_executions`' counter columns.
pub(crate) const COUNTER_STATES: [JobState; 7] = [
    JobState::Scheduled,
    JobState::Available,
    JobState::Running,
    JobState::Retrying,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Canceled,
];

/// Every column of `rota_executions` an [`ExecutionRow`] holds, as a
/// string literal for `concat!` into static SQL.
macro_rules! execution_columns {
    () => {
        "id, owner_kind, owner_id, trigger, attributes, status, status_message, scheduled, available, \
         running, retrying, succeeded, failed, canceled, created_at, updated_at, ended_at"
    };
}
pub(crate) use execution_columns;

/// Per-state counts from the seven counter columns (prefixed by `prefix`,
/// e.g. `actual_`), leaving out states without jobs.
pub(crate) fn counts_from_row(row: &SqliteRow, prefix: &str) -> Result<BTreeMap<JobState, i64>> {
    let mut counts = BTreeMap::new();
    for state in COUNTER_STATES {
        let n: i64 = get(row, &format!("{prefix}{}", state.as_str()))?;
        if n != 0 {
            counts.insert(state, n);
        }
    }
    Ok(counts)
}

/// A stored execution status back into an [`ExecutionStatus`].
pub(crate) fn parse_execution_status(text: &str) -> Result<ExecutionStatus> {
    ExecutionStatus::parse(text)
        .ok_or_else(|| DriverError::Corrupt(format!("status: unknown execution status {text:?}")))
}

/// Decodes one `rota_executions` row selected with [`execution_columns!`].
pub(crate) fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRow> {
    let trigger: String = get(row, "trigger")?;
    let attributes: String = get(row, "attributes")?;
    let status: String = get(row, "status")?;
    Ok(ExecutionRow {
        id: get(row, "id")?,
        owner_kind: get(row, "owner_kind")?,
        owner_id: get(row, "owner_id")?,
        trigger: Trigger::parse(&trigger)
            .ok_or_else(|| DriverError::Corrupt(format!("trigger: unknown trigger {trigger:?}")))?,
        attributes: from_json::<BTreeMap<String, String>>("attributes", &attributes)?,
        status: parse_execution_status(&status)?,
        status_message: get(row, "status_message")?,
        counts: counts_from_row(row, "")?,
        created_at: timestamp("created_at", get(row, "created_at")?)?,
        updated_at: timestamp("updated_at", get(row, "updated_at")?)?,
        ended_at: opt_timestamp("ended_at", get(row, "ended_at")?)?,
    })
}

/// Every column of `rota_schedules`, as a string literal for `concat!`.
macro_rules! schedule_columns {
    () => {
        "id, name, spec, state, paused_at, next_fire_at, last_fire_at, created_at, updated_at"
    };
}
pub(crate) use schedule_columns;

/// Decodes one `rota_schedules` row selected with [`schedule_columns!`].
pub(crate) fn schedule_from_row(row: &SqliteRow) -> Result<ScheduleRow> {
    let spec: String = get(row, "spec")?;
    let state: String = get(row, "state")?;
    Ok(ScheduleRow {
        id: get(row, "id")?,
        name: get(row, "name")?,
        spec: from_json("spec", &spec)?,
        state: from_json("state", &state)?,
        paused_at: opt_timestamp("paused_at", get(row, "paused_at")?)?,
        next_fire_at: opt_timestamp("next_fire_at", get(row, "next_fire_at")?)?,
        last_fire_at: opt_timestamp("last_fire_at", get(row, "last_fire_at")?)?,
        created_at: timestamp("created_at", get(row, "created_at")?)?,
        updated_at: timestamp("updated_at", get(row, "updated_at")?)?,
    })
}

/// Decodes one fire-history row: the `rota_schedule_fires` columns plus
/// the aggregates `unfinished`, `unsuccessful`, `first_started_at`,
/// `last_finished_at`.
pub(crate) fn fire_from_row(row: &SqliteRow) -> Result<FireRow> {
    let status: String = get(row, "status")?;
    let job_ids: String = get(row, "job_ids")?;
    let unfinished: i64 = get(row, "unfinished")?;
    Ok(FireRow {
        schedule_id: get(row, "schedule_id")?,
        fire_at: timestamp("fire_at", get(row, "fire_at")?)?,
        status: FireStatus::parse(&status).ok_or_else(|| {
            DriverError::Corrupt(format!("status: unknown fire status {status:?}"))
        })?,
        reason: get(row, "reason")?,
        node_id: get(row, "node_id")?,
        recorded_at: timestamp("recorded_at", get(row, "recorded_at")?)?,
        execution_id: get(row, "execution_id")?,
        job_ids: from_json("job_ids", &job_ids)?,
        unfinished,
        unsuccessful: get(row, "unsuccessful")?,
        started_at: opt_timestamp("first_started_at", get(row, "first_started_at")?)?,
        finished_at: if unfinished == 0 {
            opt_timestamp("last_finished_at", get(row, "last_finished_at")?)?
        } else {
            None
        },
    })
}

/// Every column of `rota_webhooks`, as a string literal for `concat!`.
macro_rules! webhook_columns {
    () => {
        "id, url, events, kinds, owner_kinds, secret, created_at"
    };
}
pub(crate) use webhook_columns;

/// Decodes one `rota_webhooks` row; `prefix` names aliased columns
/// (`w_id`, ...) of a join.
pub(crate) fn webhook_from_row(row: &SqliteRow, prefix: &str) -> Result<WebhookRow> {
    let col = |c: &str| format!("{prefix}{c}");
    let events: String = get(row, &col("events"))?;
    let kinds: String = get(row, &col("kinds"))?;
    let owner_kinds: String = get(row, &col("owner_kinds"))?;
    Ok(WebhookRow {
        id: get(row, &col("id"))?,
        url: get(row, &col("url"))?,
        events: from_json("events", &events)?,
        kinds: from_json("kinds", &kinds)?,
        owner_kinds: from_json("owner_kinds", &owner_kinds)?,
        secret: get(row, &col("secret"))?,
        created_at: timestamp("created_at", get(row, &col("created_at"))?)?,
    })
}

/// Every column of `rota_events`, as a string literal for `concat!`.
macro_rules! event_columns {
    () => {
        "id, entity, entity_id, revision, status, kind, execution_id, at"
    };
}
pub(crate) use event_columns;

/// Decodes one `rota_events` row.
pub(crate) fn event_from_row(row: &SqliteRow) -> Result<EventRow> {
    Ok(EventRow {
        id: get(row, "id")?,
        entity: get(row, "entity")?,
        entity_id: get(row, "entity_id")?,
        revision: get(row, "revision")?,
        status: get(row, "status")?,
        kind: get(row, "kind")?,
        execution_id: get(row, "execution_id")?,
        at: timestamp("at", get(row, "at")?)?,
    })
}

/// Every column of `rota_deliveries`, as a string literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id, body, status, attempts, next_attempt_at, last_status_code, \
         last_error, created_at, delivered_at"
    };
}
pub(crate) use delivery_columns;

/// Decodes one `rota_deliveries` row.
pub(crate) fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRow> {
    let body: String = get(row, "body")?;
    let status: String = get(row, "status")?;
    let code: Option<i64> = get(row, "last_status_code")?;
    Ok(DeliveryRow {
        id: get(row, "id")?,
        webhook_id: get(row, "webhook_id")?,
        event_id: get(row, "event_id")?,
        body: from_json("body", &body)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| {
            DriverError::Corrupt(format!("status: unknown delivery status {status:?}"))
        })?,
        attempts: narrow("attempts", get(row, "attempts")?)?,
        next_attempt_at: opt_timestamp("next_attempt_at", get(row, "next_attempt_at")?)?,
        last_status_code: code.map(|c| narrow("last_status_code", c)).transpose()?,
        last_error: get(row, "last_error")?,
        created_at: timestamp("created_at", get(row, "created_at")?)?,
        delivered_at: opt_timestamp("delivered_at", get(row, "delivered_at")?)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_round_trip_in_microseconds() {
        let ts: Timestamp = "2026-11-03T10:20:30.123456Z".parse().unwrap();
        assert_eq!(timestamp("t", micros(ts)).unwrap(), ts);
        assert!(timestamp("t", i64::MAX).is_err());
        assert_eq!(duration_millis(Duration::from_secs(2)), 2000);
    }
}
