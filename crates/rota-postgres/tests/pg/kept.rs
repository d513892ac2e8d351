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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_cancelled_mid_statement_leave_no_transaction_behind() {
    with_driver(pool_of(10), |driver, _| async move {
        // Two jobs with unique keys: one transaction (BEGIN, the insert,
        // COMMIT) on the kept connection. Each call is cut off after a
        // growing delay, so cancellations land before, inside and after
        // it; whatever the point, a pair is stored whole or not at all,
        // and the next insert works.
        for i in 0..60u64 {
            let pair: Vec<_> = (0..2)
                .map(|k| {
                    let mut p = job(&format!("pair-{i}"));
                    p.unique_key = Some(format!("pair-{i}-{k}"));
                    p
                })
                .collect();
            let d = driver.clone();
            let call = tokio::spawn(async move { d.job_insert_many(pair).await });
            tokio::time::sleep(Duration::from_micros(50 * i)).await;
            call.abort();
            let _ = call.await;
        }
        driver.job_insert_many(vec![job("after")]).await.unwrap();
        let schema = driver.schema().unwrap().to_owned();
        let (whole, split): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE n = 2), count(*) FILTER (WHERE n <> 2)
             FROM (SELECT queue, count(*) AS n FROM \"{schema}\".rota_jobs
                   WHERE queue LIKE 'pair-%' GROUP BY queue) q"
        )))
        .fetch_one(driver.pool())
        .await
        .unwrap();
        assert_eq!(split, 0, "a pair stored in part ({whole} whole)");
        // No connection of the pool is left inside a transaction: once the
        // kept one is handed back, every one of them refuses a savepoint,
        // which only a transaction block takes.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut held = Vec::new();
        for _ in 0..10 {
            let mut c = driver.pool().acquire().await.unwrap();
            let err = sqlx::raw_sql("SAVEPOINT kept_probe")
                .execute(&mut *c)
                .await
                .expect_err("a cancelled insert left a transaction open");
            assert!(
                err.to_string()
                    .contains("can only be used in transaction blocks"),
                "{err}"
            );
            held.push(c);
        }
    })
    .await;
}
