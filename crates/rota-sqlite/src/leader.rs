//! Leader election through one lease row (`rota_leader`, name `default`)
//! with an increasing term, and the history of terms
//! (`rota_leader_terms`).
//!
//! ```text
//!   no leader / lease expired ──elect──► leader(node, term = last + 1)
//!        ▲                                  │  reelect (same node and term):
//!        │                                  │  expires_at = now + ttl
//!        └──── resign (expires_at = now) ◄──┘
//! ```

use rota_driver::{LeaderElectParams, LeaderReelectParams, LeaderTerm, Result};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use crate::error::map_sqlx;
use crate::row::{add_micros, micros, timestamp};

const NAME: &str = "default";

fn term_from_row(r: &SqliteRow) -> Result<LeaderTerm> {
    Ok(LeaderTerm {
        node_id: r.try_get("node_id").map_err(map_sqlx)?,
        term: r.try_get("term").map_err(map_sqlx)?,
        elected_at: timestamp("elected_at", r.try_get("elected_at").map_err(map_sqlx)?)?,
        expires_at: timestamp("expires_at", r.try_get("expires_at").map_err(map_sqlx)?)?,
    })
}

/// Becomes leader when there is none or its lease expired at `now`.
pub(crate) async fn attempt_elect(
    conn: &mut SqliteConnection,
    p: &LeaderElectParams,
) -> Result<Option<LeaderTerm>> {
    let now = micros(p.now);
    let live: Option<i64> =
        sqlx::query_scalar("SELECT term FROM rota_leader WHERE name = ? AND expires_at > ?")
            .bind(NAME)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    if live.is_some() {
        return Ok(None);
    }
    let expires = add_micros(p.now, p.ttl);
    let row = sqlx::query(
        "INSERT INTO rota_leader (name, node_id, term, elected_at, expires_at) \
         VALUES (?1, ?2, 1 + MAX(COALESCE((SELECT MAX(term) FROM rota_leader_terms), 0), \
             COALESCE((SELECT term FROM rota_leader WHERE name = ?1), 0)), ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id, term = excluded.term, \
             elected_at = excluded.elected_at, expires_at = excluded.expires_at \
         RETURNING node_id, term, elected_at, expires_at",
    )
    .bind(NAME)
    .bind(p.node_id.as_str())
    .bind(now)
    .bind(expires)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let term = term_from_row(&row)?;
    sqlx::query(
        "INSERT INTO rota_leader_terms (term, node_id, elected_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(term.term)
    .bind(term.node_id.as_str())
    .bind(now)
    .bind(expires)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(Some(term))
}

/// Extends our own term; `None` when another node has taken over.
pub(crate) async fn attempt_reelect(
    conn: &mut SqliteConnection,
    p: &LeaderReelectParams,
) -> Result<Option<LeaderTerm>> {
    let expires = add_micros(p.now, p.ttl);
    let row = sqlx::query(
        "UPDATE rota_leader SET expires_at = ? WHERE name = ? AND node_id = ? AND term = ? \
         RETURNING node_id, term, elected_at, expires_at",
    )
    .bind(expires)
    .bind(NAME)
    .bind(p.node_id.as_str())
    .bind(p.term)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let Some(row) = row else { return Ok(None) };
    set_term_expiry(conn, p.term, expires).await?;
    Ok(Some(term_from_row(&row)?))
}

/// Gives up `term` at once (its lease expires now).
pub(crate) async fn resign(conn: &mut SqliteConnection, p: &LeaderReelectParams) -> Result<()> {
    let now = micros(p.now);
    let n = sqlx::query(
        "UPDATE rota_leader SET expires_at = MIN(expires_at, ?) WHERE name = ? AND node_id = ? AND term = ?",
    )
    .bind(now)
    .bind(NAME)
    .bind(p.node_id.as_str())
    .bind(p.term)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?
    .rows_affected();
    if n > 0 {
        set_term_expiry(conn, p.term, now).await?;
    }
    Ok(())
}

async fn set_term_expiry(conn: &mut SqliteConnection, term: i64, expires: i64) -> Result<()> {
    sqlx::query("UPDATE rota_leader_terms SET expires_at = ? WHERE term = ?")
        .bind(expires)
        .bind(term)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// The leader whose lease has not expired at `now`.
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    now: jiff::Timestamp,
) -> Result<Option<LeaderTerm>> {
    let row = sqlx::query("SELECT node_id, term, elected_at, expires_at FROM rota_leader WHERE name = ? AND expires_at > ?")
        .bind(NAME)
        .bind(micros(now))
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    row.as_ref().map(term_from_row).transpose()
}

/// Every recorded term, oldest first.
pub(crate) async fn terms(conn: &mut SqliteConnection) -> Result<Vec<LeaderTerm>> {
    let rows = sqlx::query(
        "SELECT node_id, term, elected_at, expires_at FROM rota_leader_terms ORDER BY term",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    rows.iter().map(term_from_row).collect()
}
