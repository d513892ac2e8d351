//! API keys: insert, get, list, revoke. Only the hash of a secret is stored.

use jiff::Timestamp;
use rota_driver::{ApiKeyInsertParams, ApiKeyRow, DriverError, Result};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

use crate::error::SqlxResultExt;
use crate::options::Tables;
use crate::row::{api_key_from_row, ts};

/// Stores a new key; a duplicate id is [`DriverError::Conflict`].
pub(crate) async fn insert(pool: &PgPool, t: &Tables, p: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (id, name, scope, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING *",
        t.api_keys
    )))
    .bind(p.id.as_str())
    .bind(p.name.as_str())
    .bind(p.scope.as_str())
    .bind(p.secret_hash.as_str())
    .bind(ts(p.now))
    .fetch_one(pool)
    .await
    .db()
    .map_err(|e| match e {
        DriverError::Conflict(m) => {
            DriverError::Conflict(format!("API key {} already exists ({m})", p.id))
        }
        other => other,
    })?;
    api_key_from_row(&row)
}

/// One key by id, revoked or not.
pub(crate) async fn get(pool: &PgPool, t: &Tables, id: &str) -> Result<Option<ApiKeyRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        t.api_keys
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(api_key_from_row).transpose()
}

/// Every key, by creation time (id breaks ties).
pub(crate) async fn list(pool: &PgPool, t: &Tables) -> Result<Vec<ApiKeyRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} ORDER BY created_at, id",
        t.api_keys
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(api_key_from_row).collect()
}

/// Revokes a key, keeping the first `revoked_at`.
pub(crate) async fn revoke(
    pool: &PgPool,
    t: &Tables,
    id: &str,
    now: Timestamp,
) -> Result<ApiKeyRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *",
        t.api_keys
    )))
    .bind(id)
    .bind(ts(now))
    .fetch_optional(pool)
    .await
    .db()?;
    match row {
        Some(row) => api_key_from_row(&row),
        None => Err(DriverError::NotFound {
            entity: "api_key",
            id: id.to_owned(),
        }),
    }
}
