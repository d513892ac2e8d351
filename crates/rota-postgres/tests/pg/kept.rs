//! The connection inserts keep out of the pool: kept after a success,
//! handed back after a failure and once inserts pause, not kept by small
//! pools, and never more than one however many callers insert at once.

use std::time::Duration;

use rota_driver::Driver;
use rota_postgres::{PgDriver, PgOptions};

use crate::common::{job, total_jobs, with_driver};

/// Connections checked out of `driver`'s pool once releases in flight
/// have landed. sqlx hands a connection back in a task of its own, after
/// a round trip to the server; a connection in that task still counts as
/// checked out, so reading at once would count it as kept.
async fn checked_out(driver: &PgDriver) -> u32 {
    tokio::time::sleep(Duration::from_millis(40)).await;
    let pool = driver.pool();
    pool.size() - u32::try_from(pool.num_idle()).unwrap()
}

fn pool_of(max_connections: u32) -> impl FnOnce(String) -> PgOptions {
    move |schema| PgOptions {
        max_connections,
        ..PgOptions::with_schema(schema)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_inserts_keep_one_connection_until_they_pause() {
    with_driver(pool_of(10), |driver, _| async move {
        assert_eq!(checked_out(&driver).await, 0);
        for _ in 0..20 {
            driver.job_insert_many(vec![job("kept")]).await.unwrap();
        }
        assert_eq!(checked_out(&driver).await, 1, "one kept, no more");
        // Handed back within twice its idle limit (250 ms) of the last use.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(checked_out(&driver).await, 0, "handed back after the pause");
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        assert_eq!(checked_out(&driver).await, 1, "kept again");
        assert_eq!(total_jobs(&driver).await, 21);
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
        assert_eq!(checked_out(&driver).await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_insert_hands_the_kept_connection_back() {
    with_driver(pool_of(10), |driver, _| async move {
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        assert_eq!(checked_out(&driver).await, 1);
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
            checked_out(&driver).await,
            0,
            "nothing kept after a failure"
        );
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        assert_eq!(checked_out(&driver).await, 1, "kept again after a success");
        assert_eq!(total_jobs(&driver).await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_of_up_to_the_readied_connections_keep_nothing() {
    // A worker readies four connections at once when it starts (open_ready).
    with_driver(pool_of(4), |driver, _| async move {
        for _ in 0..5 {
            driver.job_insert_many(vec![job("kept")]).await.unwrap();
        }
        assert_eq!(checked_out(&driver).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_closes_with_the_driver_alive_after_inserts() {
    with_driver(pool_of(10), |driver, _| async move {
        driver.job_insert_many(vec![job("kept")]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(3), driver.pool().close())
            .await
            .expect("close waits only for the kept connection's hand-back");
    })
    .await;
}
