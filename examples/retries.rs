//! Retries with backoff: a flaky job fails twice, then succeeds; its
//! recorded errors and the waits between attempts are printed.
//!
//! Run with `cargo run -p rota-examples --example retries`.

use std::time::Duration;

use rota::{
    BackoffPolicy, Client, Config, EnqueueOpts, JobArgs, JobContext, JobError, JobOutcome,
    JobResult, Store, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct FetchFeed {
    url: String,
}

impl JobArgs for FetchFeed {
    const KIND: &'static str = "fetch_feed";
}

struct Fetcher;

#[rota::async_trait]
impl Worker for Fetcher {
    type Args = FetchFeed;

    async fn work(&self, ctx: &JobContext, args: FetchFeed) -> JobResult {
        if ctx.attempt() < 3 {
            return Err(JobError::retry(format!("{} answered 503", args.url)));
        }
        Ok(JobOutcome::Done)
    }

    fn backoff(&self) -> Option<BackoffPolicy> {
        Some(BackoffPolicy {
            initial_interval: Duration::from_millis(200),
            multiplier: 2.0,
            max_interval: Duration::from_secs(5),
            jitter: 0.1,
            max_attempts: 5,
            reset_interval: None,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rota_examples::init_logging();
    let config = Config {
        promote_interval: Duration::from_millis(50),
        ..Config::default().queue("default", 2)
    };
    let client = Client::builder(Store::open(&rota_examples::temp_db("retries")).await?)
        .config(config)
        .worker(Fetcher)
        .build()?;
    client.start().await?;
    let job = client
        .enqueue(
            &FetchFeed {
                url: "https://example.com/feed".into(),
            },
            EnqueueOpts::default().max_attempts(5),
        )
        .await?
        .job;
    let done = client.wait(job.id, Duration::from_secs(30)).await?;
    println!(
        "job {} ended {} on attempt {}",
        done.id, done.state, done.attempt
    );
    for e in &done.errors {
        println!("  attempt {} failed at {}: {}", e.attempt, e.at, e.message);
    }
    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
