//! Kill -9 a process that holds running jobs: after its leases expire,
//! another process rescues and finishes every job; none is lost.
//!
//! The child is this same test binary, re-executed to run the ignored test
//! `kill::child_holds_jobs` with the database URL in an environment variable.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rota::{
    BackoffPolicy, Config, EnqueueOpts, ErrorKind, JobArgs, JobContext, JobListParams, JobOutcome,
    JobRequest, JobResult, JobState, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

const CHILD_ENV: &str = "ROTA_TEST_KILL_CHILD_DB";
const JOBS: usize = 50;

#[derive(Serialize, Deserialize)]
struct Work {
    n: usize,
}
impl JobArgs for Work {
    const KIND: &'static str = "work";
}

/// In the child: never finishes, so the jobs stay held until the kill.
struct Stuck;

#[async_trait::async_trait]
impl Worker for Stuck {
    type Args = Work;
    async fn work(&self, _: &JobContext, _: Work) -> JobResult {
        std::future::pending::<()>().await;
        Ok(JobOutcome::Done)
    }
}

/// In the parent: finishes at once and counts.
struct Finisher(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Worker for Finisher {
    type Args = Work;
    async fn work(&self, _: &JobContext, _: Work) -> JobResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of kill_nine_then_rescue; run by it"]
async fn child_holds_jobs() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = rota::Store::open(&url).await.unwrap();
    let client = rota::Client::builder(store)
        .config(Config {
            node_id: "doomed-child".into(),
            ..fast_config().queue("default", 10)
        })
        .worker(Stuck)
        .build()
        .unwrap();
    client.start().await.unwrap();
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_then_rescue() {
    let Some(db) = Db::new() else { return };
    let parent_cfg = Config {
        node_id: "survivor".into(),
        backoff: BackoffPolicy {
            initial_interval: Duration::from_millis(100),
            jitter: 0.0,
            ..BackoffPolicy::default()
        },
        ..fast_config().queue("default", 10)
    };
    let done = Arc::new(AtomicUsize::new(0));
    let parent = db
        .builder()
        .await
        .config(parent_cfg)
        .worker(Finisher(done.clone()))
        .build()
        .unwrap();
    let reqs = (0..JOBS)
        .map(|n| JobRequest::new(&Work { n }, EnqueueOpts::default()).unwrap())
        .collect();
    parent.enqueue_many(reqs).await.unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill::child_holds_jobs",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, db.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = || async {
        parent
            .list(JobListParams {
                states: vec![JobState::Running],
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .jobs
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            running().await.len() == 10
        })
        .await,
        "child never held 10 running jobs"
    );
    assert!(
        running()
            .await
            .iter()
            .all(|j| j.node.as_deref() == Some("doomed-child"))
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    parent.start().await.unwrap();
    let all_done = eventually(Duration::from_secs(30), || async {
        let c = parent.counts().await.unwrap();
        c.iter()
            .filter(|c| c.state == JobState::Succeeded)
            .map(|c| c.count)
            .sum::<i64>()
            == JOBS as i64
    })
    .await;
    let counts = parent.counts().await.unwrap();
    parent.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(
        all_done,
        "not every job succeeded after the kill: {counts:?}"
    );
    let jobs = parent
        .list(JobListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), JOBS, "0 lost");
    let rescued: Vec<_> = jobs
        .iter()
        .filter(|j| j.errors.iter().any(|e| e.kind == ErrorKind::Rescued))
        .collect();
    assert_eq!(rescued.len(), 10, "the 10 held jobs were rescued");
    for j in rescued {
        assert_eq!(j.attempt, 2, "the killed attempt counts");
        assert_eq!(j.node.as_deref(), Some("survivor"));
    }
    assert_eq!(done.load(Ordering::SeqCst), JOBS);
}
