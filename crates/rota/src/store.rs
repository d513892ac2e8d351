//! Opening a store by URL, and enqueueing inside a caller's transaction.

use std::sync::Arc;

use async_trait::async_trait;
use rota_core::Job;
use rota_driver::{
    Driver, FinishResult, InsertedJob, JobFinishParams, JobInsertParams, JobListParams,
};
use rota_postgres::{PgDriver, PgOptions};
use rota_sqlite::{SqliteDriver, SqliteOptions};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres { schema: Option<String> },
    Other,
}

/// Connections of the PostgreSQL control pool used by heartbeats, leader
/// renewals and node registration.
pub const CONTROL_CONNECTIONS: u32 = 2;

/// A storage backend handle: a driver plus what transactional enqueue needs
/// to know about it.
#[derive(Debug, Clone)]
pub struct Store {
    driver: Arc<dyn Driver>,
    /// A second driver on a small pool of its own for lease and leader
    /// renewals, so a busy main pool can never starve them (and cost a
    /// lease). Same as `driver` where pools do not apply.
    control: Arc<dyn Driver>,
    kind: Kind,
}

impl Store {
    /// Opens `sqlite://PATH` (created if missing) or `postgres://...`
    /// (`postgresql://` too), running migrations. PostgreSQL URLs may carry
    /// Rota's own query parameters, removed before connecting:
    /// `rota_schema=NAME` (tables in that schema) and
    /// `rota_pool=N` (main pool size, default 10).
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, true).await
    }

    /// Like [`Store::open`], applying pending migrations only when `migrate`
    /// is set (`rota migrate status` must not change the store). A
    /// [`Client`](crate::Client) refuses to start on a store with pending
    /// migrations.
    pub async fn open_with(url: &str, migrate: bool) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (url, mut options) = pg_url_options(url)?;
            options.migrate = migrate;
            let main = PgDriver::connect(&url, options.clone()).await?;
            let control = PgDriver::connect(
                &url,
                PgOptions {
                    max_connections: CONTROL_CONNECTIONS,
                    migrate: false,
                    ..options
                },
            )
            .await?;
            Ok(Store::postgres_with_control(main, control))
        } else if url.starts_with("sqlite:") {
            let options = SqliteOptions {
                migrate,
                ..SqliteOptions::default()
            };
            Ok(Store::sqlite(SqliteDriver::open(url, options).await?))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Wraps an opened SQLite driver.
    pub fn sqlite(driver: SqliteDriver) -> Store {
        let driver: Arc<dyn Driver> = Arc::new(driver);
        Store {
            control: driver.clone(),
            driver,
            kind: Kind::Sqlite,
        }
    }

    /// Wraps an opened PostgreSQL driver (heartbeats share its pool).
    pub fn postgres(driver: PgDriver) -> Store {
        Store::postgres_with_control(driver.clone(), driver)
    }

    /// Wraps a PostgreSQL driver plus a second one on a small pool for
    /// heartbeats and leader renewals (see [`Store::open`]).
    pub fn postgres_with_control(driver: PgDriver, control: PgDriver) -> Store {
        let schema = driver.schema().map(str::to_owned);
        Store {
            driver: Arc::new(driver),
            control: Arc::new(control),
            kind: Kind::Postgres { schema },
        }
    }

    /// Wraps any other driver (transactional enqueue is then unavailable).
    pub fn custom(driver: Arc<dyn Driver>) -> Store {
        Store {
            control: driver.clone(),
            driver,
            kind: Kind::Other,
        }
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The driver for heartbeats and leader renewals.
    pub fn control(&self) -> &Arc<dyn Driver> {
        &self.control
    }

    /// The PostgreSQL schema, if this is a PostgreSQL store with one.
    pub fn pg_schema(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { schema } => schema.as_deref(),
            _ => None,
        }
    }
}

/// Splits Rota's own parameters off a PostgreSQL URL.
fn pg_url_options(url: &str) -> Result<(String, PgOptions)> {
    let mut options = PgOptions::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), options));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("rota_schema", v)) => options.schema = Some(v.to_owned()),
            Some(("rota_pool", v)) => {
                options.max_connections = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    rota_core::ValidationError::new("rota_pool", "must be a positive integer")
                })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, options))
}

/// A connection inside a caller's open transaction that jobs can be
/// inserted through: `&mut *tx` of a `sqlx::Transaction<Sqlite>` or
/// `sqlx::Transaction<Postgres>`. The jobs exist if and only if the
/// transaction commits.
#[async_trait]
pub trait TxConnection: Send {
    /// Inserts jobs on this connection (used by
    /// [`Client::enqueue_tx`](crate::Client::enqueue_tx)).
    async fn insert_jobs(
        &mut self,
        store: &Store,
        params: Vec<JobInsertParams>,
    ) -> Result<Vec<InsertedJob>>;

    /// Lists jobs as this transaction sees them (used by
    /// [`Client::list_tx`](crate::Client::list_tx) and test helpers).
    async fn list_jobs(&mut self, store: &Store, params: &JobListParams) -> Result<Vec<Job>>;

    /// Finishes a run on this connection, fenced by its lease token (used
    /// by [`JobContext::complete_tx`](crate::JobContext::complete_tx)).
    async fn finish_job(&mut self, store: &Store, params: JobFinishParams) -> Result<FinishResult>;
}

#[async_trait]
impl TxConnection for sqlx::SqliteConnection {
    async fn insert_jobs(
        &mut self,
        store: &Store,
        params: Vec<JobInsertParams>,
    ) -> Result<Vec<InsertedJob>> {
        if store.kind != Kind::Sqlite {
            return Err(Error::Lifecycle(
                "a SQLite transaction was given to a client on another store",
            ));
        }
        Ok(rota_sqlite::job_insert_many_in(self, params).await?)
    }

    async fn list_jobs(&mut self, store: &Store, params: &JobListParams) -> Result<Vec<Job>> {
        if store.kind != Kind::Sqlite {
            return Err(Error::Lifecycle(
                "a SQLite transaction was given to a client on another store",
            ));
        }
        Ok(rota_sqlite::job_list_in(self, params).await?)
    }

    async fn finish_job(&mut self, store: &Store, params: JobFinishParams) -> Result<FinishResult> {
        if store.kind != Kind::Sqlite {
            return Err(Error::Lifecycle(
                "a SQLite transaction was given to a client on another store",
            ));
        }
        Ok(rota_sqlite::job_finish_in(self, params).await?)
    }
}

#[async_trait]
impl TxConnection for sqlx::PgConnection {
    async fn insert_jobs(
        &mut self,
        store: &Store,
        params: Vec<JobInsertParams>,
    ) -> Result<Vec<InsertedJob>> {
        let Kind::Postgres { schema } = &store.kind else {
            return Err(Error::Lifecycle(
                "a PostgreSQL transaction was given to a client on another store",
            ));
        };
        Ok(rota_postgres::job_insert_many_in(self, params, schema.as_deref()).await?)
    }

    async fn list_jobs(&mut self, store: &Store, params: &JobListParams) -> Result<Vec<Job>> {
        let Kind::Postgres { schema } = &store.kind else {
            return Err(Error::Lifecycle(
                "a PostgreSQL transaction was given to a client on another store",
            ));
        };
        Ok(rota_postgres::job_list_in(self, params, schema.as_deref()).await?)
    }

    async fn finish_job(&mut self, store: &Store, params: JobFinishParams) -> Result<FinishResult> {
        let Kind::Postgres { schema } = &store.kind else {
            return Err(Error::Lifecycle(
                "a PostgreSQL transaction was given to a client on another store",
            ));
        };
        Ok(rota_postgres::job_finish_in(self, params, schema.as_deref()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rota_parameters_are_removed_from_pg_urls() {
        let (u, o) =
            pg_url_options("postgres://u:p@h/db?sslmode=disable&rota_schema=s1&rota_pool=4")
                .unwrap();
        assert_eq!(u, "postgres://u:p@h/db?sslmode=disable");
        assert_eq!(o.schema.as_deref(), Some("s1"));
        assert_eq!(o.max_connections, 4);
        let (u, o) = pg_url_options("postgres://h/db").unwrap();
        assert_eq!(u, "postgres://h/db");
        assert!(o.schema.is_none());
        assert!(pg_url_options("postgres://h/db?rota_pool=0").is_err());
    }
}
