//! Executions: status derived from their jobs, stop, retention per owner,
//! explicit marks for executions without jobs, and execution hooks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rota::{
    Config, EnqueueOpts, Error, ExecutionListParams, ExecutionRequest, ExecutionRetention,
    ExecutionRow, ExecutionStatus, JobArgs, JobContext, JobError, JobOutcome, JobRequest,
    JobResult, JobState, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

#[derive(Serialize, Deserialize)]
struct Step {
    fail: bool,
    hold: bool,
}
impl JobArgs for Step {
    const KIND: &'static str = "step";
}

struct Stepper;

#[async_trait::async_trait]
impl Worker for Stepper {
    type Args = Step;
    async fn work(&self, ctx: &JobContext, a: Step) -> JobResult {
        if a.hold {
            ctx.cancelled().await;
            return Ok(JobOutcome::Cancel("stopped".into()));
        }
        if a.fail {
            return Err(JobError::fatal("planned failure"));
        }
        Ok(JobOutcome::Done)
    }
}

fn step(fail: bool, hold: bool) -> JobRequest {
    JobRequest::new(&Step { fail, hold }, EnqueueOpts::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_jobs_stop_cancels_and_hooks_fire() {
    let Some(db) = Db::new() else { return };
    let seen: Arc<Mutex<Vec<ExecutionRow>>> = Arc::default();
    let s = seen.clone();
    let client = db
        .builder()
        .await
        .config(fast_config().queue("default", 16))
        .worker(Stepper)
        .on_execution_status(
            Some("replication"),
            Arc::new(move |ex: &ExecutionRow| s.lock().unwrap().push(ex.clone())),
        )
        .build()
        .unwrap();
    client.start().await.unwrap();

    // 100 jobs, 3 fail: failed with metrics 97/3.
    let mut req = ExecutionRequest::new("replication", "42").attribute("region", "eu");
    for i in 0..100 {
        req = req.job(step(i % 33 == 5, false));
    }
    let (ex, jobs) = client.create_execution(req).await.unwrap();
    assert_eq!(jobs.len(), 100);
    assert!(jobs.iter().all(|j| j.job.execution_id == Some(ex.id)));
    assert_eq!(ex.status, ExecutionStatus::Running);
    let done = client
        .wait_execution(ex.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.counts.get(&JobState::Succeeded), Some(&97));
    assert_eq!(done.counts.get(&JobState::Failed), Some(&3));
    assert!(done.ended_at.is_some());

    // All succeed: succeeded.
    let mut req = ExecutionRequest::new("replication", "43");
    for _ in 0..10 {
        req = req.job(step(false, false));
    }
    let (ok, _) = client.create_execution(req).await.unwrap();
    let ok = client
        .wait_execution(ok.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ok.status, ExecutionStatus::Succeeded);
    assert_eq!(ok.counts.get(&JobState::Succeeded), Some(&10));

    // Stop cancels the rest: two running, three waiting behind a paused queue.
    client.pause_queue("held").await.unwrap();
    let mut req = ExecutionRequest::new("replication", "44")
        .job(step(false, true))
        .job(step(false, true));
    for _ in 0..3 {
        req = req.job(
            JobRequest::new(
                &Step {
                    fail: false,
                    hold: true,
                },
                EnqueueOpts::default().queue("held"),
            )
            .unwrap(),
        );
    }
    let (stop, _) = client.create_execution(req).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            client
                .execution(stop.id)
                .await
                .unwrap()
                .counts
                .get(&JobState::Running)
                == Some(&2)
        })
        .await
    );
    let stopped = client
        .stop_execution_and_wait(stop.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Canceled);
    assert_eq!(stopped.counts.get(&JobState::Canceled), Some(&5));

    // An execution without jobs is marked explicitly.
    let (empty, _) = client
        .create_execution(ExecutionRequest::new("replication", "45"))
        .await
        .unwrap();
    assert_eq!(empty.status, ExecutionStatus::Running);
    let marked = client
        .mark_execution(
            empty.id,
            ExecutionStatus::Error,
            Some("source unreachable".into()),
        )
        .await
        .unwrap();
    assert_eq!(marked.status, ExecutionStatus::Error);
    assert_eq!(marked.status_message.as_deref(), Some("source unreachable"));
    assert!(matches!(
        client
            .mark_execution(ex.id, ExecutionStatus::Succeeded, None)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        client.execution(999_999).await,
        Err(Error::Missing {
            entity: "execution",
            ..
        })
    ));

    // Queryable by attribute; jobs listed per execution.
    let eu = client
        .executions(&ExecutionListParams {
            attributes: BTreeMap::from([("region".to_owned(), "eu".to_owned())]),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(eu.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ex.id]);
    assert_eq!(client.all_execution_jobs(ex.id).await.unwrap().len(), 100);

    // Hooks saw every final status, after commit.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let s = seen.lock().unwrap();
            [ex.id, ok.id, stop.id, empty.id]
                .iter()
                .all(|id| s.iter().any(|e| e.id == *id && e.status.is_finished()))
        })
        .await,
        "{:?}",
        seen.lock().unwrap()
    );
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_last_n_per_owner() {
    let Some(db) = Db::new() else { return };
    const N: usize = 3;
    let client = db
        .builder()
        .await
        .config(Config {
            execution_retention: ExecutionRetention {
                keep_last: None,
                per_owner_kind: BTreeMap::from([("backup".to_owned(), N as u64)]),
            },
            maintenance: false,
            ..fast_config().queue("default", 8)
        })
        .worker(Stepper)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 * N {
        let (ex, _) = client
            .create_execution(ExecutionRequest::new("backup", "7").job(step(false, false)))
            .await
            .unwrap();
        client
            .wait_execution(ex.id, Duration::from_secs(10))
            .await
            .unwrap();
        ids.push(ex.id);
    }
    let (other, _) = client
        .create_execution(ExecutionRequest::new("backup", "8").job(step(false, false)))
        .await
        .unwrap();
    client
        .wait_execution(other.id, Duration::from_secs(10))
        .await
        .unwrap();
    // A running execution of the same owner is never pruned.
    client.pause_queue("held").await.unwrap();
    let (running, _) = client
        .create_execution(
            ExecutionRequest::new("backup", "7").job(
                JobRequest::new(
                    &Step {
                        fail: false,
                        hold: false,
                    },
                    EnqueueOpts::default().queue("held"),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();

    use rota::maintenance::Service;
    client.services().pruner.run_once().await.unwrap();
    let left = client
        .executions(&ExecutionListParams {
            owner_kind: Some("backup".into()),
            owner_id: Some("7".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut left_ids: Vec<i64> = left.iter().map(|e| e.id).collect();
    left_ids.sort();
    let mut want: Vec<i64> = ids[2 * N..].to_vec();
    want.push(running.id);
    want.sort();
    assert_eq!(
        left_ids, want,
        "exactly the last {N} finished, plus the running one"
    );
    assert!(
        client.execution(other.id).await.is_ok(),
        "other owners keep theirs"
    );
    // The pruned executions' jobs are gone too.
    assert!(client.all_execution_jobs(ids[0]).await.is_err());
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
