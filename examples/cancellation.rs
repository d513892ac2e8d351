//! Durable cancellation: a long job watches its cancellation token; the
//! cancel is recorded in the store and the run ends `canceled`.
//!
//! Run with `cargo run -p rota-examples --example cancellation`.

use std::time::Duration;

use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, JobState, Store,
    Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Reindex {
    table: String,
}

impl JobArgs for Reindex {
    const KIND: &'static str = "reindex";
}

struct Indexer;

#[rota::async_trait]
impl Worker for Indexer {
    type Args = Reindex;

    async fn work(&self, ctx: &JobContext, args: Reindex) -> JobResult {
        for chunk in 0.. {
            tokio::select! {
                _ = ctx.cancelled() => {
                    ctx.log(format!("stopping {} at chunk {chunk}: {:?}", args.table, ctx.cancel_reason()));
                    return Ok(JobOutcome::Cancel("stopped cleanly".into()));
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    ctx.log(format!("indexed chunk {chunk}"));
                }
            }
        }
        Ok(JobOutcome::Done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rota_examples::init_logging();
    let client = Client::builder(Store::open(&rota_examples::temp_db("cancel")).await?)
        .config(Config::default().queue("default", 1))
        .worker(Indexer)
        .build()?;
    client.start().await?;
    let job = client
        .enqueue(
            &Reindex {
                table: "events".into(),
            },
            EnqueueOpts::default(),
        )
        .await?
        .job;
    while client.get(job.id).await?.state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let done = client
        .cancel_and_wait(job.id, Duration::from_secs(10))
        .await?;
    println!("job {} is {}", done.id, done.state);
    println!("{}", done.output.unwrap_or_default());
    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
