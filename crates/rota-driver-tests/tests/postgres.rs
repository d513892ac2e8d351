//! Runs the conformance suite against PostgreSQL: one fresh, randomly named
//! schema per case on the server named by `ROTA_TEST_POSTGRES_URL`, used by
//! two driver instances (the second one is the peer that stands for another
//! process) and dropped afterwards.
//!
//! Without `ROTA_TEST_POSTGRES_URL` every case passes as skipped after a loud
//! notice on stderr, unless `ROTA_REQUIRE_POSTGRES=1`, which turns the
//! missing URL into a failure (for CI).

use std::io::Write;
use std::sync::{Arc, Once};

use rota_driver_tests::Harness;

fn announce_skip() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Written to the real stderr, not through `eprintln!`, so the test
        // harness's output capture does not swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             SKIPPED: PostgreSQL conformance (set ROTA_TEST_POSTGRES_URL)\n\
             ************************************************************************\n"
        );
    });
}

async fn postgres() -> Option<Harness> {
    let url = std::env::var("ROTA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        if std::env::var("ROTA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("ROTA_REQUIRE_POSTGRES=1 but ROTA_TEST_POSTGRES_URL is not set");
        }
        announce_skip();
        return None;
    };
    let schema = format!("rota_test_{}", uuid::Uuid::new_v4().simple());
    let driver = rota_postgres::PgDriver::connect(
        &url,
        rota_postgres::PgOptions {
            schema: Some(schema.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect to PostgreSQL (schema {schema}): {e}"));
    // A second instance on the same schema stands for another process.
    let peer = rota_postgres::PgDriver::connect(
        &url,
        rota_postgres::PgOptions {
            schema: Some(schema.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect a second PostgreSQL driver (schema {schema}): {e}"));
    let pool = driver.pool().clone();
    let peer_pool = peer.pool().clone();
    let harness = Harness::new(Arc::new(driver)).with_peer(Arc::new(peer));
    Some(harness.on_teardown(async move {
        peer_pool.close().await;
        let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&pool)
            .await
        {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test schema {schema}: {e}"
            );
        }
        pool.close().await;
    }))
}

rota_driver_tests::conformance_suite!(postgres);
