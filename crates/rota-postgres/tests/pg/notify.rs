//! LISTEN/NOTIFY wake-ups: delivered on commit only; listener reconnects.

use std::time::Duration;

use rota_driver::{Driver, Wakeup};
use rota_postgres::{
    LISTENER_APPLICATION_NAME, NOTIFIER_APPLICATION_NAME, PgDriver, job_insert_many_in,
};

use crate::common::{
    job, other_node, subscribe_ready, total_jobs, wait_for_queue, with_default_driver,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeup_after_commit_not_after_rollback() {
    with_default_driver(|driver, _| async move {
        let mut rx = subscribe_ready(&driver).await;

        let mut tx = driver.pool().begin().await.unwrap();
        let ins = job_insert_many_in(&mut tx, vec![job("tx-q")], driver.schema())
            .await
            .unwrap();
        assert!(ins[0].inserted);
        assert!(
            !wait_for_queue(&mut rx, "tx-q", Duration::from_millis(300)).await,
            "no wake-up before commit"
        );
        tx.commit().await.unwrap();
        assert!(
            wait_for_queue(&mut rx, "tx-q", Duration::from_secs(5)).await,
            "wake-up after commit"
        );

        let mut tx = driver.pool().begin().await.unwrap();
        job_insert_many_in(&mut tx, vec![job("rolled-back")], driver.schema())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert!(
            !wait_for_queue(&mut rx, "rolled-back", Duration::from_millis(500)).await,
            "no wake-up after rollback"
        );
        assert_eq!(total_jobs(&driver).await, 1);

        // The pooled insert notifies too, once per queue for a big batch.
        let batch: Vec<_> = (0..2_000).map(|_| job("many")).collect();
        driver.job_insert_many(batch).await.unwrap();
        assert!(wait_for_queue(&mut rx, "many", Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = 0;
        while let Ok(w) = rx.try_recv() {
            if w.queue.as_deref() == Some("many") {
                extra += 1;
            }
        }
        assert_eq!(
            extra, 0,
            "notifications are coalesced per transaction and queue"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_after_its_backend_is_terminated() {
    with_default_driver(|driver, _| async move {
        let mut rx = subscribe_ready(&driver).await;
        let listen = format!("LISTEN \"{}\"", driver.channel());
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND query = $2",
        )
        .bind(LISTENER_APPLICATION_NAME)
        .bind(&listen)
        .fetch_all(driver.pool())
        .await
        .unwrap();
        assert_eq!(
            terminated,
            vec![true],
            "exactly one listener backend to terminate"
        );

        let lost = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no wake-up after the listener lost its connection")
            .unwrap();
        assert_eq!(
            lost,
            Wakeup { queue: None },
            "connection loss tells consumers to poll"
        );

        // Once re-LISTENed, notifications flow again. (Inserted on a pooled
        // connection, whose statement notifies: the driver's own inserts
        // would also wake this subscriber in-process, without the listener.)
        let mut delivered = false;
        for _ in 0..20 {
            let mut conn = driver.pool().acquire().await.unwrap();
            job_insert_many_in(&mut conn, vec![job("after")], driver.schema())
                .await
                .unwrap();
            if wait_for_queue(&mut rx, "after", Duration::from_millis(500)).await {
                delivered = true;
                break;
            }
        }
        assert!(delivered, "no wake-up after reconnect");
        let listeners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query = $2",
        )
        .bind(LISTENER_APPLICATION_NAME)
        .bind(&listen)
        .fetch_one(driver.pool())
        .await
        .unwrap();
        assert_eq!(listeners, 1, "one listener connection after reconnect");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_stops_when_driver_is_dropped() {
    with_default_driver(|driver, url| async move {
        let _rx = subscribe_ready(&driver).await;
        let listen = format!("LISTEN \"{}\"", driver.channel());
        // The notifier's connection too.
        let notifier = notifier_pid(&driver, &url).await;
        drop(driver);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE (application_name = $1 AND query = $2) OR pid = $3",
            )
            .bind(LISTENER_APPLICATION_NAME)
            .bind(&listen)
            .bind(notifier)
            .fetch_one(&pool)
            .await
            .unwrap();
            if n == 0 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pool.close().await;
        assert!(
            gone,
            "the listener or notifier connection outlived the driver"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_inserts_wake_other_nodes_and_this_one_once() {
    with_default_driver(|here, url| async move {
        let there = other_node(&here, &url, 10).await;
        let mut rx_here = subscribe_ready(&here).await;
        let mut rx_there = subscribe_ready(&there).await;

        // Sequential and concurrent pooled inserts: each reaches the other
        // node through PostgreSQL, after its commit.
        here.job_insert_many(vec![job("one")]).await.unwrap();
        assert!(wait_for_queue(&mut rx_there, "one", Duration::from_secs(5)).await);
        let inserts: Vec<_> = (0..16)
            .map(|_| {
                let d = here.clone();
                tokio::spawn(async move { d.job_insert_many(vec![job("many")]).await })
            })
            .collect();
        for i in inserts {
            i.await.unwrap().unwrap();
        }
        assert!(wait_for_queue(&mut rx_there, "many", Duration::from_secs(5)).await);
        assert_eq!(total_jobs(&there).await, 17);

        // This node was woken in-process, once per insert: the listener
        // drops the echo of its own notifier.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut one, mut many) = (0, 0);
        while let Ok(w) = rx_here.try_recv() {
            match w.queue.as_deref() {
                Some("one") => one += 1,
                Some("many") => many += 1,
                _ => {}
            }
        }
        assert_eq!((one, many), (1, 16));

        // A transactional insert on the other node wakes this one.
        let mut tx = there.pool().begin().await.unwrap();
        job_insert_many_in(&mut tx, vec![job("tx")], there.schema())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(wait_for_queue(&mut rx_here, "tx", Duration::from_secs(5)).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_reconnects_when_its_backend_is_terminated() {
    with_default_driver(|here, url| async move {
        let there = other_node(&here, &url, 10).await;
        let mut rx_there = subscribe_ready(&there).await;
        let notifier = notifier_pid(&here, &url).await;
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid = $1 AND application_name = $2",
        )
        .bind(notifier)
        .bind(NOTIFIER_APPLICATION_NAME)
        .fetch_all(there.pool())
        .await
        .unwrap();
        assert_eq!(terminated, vec![true], "the notifier's backend terminated");

        // The next notification finds its connection dead and is sent on
        // a new one, not lost.
        here.job_insert_many(vec![job("after")]).await.unwrap();
        assert!(wait_for_queue(&mut rx_there, "after", Duration::from_secs(5)).await);
    })
    .await;
}

/// The backend process id `driver`'s notifier sends from, learned by
/// listening on its channel from outside while it inserts a job.
async fn notifier_pid(driver: &PgDriver, url: &str) -> i32 {
    let mut outside = sqlx::postgres::PgListener::connect(url).await.unwrap();
    outside.listen(driver.channel()).await.unwrap();
    driver
        .job_insert_many(vec![job("pid-probe")])
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), outside.recv())
        .await
        .expect("no notification from the notifier")
        .unwrap();
    assert_eq!(n.payload(), "pid-probe");
    i32::try_from(n.process_id()).unwrap()
}
