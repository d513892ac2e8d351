//! The raw one-row-per-commit INSERT loop that single enqueue is judged
//! against: same store, same durability settings, a two-column table.

use std::time::{Duration, Instant};

use rota::sqlx::{self, Connection};

use crate::BenchError;
use crate::fresh::FreshStore;

/// An open connection to the baseline's own table, ready to insert.
pub(crate) enum Baseline {
    /// A separate SQLite file next to the bench's, same settings.
    Sqlite(sqlx::SqliteConnection),
    /// A separate schema on the same server; the statement names it.
    Postgres(sqlx::PgConnection, String),
}

impl Baseline {
    /// Creates the baseline's table (a fresh file or schema).
    pub(crate) async fn open(fresh: &FreshStore) -> Result<Self, BenchError> {
        match fresh.server() {
            None => {
                let url = fresh.baseline_target();
                let opts =
                    rota::drivers::sqlite::connect_options(&url).map_err(rota::Error::from)?;
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await?;
                sqlx::query("CREATE TABLE raw (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                    .execute(&mut c)
                    .await?;
                Ok(Self::Sqlite(c))
            }
            Some(server) => {
                let schema = fresh.baseline_target();
                let mut c = sqlx::PgConnection::connect(server).await?;
                let table = format!("\"{schema}\".raw_baseline");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE {table} (id bigserial PRIMARY KEY, v jsonb NOT NULL)"
                )))
                .execute(&mut c)
                .await?;
                Ok(Self::Postgres(
                    c,
                    format!("INSERT INTO {table} (v) VALUES ('{{}}')"),
                ))
            }
        }
    }

    /// Inserts `n` rows, one per commit; returns the time taken.
    pub(crate) async fn run(&mut self, n: u64) -> Result<Duration, BenchError> {
        let t = Instant::now();
        match self {
            Self::Sqlite(c) => {
                for _ in 0..n {
                    sqlx::query("INSERT INTO raw (v) VALUES ('{}')")
                        .execute(&mut *c)
                        .await?;
                }
            }
            Self::Postgres(c, insert) => {
                for _ in 0..n {
                    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        Ok(t.elapsed())
    }

    /// What the loop is, for the report.
    pub(crate) fn note(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => {
                "one-row INSERT per commit, same file settings (WAL, synchronous=FULL)"
            }
            Self::Postgres(..) => {
                "one-client single-row INSERT per transaction (pgbench-style), same server"
            }
        }
    }
}
