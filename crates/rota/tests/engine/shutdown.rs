//! Graceful shutdown with jobs longer than the grace period: they are
//! handed back with their attempt recorded, none left `running`; quick jobs
//! finish normally within the grace.

use std::time::Duration;

use rota::{
    EnqueueOpts, ErrorKind, JobArgs, JobContext, JobListParams, JobOutcome, JobResult, JobState,
    Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Slow {
    millis: u64,
}
impl JobArgs for Slow {
    const KIND: &'static str = "slow";
}

struct SlowWorker;

#[async_trait::async_trait]
impl Worker for SlowWorker {
    type Args = Slow;
    async fn work(&self, ctx: &JobContext, a: Slow) -> JobResult {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(a.millis)) => Ok(JobOutcome::Done),
            _ = ctx.cancelled() => Err(rota::JobError::retry("interrupted")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_jobs_are_handed_back_none_left_running() {
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(fast_config().queue("default", 8))
        .worker(SlowWorker)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(
            client
                .enqueue(
                    &Slow { millis: 60_000 },
                    EnqueueOpts::default().max_attempts(3),
                )
                .await
                .unwrap()
                .job
                .id,
        );
    }
    let short = client
        .enqueue(&Slow { millis: 200 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    assert!(
        eventually(Duration::from_secs(5), || async {
            let page = client
                .list(JobListParams {
                    states: vec![JobState::Running],
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap();
            page.jobs.len() == 5
        })
        .await
    );
    let report = client.shutdown(Duration::from_millis(800)).await.unwrap();
    assert!(!report.clean);
    assert_eq!(report.interrupted, 4);

    let running = client
        .list(JobListParams {
            states: vec![JobState::Running],
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(running.jobs.is_empty(), "left running: {:?}", running.jobs);
    assert_eq!(client.get(short).await.unwrap().state, JobState::Succeeded);
    for id in long {
        let j = client.get(id).await.unwrap();
        assert_eq!(j.state, JobState::Available, "handed back: {j:?}");
        assert_eq!(j.attempt, 1, "the interrupted attempt stays recorded");
        assert_eq!(j.errors.len(), 1);
        assert_eq!(j.errors[0].kind, ErrorKind::Shutdown);
        assert!(j.lease_expires_at.is_none());
    }
}
