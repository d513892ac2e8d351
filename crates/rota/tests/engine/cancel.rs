//! Durable cancellation: a running job canceled from another client (as an
//! operator or the HTTP API would) ends `canceled` within one heartbeat
//! interval; canceling a finished job is a clear error.

use std::time::{Duration, Instant};

use rota::{
    Config, EnqueueOpts, Error, JobArgs, JobContext, JobOutcome, JobResult, JobState, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Forever;
impl JobArgs for Forever {
    const KIND: &'static str = "forever";
}

struct Patient;

#[async_trait::async_trait]
impl Worker for Patient {
    type Args = Forever;
    async fn work(&self, ctx: &JobContext, _: Forever) -> JobResult {
        ctx.cancelled().await;
        Ok(JobOutcome::Cancel("stopped on request".into()))
    }
}

#[derive(Serialize, Deserialize)]
struct Quick;
impl JobArgs for Quick {
    const KIND: &'static str = "quick";
}

struct QuickWorker;

#[async_trait::async_trait]
impl Worker for QuickWorker {
    type Args = Quick;
    async fn work(&self, _: &JobContext, _: Quick) -> JobResult {
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_another_client_ends_running_job_within_a_heartbeat() {
    let Some(db) = Db::new() else { return };
    let cfg = fast_config();
    let heartbeat = cfg.heartbeat_interval;
    let worker = db
        .builder()
        .await
        .config(cfg.queue("default", 2))
        .worker(Patient)
        .worker(QuickWorker)
        .build()
        .unwrap();
    worker.start().await.unwrap();
    // A second client on the same file, with no workers: like an operator.
    let operator = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let id = operator
        .enqueue(&Forever, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    assert!(
        eventually(Duration::from_secs(5), || async {
            operator.get(id).await.unwrap().state == JobState::Running
        })
        .await
    );

    let t0 = Instant::now();
    let j = operator.cancel(id).await.unwrap();
    assert_eq!(
        j.state,
        JobState::Running,
        "a running job stays running until its handler stops"
    );
    assert!(j.cancel_requested_at.is_some());
    let done = operator.wait(id, Duration::from_secs(5)).await.unwrap();
    let took = t0.elapsed();
    assert_eq!(done.state, JobState::Canceled);
    // One heartbeat interval, plus the completer's write.
    assert!(
        took <= heartbeat + Duration::from_millis(300),
        "cancel took {took:?}, heartbeat is {heartbeat:?}"
    );

    // Canceling a finished job is a clear error and changes nothing.
    match operator.cancel(id).await {
        Err(Error::InvalidState {
            state: JobState::Canceled,
            action: "cancel",
            ..
        }) => {}
        other => panic!("expected InvalidState, got {other:?}"),
    }
    let q = worker
        .enqueue(&Quick, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    assert_eq!(
        worker.wait(q, Duration::from_secs(5)).await.unwrap().state,
        JobState::Succeeded
    );
    assert!(matches!(
        operator.cancel(q).await,
        Err(Error::InvalidState {
            state: JobState::Succeeded,
            ..
        })
    ));
    assert!(matches!(
        operator.cancel(999_999).await,
        Err(Error::NotFound(999_999))
    ));
    assert_eq!(operator.get(q).await.unwrap().state, JobState::Succeeded);
    worker.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_in_process_is_immediate_and_waiting_jobs_end_at_once() {
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(fast_config().queue("default", 1))
        .worker(Patient)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let running = client
        .enqueue(&Forever, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let later = client
        .enqueue(
            &Forever,
            EnqueueOpts::default().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .job;
    assert_eq!(later.state, JobState::Scheduled);
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.get(running).await.unwrap().state == JobState::Running
        })
        .await
    );
    let t0 = Instant::now();
    let done = client
        .cancel_and_wait(running, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Canceled);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "in-process cancel took {:?}",
        t0.elapsed()
    );
    let c = client.cancel(later.id).await.unwrap();
    assert_eq!(c.state, JobState::Canceled);
    assert!(c.finished_at.is_some());
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
