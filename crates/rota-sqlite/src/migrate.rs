//! Rota's own migrator: SQL files embedded in the binary, tracked in
//! `rota_migrations(version, name, applied_at)` so they never clash with a
//! user's `_sqlx_migrations`.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction that first
//! re-checks whether the version is applied: two processes starting at once
//! serialize on the write lock, and the second finds the work done.

use jiff::Timestamp;
use rota_driver::{DriverError, MigrationStatus, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::row::{micros, timestamp};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Sequential version, from 1.
    pub(crate) version: i64,
    /// Short description.
    pub(crate) name: &'static str,
    /// The SQL, possibly several statements.
    pub(crate) sql: &'static str,
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "nodes_keys",
        sql: include_str!("../migrations/0002_nodes_keys.sql"),
    },
    Migration {
        version: 3,
        name: "executions_schedules_webhooks",
        sql: include_str!("../migrations/0003_executions_schedules_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "lean_job_indexes",
        sql: include_str!("../migrations/0004_lean_job_indexes.sql"),
    },
    Migration {
        version: 5,
        name: "drop_kind_index",
        sql: include_str!("../migrations/0005_drop_kind_index.sql"),
    },
    Migration {
        version: 6,
        name: "no_constant_in_lists",
        sql: include_str!("../migrations/0006_no_constant_in_lists.sql"),
    },
    Migration {
        version: 7,
        name: "insert_side_effects_in_driver",
        sql: include_str!("../migrations/0007_insert_side_effects_in_driver.sql"),
    },
    Migration {
        version: 8,
        name: "update_side_effects_in_driver",
        sql: include_str!("../migrations/0008_update_side_effects_in_driver.sql"),
    },
];

fn failed(step: &str, err: sqlx::Error) -> DriverError {
    DriverError::Migration(format!("{step}: {err}"))
}

/// Applies every pending migration on `conn` (which must not be inside a
/// transaction). Idempotent and safe to run from several processes at once.
pub(crate) async fn migrate(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS rota_migrations (version INTEGER PRIMARY KEY NOT NULL, \
         name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| failed("creating rota_migrations", e))?;
    for m in MIGRATIONS {
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("BEGIN IMMEDIATE", e))?;
        let result = apply(conn, m).await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::raw_sql(end).execute(&mut *conn).await;
        if result.is_err() {
            // A migration that failed half way through a schema edit
            // (0006) leaves the flag on; a rollback does not reset it.
            let _ = sqlx::raw_sql("PRAGMA writable_schema = RESET")
                .execute(&mut *conn)
                .await;
        }
        result?;
        ended.map_err(|e| failed(end, e))?;
    }
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM rota_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| failed("reading rota_migrations", e))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if newest.is_some_and(|v| v > known) {
        tracing::warn!(
            database = newest,
            known,
            "the SQLite database has migrations newer than this build of Rota"
        );
    }
    Ok(())
}

async fn apply(conn: &mut SqliteConnection, m: &Migration) -> Result<()> {
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT version FROM rota_migrations WHERE version = ?")
            .bind(m.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed("reading rota_migrations", e))?;
    if applied.is_some() {
        return Ok(());
    }
    sqlx::raw_sql(m.sql)
        .execute(&mut *conn)
        .await
        .map_err(|e| failed(&format!("migration {} ({})", m.version, m.name), e))?;
    sqlx::query("INSERT INTO rota_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .bind(m.version)
        .bind(m.name)
        .bind(micros(Timestamp::now()))
        .execute(&mut *conn)
        .await
        .map_err(|e| failed("recording the migration", e))?;
    tracing::info!(
        version = m.version,
        name = m.name,
        "applied SQLite migration"
    );
    Ok(())
}

/// Every known migration and when it was applied.
pub(crate) async fn status(conn: &mut SqliteConnection) -> Result<Vec<MigrationStatus>> {
    let tracked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'rota_migrations'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| failed("reading sqlite_master", e))?;
    let rows = if tracked > 0 {
        sqlx::query("SELECT version, applied_at FROM rota_migrations")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| failed("reading rota_migrations", e))?
    } else {
        Vec::new()
    };
    let mut applied = std::collections::BTreeMap::new();
    for r in &rows {
        let version: i64 = r.try_get("version").map_err(|e| failed("decoding", e))?;
        let at: i64 = r.try_get("applied_at").map_err(|e| failed("decoding", e))?;
        applied.insert(version, timestamp("applied_at", at)?);
    }
    Ok(MIGRATIONS
        .iter()
        .map(|m| MigrationStatus {
            version: m.version,
            name: m.name.to_owned(),
            applied_at: applied.get(&m.version).copied(),
        })
        .collect())
}
