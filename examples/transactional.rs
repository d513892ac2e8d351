//! Transactional enqueue: the job exists if and only if the application's
//! own transaction commits.
//!
//! Run with `cargo run -p rota-examples --example transactional`.

use std::time::Duration;

use rota::drivers::sqlite::connect_options;
use rota::sqlx::{self, SqlitePool};
use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, Store, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ShipOrder {
    order_id: i64,
}

impl JobArgs for ShipOrder {
    const KIND: &'static str = "ship_order";
}

struct Shipping;

#[rota::async_trait]
impl Worker for Shipping {
    type Args = ShipOrder;
    async fn work(&self, _ctx: &JobContext, args: ShipOrder) -> JobResult {
        println!("shipping order {}", args.order_id);
        Ok(JobOutcome::Done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rota_examples::init_logging();
    let url = rota_examples::temp_db("tx");
    let client = Client::builder(Store::open(&url).await?)
        .config(Config::default().queue("default", 2))
        .worker(Shipping)
        .build()?;
    client.start().await?;

    // The application's own pool on the same database file.
    let pool = SqlitePool::connect_with(connect_options(&url)?).await?;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")
        .execute(&pool)
        .await?;

    // Committed: the order and its shipping job appear together.
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO orders (id, item) VALUES (1, 'book')")
        .execute(&mut *tx)
        .await?;
    let job = client
        .enqueue_tx(&mut *tx, &ShipOrder { order_id: 1 }, EnqueueOpts::default())
        .await?
        .job;
    tx.commit().await?;
    let done = client.wait(job.id, Duration::from_secs(10)).await?;
    println!("committed order: job {} {}", done.id, done.state);

    // Rolled back: neither the order nor the job exists.
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO orders (id, item) VALUES (2, 'lamp')")
        .execute(&mut *tx)
        .await?;
    let ghost = client
        .enqueue_tx(&mut *tx, &ShipOrder { order_id: 2 }, EnqueueOpts::default())
        .await?
        .job;
    tx.rollback().await?;
    println!(
        "rolled-back order: job {} exists? {}",
        ghost.id,
        client.get(ghost.id).await.is_ok()
    );

    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
