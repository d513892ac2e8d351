//! 10,000 jobs across three queues with concurrency 1/4/16: every job runs,
//! and no queue ever exceeds its concurrency, measured inside the handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rota::{EnqueueOpts, JobArgs, JobContext, JobOutcome, JobRequest, JobResult, JobState, Worker};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Count {
    queue: usize,
}
impl JobArgs for Count {
    const KIND: &'static str = "count";
}

#[derive(Default)]
struct Gauges {
    current: [AtomicUsize; 3],
    max: [AtomicUsize; 3],
    done: AtomicUsize,
}

struct Counter(Arc<Gauges>);

#[async_trait::async_trait]
impl Worker for Counter {
    type Args = Count;
    async fn work(&self, _ctx: &JobContext, args: Count) -> JobResult {
        let g = &self.0;
        let now = g.current[args.queue].fetch_add(1, Ordering::SeqCst) + 1;
        g.max[args.queue].fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        g.current[args.queue].fetch_sub(1, Ordering::SeqCst);
        g.done.fetch_add(1, Ordering::SeqCst);
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_jobs_respect_queue_concurrency() {
    let Some(db) = Db::new() else { return };
    let gauges = Arc::new(Gauges::default());
    let limits = [1usize, 4, 16];
    let names = ["serial", "small", "wide"];
    let mut cfg = fast_config();
    for (n, l) in names.iter().zip(limits) {
        cfg = cfg.queue(*n, l as u32);
    }
    let client = db
        .builder()
        .await
        .config(cfg)
        .worker(Counter(gauges.clone()))
        .build()
        .unwrap();
    let total = 10_000;
    let reqs: Vec<JobRequest> = (0..total)
        .map(|i| {
            JobRequest::new(
                &Count { queue: i % 3 },
                EnqueueOpts::default().queue(names[i % 3]),
            )
            .unwrap()
        })
        .collect();
    for chunk in reqs.chunks(2_000) {
        client.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    client.start().await.unwrap();
    let done = eventually(Duration::from_secs(240), || async {
        gauges.done.load(Ordering::SeqCst) >= total
    })
    .await;
    assert!(
        done,
        "only {} of {total} ran",
        gauges.done.load(Ordering::SeqCst)
    );
    // Let the completer write the last results.
    let settled = eventually(Duration::from_secs(30), || async {
        let counts = client.counts().await.unwrap();
        counts
            .iter()
            .filter(|c| c.state == JobState::Succeeded)
            .map(|c| c.count)
            .sum::<i64>()
            == total as i64
    })
    .await;
    client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(
        settled,
        "not every job ended succeeded: {:?}",
        client.counts().await.unwrap()
    );
    let mut per_queue = HashMap::new();
    for c in client.counts().await.unwrap() {
        *per_queue.entry(c.queue).or_insert(0) += c.count;
    }
    for (i, name) in names.iter().enumerate() {
        let max = gauges.max[i].load(Ordering::SeqCst);
        assert!(
            max <= limits[i],
            "queue {name} ran {max} at once, limit {}",
            limits[i]
        );
        assert!(max >= 1);
        assert_eq!(
            per_queue.get(*name).copied(),
            Some((total / 3 + usize::from(i < total % 3)) as i64)
        );
    }
    // The wide queue actually ran in parallel (the limit was used, not just respected).
    assert!(gauges.max[2].load(Ordering::SeqCst) > 1);
}
