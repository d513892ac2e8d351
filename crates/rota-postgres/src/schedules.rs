//! Schedule statements: CRUD, due schedules, fires and their history.
//!
//! The spec and state are opaque JSON to the store; it only indexes what it
//! queries (`next_fire_at` of active schedules).

use std::collections::BTreeMap;

use rota_driver::{
    DriverError, FireListParams, FireOutcome, FireRow, FireStatus, Result, ScheduleFireParams,
    ScheduleInsertParams, ScheduleRow, ScheduleUpdateParams, Trigger,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use sqlx::types::Json;

use crate::error::SqlxResultExt;
use crate::executions::{NewExecution, create_on, insert_jobs};
use crate::jobs::{MAX_LIST_LIMIT, Origin, Wake, insert_many_from};
use crate::options::Tables;
use crate::row::{fire_from_row, schedule_from_row, ts, ts_opt};

/// SQL list of the unfinished job states.
const UNFINISHED: &str = "('scheduled', 'available', 'running', 'retrying')";

fn not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "schedule",
        id: id.to_string(),
    }
}

/// Creates a schedule; a duplicate name is a `Conflict`.
pub(crate) async fn insert(
    pool: &PgPool,
    t: &Tables,
    p: &ScheduleInsertParams,
) -> Result<ScheduleRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (name, spec, next_fire_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)
         RETURNING *",
        t.schedules
    )))
    .bind(p.name.as_str())
    .bind(Json(&p.spec))
    .bind(ts_opt(p.next_fire_at))
    .bind(ts(p.now))
    .fetch_one(pool)
    .await
    .db()?;
    schedule_from_row(&row)
}

/// One schedule by id.
pub(crate) async fn get(pool: &PgPool, t: &Tables, id: i64) -> Result<Option<ScheduleRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        t.schedules
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(schedule_from_row).transpose()
}

/// Every schedule, by id.
pub(crate) async fn list(pool: &PgPool, t: &Tables) -> Result<Vec<ScheduleRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} ORDER BY id",
        t.schedules
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(schedule_from_row).collect()
}

/// Applies the given changes; `updated_at = now`.
pub(crate) async fn update(
    pool: &PgPool,
    t: &Tables,
    p: &ScheduleUpdateParams,
) -> Result<ScheduleRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET
            spec = COALESCE($2::jsonb, spec),
            next_fire_at = CASE WHEN $3 THEN $4 ELSE next_fire_at END,
            paused_at = CASE WHEN $5 THEN $6 ELSE paused_at END,
            updated_at = $7
         WHERE id = $1
         RETURNING *",
        t.schedules
    )))
    .bind(p.id)
    .bind(p.spec.as_ref().map(Json))
    .bind(p.next_fire_at.is_some())
    .bind(p.next_fire_at.flatten().map(ts))
    .bind(p.paused_at.is_some())
    .bind(p.paused_at.flatten().map(ts))
    .bind(ts(p.now))
    .fetch_optional(pool)
    .await
    .db()?;
    match row {
        Some(row) => schedule_from_row(&row),
        None => Err(not_found(p.id)),
    }
}

/// Deletes a schedule and its fire history (its jobs stay).
pub(crate) async fn delete(pool: &PgPool, t: &Tables, id: i64) -> Result<ScheduleRow> {
    let mut tx = pool.begin().await.db()?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE id = $1 RETURNING *",
        t.schedules
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .db()?
    .ok_or_else(|| not_found(id))?;
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE schedule_id = $1",
        t.schedule_fires
    )))
    .bind(id)
    .execute(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()?;
    schedule_from_row(&row)
}

/// Active schedules whose `next_fire_at <= now`, oldest due first.
pub(crate) async fn due(
    pool: &PgPool,
    t: &Tables,
    now: jiff::Timestamp,
    limit: u32,
) -> Result<Vec<ScheduleRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE paused_at IS NULL AND next_fire_at IS NOT NULL
           AND next_fire_at <= $1
         ORDER BY next_fire_at, id LIMIT $2",
        t.schedules
    )))
    .bind(ts(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(schedule_from_row).collect()
}

/// Records fires and advances the schedule in one transaction, only if its
/// `next_fire_at` still is the expected one.
///
/// Two schedulers deciding from the same `next_fire_at` both reach the
/// conditional UPDATE; the second blocks on the row until the first
/// commits, then re-checks the condition against the new row and matches
/// nothing. The fires' primary key keeps one record per fire time even
/// when the condition lets both through (an unchanged `next_fire_at`).
pub(crate) async fn fire(pool: &PgPool, t: &Tables, p: ScheduleFireParams) -> Result<FireOutcome> {
    let mut tx = pool.begin().await.db()?;
    let last_fire = p.fires.iter().map(|f| f.fire_at).max();
    let advanced = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET
            next_fire_at = $2,
            last_fire_at = COALESCE($3, last_fire_at),
            state = $4,
            updated_at = $5
         WHERE id = $1 AND next_fire_at IS NOT DISTINCT FROM $6::timestamptz",
        t.schedules
    )))
    .bind(p.id)
    .bind(ts_opt(p.next_fire_at))
    .bind(ts_opt(last_fire))
    .bind(Json(&p.state))
    .bind(ts(p.now))
    .bind(ts_opt(p.expected_next_fire_at))
    .execute(&mut *tx)
    .await
    .db()?
    .rows_affected();
    if advanced == 0 {
        tx.rollback().await.db()?;
        return Ok(FireOutcome {
            applied: false,
            jobs: Vec::new(),
            executions: Vec::new(),
        });
    }
    let record_sql = format!(
        "INSERT INTO {} (schedule_id, fire_at, status, reason, node_id, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (schedule_id, fire_at) DO NOTHING",
        t.schedule_fires
    );
    let outcome_sql = format!(
        "UPDATE {} SET execution_id = $3, job_ids = $4 WHERE schedule_id = $1 AND fire_at = $2",
        t.schedule_fires
    );
    let mut out = FireOutcome {
        applied: true,
        jobs: Vec::new(),
        executions: Vec::new(),
    };
    let no_attributes = BTreeMap::new();
    for f in &p.fires {
        let recorded = sqlx::query(AssertSqlSafe(record_sql.as_str()))
            .bind(p.id)
            .bind(ts(f.fire_at))
            .bind(f.status.as_str())
            .bind(f.reason.as_deref())
            .bind(p.node_id.as_str())
            .bind(ts(p.now))
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        if recorded == 0 {
            // Recorded before (by us or another scheduler): never twice.
            continue;
        }
        let mut execution_id = None;
        let mut jobs = Vec::new();
        if f.status == FireStatus::Fired {
            if let Some((owner_kind, owner_id)) = &f.execution_owner {
                execution_id = Some(
                    create_on(
                        &mut tx,
                        t,
                        &NewExecution {
                            owner_kind,
                            owner_id,
                            trigger: Trigger::Schedule,
                            attributes: &no_attributes,
                            status_message: None,
                            now: p.now,
                        },
                    )
                    .await?,
                );
            }
            let origin = Origin {
                execution_id,
                schedule_id: Some(p.id),
                fire_at: Some(f.fire_at),
            };
            jobs = match execution_id {
                Some(id) => insert_jobs(&mut tx, t, id, &f.jobs, origin).await?,
                None => insert_many_from(&mut tx, t, &f.jobs, origin, Wake::InTransaction).await?,
            };
            let job_ids: Vec<i64> = jobs
                .iter()
                .filter(|j| j.inserted)
                .map(|j| j.job.id)
                .collect();
            if execution_id.is_some() || !job_ids.is_empty() {
                sqlx::query(AssertSqlSafe(outcome_sql.as_str()))
                    .bind(p.id)
                    .bind(ts(f.fire_at))
                    .bind(execution_id)
                    .bind(Json(&job_ids))
                    .execute(&mut *tx)
                    .await
                    .db()?;
            }
        }
        out.jobs.push(jobs);
        out.executions.push(execution_id);
    }
    tx.commit().await.db()?;
    Ok(out)
}

/// Fire history, newest first, with the outcome of each fire's jobs.
pub(crate) async fn fires(pool: &PgPool, t: &Tables, p: &FireListParams) -> Result<Vec<FireRow>> {
    let limit = if p.limit == 0 || p.limit > MAX_LIST_LIMIT {
        MAX_LIST_LIMIT
    } else {
        p.limit
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT f.*, o.unfinished, o.unsuccessful, o.started_at,
                CASE WHEN o.unfinished = 0 THEN o.finished_at END AS finished_at
         FROM {fires} f
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE j.state IN {UNFINISHED}) AS unfinished,
                    count(*) FILTER (WHERE j.state IN ('failed', 'canceled')) AS unsuccessful,
                    min(j.started_at) AS started_at,
                    max(j.finished_at) AS finished_at
             FROM {jobs} j
             WHERE j.schedule_id = f.schedule_id AND j.fire_at = f.fire_at
         ) o
         WHERE f.schedule_id = $1 AND ($2::timestamptz IS NULL OR f.fire_at < $2)
         ORDER BY f.fire_at DESC
         LIMIT $3",
        fires = t.schedule_fires,
        jobs = t.jobs,
    )))
    .bind(p.schedule_id)
    .bind(ts_opt(p.before))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(fire_from_row).collect()
}

/// Unfinished jobs created by a schedule.
pub(crate) async fn unfinished(pool: &PgPool, t: &Tables, id: i64) -> Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {} WHERE schedule_id = $1 AND state IN {UNFINISHED}",
        t.jobs
    )))
    .bind(id)
    .fetch_one(pool)
    .await
    .db()
}
