//! API keys: insert, get, list, revoke. Only the hash of a secret is stored.

use rota_driver::{ApiKeyInsertParams, ApiKeyRow, DriverError, Result};
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;
use crate::row::{api_key_columns, api_key_from_row, micros};

/// A new key; a duplicate id violates the primary key.
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO rota_api_keys (id, name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?, ?) \
     RETURNING ",
    api_key_columns!()
);

/// One key by id.
pub(crate) const GET_SQL: &str = concat!(
    "SELECT ",
    api_key_columns!(),
    " FROM rota_api_keys WHERE id = ?"
);

/// Every key, by creation time (id breaks ties).
pub(crate) const LIST_SQL: &str = concat!(
    "SELECT ",
    api_key_columns!(),
    " FROM rota_api_keys ORDER BY created_at, id"
);

/// Sets `revoked_at` unless already set.
pub(crate) const REVOKE_SQL: &str = concat!(
    "UPDATE rota_api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING ",
    api_key_columns!()
);

/// Stores a new key; a duplicate id is [`DriverError::Conflict`].
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    p: &ApiKeyInsertParams,
) -> Result<ApiKeyRow> {
    let row = sqlx::query(INSERT_SQL)
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(p.scope.as_str())
        .bind(p.secret_hash.as_str())
        .bind(micros(p.now))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match map_sqlx(e) {
            DriverError::Conflict(m) => {
                DriverError::Conflict(format!("API key {} already exists ({m})", p.id))
            }
            other => other,
        })?;
    api_key_from_row(&row)
}

/// One key by id, revoked or not.
pub(crate) async fn get(conn: &mut SqliteConnection, id: &str) -> Result<Option<ApiKeyRow>> {
    let row = sqlx::query(GET_SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    row.as_ref().map(api_key_from_row).transpose()
}

/// Every key, by creation time.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<ApiKeyRow>> {
    let rows = sqlx::query(LIST_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(api_key_from_row).collect()
}

/// Revokes a key, keeping the first `revoked_at`.
pub(crate) async fn revoke(
    conn: &mut SqliteConnection,
    id: &str,
    now: jiff::Timestamp,
) -> Result<ApiKeyRow> {
    let row = sqlx::query(REVOKE_SQL)
        .bind(micros(now))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    match row {
        Some(row) => api_key_from_row(&row),
        None => Err(DriverError::NotFound {
            entity: "api_key",
            id: id.to_owned(),
        }),
    }
}
