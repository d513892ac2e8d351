//! Rota's own migrator: embedded SQL files, tracked in `rota_migrations`.
//!
//! All pending migrations run in one transaction that first takes a
//! transaction-scoped advisory lock keyed by the schema, so nodes starting at
//! the same time apply each migration exactly once. Migration files use
//! unqualified names; the migrator sets `search_path` to the target schema for
//! the duration of the transaction.
//!
//! Code that runs later under the *caller's* `search_path` (plpgsql trigger
//! bodies, trigger `WHEN` clauses) cannot rely on that, so it names objects
//! as `{{schema}}.name`: the migrator replaces `{{schema}}` with the quoted
//! target schema, i.e. `current_schema()` once `search_path` is set (the
//! configured schema, or the connection's default one, normally `public`).

use rota_driver::{MigrationStatus, Result};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};

use crate::error::SqlxResultExt;
use crate::options::Tables;
use crate::row::PgTs;

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Sequential version, starting at 1.
    pub version: i64,
    /// Short description.
    pub name: &'static str,
    /// The SQL, run as one multi-statement batch.
    pub sql: &'static str,
}

/// Every migration Rota knows, in order.
pub const MIGRATIONS: &[Migration] = &[
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
        name: "queue_vacuum",
        sql: include_str!("../migrations/0004_queue_vacuum.sql"),
    },
    Migration {
        version: 5,
        name: "lean_job_indexes",
        sql: include_str!("../migrations/0005_lean_job_indexes.sql"),
    },
    Migration {
        version: 6,
        name: "claim_plan",
        sql: include_str!("../migrations/0006_claim_plan.sql"),
    },
    Migration {
        version: 7,
        name: "queue_listing_index",
        sql: include_str!("../migrations/0007_queue_listing_index.sql"),
    },
    Migration {
        version: 8,
        name: "fixed_width_queue_keys",
        sql: include_str!("../migrations/0008_fixed_width_queue_keys.sql"),
    },
];

/// The placeholder migrations use for the quoted target schema.
const SCHEMA_PLACEHOLDER: &str = "{{schema}}";

/// `name` as a quoted identifier that can also sit inside a string literal
/// (`to_regclass('"s".t')`).
fn quote_schema(name: &str) -> Result<String> {
    if name.contains('\'') || name.contains('\\') {
        return Err(rota_driver::DriverError::Migration(format!(
            "schema name {name:?} cannot be used in trigger definitions"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Applies pending migrations (idempotent; concurrent callers serialize on an
/// advisory lock).
pub(crate) async fn migrate(pool: &PgPool, t: &Tables) -> Result<()> {
    let mut tx = pool.begin().await.db()?;
    let lock_key = format!("rota_migrate:{}", t.schema.as_deref().unwrap_or(""));
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&lock_key)
        .execute(&mut *tx)
        .await
        .db()?;
    if let Some(schema) = t.quoted_schema() {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}"
        )))
        .execute(&mut *tx)
        .await
        .db()?;
    }
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {} (
            version    bigint      PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
        t.migrations
    )))
    .execute(&mut *tx)
    .await
    .db()?;
    let applied: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM {}",
        t.migrations
    )))
    .fetch_all(&mut *tx)
    .await
    .db()?;
    // Where the unqualified names above went: the target schema.
    let target: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *tx)
        .await
        .db()?;
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        let sql = if m.sql.contains(SCHEMA_PLACEHOLDER) {
            let target = target.as_deref().ok_or_else(|| {
                rota_driver::DriverError::Migration(
                    "no schema selected (empty search_path)".to_owned(),
                )
            })?;
            m.sql.replace(SCHEMA_PLACEHOLDER, &quote_schema(target)?)
        } else {
            m.sql.to_owned()
        };
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                rota_driver::DriverError::Migration(format!(
                    "migration {} ({}) failed: {e}",
                    m.version, m.name
                ))
            })?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (version, name) VALUES ($1, $2)",
            t.migrations
        )))
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *tx)
        .await
        .db()?;
        tracing::info!(version = m.version, name = m.name, schema = ?t.schema, "applied rota migration");
    }
    tx.commit().await.db()?;
    Ok(())
}

/// Every embedded migration with its applied time, plus any applied version
/// this build does not know (from a newer Rota).
pub(crate) async fn status(pool: &PgPool, t: &Tables) -> Result<Vec<MigrationStatus>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&t.migrations)
        .fetch_one(pool)
        .await
        .db()?;
    let mut applied: Vec<(i64, String, jiff::Timestamp)> = Vec::new();
    if exists {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT version, name, applied_at FROM {} ORDER BY version",
            t.migrations
        )))
        .fetch_all(pool)
        .await
        .db()?;
        for r in rows {
            let at: PgTs = r.try_get("applied_at").db()?;
            applied.push((
                r.try_get("version").db()?,
                r.try_get("name").db()?,
                at.to_jiff(),
            ));
        }
    }
    let mut out: Vec<MigrationStatus> = MIGRATIONS
        .iter()
        .map(|m| MigrationStatus {
            version: m.version,
            name: m.name.to_owned(),
            applied_at: applied
                .iter()
                .find(|(v, _, _)| *v == m.version)
                .map(|(_, _, at)| *at),
        })
        .collect();
    for (version, name, at) in applied {
        if !MIGRATIONS.iter().any(|m| m.version == version) {
            out.push(MigrationStatus {
                version,
                name,
                applied_at: Some(at),
            });
        }
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}
