//! Pool exhaustion fails fast with PoolTimedOut; a server that cannot be
//! reached says why.

use std::time::{Duration, Instant};

use rota_driver::{Driver, DriverError};
use rota_postgres::PgOptions;

use crate::common::with_driver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_returns_pool_timed_out() {
    let options = |schema: String| PgOptions {
        schema: Some(schema),
        max_connections: 2,
        acquire_timeout: Duration::from_millis(300),
        migrate: true,
    };
    with_driver(options, |driver, _| async move {
        let a = driver.pool().acquire().await.unwrap();
        let b = driver.pool().acquire().await.unwrap();
        let started = Instant::now();
        let err = driver.job_get(1).await.unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(err, DriverError::PoolTimedOut), "got {err:?}");
        assert!(err.is_transient());
        assert!(waited < Duration::from_secs(3), "took {waited:?}");
        drop((a, b));
        assert!(
            driver.job_get(1).await.unwrap().is_none(),
            "works again once freed"
        );
    })
    .await;
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // A port nothing listens on; no server needed.
    let err = rota_postgres::PgDriver::connect(
        "postgres://postgres:postgres@127.0.0.1:1/postgres",
        PgOptions {
            acquire_timeout: Duration::from_secs(2),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "got {err:?}");
    // The network's own answer, not the pool's "timed out (pool
    // exhausted)" that a refused first connection used to give.
    match &err {
        DriverError::Unavailable(m) => assert!(
            m.starts_with("cannot connect to PostgreSQL at 127.0.0.1:1: "),
            "got {m:?}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
