//! Leader election through a leased row, with a history of terms.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rota_driver::{DriverError, LeaderElectParams, LeaderReelectParams, LeaderTerm, Result};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

use crate::error::SqlxResultExt;
use crate::options::Tables;
use crate::row::{leader_from_row, ts};

/// The one leadership group per schema.
const GROUP: &str = "default";

fn expiry(now: Timestamp, ttl: Duration) -> Result<Timestamp> {
    let ttl = SignedDuration::try_from(ttl)
        .map_err(|e| DriverError::Database(format!("leader ttl out of range: {e}")))?;
    now.checked_add(ttl)
        .map_err(|e| DriverError::Database(format!("leader expiry out of range: {e}")))
}

/// Takes leadership when there is no leader or its lease expired; records
/// the new term in the history in the same statement.
pub(crate) async fn attempt_elect(
    pool: &PgPool,
    t: &Tables,
    p: &LeaderElectParams,
) -> Result<Option<LeaderTerm>> {
    let expires_at = expiry(p.now, p.ttl)?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "WITH e AS (
            INSERT INTO {leader} AS l (name, node_id, term, elected_at, expires_at)
            VALUES ($1, $2, COALESCE((SELECT max(term) FROM {terms}), 0) + 1, $3, $4)
            ON CONFLICT (name) DO UPDATE
            SET node_id = EXCLUDED.node_id, term = l.term + 1,
                elected_at = EXCLUDED.elected_at, expires_at = EXCLUDED.expires_at
            WHERE l.expires_at < EXCLUDED.elected_at
            RETURNING node_id, term, elected_at, expires_at
        ), h AS (
            INSERT INTO {terms} (term, node_id, elected_at, expires_at)
            SELECT term, node_id, elected_at, expires_at FROM e
        )
        SELECT * FROM e",
        leader = t.leader,
        terms = t.leader_terms
    )))
    .bind(GROUP)
    .bind(p.node_id.as_str())
    .bind(ts(p.now))
    .bind(ts(expires_at))
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(leader_from_row).transpose()
}

/// Extends our own unexpired term.
pub(crate) async fn attempt_reelect(
    pool: &PgPool,
    t: &Tables,
    p: &LeaderReelectParams,
) -> Result<Option<LeaderTerm>> {
    let expires_at = expiry(p.now, p.ttl)?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "WITH r AS (
            UPDATE {leader} SET expires_at = $5
            WHERE name = $1 AND node_id = $2 AND term = $3 AND expires_at >= $4
            RETURNING node_id, term, elected_at, expires_at
        ), h AS (
            UPDATE {terms} t SET expires_at = r.expires_at FROM r WHERE t.term = r.term
        )
        SELECT * FROM r",
        leader = t.leader,
        terms = t.leader_terms
    )))
    .bind(GROUP)
    .bind(p.node_id.as_str())
    .bind(p.term)
    .bind(ts(p.now))
    .bind(ts(expires_at))
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(leader_from_row).transpose()
}

/// Gives up `term` at once: the leader row goes, the history row ends now.
pub(crate) async fn resign(pool: &PgPool, t: &Tables, p: &LeaderReelectParams) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "WITH d AS (
            DELETE FROM {leader} WHERE name = $1 AND node_id = $2 AND term = $3
            RETURNING term
        )
        UPDATE {terms} t SET expires_at = LEAST(t.expires_at, $4) FROM d WHERE t.term = d.term",
        leader = t.leader,
        terms = t.leader_terms
    )))
    .bind(GROUP)
    .bind(p.node_id.as_str())
    .bind(p.term)
    .bind(ts(p.now))
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

/// The leader whose lease has not expired at `now`.
pub(crate) async fn get(pool: &PgPool, t: &Tables, now: Timestamp) -> Result<Option<LeaderTerm>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT node_id, term, elected_at, expires_at FROM {} WHERE name = $1 AND expires_at >= $2",
        t.leader
    )))
    .bind(GROUP)
    .bind(ts(now))
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(leader_from_row).transpose()
}

/// Every recorded term, oldest first.
pub(crate) async fn terms(pool: &PgPool, t: &Tables) -> Result<Vec<LeaderTerm>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT node_id, term, elected_at, expires_at FROM {} ORDER BY term",
        t.leader_terms
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(leader_from_row).collect()
}
