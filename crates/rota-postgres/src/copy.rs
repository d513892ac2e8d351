//! Bulk insert through `COPY ... FROM STDIN (FORMAT binary)`.
//!
//! For large batches without unique keys this replaces the `UNNEST` insert:
//! no `ON CONFLICT` arbiter check per row, no `RETURNING *` to decode, no
//! text parsing of times and numbers on the server. Ids come from one
//! `nextval` call per row up front, so the returned jobs are built from the
//! input (at the precision PostgreSQL stores) without reading rows back.
//! Row triggers (execution counters, the webhook outbox) fire for `COPY`
//! as for `INSERT`.

use rota_driver::{DriverError, InsertedJob, JobInsertParams, Result};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use crate::error::SqlxResultExt;
use crate::jobs::{NOTIFY_QUEUES_SQL, Origin, Wake, available_queues};
use crate::options::Tables;
use crate::row::millis;

/// Columns every tuple carries, in order.
const COLUMNS: &str = "id, kind, queue, state, args, run_at, created_at, max_attempts";
const FIELDS: i16 = 8;

/// Columns a tuple carries only when some row of the `COPY` differs from
/// the column's default there; the others take their defaults (`0`,
/// `'{}'`, `NULL`) on the server. Bulk loads are mostly defaults, and
/// every field sent is parsed per row: with empty labels and attributes
/// left out, a row cost 50.2k server instructions instead of 55.0k
/// (callgrind, single-user server; `jsonb_recv` alone was 2.4k per field).
#[derive(Debug, Clone, Copy)]
enum Optional {
    Priority,
    Timeout,
    Labels,
    Attributes,
    TraceContext,
    ExecutionId,
    ScheduleId,
    FireAt,
}

impl Optional {
    const ALL: [Self; 8] = [
        Self::Priority,
        Self::Timeout,
        Self::Labels,
        Self::Attributes,
        Self::TraceContext,
        Self::ExecutionId,
        Self::ScheduleId,
        Self::FireAt,
    ];

    fn column(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Timeout => "timeout_ms",
            Self::Labels => "labels",
            Self::Attributes => "attributes",
            Self::TraceContext => "trace_context",
            Self::ExecutionId => "execution_id",
            Self::ScheduleId => "schedule_id",
            Self::FireAt => "fire_at",
        }
    }

    /// Whether `p` needs this column sent: its value is not the default.
    fn needed(self, p: &JobInsertParams, origin: Origin) -> bool {
        match self {
            Self::Priority => p.priority != 0,
            Self::Timeout => p.timeout.is_some(),
            Self::Labels => !p.labels.is_empty(),
            Self::Attributes => !p.attributes.is_empty(),
            Self::TraceContext => p.trace_context.is_some(),
            Self::ExecutionId => origin.execution_id.is_some(),
            Self::ScheduleId => origin.schedule_id.is_some(),
            Self::FireAt => origin.fire_at.is_some(),
        }
    }

    fn encode(self, buf: &mut Vec<u8>, p: &JobInsertParams, origin: Origin) -> Result<()> {
        match self {
            Self::Priority => field(buf, &p.priority.to_be_bytes()),
            Self::Timeout => int8(buf, p.timeout.map(millis)),
            Self::Labels => jsonb(buf, &p.labels)?,
            Self::Attributes => jsonb(buf, &p.attributes)?,
            Self::TraceContext => text(buf, p.trace_context.as_deref()),
            Self::ExecutionId => int8(buf, origin.execution_id),
            Self::ScheduleId => int8(buf, origin.schedule_id),
            Self::FireAt => timestamptz(buf, origin.fire_at),
        }
        Ok(())
    }
}

/// Rows encoded per `CopyData` piece sent.
const SEND_ROWS: usize = 1000;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Inserts `params` (none may carry a unique key) on `conn`, which must
/// already be inside a transaction; with [`Wake::InTransaction`] notifies
/// the queues that got available jobs.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[JobInsertParams],
    origin: Origin,
    wake: Wake,
) -> Result<Vec<InsertedJob>> {
    debug_assert!(params.iter().all(|p| p.unique_key.is_none()));
    let n = i64::try_from(params.len())
        .map_err(|_| DriverError::Database("too many jobs in one insert".to_owned()))?;
    // One array value instead of n rows; sorted so ids ascend in input
    // order like every other insert path.
    let mut ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT array_agg(nextval('{}')) FROM generate_series(1, $1)",
        t.jobs_seq
    )))
    .bind(n)
    .fetch_one(&mut *conn)
    .await
    .db()?;
    ids.sort_unstable();
    if ids.len() != params.len() {
        return Err(DriverError::Corrupt(format!(
            "asked for {} job ids, got {}",
            params.len(),
            ids.len()
        )));
    }
    let optional: Vec<Optional> = Optional::ALL
        .into_iter()
        .filter(|o| params.iter().any(|p| o.needed(p, origin)))
        .collect();
    let columns: String = optional
        .iter()
        .fold(COLUMNS.to_owned(), |cols, o| cols + ", " + o.column());
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
            t.jobs
        ))
        .await
        .db()?;
    // Sent in pieces as they are encoded: the server parses and inserts
    // one piece while the next is encoded, instead of waiting for all.
    let mut buf = Vec::with_capacity(19 + SEND_ROWS * 256);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for (rows, ids) in params.chunks(SEND_ROWS).zip(ids.chunks(SEND_ROWS)) {
        for (p, id) in rows.iter().zip(ids) {
            if let Err(e) = encode_row(&mut buf, *id, p, origin, &optional) {
                // A COPY dropped half-sent leaves the connection unusable.
                if let Err(abort) = copy.abort(e.to_string()).await {
                    tracing::debug!(error = %abort, "aborting a failed COPY");
                }
                return Err(e);
            }
        }
        if rows.len() == SEND_ROWS {
            copy.send(buf.as_slice()).await.db()?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf).await.db()?;
    copy.finish().await.db()?;

    let out: Vec<InsertedJob> = params
        .iter()
        .zip(ids)
        .map(|(p, id)| InsertedJob {
            job: p
                .clone()
                .into_stored_job(id, origin.execution_id, origin.schedule_id),
            inserted: true,
        })
        .collect();
    let queues = available_queues(&out);
    if wake == Wake::InTransaction && !queues.is_empty() {
        sqlx::query(NOTIFY_QUEUES_SQL)
            .bind(&t.channel)
            .bind(&queues)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    Ok(out)
}

/// One tuple: the [`COLUMNS`] every row has, then `optional` in order.
fn encode_row(
    buf: &mut Vec<u8>,
    id: i64,
    p: &JobInsertParams,
    origin: Origin,
    optional: &[Optional],
) -> Result<()> {
    // `optional` holds at most the eight of `Optional::ALL`.
    let fields = FIELDS + optional.len() as i16;
    buf.extend_from_slice(&fields.to_be_bytes());
    int8(buf, Some(id));
    text(buf, Some(&p.kind));
    text(buf, Some(&p.queue));
    text(buf, Some(p.state.as_str()));
    jsonb(buf, &p.args)?;
    timestamptz(buf, Some(p.run_at));
    timestamptz(buf, Some(p.created_at));
    field(buf, &crate::row::int(p.max_attempts).to_be_bytes());
    for o in optional {
        o.encode(buf, p, origin)?;
    }
    Ok(())
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Field lengths are i32; every field here is far below 2 GiB (args are
    // bounded by the request size limits long before).
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn int8(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => field(buf, &v.to_be_bytes()),
        None => null(buf),
    }
}

fn text(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => field(buf, v.as_bytes()),
        None => null(buf),
    }
}

fn timestamptz(buf: &mut Vec<u8>, v: Option<jiff::Timestamp>) {
    int8(buf, v.map(pg_micros));
}

fn pg_micros(t: jiff::Timestamp) -> i64 {
    let us = t.as_microsecond();
    us.saturating_sub(PG_EPOCH_MICROS)
}

/// `jsonb` in binary COPY: a version byte (1), then the JSON text.
fn jsonb(buf: &mut Vec<u8>, v: &impl serde::Serialize) -> Result<()> {
    let len_at = buf.len();
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.push(1);
    serde_json::to_writer(&mut *buf, v)
        .map_err(|e| DriverError::Database(format!("job JSON does not serialize: {e}")))?;
    let len = i32::try_from(buf.len() - len_at - 4)
        .map_err(|_| DriverError::Database("job JSON is larger than 2 GiB".to_owned()))?;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
