//! Rough SQLite figures: enqueue-many and processing throughput of no-op
//! jobs. (`rota bench` is the real benchmark tool; this is a quick look.)
//!
//! Run with `cargo run --release -p rota-examples --example throughput [JOBS]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobRequest, JobResult, JobState,
    Store, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl JobArgs for Noop {
    const KIND: &'static str = "noop";
}

struct NoopWorker(Arc<AtomicU64>);

#[rota::async_trait]
impl Worker for NoopWorker {
    type Args = Noop;
    async fn work(&self, _ctx: &JobContext, _args: Noop) -> JobResult {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(JobOutcome::Done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let ran = Arc::new(AtomicU64::new(0));
    let client = Client::builder(Store::open(&rota_examples::temp_db("throughput")).await?)
        .config(Config {
            claim_batch: 1000,
            ..Config::default().queue("default", 200)
        })
        .worker(NoopWorker(ran.clone()))
        .build()?;

    let t = Instant::now();
    let reqs: Vec<JobRequest> = (0..jobs)
        .map(|n| JobRequest::new(&Noop { n }, EnqueueOpts::default()))
        .collect::<Result<_, _>>()?;
    for chunk in reqs.chunks(10_000) {
        client.enqueue_many(chunk.to_vec()).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "enqueue_many: {jobs} jobs in {secs:.2} s = {:.0} jobs/s",
        jobs as f64 / secs
    );

    let t = Instant::now();
    client.start().await?;
    loop {
        // Counting rows scans the table: wait for the handlers first.
        if ran.load(Ordering::Relaxed) < jobs {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let succeeded: i64 = client
            .counts()
            .await?
            .iter()
            .filter(|c| c.state == JobState::Succeeded)
            .map(|c| c.count)
            .sum();
        if succeeded as u64 >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "processing: {jobs} jobs in {secs:.2} s = {:.0} jobs/s",
        jobs as f64 / secs
    );
    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
