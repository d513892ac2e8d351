//! Shared set-up: the server URL, fresh schemas, job fixtures.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::{Driver, JobClaimParams, JobInsertParams, Wakeup};
use rota_postgres::{PgDriver, PgOptions};
use tokio::sync::broadcast;

/// The server URL, or `None` after a loud skip notice.
pub(crate) fn url() -> Option<String> {
    match std::env::var("ROTA_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("ROTA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("ROTA_REQUIRE_POSTGRES=1 but ROTA_TEST_POSTGRES_URL is not set");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: ROTA_TEST_POSTGRES_URL not set (rota-postgres integration test)"
            );
            None
        }
    }
}

/// A fresh schema name.
pub(crate) fn random_schema() -> String {
    format!("rota_pgt_{:016x}", rand::random::<u64>())
}

/// Drops `schema` over a short-lived connection.
pub(crate) async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect for teardown");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop schema");
    pool.close().await;
}

/// Runs `body` with a driver on a fresh schema (options from `options`),
/// then drops the schema even when `body` panicked, and re-raises.
pub(crate) async fn with_driver<F, Fut>(options: impl FnOnce(String) -> PgOptions, body: F)
where
    F: FnOnce(PgDriver, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = url() else { return };
    let schema = random_schema();
    let driver = PgDriver::connect(&url, options(schema.clone()))
        .await
        .unwrap_or_else(|e| panic!("connect (schema {schema}): {e}"));
    let outcome = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::spawn(body(driver, url.clone())),
    )
    .await;
    drop_schema(&url, &schema).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(join)) => match join.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("test task failed: {e}"),
        },
        Err(_) => panic!("test timed out"),
    }
}

/// [`with_driver`] with default options in the fresh schema.
pub(crate) async fn with_default_driver<F, Fut>(body: F)
where
    F: FnOnce(PgDriver, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_driver(PgOptions::with_schema, body).await;
}

/// Another node on `driver`'s already migrated schema (its own pool,
/// listener and notifier), with a pool of `max_connections`.
pub(crate) async fn other_node(driver: &PgDriver, url: &str, max_connections: u32) -> PgDriver {
    let schema = driver
        .schema()
        .expect("test drivers use a schema")
        .to_owned();
    PgDriver::connect(
        url,
        PgOptions {
            max_connections,
            migrate: false,
            ..PgOptions::with_schema(schema)
        },
    )
    .await
    .unwrap()
}

/// Jobs in the store, all states.
pub(crate) async fn total_jobs(driver: &PgDriver) -> i64 {
    driver
        .job_count()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum()
}

/// Now, at microsecond precision (what `timestamptz` stores).
pub(crate) fn now() -> Timestamp {
    Timestamp::from_microsecond(Timestamp::now().as_microsecond()).unwrap()
}

/// An available job for `queue`.
pub(crate) fn job(queue: &str) -> JobInsertParams {
    let t = now();
    JobInsertParams {
        kind: "test".to_owned(),
        args: serde_json::json!({"n": 1}),
        queue: queue.to_owned(),
        priority: 0,
        state: JobState::Available,
        run_at: t,
        created_at: t,
        max_attempts: 3,
        timeout: None,
        unique_key: None,
        labels: BTreeMap::new(),
        attributes: BTreeMap::new(),
        trace_context: None,
    }
}

/// Claim parameters with a 30 s lease.
pub(crate) fn claim_params(queue: &str, max: u32, token: i64) -> JobClaimParams {
    let t = now();
    JobClaimParams {
        queue: queue.to_owned(),
        max,
        node_id: "node-1".to_owned(),
        node_labels: BTreeMap::new(),
        kinds: None,
        lease_token: token,
        lease_expires_at: t + Duration::from_secs(30),
        now: t,
    }
}

/// Subscribes and waits for the listener's first "ready" wake-up.
pub(crate) async fn subscribe_ready(driver: &PgDriver) -> broadcast::Receiver<Wakeup> {
    let mut rx = driver.subscribe();
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("listener did not start within 10 s")
        .expect("wake-up channel closed");
    assert_eq!(
        first,
        Wakeup { queue: None },
        "first wake-up says the listener is ready"
    );
    rx
}

/// The next wake-up naming `queue`, ignoring others, within `within`.
pub(crate) async fn wait_for_queue(
    rx: &mut broadcast::Receiver<Wakeup>,
    queue: &str,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return false,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) => return false,
            Ok(Ok(w)) if w.queue.as_deref() == Some(queue) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
