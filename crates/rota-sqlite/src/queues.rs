//! Queue settings: pause, resume, list.

use std::collections::BTreeMap;

use rota_driver::{QueuePauseParams, QueueRow, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;
use crate::jobs::counts_by_queue;
use crate::row::{micros, timestamp};

/// Pauses a queue; a paused queue keeps its first `paused_at`.
pub(crate) async fn pause(conn: &mut SqliteConnection, p: &QueuePauseParams) -> Result<()> {
    sqlx::query(
        "INSERT INTO rota_queues (name, paused_at, updated_at) VALUES (?1, ?2, ?2) \
         ON CONFLICT (name) DO UPDATE SET paused_at = COALESCE(rota_queues.paused_at, excluded.paused_at), \
         updated_at = excluded.updated_at",
    )
    .bind(p.name.as_str())
    .bind(micros(p.now))
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Resumes a queue; returns whether it was paused.
pub(crate) async fn resume(conn: &mut SqliteConnection, p: &QueuePauseParams) -> Result<bool> {
    let n = sqlx::query("UPDATE rota_queues SET paused_at = NULL, updated_at = ? WHERE name = ? AND paused_at IS NOT NULL")
        .bind(micros(p.now))
        .bind(p.name.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
    Ok(n > 0)
}

/// Every queue that has jobs or a stored setting, by name.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<QueueRow>> {
    let mut queues: BTreeMap<String, QueueRow> = BTreeMap::new();
    let rows = sqlx::query("SELECT name, paused_at FROM rota_queues")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    for r in &rows {
        let name: String = r.try_get("name").map_err(map_sqlx)?;
        let paused_at: Option<i64> = r.try_get("paused_at").map_err(map_sqlx)?;
        queues.insert(
            name.clone(),
            QueueRow {
                name,
                paused_at: paused_at.map(|us| timestamp("paused_at", us)).transpose()?,
                counts: BTreeMap::new(),
            },
        );
    }
    for (name, counts) in counts_by_queue(conn).await? {
        queues
            .entry(name.clone())
            .or_insert_with(|| QueueRow {
                name,
                paused_at: None,
                counts: BTreeMap::new(),
            })
            .counts = counts;
    }
    Ok(queues.into_values().collect())
}
