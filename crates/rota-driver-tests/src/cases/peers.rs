//! Two driver instances on one store, standing for two processes: writes
//! are shared, fences and exclusivity hold across them, and wake-ups cross
//! over where the store can tell.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rota_core::JobState;
use rota_driver::{
    Driver, JobCancelParams, JobClaimParams, JobHeartbeatParams, JobInsertParams, JobListParams,
    LeaderElectParams,
};
use serde_json::json;

use crate::fixtures::{
    at, claim, claim_params, drain, expect_wakeup, finish, finish_params, get, id_list, insert,
    insert_all, job_in, list, queue, t0, token,
};

/// A job inserted through one instance is visible, claimable and
/// finishable through the other; lease tokens fence across instances and a
/// cancel made through one is reported by heartbeats through the other.
pub async fn peer_sees_committed_writes_and_fences(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    let q = queue("peer");
    let job = insert(&driver, job_in("p", &q)).await;
    assert_eq!(
        get(&peer, job.id).await,
        job,
        "the peer reads the committed insert"
    );

    let t = token();
    let claimed = claim(&peer, &q, 1, t, at(1)).await;
    assert_eq!(id_list(&claimed), vec![job.id], "the peer claims it");
    assert_eq!(
        get(&driver, job.id).await,
        claimed[0],
        "the claim is visible to the first instance"
    );

    driver
        .job_cancel(&JobCancelParams {
            id: job.id,
            now: at(2),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    let hb = peer
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(job.id, t)],
            lease_expires_at: at(60),
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    assert!(
        hb.iter()
            .any(|r| r.id == job.id && r.held && r.cancel_requested),
        "the peer's heartbeat sees the cancel: {hb:?}"
    );

    let running = get(&driver, job.id).await;
    assert!(
        !finish(
            &driver,
            finish_params(&running, t + 1_000_000, JobState::Succeeded, at(4))
        )
        .await,
        "a wrong token is refused whichever instance writes"
    );
    assert!(
        finish(
            &driver,
            finish_params(&running, t, JobState::Canceled, at(4))
        )
        .await,
        "the run's token is honoured by the other instance"
    );
    assert_eq!(get(&peer, job.id).await.state, JobState::Canceled);
}

/// Claimers on both instances, concurrently, never get the same job and
/// together claim every job once.
pub async fn peer_claimers_never_share_a_job(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    let q = queue("peer-race");
    let n = 300;
    insert_all(&driver, (0..n).map(|_| job_in("r", &q)).collect()).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let d = if w % 2 == 0 {
            Arc::clone(&driver)
        } else {
            Arc::clone(&peer)
        };
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let params = JobClaimParams {
                    node_id: format!("node-{w}"),
                    ..claim_params(&q, 5, token(), at(0))
                };
                let got = d
                    .job_claim(&params)
                    .await
                    .unwrap_or_else(|e| panic!("concurrent claim failed: {e}"));
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| panic!("claimer panicked: {e}")));
    }
    all.extend(id_list(&claim(&peer, &q, 1_000, token(), at(0)).await));
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "some job was claimed twice across instances"
    );
    assert_eq!(all.len(), n, "every job claimed once");
}

/// Concurrent inserts of one unique key through both instances yield one
/// job; every call succeeds and returns it.
pub async fn peer_unique_inserts_yield_one_job(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let d = if i % 2 == 0 {
            Arc::clone(&driver)
        } else {
            Arc::clone(&peer)
        };
        tasks.push(tokio::spawn(async move {
            d.job_insert_many(vec![JobInsertParams {
                args: json!({ "task": i }),
                unique_key: Some("the-one".into()),
                ..job_in("race", "peer-unique")
            }])
            .await
        }));
    }
    let mut inserted = 0;
    let mut seen = BTreeSet::new();
    for t in tasks {
        let out = t
            .await
            .unwrap_or_else(|e| panic!("insert task panicked: {e}"))
            .unwrap_or_else(|e| {
                panic!("a concurrent unique insert failed instead of returning the holder: {e}")
            });
        inserted += usize::from(out[0].inserted);
        seen.insert(out[0].job.id);
    }
    assert_eq!(inserted, 1, "exactly one insert reports inserted = true");
    assert_eq!(seen.len(), 1, "every call returns the same job: {seen:?}");
    let all = list(
        &driver,
        &JobListParams {
            limit: 1_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 1, "exactly one job stored");
}

/// An insert committed through the other instance (another process) wakes a
/// subscriber of this one within 1 s.
pub async fn peer_insert_wakes_subscriber(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    let mut rx = driver.subscribe();
    drain(&mut rx).await;
    let q = queue("peer-wake");
    insert(&peer, job_in("w", &q)).await;
    expect_wakeup(
        &mut rx,
        &q,
        Duration::from_secs(1),
        "an insert by another instance",
    )
    .await;
}

/// Simultaneous bids through both instances elect exactly one node.
pub async fn peer_elections_have_one_winner(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let d = if i % 2 == 0 {
            Arc::clone(&driver)
        } else {
            Arc::clone(&peer)
        };
        tasks.push(tokio::spawn(async move {
            d.leader_attempt_elect(&LeaderElectParams {
                node_id: format!("node-{i}"),
                ttl: Duration::from_secs(30),
                now: t0(),
            })
            .await
            .unwrap_or_else(|e| panic!("leader_attempt_elect failed: {e}"))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap_or_else(|e| panic!("bidder panicked: {e}")));
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one winner across instances: {winners:?}"
    );
    let seen = peer
        .leader_get(at(1))
        .await
        .unwrap_or_else(|e| panic!("leader_get failed: {e}"));
    assert_eq!(
        seen,
        Some(winners[0].clone()),
        "both instances see the same leader"
    );
}

/// Concurrent fires of one schedule with the same expected next fire,
/// through both instances: exactly one applies, one fire and its jobs exist.
pub async fn peer_schedule_fire_has_one_winner(driver: Arc<dyn Driver>, peer: Arc<dyn Driver>) {
    crate::cases::schedules::race_schedule_fire(vec![driver, peer]).await;
}
