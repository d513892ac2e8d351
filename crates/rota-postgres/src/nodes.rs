//! Worker nodes: registration and heartbeat (upsert), listing, drain,
//! removal and pruning of nodes that stopped heartbeating.

use rota_driver::{
    DriverError, NodeDrainParams, NodePruneParams, NodeRow, NodeUpsertParams, Result,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use sqlx::types::Json;

use crate::error::SqlxResultExt;
use crate::options::Tables;
use crate::row::{node_from_row, ts};

/// Registers a node or records its heartbeat: insert or update by id, keeping
/// the stored `started_at` and `draining_at`.
pub(crate) async fn upsert(pool: &PgPool, t: &Tables, p: &NodeUpsertParams) -> Result<NodeRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {nodes} AS n (id, host, labels, queues, running, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE
         SET host = EXCLUDED.host, labels = EXCLUDED.labels, queues = EXCLUDED.queues,
             running = EXCLUDED.running, heartbeat_at = EXCLUDED.heartbeat_at
         RETURNING *",
        nodes = t.nodes
    )))
    .bind(p.id.as_str())
    .bind(p.host.as_str())
    .bind(Json(&p.labels))
    .bind(Json(&p.queues))
    .bind(p.running)
    .bind(ts(p.started_at))
    .bind(ts(p.now))
    .fetch_one(pool)
    .await
    .db()?;
    node_from_row(&row)
}

/// Every node, by id.
pub(crate) async fn list(pool: &PgPool, t: &Tables) -> Result<Vec<NodeRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} ORDER BY id",
        t.nodes
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(node_from_row).collect()
}

/// Asks a node to drain, keeping the first `draining_at`.
pub(crate) async fn drain(pool: &PgPool, t: &Tables, p: &NodeDrainParams) -> Result<NodeRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET draining_at = COALESCE(draining_at, $2) WHERE id = $1 RETURNING *",
        t.nodes
    )))
    .bind(p.id.as_str())
    .bind(ts(p.now))
    .fetch_optional(pool)
    .await
    .db()?;
    match row {
        Some(row) => node_from_row(&row),
        None => Err(DriverError::NotFound {
            entity: "node",
            id: p.id.clone(),
        }),
    }
}

/// Removes a node; unknown ids are ignored.
pub(crate) async fn delete(pool: &PgPool, t: &Tables, id: &str) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE id = $1",
        t.nodes
    )))
    .bind(id)
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

/// Removes nodes whose last heartbeat is strictly before the cutoff; returns
/// how many.
pub(crate) async fn prune(pool: &PgPool, t: &Tables, p: &NodePruneParams) -> Result<u64> {
    let n = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE heartbeat_at < $1",
        t.nodes
    )))
    .bind(ts(p.heartbeat_before))
    .execute(pool)
    .await
    .db()?
    .rows_affected();
    Ok(n)
}
