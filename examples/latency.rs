//! Idle-worker latency: 200 jobs enqueued one at a time, 10 ms apart; for
//! each, the time from the enqueue's commit (when `enqueue` returned) to the
//! handler's start. Prints p50/p90/p99/max.
//!
//! Run with `cargo run --release -p rota-examples --example latency [DATABASE_URL]`
//! (default: a temp SQLite file; e.g. `postgres://user:pw@127.0.0.1/db`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, Store, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Ping;

impl JobArgs for Ping {
    const KIND: &'static str = "ping";
}

type Starts = Arc<Mutex<HashMap<i64, Instant>>>;

struct Pong(Starts);

#[rota::async_trait]
impl Worker for Pong {
    type Args = Ping;
    async fn work(&self, ctx: &JobContext, _: Ping) -> JobResult {
        let now = Instant::now();
        self.0
            .lock()
            .map_err(|_| rota::JobError::fatal("poisoned"))?
            .insert(ctx.id(), now);
        Ok(JobOutcome::Done)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| rota_examples::temp_db("latency"));
    let starts: Starts = Arc::default();
    let client = Client::builder(Store::open(&url).await?)
        .config(Config::default().queue("default", 4))
        .worker(Pong(starts.clone()))
        .build()?;
    client.start().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut committed = HashMap::new();
    for _ in 0..200 {
        let id = client.enqueue(&Ping, EnqueueOpts::default()).await?.job.id;
        committed.insert(id, Instant::now());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let starts = starts
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut lat: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, c)| starts.get(id).map(|s| s.saturating_duration_since(*c)))
        .collect();
    lat.sort();
    anyhow::ensure!(lat.len() == 200, "only {} of 200 jobs started", lat.len());
    println!(
        "store {}: enqueue-commit -> handler-start over {} jobs: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        client.driver().name(),
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
