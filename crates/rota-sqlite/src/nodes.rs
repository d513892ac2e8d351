//! Worker nodes: registration and heartbeat (upsert), listing, drain,
//! removal and pruning of nodes that stopped heartbeating.

use rota_driver::{
    DriverError, NodeDrainParams, NodePruneParams, NodeRow, NodeUpsertParams, Result,
};
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;
use crate::row::{micros, node_columns, node_from_row, to_json};

/// Insert or update by id; `started_at` and `draining_at` keep their stored
/// values on update.
pub(crate) const UPSERT_SQL: &str = concat!(
    "INSERT INTO rota_nodes (id, host, labels, queues, running, started_at, heartbeat_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (id) DO UPDATE SET host = excluded.host, labels = excluded.labels, \
     queues = excluded.queues, running = excluded.running, heartbeat_at = excluded.heartbeat_at \
     RETURNING ",
    node_columns!()
);

/// Sets `draining_at` unless already set.
pub(crate) const DRAIN_SQL: &str = concat!(
    "UPDATE rota_nodes SET draining_at = COALESCE(draining_at, ?) WHERE id = ? RETURNING ",
    node_columns!()
);

/// Every node, by id.
pub(crate) const LIST_SQL: &str =
    concat!("SELECT ", node_columns!(), " FROM rota_nodes ORDER BY id");

/// Nodes whose last heartbeat is strictly before the cutoff.
pub(crate) const PRUNE_SQL: &str = "DELETE FROM rota_nodes WHERE heartbeat_at < ?";

/// Registers a node or records its heartbeat.
pub(crate) async fn upsert(conn: &mut SqliteConnection, p: &NodeUpsertParams) -> Result<NodeRow> {
    let row = sqlx::query(UPSERT_SQL)
        .bind(p.id.as_str())
        .bind(p.host.as_str())
        .bind(to_json(&p.labels)?)
        .bind(to_json(&p.queues)?)
        .bind(p.running)
        .bind(micros(p.started_at))
        .bind(micros(p.now))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    node_from_row(&row)
}

/// Every node, by id.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<NodeRow>> {
    let rows = sqlx::query(LIST_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(node_from_row).collect()
}

/// Asks a node to drain, keeping the first `draining_at`.
pub(crate) async fn drain(conn: &mut SqliteConnection, p: &NodeDrainParams) -> Result<NodeRow> {
    let row = sqlx::query(DRAIN_SQL)
        .bind(micros(p.now))
        .bind(p.id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    match row {
        Some(row) => node_from_row(&row),
        None => Err(DriverError::NotFound {
            entity: "node",
            id: p.id.clone(),
        }),
    }
}

/// Removes a node; unknown ids are ignored.
pub(crate) async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM rota_nodes WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Removes nodes whose last heartbeat is before the cutoff; returns how many.
pub(crate) async fn prune(conn: &mut SqliteConnection, p: &NodePruneParams) -> Result<u64> {
    let n = sqlx::query(PRUNE_SQL)
        .bind(micros(p.heartbeat_before))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
    Ok(n)
}
