//! Shared fixtures for the PostgreSQL run: each test gets its own schema.

use std::sync::Once;
use std::time::Duration;

use rota::{Client, ClientBuilder, Config, Store};

/// One fresh schema on the configured server.
pub(crate) struct Db {
    base: String,
    pub(crate) schema: String,
}

static BANNER: Once = Once::new();

/// The server URL, or `None` (after a loud banner) when none is configured.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var("ROTA_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("ROTA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("ROTA_REQUIRE_POSTGRES=1 but ROTA_TEST_POSTGRES_URL is not set");
            }
            BANNER.call_once(|| {
                eprintln!(
                    "\n*** SKIPPED: PostgreSQL engine tests (set ROTA_TEST_POSTGRES_URL) ***\n"
                );
            });
            None
        }
    }
}

impl Db {
    pub(crate) fn new() -> Option<Self> {
        let base = server_url()?;
        let schema = format!(
            "rota_t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Some(Self { base, schema })
    }

    /// URL with Rota's schema parameter, usable by `Store::open` in a child
    /// process too.
    pub(crate) fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}rota_schema={}", self.base, self.schema)
    }

    /// The server URL without Rota's parameters (for the test's own pool).
    pub(crate) fn server(&self) -> &str {
        &self.base
    }

    pub(crate) async fn store(&self) -> Store {
        Store::open(&self.url()).await.unwrap()
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
