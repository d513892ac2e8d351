//! Executions: runs of an action for an owner, grouping jobs. Their
//! per-state counters are kept by the driver's job writes
//! (`insert_effects`, `change_effects`) and the delete trigger, their
//! status by a trigger on `rota_executions`; this file creates, reads,
//! marks, stops, prunes and repairs them.

use std::collections::BTreeMap;

use rota_core::JobState;
use rota_driver::{
    DriverError, ExecutionAddJobsParams, ExecutionInsertParams, ExecutionListParams,
    ExecutionMarkParams, ExecutionPruneParams, ExecutionRepair, ExecutionRow, ExecutionStatus,
    ExecutionStopParams, InsertedJob, Result, Trigger,
};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{QueryBuilder, Row};

use crate::change_effects::Before;
use crate::error::map_sqlx;
use crate::insert::{JobOrigin, insert_many};
use crate::jobs::attribute_path;
use crate::row::{
    counts_from_row, execution_columns, execution_from_row, micros, parse_execution_status, to_json,
};
use crate::writer::OpEffects;

/// Most rows one list (or repair) call returns; `0` asks for this many.
pub(crate) const MAX_LIMIT: u32 = 10_000;

/// A page size: `0` means the cap, anything else is capped.
pub(crate) fn page(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        MAX_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    })
}

/// A new execution row (status `running`, no jobs yet).
pub(crate) const INSERT_SQL: &str = "INSERT INTO rota_executions \
     (owner_kind, owner_id, trigger, attributes, status_message, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id";

/// One execution by id.
pub(crate) const GET_SQL: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM rota_executions WHERE id = ?"
);

/// Explicit status of an execution without jobs; the revision moves only
/// when the status does.
pub(crate) const MARK_SQL: &str = concat!(
    "UPDATE rota_executions SET status = ?1, status_message = ?2, ended_at = ?3, updated_at = ?3, \
     revision = revision + (status IS NOT ?1) \
     WHERE id = ?4 AND scheduled + available + running + retrying + succeeded + failed + canceled = 0 \
     RETURNING ",
    execution_columns!()
);

/// Stop, part 0: the jobs parts 1 and 2 change (of execution `?1`), read
/// before and after for the effects of their changes.
pub(crate) const STOP_PICK_WHERE: &str = "execution_id = ?1 \
     AND (state IN ('scheduled', 'available', 'retrying') \
          OR (state = 'running' AND cancel_requested_at IS NULL))";

/// Stop, part 1: waiting jobs of the execution end `canceled`.
pub(crate) const STOP_WAITING_SQL: &str = "UPDATE rota_jobs SET state = 'canceled', finished_at = ?1, \
     revision = revision + 1 \
     WHERE execution_id = ?2 AND state IN ('scheduled', 'available', 'retrying')";

/// Stop, part 2: running jobs get a cancel request (the first one counts).
pub(crate) const STOP_RUNNING_SQL: &str = "UPDATE rota_jobs SET cancel_requested_at = ?1, \
     revision = revision + 1 \
     WHERE execution_id = ?2 AND state = 'running' AND cancel_requested_at IS NULL";

/// Stop, part 3: every running job of the execution.
pub(crate) const RUNNING_IDS_SQL: &str =
    "SELECT id FROM rota_jobs WHERE execution_id = ? AND state = 'running' ORDER BY id";

/// Finished executions beyond the newest `keep_last` per owner, oldest
/// first.
pub(crate) const PRUNE_PICK_SQL: &str = "SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
     (PARTITION BY owner_kind, owner_id ORDER BY id DESC) AS rn FROM rota_executions \
     WHERE status <> 'running' AND (?1 IS NULL OR owner_kind = ?1)) \
     WHERE rn > ?2 ORDER BY id LIMIT ?3";

/// Deletes executions by a JSON array of ids.
pub(crate) const PRUNE_EXECUTIONS_SQL: &str =
    "DELETE FROM rota_executions WHERE id IN (SELECT value FROM json_each(?))";

/// Deletes the jobs of executions given as a JSON array of ids.
pub(crate) const PRUNE_JOBS_SQL: &str =
    "DELETE FROM rota_jobs WHERE execution_id IN (SELECT value FROM json_each(?))";

/// Executions whose stored counters (or status) disagree with their jobs,
/// with the recomputed counters (`actual_*`) and their jobs' last finish.
pub(crate) const REPAIR_FIND_SQL: &str = "WITH actual AS (SELECT execution_id AS id, \
         SUM(state = 'scheduled') AS scheduled, SUM(state = 'available') AS available, \
         SUM(state = 'running') AS running, SUM(state = 'retrying') AS retrying, \
         SUM(state = 'succeeded') AS succeeded, SUM(state = 'failed') AS failed, \
         SUM(state = 'canceled') AS canceled, MAX(finished_at) AS last_finished_at \
         FROM rota_jobs WHERE execution_id IS NOT NULL GROUP BY execution_id), \
     cmp AS (SELECT e.id, e.status, e.scheduled, e.available, e.running, e.retrying, e.succeeded, \
         e.failed, e.canceled, \
         COALESCE(a.scheduled, 0) AS actual_scheduled, COALESCE(a.available, 0) AS actual_available, \
         COALESCE(a.running, 0) AS actual_running, COALESCE(a.retrying, 0) AS actual_retrying, \
         COALESCE(a.succeeded, 0) AS actual_succeeded, COALESCE(a.failed, 0) AS actual_failed, \
         COALESCE(a.canceled, 0) AS actual_canceled, a.last_finished_at \
         FROM rota_executions e LEFT JOIN actual a ON a.id = e.id) \
     SELECT * FROM cmp WHERE scheduled <> actual_scheduled OR available <> actual_available \
         OR running <> actual_running OR retrying <> actual_retrying \
         OR succeeded <> actual_succeeded OR failed <> actual_failed OR canceled <> actual_canceled \
         OR (actual_scheduled + actual_available + actual_running + actual_retrying + actual_succeeded \
             + actual_failed + actual_canceled > 0 \
             AND status IS NOT (CASE \
                 WHEN actual_scheduled + actual_available + actual_running + actual_retrying > 0 THEN 'running' \
                 WHEN actual_failed > 0 THEN 'failed' \
                 WHEN actual_canceled > 0 THEN 'canceled' \
                 ELSE 'succeeded' END)) \
     ORDER BY id LIMIT ?";

/// Stores recomputed counters; the status trigger derives the status (and
/// `ended_at`, from `updated_at`, moved to the jobs' last finish).
pub(crate) const REPAIR_FIX_SQL: &str = "UPDATE rota_executions SET scheduled = ?1, available = ?2, \
     running = ?3, retrying = ?4, succeeded = ?5, failed = ?6, canceled = ?7, \
     updated_at = max(updated_at, COALESCE(?8, updated_at)) WHERE id = ?9";

/// Inserts the execution row; returns its id.
pub(crate) async fn insert_row(
    conn: &mut SqliteConnection,
    owner_kind: &str,
    owner_id: &str,
    trigger: Trigger,
    attributes: &BTreeMap<String, String>,
    status_message: Option<&str>,
    now: jiff::Timestamp,
) -> Result<i64> {
    sqlx::query_scalar(INSERT_SQL)
        .bind(owner_kind)
        .bind(owner_id)
        .bind(trigger.as_str())
        .bind(to_json(attributes)?)
        .bind(status_message)
        .bind(micros(now))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)
}

/// Asks for wake-ups of the queues that got available jobs.
pub(crate) fn wake_inserted(fx: &mut OpEffects, jobs: &[InsertedJob]) {
    for j in jobs {
        if j.inserted && j.job.state == JobState::Available {
            fx.wake(&j.job.queue);
        }
    }
}

fn not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "execution",
        id: id.to_string(),
    }
}

/// Creates an execution and its first jobs.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    fx: &mut OpEffects,
    p: ExecutionInsertParams,
) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
    let id = insert_row(
        conn,
        &p.owner_kind,
        &p.owner_id,
        p.trigger,
        &p.attributes,
        p.status_message.as_deref(),
        p.now,
    )
    .await?;
    let jobs = insert_many(
        conn,
        p.jobs,
        JobOrigin {
            execution_id: Some(id),
            ..JobOrigin::default()
        },
    )
    .await?;
    wake_inserted(fx, &jobs);
    let row = get(conn, id).await?.ok_or_else(|| not_found(id))?;
    Ok((row, jobs))
}

/// One execution by id.
pub(crate) async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Option<ExecutionRow>> {
    let row = sqlx::query(GET_SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    row.as_ref().map(execution_from_row).transpose()
}

async fn get_existing(conn: &mut SqliteConnection, id: i64) -> Result<ExecutionRow> {
    get(conn, id).await?.ok_or_else(|| not_found(id))
}

/// Executions matching the filter, newest first.
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    p: &ExecutionListParams,
) -> Result<Vec<ExecutionRow>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(concat!(
        "SELECT ",
        execution_columns!(),
        " FROM rota_executions WHERE 1 = 1"
    ));
    if let Some(kind) = &p.owner_kind {
        qb.push(" AND owner_kind = ").push_bind(kind.clone());
    }
    if let Some(owner) = &p.owner_id {
        qb.push(" AND owner_id = ").push_bind(owner.clone());
    }
    if !p.statuses.is_empty() {
        qb.push(" AND status IN (");
        let mut sep = qb.separated(", ");
        for s in &p.statuses {
            sep.push_bind(s.as_str());
        }
        qb.push(")");
    }
    for (key, value) in &p.attributes {
        qb.push(" AND json_extract(attributes, ")
            .push_bind(attribute_path(key))
            .push(") = ")
            .push_bind(value.clone());
    }
    if let Some(before) = p.before_id {
        qb.push(" AND id < ").push_bind(before);
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(page(p.limit));
    let rows = qb.build().fetch_all(&mut *conn).await.map_err(map_sqlx)?;
    rows.iter().map(execution_from_row).collect()
}

/// Adds jobs to an execution that is not marked finished without jobs.
pub(crate) async fn add_jobs(
    conn: &mut SqliteConnection,
    fx: &mut OpEffects,
    p: ExecutionAddJobsParams,
) -> Result<Vec<InsertedJob>> {
    let row = get_existing(conn, p.id).await?;
    if row.counts.is_empty() && row.status.is_finished() {
        return Err(DriverError::Conflict(format!(
            "execution {} was marked {} without jobs; no jobs can be added",
            p.id,
            row.status.as_str()
        )));
    }
    let jobs = insert_many(
        conn,
        p.jobs,
        JobOrigin {
            execution_id: Some(p.id),
            ..JobOrigin::default()
        },
    )
    .await?;
    wake_inserted(fx, &jobs);
    Ok(jobs)
}

/// Marks an execution without jobs `succeeded` or `error`.
pub(crate) async fn mark(
    conn: &mut SqliteConnection,
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
    let row = sqlx::query(MARK_SQL)
        .bind(p.status.as_str())
        .bind(p.message.as_deref())
        .bind(micros(p.now))
        .bind(p.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    match row {
        Some(row) => execution_from_row(&row),
        None => {
            get_existing(conn, p.id).await?;
            Err(DriverError::Conflict(format!(
                "execution {} has jobs: its status is derived from them",
                p.id
            )))
        }
    }
}

/// Cancels the waiting jobs of an execution and asks its running ones to
/// stop; returns the execution and the running job ids.
pub(crate) async fn stop(
    conn: &mut SqliteConnection,
    p: &ExecutionStopParams,
) -> Result<(ExecutionRow, Vec<i64>)> {
    get_existing(conn, p.id).await?;
    let now = micros(p.now);
    let before = Before::read_where(conn, STOP_PICK_WHERE, p.id).await?;
    for sql in [STOP_WAITING_SQL, STOP_RUNNING_SQL] {
        sqlx::query(sql)
            .bind(now)
            .bind(p.id)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    }
    before.write_changes(conn).await?;
    let running: Vec<i64> = sqlx::query_scalar(RUNNING_IDS_SQL)
        .bind(p.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok((get_existing(conn, p.id).await?, running))
}

/// Deletes finished executions beyond the newest `keep_last` per owner,
/// and their jobs; returns how many executions.
pub(crate) async fn prune(conn: &mut SqliteConnection, p: &ExecutionPruneParams) -> Result<u64> {
    if p.limit == 0 {
        return Ok(0);
    }
    let ids: Vec<i64> = sqlx::query_scalar(PRUNE_PICK_SQL)
        .bind(p.owner_kind.as_deref())
        .bind(i64::try_from(p.keep_last).unwrap_or(i64::MAX))
        .bind(i64::from(p.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    if ids.is_empty() {
        return Ok(0);
    }
    let ids = to_json(&ids)?;
    // Executions first: the job triggers then find no execution to update,
    // so deleting the jobs neither rewrites the doomed rows nor emits
    // status events for them.
    let n = sqlx::query(PRUNE_EXECUTIONS_SQL)
        .bind(ids.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
    sqlx::query(PRUNE_JOBS_SQL)
        .bind(ids.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(n)
}

/// Recomputes counters (and so status) of executions that disagree with
/// their jobs; returns what it fixed.
pub(crate) async fn repair(
    conn: &mut SqliteConnection,
    limit: u32,
) -> Result<Vec<ExecutionRepair>> {
    let rows = sqlx::query(REPAIR_FIND_SQL)
        .bind(page(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id").map_err(map_sqlx)?;
        let status: String = r.try_get("status").map_err(map_sqlx)?;
        let mut q = sqlx::query(REPAIR_FIX_SQL);
        for state in crate::row::COUNTER_STATES {
            let n: i64 = r
                .try_get(format!("actual_{}", state.as_str()).as_str())
                .map_err(map_sqlx)?;
            q = q.bind(n);
        }
        let last: Option<i64> = r.try_get("last_finished_at").map_err(map_sqlx)?;
        q.bind(last)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
        let now = get_existing(conn, id).await?;
        out.push(ExecutionRepair {
            id,
            was: parse_execution_status(&status)?,
            now: now.status,
            stored_counts: counts_from_row(r, "")?,
            actual_counts: counts_from_row(r, "actual_")?,
        });
    }
    Ok(out)
}
