//! Schedules and their fire history. The definition and the engine's state
//! are opaque JSON; the store indexes only the next fire time, and records
//! each `(schedule, fire_at)` at most once.

use rota_driver::{
    DriverError, FireListParams, FireOutcome, FireRow, FireStatus, InsertedJob, Result,
    ScheduleFireParams, ScheduleInsertParams, ScheduleRow, ScheduleUpdateParams, Trigger,
};
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;
use crate::executions::{insert_row as insert_execution, page, wake_inserted};
use crate::insert::{JobOrigin, insert_many};
use crate::row::{fire_from_row, micros, opt_micros, schedule_columns, schedule_from_row, to_json};
use crate::writer::OpEffects;

/// A new schedule; a duplicate name violates the unique constraint.
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO rota_schedules (name, spec, next_fire_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?4) RETURNING ",
    schedule_columns!()
);

/// One schedule by id.
pub(crate) const GET_SQL: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM rota_schedules WHERE id = ?"
);

/// Every schedule, by id.
pub(crate) const LIST_SQL: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM rota_schedules ORDER BY id"
);

/// Applies the fields whose flag is set.
pub(crate) const UPDATE_SQL: &str = concat!(
    "UPDATE rota_schedules SET spec = CASE WHEN ?1 THEN ?2 ELSE spec END, \
     next_fire_at = CASE WHEN ?3 THEN ?4 ELSE next_fire_at END, \
     paused_at = CASE WHEN ?5 THEN ?6 ELSE paused_at END, updated_at = ?7 \
     WHERE id = ?8 RETURNING ",
    schedule_columns!()
);

/// Deletes a schedule, returning it.
pub(crate) const DELETE_SQL: &str = concat!(
    "DELETE FROM rota_schedules WHERE id = ? RETURNING ",
    schedule_columns!()
);

/// Active schedules due at a time, by the due index.
pub(crate) const DUE_SQL: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM rota_schedules INDEXED BY rota_schedules_due_idx \
     WHERE paused_at IS NULL AND next_fire_at IS NOT NULL AND next_fire_at <= ? \
     ORDER BY next_fire_at, id LIMIT ?"
);

/// Advances a schedule only if its next fire is still the expected one.
pub(crate) const ADVANCE_SQL: &str = "UPDATE rota_schedules SET next_fire_at = ?1, \
     last_fire_at = COALESCE(?2, last_fire_at), state = ?3, updated_at = ?4 \
     WHERE id = ?5 AND next_fire_at IS ?6";

/// Records one fire unless that fire time is already recorded.
pub(crate) const RECORD_SQL: &str = "INSERT INTO rota_schedule_fires \
     (schedule_id, fire_at, status, reason, node_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT DO NOTHING";

/// Stores what a recorded fire created.
pub(crate) const RECORD_CREATED_SQL: &str = "UPDATE rota_schedule_fires SET execution_id = ?, \
     job_ids = ? WHERE schedule_id = ? AND fire_at = ?";

/// A page of fire history, newest first, with the outcome of each fire's
/// jobs (found by `(schedule_id, fire_at)`).
pub(crate) const FIRES_SQL: &str = "WITH page AS (SELECT schedule_id, fire_at, status, reason, node_id, \
         recorded_at, execution_id, job_ids FROM rota_schedule_fires \
         WHERE schedule_id = ?1 AND fire_at < ?2 ORDER BY fire_at DESC LIMIT ?3) \
     SELECT p.schedule_id, p.fire_at, p.status, p.reason, p.node_id, p.recorded_at, p.execution_id, \
         p.job_ids, \
         COALESCE(SUM(j.state IN ('scheduled', 'available', 'running', 'retrying')), 0) AS unfinished, \
         COALESCE(SUM(j.state IN ('failed', 'canceled')), 0) AS unsuccessful, \
         MIN(j.started_at) AS first_started_at, MAX(j.finished_at) AS last_finished_at \
     FROM page p LEFT JOIN rota_jobs j ON j.schedule_id = p.schedule_id AND j.fire_at = p.fire_at \
     GROUP BY p.schedule_id, p.fire_at ORDER BY p.fire_at DESC";

/// Unfinished jobs a schedule created.
pub(crate) const UNFINISHED_SQL: &str = "SELECT COUNT(*) FROM rota_jobs WHERE schedule_id = ? \
     AND state IN ('scheduled', 'available', 'running', 'retrying')";

fn not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "schedule",
        id: id.to_string(),
    }
}

/// Creates a schedule; a duplicate name is [`DriverError::Conflict`].
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    p: &ScheduleInsertParams,
) -> Result<ScheduleRow> {
    let row = sqlx::query(INSERT_SQL)
        .bind(p.name.as_str())
        .bind(to_json(&p.spec)?)
        .bind(opt_micros(p.next_fire_at))
        .bind(micros(p.now))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match map_sqlx(e) {
            DriverError::Conflict(m) => {
                DriverError::Conflict(format!("schedule {:?} already exists ({m})", p.name))
            }
            other => other,
        })?;
    schedule_from_row(&row)
}

/// One schedule by id.
pub(crate) async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Option<ScheduleRow>> {
    let row = sqlx::query(GET_SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    row.as_ref().map(schedule_from_row).transpose()
}

/// Every schedule, by id.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<ScheduleRow>> {
    let rows = sqlx::query(LIST_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(schedule_from_row).collect()
}

/// Applies the given fields.
pub(crate) async fn update(
    conn: &mut SqliteConnection,
    p: &ScheduleUpdateParams,
) -> Result<ScheduleRow> {
    let spec = p.spec.as_ref().map(to_json).transpose()?;
    let row = sqlx::query(UPDATE_SQL)
        .bind(spec.is_some())
        .bind(spec)
        .bind(p.next_fire_at.is_some())
        .bind(p.next_fire_at.flatten().map(micros))
        .bind(p.paused_at.is_some())
        .bind(p.paused_at.flatten().map(micros))
        .bind(micros(p.now))
        .bind(p.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    match row {
        Some(row) => schedule_from_row(&row),
        None => Err(not_found(p.id)),
    }
}

/// Deletes a schedule and its fire history; its jobs stay.
pub(crate) async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<ScheduleRow> {
    let row = sqlx::query(DELETE_SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .ok_or_else(|| not_found(id))?;
    sqlx::query("DELETE FROM rota_schedule_fires WHERE schedule_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    schedule_from_row(&row)
}

/// Active schedules due at `now`, oldest due first.
pub(crate) async fn due(
    conn: &mut SqliteConnection,
    now: jiff::Timestamp,
    limit: u32,
) -> Result<Vec<ScheduleRow>> {
    let rows = sqlx::query(DUE_SQL)
        .bind(micros(now))
        .bind(page(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(schedule_from_row).collect()
}

/// Advances the schedule if nobody else did, records the fires (each at
/// most once) and creates their jobs (inside a new execution when asked).
/// The outcome has one entry per given fire, in order; fires already
/// recorded, and skipped ones, created nothing.
pub(crate) async fn fire(
    conn: &mut SqliteConnection,
    fx: &mut OpEffects,
    p: ScheduleFireParams,
) -> Result<FireOutcome> {
    let last = p.fires.iter().map(|f| f.fire_at).max();
    let now = micros(p.now);
    let advanced = sqlx::query(ADVANCE_SQL)
        .bind(opt_micros(p.next_fire_at))
        .bind(opt_micros(last))
        .bind(to_json(&p.state)?)
        .bind(now)
        .bind(p.id)
        .bind(opt_micros(p.expected_next_fire_at))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
    if advanced == 0 {
        // Another scheduler won (or the schedule is gone): nothing written.
        return Ok(FireOutcome {
            applied: false,
            jobs: Vec::new(),
            executions: Vec::new(),
        });
    }
    let mut out = FireOutcome {
        applied: true,
        jobs: Vec::with_capacity(p.fires.len()),
        executions: Vec::with_capacity(p.fires.len()),
    };
    for record in p.fires {
        let fire_at = micros(record.fire_at);
        let recorded = sqlx::query(RECORD_SQL)
            .bind(p.id)
            .bind(fire_at)
            .bind(record.status.as_str())
            .bind(record.reason.as_deref())
            .bind(p.node_id.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?
            .rows_affected()
            > 0;
        if !recorded || record.status != FireStatus::Fired {
            out.jobs.push(Vec::new());
            out.executions.push(None);
            continue;
        }
        let execution_id = match &record.execution_owner {
            Some((kind, owner)) => Some(
                insert_execution(
                    conn,
                    kind,
                    owner,
                    Trigger::Schedule,
                    &Default::default(),
                    None,
                    p.now,
                )
                .await?,
            ),
            None => None,
        };
        let jobs: Vec<InsertedJob> = insert_many(
            conn,
            record.jobs,
            JobOrigin {
                execution_id,
                schedule_id: Some(p.id),
                fire_at: Some(fire_at),
            },
        )
        .await?;
        wake_inserted(fx, &jobs);
        let created: Vec<i64> = jobs
            .iter()
            .filter(|j| j.inserted)
            .map(|j| j.job.id)
            .collect();
        sqlx::query(RECORD_CREATED_SQL)
            .bind(execution_id)
            .bind(to_json(&created)?)
            .bind(p.id)
            .bind(fire_at)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
        out.jobs.push(jobs);
        out.executions.push(execution_id);
    }
    Ok(out)
}

/// Fire history, newest first, with each fire's job outcome.
pub(crate) async fn fires(conn: &mut SqliteConnection, p: &FireListParams) -> Result<Vec<FireRow>> {
    let rows = sqlx::query(FIRES_SQL)
        .bind(p.schedule_id)
        .bind(opt_micros(p.before).unwrap_or(i64::MAX))
        .bind(page(p.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(fire_from_row).collect()
}

/// Unfinished jobs created by a schedule.
pub(crate) async fn unfinished(conn: &mut SqliteConnection, id: i64) -> Result<i64> {
    sqlx::query_scalar(UNFINISHED_SQL)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)
}
