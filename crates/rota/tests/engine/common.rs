//! Shared test fixtures.

use std::sync::Arc;
use std::time::Duration;

use rota::drivers::sqlite::{SqliteDriver, SqliteOptions};
use rota::{Client, ClientBuilder, Config, Store};
use tempfile::TempDir;

/// A temp directory holding one SQLite database.
pub(crate) struct Db {
    pub(crate) dir: TempDir,
}

impl Db {
    /// Always available (an `Option` so that tests shared with the
    /// PostgreSQL binary can skip when no server is configured).
    pub(crate) fn new() -> Option<Self> {
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("rota.db").display())
    }

    pub(crate) async fn store(&self) -> Store {
        Store::sqlite(
            SqliteDriver::open(&self.url(), SqliteOptions::default())
                .await
                .unwrap(),
        )
    }

    pub(crate) async fn builder(&self) -> ClientBuilder {
        Client::builder(self.store().await)
    }
}

/// Fast settings for tests: short lease and heartbeat, quick polling.
pub(crate) fn fast_config() -> Config {
    Config {
        lease: Duration::from_millis(1500),
        heartbeat_interval: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        promote_interval: Duration::from_millis(50),
        rescue_interval: Duration::from_millis(200),
        leader_ttl: Duration::from_secs(2),
        cancel_grace: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub(crate) async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[allow(dead_code)]
pub(crate) type Shared<T> = Arc<std::sync::Mutex<T>>;
