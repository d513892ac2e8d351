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

/// A server at its connection limit is a temporary state: `Unavailable`
/// (retryable, "unreachable" to the CLI), with the server's own words.
#[tokio::test]
async fn a_server_at_its_connection_limit_is_unavailable_and_says_so() {
    let Some(url) = crate::common::url() else {
        return;
    };
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let role = format!("rota_pgt_full_{:08x}", rand::random::<u32>());
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'x' CONNECTION LIMIT 0"
    )))
    .execute(&admin)
    .await;
    if let Err(sqlx::Error::Database(e)) = &created
        && e.code().as_deref() == Some("42501")
    {
        eprintln!("*** SKIPPED: the test user may not create roles ***");
        return;
    }
    created.unwrap();
    let mut options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    options = options.username(&role).password("x");
    let result = rota_postgres::PgDriver::connect_with(
        options,
        PgOptions {
            acquire_timeout: Duration::from_millis(500),
            migrate: false,
            ..PgOptions::default()
        },
    )
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&admin)
        .await
        .unwrap();
    match result {
        Err(DriverError::Unavailable(m)) => assert!(m.contains("53300"), "got {m:?}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
