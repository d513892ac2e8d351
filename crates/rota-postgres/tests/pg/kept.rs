//! The connection lone inserts keep out of the pool: kept after a success,
//! handed back after a failure, not kept by small pools, and never more
//! than one however many callers insert at once.

use std::time::Duration;

use rota_driver::Driver;
use rota_postgres::{PgDriver, PgOptions};

use crate::common::{job, total_jobs, with_driver};

/// Connections checked out of `driver`'s pool, once releases in flight
/// (sqlx hands connections back in tasks of their own) have landed.
async fn checked_out(driver: &PgDriver, expected: u32) -> u32 {
    let pool = driver.pool();
    let mut out = pool.size() - pool.num_idle() as u32;
    for _ in 0..200 {
        if out == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        out = pool.size() - pool.num_idle() as u32;
    }
    out
}

fn pool_of(max_connections: u32) -> impl FnOnce(String) -> PgOptions {
    move |schema| PgOptions {
        max_connections,
        ..PgOptions::with_schema(schema)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_inserts_reuse_one_kept_connection() {
    with_driver(pool_of(10), |driver, _| async move {
        assert_eq!(checked_out(&driver, 0).await, 0);
        for _ in 0..20 {
            driver.job_insert_many(vec![job("kept")]).await.unwrap();
            assert_eq!(checked_out(&driver, 1).await, 1, "one kept, no more");
        }
        assert_eq!(total_jobs(&driver).await, 20);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_use_the_pool_besides_the_kept_connection() {
    with_driver(pool_of(10), |driver, _| async move {
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    d.job_insert_many(vec![job("kept")]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(total_jobs(&driver).await, 160);
        assert_eq!(checked_out(&driver, 1).await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_insert_hands_the_kept_connection_back() {
    with_driver(pool_of(10), |driver, _| async move {
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        assert_eq!(checked_out(&driver, 1).await, 1);
        // A constraint only this test's schema has makes the next insert fail.
        let schema = driver.schema().unwrap().to_owned();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE \"{schema}\".rota_jobs ADD CONSTRAINT kept_test CHECK (queue <> 'refused')"
        )))
        .execute(driver.pool())
        .await
        .unwrap();
        driver
            .job_insert_many(vec![job("refused")])
            .await
            .unwrap_err();
        assert_eq!(
            checked_out(&driver, 0).await,
            0,
            "nothing kept after a failure"
        );
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        assert_eq!(
            checked_out(&driver, 1).await,
            1,
            "kept again after a success"
        );
        assert_eq!(total_jobs(&driver).await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pools_keep_nothing() {
    with_driver(pool_of(3), |driver, _| async move {
        for _ in 0..5 {
            driver.job_insert_many(vec![job("kept")]).await.unwrap();
        }
        assert_eq!(checked_out(&driver, 0).await, 0);
    })
    .await;
}
