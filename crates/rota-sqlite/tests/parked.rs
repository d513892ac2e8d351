//! Parked claims on real files: an idle producer's claim runs right after
//! the commit that makes its queue's jobs available.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rota_core::JobState;
use rota_driver::{ClaimParamsFn, Driver, QueuePauseParams, Retracted};

mod common;
use common::{at, claim_at, fresh, job};

fn claim(queue: &str, max: u32) -> ClaimParamsFn {
    let queue = queue.to_owned();
    Box::new(move || claim_at(&queue, max, 42, at(1), at(100)))
}

#[tokio::test]
async fn an_insert_runs_the_parked_claim_after_its_commit() {
    let (_dir, driver) = fresh().await;
    let mut parked = driver.job_claim_park("q", claim("q", 2)).unwrap();
    let inserted = driver
        .job_insert_many(vec![job("k", "q"), job("k", "q"), job("k", "q")])
        .await
        .unwrap();
    let jobs = tokio::time::timeout(Duration::from_secs(5), parked.wait())
        .await
        .unwrap()
        .unwrap();
    // Claimed up to `max`, in id order, running under the parked token.
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![inserted[0].job.id, inserted[1].job.id]);
    for id in ids {
        let stored = driver.job_get(id).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Running);
        assert_eq!(stored.lease_token, Some(42));
    }
    let third = driver.job_get(inserted[2].job.id).await.unwrap().unwrap();
    assert_eq!(third.state, JobState::Available);
}

#[tokio::test]
async fn other_queues_and_retracted_claims_are_left_alone() {
    let (_dir, driver) = fresh().await;
    let parked = driver.job_claim_park("q", claim("q", 5)).unwrap();
    let other = driver
        .job_insert_many(vec![job("k", "other")])
        .await
        .unwrap();
    assert_eq!(
        driver
            .job_get(other[0].job.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Available
    );
    assert!(matches!(parked.retract(), Retracted::Withdrawn));
    let mine = driver.job_insert_many(vec![job("k", "q")]).await.unwrap();
    assert_eq!(
        driver.job_get(mine[0].job.id).await.unwrap().unwrap().state,
        JobState::Available
    );
}

#[tokio::test]
async fn a_paused_queue_delivers_an_empty_claim() {
    let (_dir, driver) = fresh().await;
    driver
        .queue_pause(&QueuePauseParams {
            name: "q".into(),
            now: at(0),
        })
        .await
        .unwrap();
    let mut parked = driver.job_claim_park("q", claim("q", 5)).unwrap();
    let inserted = driver.job_insert_many(vec![job("k", "q")]).await.unwrap();
    let jobs = parked.wait().await.unwrap();
    assert!(jobs.is_empty());
    assert_eq!(
        driver
            .job_get(inserted[0].job.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Available
    );
}
