//! A handler that fails twice then succeeds ends `succeeded` with attempt 3
//! and two recorded errors; the gaps between attempts follow the backoff
//! policy, checked with an injected clock rather than sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use rota::maintenance::Service;
use rota::{
    BackoffPolicy, Config, EnqueueOpts, ErrorKind, JobArgs, JobContext, JobError, JobOutcome,
    JobResult, JobState, ManualClock, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Flaky;
impl JobArgs for Flaky {
    const KIND: &'static str = "flaky";
}

struct FlakyWorker(Arc<AtomicU32>);

#[async_trait::async_trait]
impl Worker for FlakyWorker {
    type Args = Flaky;
    async fn work(&self, ctx: &JobContext, _: Flaky) -> JobResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt() <= 2 {
            return Err(JobError::retry(format!("boom {}", ctx.attempt())));
        }
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_twice_then_succeeds_with_backoff_gaps() {
    let Some(db) = Db::new() else { return };
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let backoff = BackoffPolicy {
        initial_interval: Duration::from_secs(10),
        multiplier: 3.0,
        max_interval: Duration::from_secs(3600),
        jitter: 0.0,
        max_attempts: 5,
        reset_interval: None,
    };
    let config = Config {
        clock: Arc::new(clock.clone()),
        backoff: backoff.clone(),
        // Promotion is driven by the test through run_once().
        maintenance: false,
        ..fast_config().queue("default", 2)
    };
    let runs = Arc::new(AtomicU32::new(0));
    let client = db
        .builder()
        .await
        .config(config)
        .worker(FlakyWorker(runs.clone()))
        .build()
        .unwrap();
    client.start().await.unwrap();
    let id = client
        .enqueue(&Flaky, EnqueueOpts::default().max_attempts(5))
        .await
        .unwrap()
        .job
        .id;

    for (failures, gap) in [(1usize, 10u64), (2, 30)] {
        let c = client.clone();
        assert!(
            eventually(Duration::from_secs(10), || async {
                let j = c.get(id).await.unwrap();
                j.state == JobState::Retrying && j.errors.len() == failures
            })
            .await,
            "job did not reach retrying #{failures}"
        );
        let job = client.get(id).await.unwrap();
        let err = job.errors.last().unwrap();
        assert_eq!(err.kind, ErrorKind::Error);
        assert_eq!(err.attempt as usize, failures);
        assert_eq!(err.message, format!("boom {failures}"));
        assert_eq!(
            job.run_at.duration_since(err.at).as_secs(),
            gap as i64,
            "gap after attempt {failures}"
        );
        // Not due yet: promotion does nothing.
        clock.advance(Duration::from_secs(gap - 1));
        assert_eq!(
            client
                .services()
                .promoter
                .run_once()
                .await
                .unwrap()
                .affected,
            0
        );
        assert_eq!(client.get(id).await.unwrap().state, JobState::Retrying);
        // Due: promoted and run again.
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            client
                .services()
                .promoter
                .run_once()
                .await
                .unwrap()
                .affected,
            1
        );
    }
    let c = client.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.get(id).await.unwrap().state == JobState::Succeeded
        })
        .await
    );
    let job = client.get(id).await.unwrap();
    assert_eq!(job.attempt, 3);
    assert_eq!(job.errors.len(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_error_and_panic_are_recorded() {
    #[derive(Serialize, Deserialize)]
    struct Bad {
        panic: bool,
    }
    impl JobArgs for Bad {
        const KIND: &'static str = "bad";
    }
    struct BadWorker;
    #[async_trait::async_trait]
    impl Worker for BadWorker {
        type Args = Bad;
        async fn work(&self, _: &JobContext, a: Bad) -> JobResult {
            if a.panic {
                panic!("handler blew up");
            }
            Err(JobError::fatal("no point retrying"))
        }
    }
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(fast_config().queue("default", 2))
        .worker(BadWorker)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let fatal = client
        .enqueue(&Bad { panic: false }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let panics = client
        .enqueue(&Bad { panic: true }, EnqueueOpts::default().max_attempts(1))
        .await
        .unwrap()
        .job
        .id;
    let f = client.wait(fatal, Duration::from_secs(10)).await.unwrap();
    assert_eq!(f.state, JobState::Failed);
    assert_eq!(f.attempt, 1);
    assert_eq!(f.errors[0].kind, ErrorKind::Fatal);
    let p = client.wait(panics, Duration::from_secs(10)).await.unwrap();
    assert_eq!(p.state, JobState::Failed);
    assert_eq!(p.errors[0].kind, ErrorKind::Panic);
    assert!(
        p.errors[0].message.contains("handler blew up"),
        "{:?}",
        p.errors
    );
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
