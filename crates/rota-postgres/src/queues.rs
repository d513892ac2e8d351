//! Queue settings (pause / resume) and the per-queue overview.

use std::collections::BTreeMap;

use rota_driver::{QueuePauseParams, QueueRow, Result};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};

use crate::error::SqlxResultExt;
use crate::options::Tables;
use crate::row::{PgTs, state_from_str, ts};

/// Pauses a queue, keeping the first pause time when already paused.
pub(crate) async fn pause(pool: &PgPool, t: &Tables, p: &QueuePauseParams) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {q} AS q (name, paused_at, updated_at) VALUES ($1, $2, $2)
         ON CONFLICT (name) DO UPDATE
         SET paused_at = COALESCE(q.paused_at, EXCLUDED.paused_at), updated_at = EXCLUDED.updated_at",
        q = t.queues
    )))
    .bind(p.name.as_str())
    .bind(ts(p.now))
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

/// Resumes a queue and wakes its workers.
pub(crate) async fn resume(pool: &PgPool, t: &Tables, p: &QueuePauseParams) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "WITH u AS (
            UPDATE {q} SET paused_at = NULL, updated_at = $2
            WHERE name = $1 AND paused_at IS NOT NULL
            RETURNING name
        )
        SELECT pg_notify($3, name) FROM u",
        q = t.queues
    )))
    .bind(p.name.as_str())
    .bind(ts(p.now))
    .bind(&t.channel)
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

/// Every queue that has jobs or a stored setting, by name.
pub(crate) async fn list(pool: &PgPool, t: &Tables) -> Result<Vec<QueueRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "WITH c AS (SELECT queue, state, count(*) AS n FROM {jobs} GROUP BY queue, state)
         SELECT COALESCE(c.queue, q.name) AS name, q.paused_at, c.state, c.n
         FROM c FULL JOIN {queues} q ON q.name = c.queue
         ORDER BY 1",
        jobs = t.jobs,
        queues = t.queues
    )))
    .fetch_all(pool)
    .await
    .db()?;
    let mut out: Vec<QueueRow> = Vec::new();
    for r in &rows {
        let name: String = r.try_get("name").db()?;
        let paused_at: Option<PgTs> = r.try_get("paused_at").db()?;
        let state: Option<String> = r.try_get("state").db()?;
        let n: Option<i64> = r.try_get("n").db()?;
        if out.last().is_none_or(|q| q.name != name) {
            out.push(QueueRow {
                name,
                paused_at: paused_at.map(PgTs::to_jiff),
                counts: BTreeMap::new(),
            });
        }
        if let (Some(state), Some(n), Some(row)) = (state, n, out.last_mut()) {
            row.counts.insert(state_from_str(&state)?, n);
        }
    }
    Ok(out)
}
