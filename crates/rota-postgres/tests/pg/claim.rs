//! Claims: SKIP LOCKED under concurrency, ordering, fencing.

use std::collections::HashSet;
use std::time::Duration;

use rota_core::{AttemptError, ErrorKind, JobState};
use rota_driver::{Driver, JobFinishParams, JobHeartbeatParams};

use crate::common::{claim_params, job, now, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_concurrent_claimers_never_share_a_job() {
    with_default_driver(|driver, _| async move {
        let params: Vec<_> = (0..1_000).map(|_| job("busy")).collect();
        let inserted = driver.job_insert_many(params).await.unwrap();
        assert_eq!(inserted.len(), 1_000);

        let mut tasks = Vec::new();
        for worker in 0..4i64 {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut empty = 0;
                while empty < 3 {
                    let got = d
                        .job_claim(&claim_params("busy", 7, worker + 1))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        empty += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    for j in &got {
                        assert_eq!(j.state, JobState::Running);
                        assert_eq!(j.attempt, 1);
                        assert_eq!(j.lease_token, Some(worker + 1));
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        let mut per_worker = Vec::new();
        for t in tasks {
            let mine = t.await.unwrap();
            per_worker.push(mine.len());
            all.extend(mine);
        }
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
        assert_eq!(all.len(), 1_000, "every job claimed exactly once");
        eprintln!("claims per worker: {per_worker:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_orders_by_priority_run_at_id_and_skips_paused() {
    with_default_driver(|driver, _| async move {
        let base = now();
        let mut specs = Vec::new();
        for (priority, offset) in [(2, 0), (0, 5), (0, 1), (1, 0)] {
            let mut p = job("ord");
            p.priority = priority;
            p.run_at = base - Duration::from_secs(offset);
            specs.push(p);
        }
        let ids: Vec<i64> = driver
            .job_insert_many(specs)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.job.id)
            .collect();
        driver
            .queue_pause(&rota_driver::QueuePauseParams {
                name: "ord".into(),
                now: base,
            })
            .await
            .unwrap();
        assert!(
            driver
                .job_claim(&claim_params("ord", 10, 1))
                .await
                .unwrap()
                .is_empty()
        );
        driver
            .queue_resume(&rota_driver::QueuePauseParams {
                name: "ord".into(),
                now: base,
            })
            .await
            .unwrap();
        let got: Vec<i64> = driver
            .job_claim(&claim_params("ord", 10, 1))
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(got, vec![ids[1], ids[2], ids[3], ids[0]]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_and_heartbeat_are_fenced_by_lease_token() {
    with_default_driver(|driver, _| async move {
        driver.job_insert_many(vec![job("fence")]).await.unwrap();
        let j = driver
            .job_claim(&claim_params("fence", 1, 111))
            .await
            .unwrap()
            .remove(0);
        let t = now();
        let finish = |token: i64, expired_before| JobFinishParams {
            id: j.id,
            lease_token: token,
            lease_expired_before: expired_before,
            state: JobState::Retrying,
            attempt: j.attempt,
            run_at: Some(t + Duration::from_secs(60)),
            finished_at: None,
            error: Some(AttemptError {
                attempt: 1,
                at: t,
                kind: ErrorKind::Error,
                message: "boom".into(),
            }),
            output: Some("out".into()),
            progress: None,
            exit_code: None,
        };

        // Stale token: nothing changes.
        let r = driver
            .job_finish_many(vec![finish(999, None)])
            .await
            .unwrap();
        assert!(!r[0].applied);
        let hb = driver
            .job_heartbeat_many(&JobHeartbeatParams {
                jobs: vec![(j.id, 999), (j.id, 111)],
                lease_expires_at: t + Duration::from_secs(90),
                now: t,
            })
            .await
            .unwrap();
        assert!(!hb[0].held);
        assert!(hb[1].held);
        assert!(!hb[1].cancel_requested);

        // Rescue fence: the lease has not expired before `t`, so no rescue.
        let r = driver
            .job_finish_many(vec![finish(111, Some(t))])
            .await
            .unwrap();
        assert!(!r[0].applied, "a fresh lease wins over a rescue");
        assert_eq!(
            driver.job_get(j.id).await.unwrap().unwrap().state,
            JobState::Running
        );

        // Right token: applies once, then the run is over.
        let r = driver
            .job_finish_many(vec![finish(111, None), finish(111, None)])
            .await
            .unwrap();
        assert!(r[0].applied);
        assert!(!r[1].applied, "a repeated finish of the same run is stale");
        let stored = driver.job_get(j.id).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Retrying);
        assert_eq!(stored.errors.len(), 1);
        assert_eq!(stored.errors[0].message, "boom");
        assert_eq!(stored.output.as_deref(), Some("out"));
        assert_eq!(stored.lease_token, None);
        assert_eq!(stored.lease_expires_at, None);
        assert_eq!(stored.node.as_deref(), Some("node-1"), "node kept");
    })
    .await;
}
