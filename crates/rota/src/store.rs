//! Opening a store by URL, and enqueueing inside a caller's transaction.

use std::sync::Arc;

use async_trait::async_trait;
use rota_core::Job;
use rota_driver::{Driver, InsertedJob, JobInsertParams, JobListParams};
use rota_postgres::{PgDriver, PgOptions};
use rota_sqlite::{SqliteDriver, SqliteOptions};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres { schema: Option<String> },
    Other,
}

/// A storage backend handle: a driver plus what transactional enqueue needs
/// to know about it.
#[derive(Debug, Clone)]
pub struct Store {
    driver: Arc<dyn Driver>,
    kind: Kind,
}

impl Store {
    /// Opens `sqlite://PATH` (created if missing) or `postgres://...`
    /// (`postgresql://` too) with default options, running migrations.
    pub async fn open(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let d = PgDriver::connect(url, PgOptions::default()).await?;
            Ok(Store::postgres(d))
        } else if url.starts_with("sqlite:") {
            let d = SqliteDriver::open(url, SqliteOptions::default()).await?;
            Ok(Store::sqlite(d))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Wraps an opened SQLite driver.
    pub fn sqlite(driver: SqliteDriver) -> Store {
        Store {
            driver: Arc::new(driver),
            kind: Kind::Sqlite,
        }
    }

    /// Wraps an opened PostgreSQL driver.
    pub fn postgres(driver: PgDriver) -> Store {
        let schema = driver.schema().map(str::to_owned);
        Store {
            driver: Arc::new(driver),
            kind: Kind::Postgres { schema },
        }
    }

    /// Wraps any other driver (transactional enqueue is then unavailable).
    pub fn custom(driver: Arc<dyn Driver>) -> Store {
        Store {
            driver,
            kind: Kind::Other,
        }
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }
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
}
