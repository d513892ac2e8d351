//! Transactional enqueue in the caller's own SQLite transaction: a rollback
//! leaves no job; a commit wakes the worker (claimed long before the next
//! poll would find it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota::drivers::sqlite::connect_options;
use rota::sqlx::{self, SqlitePool};
use rota::{EnqueueOpts, JobArgs, JobContext, JobListParams, JobOutcome, JobResult, Worker};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Ship {
    order: i64,
}
impl JobArgs for Ship {
    const KIND: &'static str = "ship";
}

struct Shipper(Arc<Mutex<Vec<(i64, Instant)>>>);

#[async_trait::async_trait]
impl Worker for Shipper {
    type Args = Ship;
    async fn work(&self, _: &JobContext, a: Ship) -> JobResult {
        self.0.lock().unwrap().push((a.order, Instant::now()));
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_leaves_nothing_commit_is_claimed_fast() {
    let Some(db) = Db::new() else { return };
    let started = Arc::new(Mutex::new(Vec::new()));
    let client = db
        .builder()
        .await
        // Polling so rare that only the store's commit watch can start a
        // job within the bound below (a fixed 50 ms bound against a 100 ms
        // poll failed on a loaded CI machine).
        .config(
            rota::Config {
                poll_interval: Duration::from_secs(30),
                ..fast_config()
            }
            .queue("default", 4),
        )
        .worker(Shipper(started.clone()))
        .build()
        .unwrap();
    client.start().await.unwrap();

    // The application's own pool and table on the same file.
    let pool = SqlitePool::connect_with(connect_options(&db.url()).unwrap())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();

    // Rolled back: neither the order nor the job exists.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let j = client
        .enqueue_tx(&mut *tx, &Ship { order: 1 }, EnqueueOpts::default())
        .await
        .unwrap();
    assert!(j.inserted);
    tx.rollback().await.unwrap();
    assert!(
        client.get(j.job.id).await.is_err(),
        "rolled-back job must not exist"
    );
    let all = client
        .list(JobListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.jobs.is_empty());

    // Committed: both exist and the job starts well within the poll
    // interval: woken by the commit itself.
    let mut worst = Duration::ZERO;
    for order in 2..7 {
        tokio::time::sleep(Duration::from_millis(100)).await; // idle worker
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO orders (id) VALUES (?)")
            .bind(order)
            .execute(&mut *tx)
            .await
            .unwrap();
        client
            .enqueue_tx(&mut *tx, &Ship { order }, EnqueueOpts::default())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let committed = Instant::now();
        let s = started.clone();
        assert!(
            eventually(Duration::from_secs(5), || async {
                s.lock().unwrap().iter().any(|(o, _)| *o == order)
            })
            .await
        );
        let at = started
            .lock()
            .unwrap()
            .iter()
            .find(|(o, _)| *o == order)
            .map(|(_, t)| *t)
            .unwrap();
        worst = worst.max(at.saturating_duration_since(committed));
    }
    assert!(
        worst <= Duration::from_secs(2),
        "commit to claim took {worst:?}: not woken by the commit"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 5);
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct Deliver {
    order: i64,
}
impl JobArgs for Deliver {
    const KIND: &'static str = "deliver";
}

/// Records the delivery and completes the job in one SQLite transaction;
/// the first attempt of order 99 rolls back after completing.
struct Deliverer(SqlitePool);

#[async_trait::async_trait]
impl Worker for Deliverer {
    type Args = Deliver;
    async fn work(&self, ctx: &JobContext, a: Deliver) -> JobResult {
        let mut tx = self.0.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO delivered (order_id) VALUES (?)")
            .bind(a.order)
            .execute(&mut *tx)
            .await?;
        if !ctx
            .complete_tx(&mut *tx)
            .await
            .map_err(rota::JobError::retry)?
        {
            return Err(rota::JobError::retry("lease lost"));
        }
        if a.order == 99 && ctx.attempt() == 1 {
            tx.rollback().await?;
            return Err(rota::JobError::retry(
                "simulated failure after completing in tx",
            ));
        }
        tx.commit().await?;
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_in_the_handlers_own_transaction() {
    let Some(db) = Db::new() else { return };
    // The application's pool, opened first so its table exists.
    let store = db.store().await;
    let pool = SqlitePool::connect_with(connect_options(&db.url()).unwrap())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE delivered (order_id INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let client = rota::Client::builder(store)
        .config(rota::Config {
            backoff: rota::BackoffPolicy {
                initial_interval: Duration::from_millis(50),
                jitter: 0.0,
                ..Default::default()
            },
            ..fast_config().queue("default", 2)
        })
        .worker(Deliverer(pool.clone()))
        .build()
        .unwrap();
    client.start().await.unwrap();
    let ok = client
        .enqueue(&Deliver { order: 1 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let flaky = client
        .enqueue(&Deliver { order: 99 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let ok = client.wait(ok, Duration::from_secs(10)).await.unwrap();
    assert_eq!(ok.state, rota::JobState::Succeeded);
    assert_eq!(ok.attempt, 1);
    let flaky = client.wait(flaky, Duration::from_secs(10)).await.unwrap();
    assert_eq!(flaky.state, rota::JobState::Succeeded);
    assert_eq!(flaky.attempt, 2, "the rolled-back completion did not count");
    for (order, want) in [(1, 1), (99, 1)] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM delivered WHERE order_id = ?")
            .bind(order)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, want, "order {order}: effect exactly once");
    }
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
