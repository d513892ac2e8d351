//! Transactional enqueue and transactional completion on PostgreSQL: a
//! rollback leaves no job and no effect; a commit leaves both.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota::sqlx::{self, PgPool};
use rota::{
    EnqueueOpts, JobArgs, JobContext, JobError, JobListParams, JobOutcome, JobResult, JobState,
    Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Ship {
    order: i64,
}
impl JobArgs for Ship {
    const KIND: &'static str = "ship";
}

/// Records the shipment in the application's table and completes the job
/// in the same transaction. The first attempt of order 99 rolls back.
struct Shipper {
    pool: PgPool,
    schema: String,
    started: Arc<Mutex<Vec<(i64, Instant)>>>,
    attempts: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl Worker for Shipper {
    type Args = Ship;
    async fn work(&self, ctx: &JobContext, a: Ship) -> JobResult {
        self.started.lock().unwrap().push((a.order, Instant::now()));
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let mut tx = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{}\".shipped (order_id) VALUES ($1)",
            self.schema
        )))
        .bind(a.order)
        .execute(&mut *tx)
        .await?;
        let held = ctx.complete_tx(&mut *tx).await.map_err(JobError::retry)?;
        if !held {
            return Err(JobError::retry("lease lost"));
        }
        if a.order == 99 && ctx.attempt() == 1 {
            tx.rollback().await?;
            return Err(JobError::retry("simulated failure after completing in tx"));
        }
        tx.commit().await?;
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_and_completion_in_the_callers_transaction() {
    let Some(db) = Db::new() else { return };
    let store = db.store().await;
    let pool = PgPool::connect(db.server()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".orders (id bigint PRIMARY KEY)",
        db.schema
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".shipped (order_id bigint NOT NULL)",
        db.schema
    )))
    .execute(&pool)
    .await
    .unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(AtomicU32::new(0));
    let client = rota::Client::builder(store)
        .config(rota::Config {
            poll_interval: Duration::from_secs(30), // only NOTIFY can make it fast
            backoff: rota::BackoffPolicy {
                initial_interval: Duration::from_millis(50),
                jitter: 0.0,
                ..Default::default()
            },
            ..fast_config().queue("default", 4)
        })
        .worker(Shipper {
            pool: pool.clone(),
            schema: db.schema.clone(),
            started: started.clone(),
            attempts: attempts.clone(),
        })
        .build()
        .unwrap();
    client.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // listener up

    // Enqueue rolled back: no order, no job.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{}\".orders VALUES (1)",
        db.schema
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let ghost = client
        .enqueue_tx(&mut *tx, &Ship { order: 1 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    tx.rollback().await.unwrap();
    assert!(client.get(ghost).await.is_err());

    // Enqueue committed: started within 50 ms of the commit.
    let mut worst = Duration::ZERO;
    for order in 2..7 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{}\".orders VALUES ($1)",
            db.schema
        )))
        .bind(order)
        .execute(&mut *tx)
        .await
        .unwrap();
        let id = client
            .enqueue_tx(&mut *tx, &Ship { order }, EnqueueOpts::default())
            .await
            .unwrap()
            .job
            .id;
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
        let job = client.wait(id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded);
    }
    assert!(
        worst <= Duration::from_millis(50),
        "commit to start took {worst:?}"
    );

    // Completion rolled back on the first attempt: no effect, job retried;
    // committed on the second: exactly one effect, job succeeded.
    let id = client
        .enqueue(&Ship { order: 99 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let job = client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 2);
    assert_eq!(job.errors.len(), 1);
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".shipped WHERE order_id = 99",
        db.schema
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1, "the rolled-back attempt left no effect");
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".shipped",
        db.schema
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(total, 6);
    let all = client
        .list(JobListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.jobs.len(), 6);
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
