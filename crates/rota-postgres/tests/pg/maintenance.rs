//! Smoke tests of promote, prune, retry, cancel, queues and leadership SQL
//! (the conformance suite checks the full semantics).

use std::time::Duration;

use rota_core::JobState;
use rota_driver::{
    Driver, DriverError, JobCancelParams, JobFinishParams, JobListParams, JobPromoteParams,
    JobPruneParams, JobRetryParams, LeaderElectParams, LeaderReelectParams,
};

use crate::common::{claim_params, job, now, subscribe_ready, wait_for_queue, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_retry_prune_and_list() {
    with_default_driver(|driver, _| async move {
        let mut rx = subscribe_ready(&driver).await;
        let t = now();
        let mut later = job("later");
        later.state = JobState::Scheduled;
        later.run_at = t + Duration::from_secs(60);
        later.attributes.insert("team".into(), "a".into());
        let id = driver.job_insert_many(vec![later]).await.unwrap()[0].job.id;

        let none = driver
            .job_promote_due(&JobPromoteParams { now: t, limit: 100 })
            .await
            .unwrap();
        assert!(none.is_empty());
        let promoted = driver
            .job_promote_due(&JobPromoteParams {
                now: t + Duration::from_secs(60),
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(promoted.len(), 1);
        assert_eq!(
            (promoted[0].queue.as_str(), promoted[0].count),
            ("later", 1)
        );
        assert!(wait_for_queue(&mut rx, "later", Duration::from_secs(5)).await);

        // Attribute filter and keyset pagination.
        let mut params = JobListParams {
            attributes: [("team".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(driver.job_list(&params).await.unwrap().len(), 1);
        params.attributes.insert("team".into(), "b".into());
        assert!(driver.job_list(&params).await.unwrap().is_empty());
        let page = driver
            .job_list(&JobListParams {
                before_id: Some(id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.is_empty());

        // Run it to success, then retry and prune.
        let j = driver
            .job_claim(&claim_params("later", 1, 3))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            driver
                .job_retry(&JobRetryParams { id, now: t })
                .await
                .unwrap_err()
                .to_string(),
            DriverError::InvalidState {
                id,
                state: JobState::Running,
                action: "retry"
            }
            .to_string()
        );
        let done = JobFinishParams {
            id,
            execution_id: None,
            lease_token: 3,
            lease_expired_before: None,
            state: JobState::Succeeded,
            attempt: j.attempt,
            run_at: None,
            finished_at: Some(t),
            error: None,
            output: None,
            progress: None,
            exit_code: Some(0),
        };
        assert!(driver.job_finish_many(vec![done]).await.unwrap()[0].applied);
        let retried = driver
            .job_retry(&JobRetryParams { id, now: t })
            .await
            .unwrap();
        assert_eq!((retried.state, retried.attempt), (JobState::Available, 0));
        let canceled = driver
            .job_cancel(&JobCancelParams { id, now: t })
            .await
            .unwrap();
        assert_eq!(canceled.state, JobState::Canceled);
        assert!(matches!(
            driver.job_cancel(&JobCancelParams { id, now: t }).await,
            Err(DriverError::InvalidState { .. })
        ));
        let pruned = driver
            .job_prune(&JobPruneParams {
                finished_before: None,
                keep_last: Some(0),
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(pruned, 1);
        assert!(matches!(
            driver.job_delete(id).await,
            Err(DriverError::NotFound { .. })
        ));
        let queues = driver.queue_list().await.unwrap();
        assert!(queues.is_empty(), "{queues:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_terms() {
    with_default_driver(|driver, _| async move {
        let t = now();
        let ttl = Duration::from_secs(10);
        let elect = |node: &str, at| LeaderElectParams {
            node_id: node.into(),
            ttl,
            now: at,
        };
        let one = driver
            .leader_attempt_elect(&elect("a", t))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.term, 1);
        assert!(
            driver
                .leader_attempt_elect(&elect("b", t))
                .await
                .unwrap()
                .is_none()
        );
        let re = LeaderReelectParams {
            node_id: "a".into(),
            term: 1,
            ttl,
            now: t + Duration::from_secs(5),
        };
        let renewed = driver.leader_attempt_reelect(&re).await.unwrap().unwrap();
        assert_eq!(renewed.expires_at, t + Duration::from_secs(15));
        // Expired: b takes over with term 2; a cannot renew.
        let later = t + Duration::from_secs(16);
        let two = driver
            .leader_attempt_elect(&elect("b", later))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((two.node_id.as_str(), two.term), ("b", 2));
        assert!(driver.leader_attempt_reelect(&re).await.unwrap().is_none());
        assert_eq!(driver.leader_get(later).await.unwrap(), Some(two.clone()));
        driver
            .leader_resign(&LeaderReelectParams {
                node_id: "b".into(),
                term: 2,
                ttl,
                now: later,
            })
            .await
            .unwrap();
        assert!(driver.leader_get(later).await.unwrap().is_none());
        let three = driver
            .leader_attempt_elect(&elect("a", later))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(three.term, 3);
        let terms = driver.leader_terms().await.unwrap();
        let summary: Vec<(String, i64)> =
            terms.iter().map(|t| (t.node_id.clone(), t.term)).collect();
        assert_eq!(summary, [("a".into(), 1), ("b".into(), 2), ("a".into(), 3)]);
        assert_eq!(terms[0].expires_at, t + Duration::from_secs(15));
        assert_eq!(terms[1].expires_at, later, "resignation ends the term");
    })
    .await;
}
