//! Execution statements: create (with jobs), read, list, add jobs, mark,
//! stop, prune and repair.
//!
//! Counters and derived status are kept by the triggers on `rota_jobs`
//! (migration 0003) on every path. The bulk statements here that touch one
//! execution's jobs (create with jobs, add jobs, stop) switch those row
//! triggers off for that execution, transaction-locally, and apply the
//! summed change with one UPDATE: a trigger per job would update the same
//! execution row once per job, and each of those updates walks the row's
//! growing version chain, which makes big executions quadratic.

use std::collections::{BTreeMap, HashMap};

use rota_core::JobState;
use rota_driver::{
    DriverError, ExecutionAddJobsParams, ExecutionInsertParams, ExecutionListParams,
    ExecutionMarkParams, ExecutionPruneParams, ExecutionRepair, ExecutionRow, ExecutionStatus,
    ExecutionStopParams, InsertedJob, Result, Trigger,
};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{SqlxResultExt, retry_deadlocks};
use crate::jobs::{MAX_LIST_LIMIT, Origin, Wake, insert_many_from};
use crate::options::Tables;
use crate::row::{
    COUNTER_STATES, counts_from_row, execution_from_row, execution_status, state_from_str, ts,
};

/// Sum of the seven counter columns (optionally of an alias).
fn total(prefix: &str) -> String {
    COUNTER_STATES
        .iter()
        .map(|s| format!("{prefix}{}", s.as_str()))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "execution",
        id: id.to_string(),
    }
}

/// The setting that turns the counter triggers off for one execution's jobs
/// (see the migration).
const COUNTED_SETTING: &str = "rota.counted_execution";

/// Per-state changes of an execution's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deltas([i64; 7]);

impl Deltas {
    fn slot(state: JobState) -> usize {
        COUNTER_STATES
            .iter()
            .position(|s| *s == state)
            .unwrap_or_default()
    }

    /// A job entered `state`.
    pub(crate) fn add(&mut self, state: JobState) {
        self.0[Self::slot(state)] += 1;
    }

    /// A job left `state`.
    pub(crate) fn remove(&mut self, state: JobState) {
        self.0[Self::slot(state)] -= 1;
    }

    /// Counts the jobs an insert created.
    pub(crate) fn inserted(jobs: &[InsertedJob]) -> Self {
        let mut d = Self::default();
        for j in jobs.iter().filter(|j| j.inserted) {
            d.add(j.job.state);
        }
        d
    }
}

/// Runs `body` with the counter triggers off for execution `id`, then
/// applies the deltas it returns (with the status they derive). `conn` must
/// be inside a transaction (the switch is transaction-local), and that
/// transaction must be rolled back if this fails. Deltas are added to the
/// current row (`n = n + d`), so they commute with other transactions'
/// triggers counting other jobs of the same execution.
pub(crate) async fn counted<T>(
    conn: &mut PgConnection,
    t: &Tables,
    id: i64,
    finished_at: Option<jiff::Timestamp>,
    body: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, Deltas)>,
) -> Result<T> {
    let set = "SELECT set_config($1, $2, true)";
    sqlx::query(set)
        .bind(COUNTED_SETTING)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await
        .db()?;
    let (out, deltas) = body(&mut *conn).await?;
    sqlx::query(set)
        .bind(COUNTED_SETTING)
        .bind("")
        .execute(&mut *conn)
        .await
        .db()?;
    apply_deltas(conn, t, id, deltas, finished_at).await?;
    Ok(out)
}

/// Adds `d` to execution `id`'s counters and sets the status they derive,
/// as the counter trigger does for one job.
async fn apply_deltas(
    conn: &mut PgConnection,
    t: &Tables,
    id: i64,
    d: Deltas,
    finished_at: Option<jiff::Timestamp>,
) -> Result<()> {
    if d == Deltas::default() {
        return Ok(());
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET
            scheduled = scheduled + $2, available = available + $3, running = running + $4,
            retrying = retrying + $5, succeeded = succeeded + $6, failed = failed + $7,
            canceled = canceled + $8, updated_at = now()
         WHERE id = $1
         RETURNING *",
        t.executions
    )))
    .bind(id)
    .bind(d.0[0])
    .bind(d.0[1])
    .bind(d.0[2])
    .bind(d.0[3])
    .bind(d.0[4])
    .bind(d.0[5])
    .bind(d.0[6])
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    let Some(row) = row else { return Ok(()) };
    let e = execution_from_row(&row)?;
    let Some(status) = ExecutionStatus::derive(&e.counts) else {
        return Ok(());
    };
    if status == e.status {
        return Ok(());
    }
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET
            status = $2,
            ended_at = CASE WHEN $2 = 'running' THEN NULL
                            ELSE COALESCE(ended_at, $3, now()) END,
            revision = revision + 1
         WHERE id = $1",
        t.executions
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(finished_at.map(ts))
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// From this many jobs on, an insert into one execution counts them with
/// one UPDATE; below, the per-job triggers are cheaper than the extra round
/// trips.
const COUNTED_INSERT_MIN: usize = 64;

/// Inserts jobs into execution `id` on `conn` (inside a transaction).
pub(crate) async fn insert_jobs(
    conn: &mut PgConnection,
    t: &Tables,
    id: i64,
    jobs: &[rota_driver::JobInsertParams],
    origin: Origin,
) -> Result<Vec<InsertedJob>> {
    let origin = Origin {
        execution_id: Some(id),
        ..origin
    };
    if jobs.len() < COUNTED_INSERT_MIN {
        return insert_many_from(conn, t, jobs, origin, Wake::InTransaction).await;
    }
    counted(conn, t, id, None, async |c: &mut PgConnection| {
        let out = insert_many_from(c, t, jobs, origin, Wake::InTransaction).await?;
        let d = Deltas::inserted(&out);
        Ok((out, d))
    })
    .await
}

/// What a new execution row holds.
pub(crate) struct NewExecution<'a> {
    pub(crate) owner_kind: &'a str,
    pub(crate) owner_id: &'a str,
    pub(crate) trigger: Trigger,
    pub(crate) attributes: &'a BTreeMap<String, String>,
    pub(crate) status_message: Option<&'a str>,
    pub(crate) now: jiff::Timestamp,
}

/// Inserts an execution row on `conn` (status `running`, no jobs yet);
/// returns its id.
pub(crate) async fn create_on(
    conn: &mut PgConnection,
    t: &Tables,
    e: &NewExecution<'_>,
) -> Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO {} (owner_kind, owner_id, trigger, attributes, status_message,
                         created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         RETURNING id",
        t.executions
    )))
    .bind(e.owner_kind)
    .bind(e.owner_id)
    .bind(e.trigger.as_str())
    .bind(Json(e.attributes))
    .bind(e.status_message)
    .bind(ts(e.now))
    .fetch_one(&mut *conn)
    .await
    .db()
}

/// One execution on `conn`.
async fn get_on(conn: &mut PgConnection, t: &Tables, id: i64) -> Result<Option<ExecutionRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        t.executions
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    row.as_ref().map(execution_from_row).transpose()
}

/// Creates an execution and its first jobs in one transaction.
pub(crate) async fn insert(
    pool: &PgPool,
    t: &Tables,
    p: ExecutionInsertParams,
) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
    let mut tx = pool.begin().await.db()?;
    let id = create_on(
        &mut tx,
        t,
        &NewExecution {
            owner_kind: &p.owner_kind,
            owner_id: &p.owner_id,
            trigger: p.trigger,
            attributes: &p.attributes,
            status_message: p.status_message.as_deref(),
            now: p.now,
        },
    )
    .await?;
    let jobs = insert_jobs(&mut tx, t, id, &p.jobs, Origin::default()).await?;
    let row = get_on(&mut tx, t, id).await?.ok_or_else(|| not_found(id))?;
    tx.commit().await.db()?;
    Ok((row, jobs))
}

/// One execution by id.
pub(crate) async fn get(pool: &PgPool, t: &Tables, id: i64) -> Result<Option<ExecutionRow>> {
    let mut conn = pool.acquire().await.db()?;
    get_on(&mut conn, t, id).await
}

/// Executions matching the filter, newest first.
pub(crate) async fn list(
    pool: &PgPool,
    t: &Tables,
    p: &ExecutionListParams,
) -> Result<Vec<ExecutionRow>> {
    let limit = if p.limit == 0 || p.limit > MAX_LIST_LIMIT {
        MAX_LIST_LIMIT
    } else {
        p.limit
    };
    let mut sql = format!("SELECT * FROM {} WHERE true", t.executions);
    let mut n = 0;
    let mut param = |clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if p.owner_kind.is_some() {
        param(" AND owner_kind = ?");
    }
    if p.owner_id.is_some() {
        param(" AND owner_id = ?");
    }
    if !p.statuses.is_empty() {
        param(" AND status = ANY(?::text[])");
    }
    if !p.attributes.is_empty() {
        // The second condition lets the partial GIN index apply.
        param(" AND attributes @> ?::jsonb AND attributes <> '{}'::jsonb");
    }
    if p.before_id.is_some() {
        param(" AND id < ?");
    }
    param(" ORDER BY id DESC LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(kind) = &p.owner_kind {
        q = q.bind(kind.as_str());
    }
    if let Some(owner) = &p.owner_id {
        q = q.bind(owner.as_str());
    }
    if !p.statuses.is_empty() {
        let statuses: Vec<&str> = p.statuses.iter().map(|s| s.as_str()).collect();
        q = q.bind(statuses);
    }
    if !p.attributes.is_empty() {
        q = q.bind(Json(&p.attributes));
    }
    if let Some(before) = p.before_id {
        q = q.bind(before);
    }
    let rows = q.bind(i64::from(limit)).fetch_all(pool).await.db()?;
    rows.iter().map(execution_from_row).collect()
}

/// Adds jobs to an existing execution (not to one marked `succeeded` /
/// `error` without jobs).
pub(crate) async fn add_jobs(
    pool: &PgPool,
    t: &Tables,
    p: ExecutionAddJobsParams,
) -> Result<Vec<InsertedJob>> {
    let mut tx = pool.begin().await.db()?;
    // The lock keeps a concurrent mark from slipping in before the jobs.
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT status, {total} AS total FROM {e} WHERE id = $1 FOR UPDATE",
        total = total(""),
        e = t.executions
    )))
    .bind(p.id)
    .fetch_optional(&mut *tx)
    .await
    .db()?
    .ok_or_else(|| not_found(p.id))?;
    let status: String = row.try_get("status").db()?;
    let jobs: i64 = row.try_get("total").db()?;
    let status = execution_status(&status)?;
    if jobs == 0 && matches!(status, ExecutionStatus::Succeeded | ExecutionStatus::Error) {
        return Err(DriverError::Conflict(format!(
            "execution {} was marked {} without jobs; it takes no jobs",
            p.id,
            status.as_str()
        )));
    }
    let out = insert_jobs(&mut tx, t, p.id, &p.jobs, Origin::default()).await?;
    tx.commit().await.db()?;
    Ok(out)
}

/// Marks an execution without jobs `succeeded` or `error`.
pub(crate) async fn mark(
    pool: &PgPool,
    t: &Tables,
    p: &ExecutionMarkParams,
) -> Result<ExecutionRow> {
    if !matches!(
        p.status,
        ExecutionStatus::Succeeded | ExecutionStatus::Error
    ) {
        return Err(DriverError::Conflict(format!(
            "an execution can only be marked succeeded or error, not {}",
            p.status.as_str()
        )));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {e} SET
            status = $2,
            status_message = $3,
            ended_at = $4,
            updated_at = $4,
            revision = revision + (status <> $2)::int
         WHERE id = $1 AND {total} = 0
         RETURNING *",
        e = t.executions,
        total = total(""),
    )))
    .bind(p.id)
    .bind(p.status.as_str())
    .bind(p.message.as_deref())
    .bind(ts(p.now))
    .fetch_optional(pool)
    .await
    .db()?;
    if let Some(row) = row {
        return execution_from_row(&row);
    }
    match get(pool, t, p.id).await? {
        None => Err(not_found(p.id)),
        Some(_) => Err(DriverError::Conflict(format!(
            "execution {} has jobs: its status is derived from them",
            p.id
        ))),
    }
}

/// Cancels every unfinished job of an execution: waiting ones end
/// `canceled`, running ones get a cancel request. Returns the execution and
/// the ids of its running jobs.
pub(crate) async fn stop(
    pool: &PgPool,
    t: &Tables,
    p: &ExecutionStopParams,
) -> Result<(ExecutionRow, Vec<i64>)> {
    let sql = format!(
        "WITH o AS (
            SELECT id, state FROM {jobs}
            WHERE execution_id = $1
              AND state IN ('scheduled', 'available', 'retrying', 'running')
            ORDER BY id
            FOR UPDATE
        ), u AS (
            UPDATE {jobs} j SET
                state = CASE WHEN j.state = 'running' THEN j.state ELSE 'canceled' END,
                finished_at = CASE WHEN j.state = 'running' THEN j.finished_at ELSE $2 END,
                cancel_requested_at = CASE WHEN j.state = 'running'
                                           THEN COALESCE(j.cancel_requested_at, $2)
                                           ELSE j.cancel_requested_at END,
                revision = CASE WHEN j.state = 'running' AND j.cancel_requested_at IS NOT NULL
                                THEN j.revision ELSE j.revision + 1 END
            FROM o WHERE j.id = o.id
            RETURNING j.id, o.state AS old_state, j.state AS new_state
        )
        SELECT id, old_state, new_state FROM u ORDER BY id",
        jobs = t.jobs
    );
    retry_deadlocks(|| async {
        let mut tx = pool.begin().await.db()?;
        if get_on(&mut tx, t, p.id).await?.is_none() {
            return Err(not_found(p.id));
        }
        // Locks the jobs (FOR UPDATE in `o`), then the execution (deltas),
        // in the global order (see `jobs::lock_executions_cte`).
        let running = counted(
            &mut tx,
            t,
            p.id,
            Some(p.now),
            async |c: &mut PgConnection| {
                let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(p.id)
                    .bind(ts(p.now))
                    .fetch_all(&mut *c)
                    .await
                    .db()?;
                let mut running = Vec::new();
                let mut d = Deltas::default();
                for r in &rows {
                    let old = state_from_str(&r.try_get::<String, _>("old_state").db()?)?;
                    let new = state_from_str(&r.try_get::<String, _>("new_state").db()?)?;
                    if new == JobState::Running {
                        running.push(r.try_get::<i64, _>("id").db()?);
                    }
                    d.remove(old);
                    d.add(new);
                }
                Ok((running, d))
            },
        )
        .await?;
        let row = get_on(&mut tx, t, p.id)
            .await?
            .ok_or_else(|| not_found(p.id))?;
        tx.commit().await.db()?;
        Ok((row, running))
    })
    .await
}

/// Deletes finished executions beyond the newest `keep_last` per owner,
/// with their jobs. Returns how many executions it deleted.
pub(crate) async fn prune(pool: &PgPool, t: &Tables, p: &ExecutionPruneParams) -> Result<u64> {
    if p.limit == 0 {
        return Ok(0);
    }
    let keep = i64::try_from(p.keep_last).unwrap_or(i64::MAX);
    let victims_sql = format!(
        "WITH ranked AS (
            SELECT id, row_number() OVER (PARTITION BY owner_kind, owner_id ORDER BY id DESC) AS rn
            FROM {e}
            WHERE status <> 'running' AND ($1::text IS NULL OR owner_kind = $1)
        )
        SELECT id FROM ranked WHERE rn > $2 ORDER BY id LIMIT $3",
        e = t.executions
    );
    retry_deadlocks(|| async {
        let mut tx = pool.begin().await.db()?;
        let candidates: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(victims_sql.as_str()))
            .bind(p.owner_kind.as_deref())
            .bind(keep)
            .bind(i64::from(p.limit))
            .fetch_all(&mut *tx)
            .await
            .db()?;
        if candidates.is_empty() {
            return Ok(0);
        }
        // Jobs, then executions (the global lock order, see
        // `jobs::lock_executions_cte`); the executions re-checked once
        // locked: one that got new jobs meanwhile is running again.
        sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM {} WHERE execution_id = ANY($1) ORDER BY id FOR UPDATE",
            t.jobs
        )))
        .bind(&candidates)
        .execute(&mut *tx)
        .await
        .db()?;
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT id FROM {} WHERE id = ANY($1) AND status <> 'running'
             ORDER BY id FOR UPDATE",
            t.executions
        )))
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        if ids.is_empty() {
            return Ok(0);
        }
        // Executions first: the job triggers then find no row to count into.
        let deleted = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE id = ANY($1)",
            t.executions
        )))
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE execution_id = ANY($1)",
            t.jobs
        )))
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(deleted)
    })
    .await
}

/// `count(*) FILTER (...)` per state, named like the counter columns.
fn count_columns() -> String {
    COUNTER_STATES
        .iter()
        .map(|s| {
            format!(
                "count(*) FILTER (WHERE state = '{s}') AS {s}",
                s = s.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Recomputes counters and status of executions whose stored figures do
/// not match their jobs; returns what it fixed.
pub(crate) async fn repair(pool: &PgPool, t: &Tables, limit: u32) -> Result<Vec<ExecutionRepair>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let stored_cols = COUNTER_STATES
        .iter()
        .map(|s| format!("e.{}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let actual_cols = COUNTER_STATES
        .iter()
        .map(|s| format!("COALESCE(a.{}, 0)", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let unfinished = "COALESCE(a.scheduled, 0) + COALESCE(a.available, 0) \
                      + COALESCE(a.running, 0) + COALESCE(a.retrying, 0)";
    // Candidates: counters differ, or the status is not what they derive.
    let candidates_sql = format!(
        "WITH a AS (
            SELECT execution_id AS id, {counts} FROM {jobs}
            WHERE execution_id IS NOT NULL GROUP BY execution_id
        )
        SELECT e.id FROM {e} e LEFT JOIN a ON a.id = e.id
        WHERE ({stored_cols}) IS DISTINCT FROM ({actual_cols})
           OR (COALESCE(a.id, 0) <> 0 AND e.status <> CASE
                   WHEN {unfinished} > 0 THEN 'running'
                   WHEN COALESCE(a.failed, 0) > 0 THEN 'failed'
                   WHEN COALESCE(a.canceled, 0) > 0 THEN 'canceled'
                   ELSE 'succeeded' END)
        ORDER BY e.id LIMIT $1",
        counts = count_columns(),
        jobs = t.jobs,
        e = t.executions,
    );
    let candidates: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(candidates_sql))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .db()?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await.db()?;
    // Lock first, then count: a job change still in flight waits for our
    // lock and applies its delta on top of the corrected figures.
    let stored_rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        t.executions
    )))
    .bind(&candidates)
    .fetch_all(&mut *tx)
    .await
    .db()?;
    let actual_rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT execution_id AS id, {counts} FROM {jobs}
         WHERE execution_id = ANY($1) GROUP BY execution_id",
        counts = count_columns(),
        jobs = t.jobs,
    )))
    .bind(&candidates)
    .fetch_all(&mut *tx)
    .await
    .db()?;
    let mut actual: HashMap<i64, BTreeMap<JobState, i64>> = HashMap::new();
    for r in &actual_rows {
        actual.insert(r.try_get("id").db()?, counts_from_row(r, "")?);
    }
    let update_sql = format!(
        "UPDATE {e} SET
            scheduled = $2, available = $3, running = $4, retrying = $5,
            succeeded = $6, failed = $7, canceled = $8,
            status = $9,
            ended_at = CASE WHEN $9 = 'running' THEN NULL ELSE COALESCE(ended_at, now()) END,
            revision = revision + (status <> $9)::int,
            updated_at = now()
         WHERE id = $1",
        e = t.executions
    );
    let mut out = Vec::new();
    for r in &stored_rows {
        let stored = execution_from_row(r)?;
        let counts = actual.remove(&stored.id).unwrap_or_default();
        let status = ExecutionStatus::derive(&counts).unwrap_or(stored.status);
        if counts == stored.counts && status == stored.status {
            continue;
        }
        let n = |s: JobState| counts.get(&s).copied().unwrap_or(0);
        sqlx::query(AssertSqlSafe(update_sql.as_str()))
            .bind(stored.id)
            .bind(n(JobState::Scheduled))
            .bind(n(JobState::Available))
            .bind(n(JobState::Running))
            .bind(n(JobState::Retrying))
            .bind(n(JobState::Succeeded))
            .bind(n(JobState::Failed))
            .bind(n(JobState::Canceled))
            .bind(status.as_str())
            .execute(&mut *tx)
            .await
            .db()?;
        out.push(ExecutionRepair {
            id: stored.id,
            was: stored.status,
            now: status,
            stored_counts: stored.counts,
            actual_counts: counts,
        });
    }
    tx.commit().await.db()?;
    Ok(out)
}
