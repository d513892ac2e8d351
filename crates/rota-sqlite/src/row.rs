//! Conversions between stored columns and Rota's types: times as unix
//! microseconds, JSON as text, rows into [`Job`], [`NodeRow`] and
//! [`ApiKeyRow`].

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::{AttemptError, Job, JobState};
use rota_driver::{ApiKeyRow, ApiKeyScope, DriverError, NodeRow, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::map_sqlx;

/// Every column of `rota_jobs`, in table order, as a string literal for
/// `concat!` into static SQL (`SELECT` and `RETURNING` lists).
macro_rules! job_columns {
    () => {
        "id, kind, queue, state, priority, args, attempt, max_attempts, run_at, created_at, started_at, \
         finished_at, errors, progress, output, labels, attributes, unique_key, timeout_ms, node, lease_token, \
         lease_expires_at, cancel_requested_at, trace_context, exit_code"
    };
}
pub(crate) use job_columns;

/// [`job_columns!`] as a constant.
pub(crate) const JOB_COLUMNS: &str = job_columns!();

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

fn opt_timestamp(column: &str, us: Option<i64>) -> Result<Option<Timestamp>> {
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

/// A timeout as it reads back after being stored in whole milliseconds.
pub(crate) fn stored_timeout(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration_millis(d)).unwrap_or(u64::MAX))
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

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| DriverError::Corrupt(format!("{column}: {e}")))
}

/// A stored state name back into a [`JobState`].
pub(crate) fn parse_state(text: &str) -> Result<JobState> {
    text.parse()
        .map_err(|e| DriverError::Corrupt(format!("state: {e}")))
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(map_sqlx)
}

fn narrow<T: TryFrom<i64>>(column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| DriverError::Corrupt(format!("{column}: {v} is out of range")))
}

/// Decodes one `rota_jobs` row selected with [`JOB_COLUMNS`].
pub(crate) fn job_from_row(row: &SqliteRow) -> Result<Job> {
    let state: String = get(row, "state")?;
    let args: String = get(row, "args")?;
    let errors: String = get(row, "errors")?;
    let progress: Option<String> = get(row, "progress")?;
    let labels: String = get(row, "labels")?;
    let attributes: String = get(row, "attributes")?;
    let timeout_ms: Option<i64> = get(row, "timeout_ms")?;
    let exit_code: Option<i64> = get(row, "exit_code")?;
    Ok(Job {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        queue: get(row, "queue")?,
        state: parse_state(&state)?,
        priority: narrow("priority", get(row, "priority")?)?,
        args: from_json("args", &args)?,
        attempt: narrow("attempt", get(row, "attempt")?)?,
        max_attempts: narrow("max_attempts", get(row, "max_attempts")?)?,
        run_at: timestamp("run_at", get(row, "run_at")?)?,
        created_at: timestamp("created_at", get(row, "created_at")?)?,
        started_at: opt_timestamp("started_at", get(row, "started_at")?)?,
        finished_at: opt_timestamp("finished_at", get(row, "finished_at")?)?,
        errors: from_json::<Vec<AttemptError>>("errors", &errors)?,
        progress: progress.map(|p| from_json("progress", &p)).transpose()?,
        output: get(row, "output")?,
        labels: from_json::<BTreeMap<String, String>>("labels", &labels)?,
        attributes: from_json::<BTreeMap<String, String>>("attributes", &attributes)?,
        unique_key: get(row, "unique_key")?,
        timeout: timeout_ms
            .map(|ms| narrow::<u64>("timeout_ms", ms).map(Duration::from_millis))
            .transpose()?,
        node: get(row, "node")?,
        lease_expires_at: opt_timestamp("lease_expires_at", get(row, "lease_expires_at")?)?,
        lease_token: get(row, "lease_token")?,
        cancel_requested_at: opt_timestamp(
            "cancel_requested_at",
            get(row, "cancel_requested_at")?,
        )?,
        trace_context: get(row, "trace_context")?,
        exit_code: exit_code.map(|c| narrow("exit_code", c)).transpose()?,
        execution_id: None,
        schedule_id: None,
        revision: 0,
    })
}

/// Decodes many rows.
pub(crate) fn jobs_from_rows(rows: &[SqliteRow]) -> Result<Vec<Job>> {
    rows.iter().map(job_from_row).collect()
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
