//! Graceful shutdown: quick jobs finish within the grace period; a job
//! longer than it is stopped and handed back with its attempt recorded, so
//! the next process picks it up. Nothing is left `running`.
//!
//! Run with `cargo run -p rota-examples --example graceful_shutdown`.

use std::time::Duration;

use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobError, JobOutcome, JobResult, Store,
    Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Sleep {
    millis: u64,
}

impl JobArgs for Sleep {
    const KIND: &'static str = "sleep";
}

struct Sleeper;

#[rota::async_trait]
impl Worker for Sleeper {
    type Args = Sleep;
    async fn work(&self, ctx: &JobContext, args: Sleep) -> JobResult {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.millis)) => Ok(JobOutcome::Done),
            _ = ctx.cancelled() => Err(JobError::retry("interrupted")),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rota_examples::init_logging();
    let client = Client::builder(Store::open(&rota_examples::temp_db("shutdown")).await?)
        .config(Config::default().queue("default", 4))
        .worker(Sleeper)
        .build()?;
    client.start().await?;
    let quick = client
        .enqueue(&Sleep { millis: 100 }, EnqueueOpts::default())
        .await?
        .job
        .id;
    let slow = client
        .enqueue(&Sleep { millis: 60_000 }, EnqueueOpts::default())
        .await?
        .job
        .id;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let report = client.shutdown(Duration::from_secs(1)).await?;
    println!(
        "shutdown: clean={} interrupted={}",
        report.clean, report.interrupted
    );
    for id in [quick, slow] {
        let j = client.get(id).await?;
        println!(
            "job {id}: {} (attempt {}, errors {:?})",
            j.state,
            j.attempt,
            j.errors.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
    }
    Ok(())
}
