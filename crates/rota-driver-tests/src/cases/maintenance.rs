//! Leader maintenance: promotion of due jobs, expired leases, pruning.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rota_core::{Job, JobState};
use rota_driver::{
    Driver, JobCancelParams, JobClaimParams, JobExpiredParams, JobFinishParams, JobPruneParams,
};

use crate::fixtures::{
    at, claim_params, claim_with, exists, finish, finish_params, get, id_list, ids, insert,
    insert_all, job_in, job_in_state, promote, promote_limit, queue, running, scheduled, t0, token,
};

/// `job_promote_due` makes scheduled and retrying jobs available once
/// `run_at <= now`, not before, and reports how many per queue; other states
/// are untouched.
pub async fn promote_due_only_when_run_at_reached(driver: Arc<dyn Driver>) {
    let q1 = queue("promo");
    let q2 = queue("promo");
    let s10 = insert(&driver, scheduled("s", &q1, at(10))).await;
    let s20 = insert(&driver, scheduled("s", &q1, at(20))).await;
    let s100 = insert(&driver, scheduled("s", &q1, at(100))).await;
    let t = token();
    let r = running(&driver, job_in("r", &q2), t, t0()).await;
    assert!(
        finish(
            &driver,
            JobFinishParams {
                run_at: Some(at(10)),
                ..finish_params(&r, t, JobState::Retrying, at(1))
            },
        )
        .await
    );
    // Jobs in other states, all with run_at long past: never promoted.
    let others: Vec<Job> = {
        let mut v = Vec::new();
        for state in [
            JobState::Available,
            JobState::Running,
            JobState::Succeeded,
            JobState::Canceled,
        ] {
            v.push(job_in_state(&driver, state, token()).await);
        }
        v
    };

    assert!(
        promote(&driver, at(9)).await.is_empty(),
        "nothing due at T0+9"
    );
    assert_eq!(get(&driver, s10.id).await.state, JobState::Scheduled);

    let got = promote(&driver, at(10)).await;
    assert_eq!(
        got,
        BTreeMap::from([(q1.clone(), 1), (q2.clone(), 1)]),
        "run_at == now is due; counts per queue"
    );
    assert_eq!(get(&driver, s10.id).await.state, JobState::Available);
    let r_now = get(&driver, r.id).await;
    assert_eq!(r_now.state, JobState::Available, "retrying is promoted too");
    assert_eq!(r_now.attempt, 1, "promotion keeps the attempt");
    assert_eq!(get(&driver, s20.id).await.state, JobState::Scheduled);

    assert_eq!(
        promote(&driver, at(20)).await,
        BTreeMap::from([(q1.clone(), 1)])
    );
    assert!(
        promote(&driver, at(20)).await.is_empty(),
        "promotion is not repeated"
    );
    assert_eq!(get(&driver, s100.id).await.state, JobState::Scheduled);
    for o in others {
        assert_eq!(
            get(&driver, o.id).await,
            o,
            "a {} job was touched by promotion",
            o.state
        );
    }
}

/// `job_promote_due` promotes at most `limit` jobs per call.
pub async fn promote_due_respects_limit(driver: Arc<dyn Driver>) {
    let q = queue("promo-limit");
    insert_all(&driver, (0..5).map(|i| scheduled("s", &q, at(i))).collect()).await;
    let total = |m: BTreeMap<String, u64>| m.values().sum::<u64>();
    assert_eq!(total(promote_limit(&driver, at(100), 2).await), 2);
    assert_eq!(total(promote_limit(&driver, at(100), 2).await), 2);
    assert_eq!(total(promote_limit(&driver, at(100), 2).await), 1);
    assert_eq!(total(promote_limit(&driver, at(100), 2).await), 0);
}

/// `job_list_expired` lists running jobs whose lease expired strictly before
/// `now`, oldest expiry first, at most `limit`; never jobs in other states.
pub async fn list_expired_only_leases_expired_before_now(driver: Arc<dyn Driver>) {
    let claim_until = |until: i64| {
        let d = Arc::clone(&driver);
        async move {
            let q = queue("lease");
            insert(&d, job_in("l", &q)).await;
            let got = claim_with(
                &d,
                &JobClaimParams {
                    lease_expires_at: at(until),
                    ..claim_params(&q, 1, token(), t0())
                },
            )
            .await;
            assert_eq!(got.len(), 1);
            got.into_iter().next().unwrap_or_else(|| unreachable!())
        }
    };
    let j30 = claim_until(30).await;
    let j10 = claim_until(10).await;
    let j20 = claim_until(20).await;
    let j15 = claim_until(15).await;
    driver
        .job_cancel(&JobCancelParams {
            id: j15.id,
            now: at(1),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    let j5 = claim_until(5).await;
    let t = token();
    let done_q = queue("lease");
    let done = running(&driver, job_in("l", &done_q), t, t0()).await; // lease T0+30
    assert!(finish(&driver, finish_params(&done, t, JobState::Succeeded, at(1))).await);
    let expired = |now: i64, limit: u32| {
        let d = Arc::clone(&driver);
        async move {
            d.job_list_expired(&JobExpiredParams {
                now: at(now),
                limit,
            })
            .await
            .unwrap_or_else(|e| panic!("job_list_expired failed: {e}"))
        }
    };
    assert_eq!(get(&driver, j5.id).await.state, JobState::Running);

    assert_eq!(
        id_list(&expired(5, 100).await),
        Vec::<i64>::new(),
        "a lease ending at now is not expired before now"
    );
    assert_eq!(id_list(&expired(6, 100).await), vec![j5.id]);
    assert_eq!(
        id_list(&expired(20, 100).await),
        vec![j5.id, j10.id, j15.id],
        "expired before T0+20, oldest expiry first (cancel-requested jobs still run)"
    );
    assert_eq!(
        id_list(&expired(100, 100).await),
        vec![j5.id, j10.id, j15.id, j20.id, j30.id]
    );
    assert_eq!(
        id_list(&expired(100, 2).await),
        vec![j5.id, j10.id],
        "limit"
    );
    for j in expired(100, 100).await {
        assert_eq!(j.state, JobState::Running, "only running jobs are listed");
        assert_ne!(j.id, done.id, "a finished job is not listed");
    }
}

/// A finished job with `finished_at = at(secs)`: a run finished at that time,
/// or (canceled) a cancel at that time.
async fn finished(driver: &Arc<dyn Driver>, state: JobState, secs: i64) -> Job {
    let q = queue("prune");
    if state == JobState::Canceled {
        let j = insert(driver, job_in("p", &q)).await;
        return driver
            .job_cancel(&JobCancelParams {
                id: j.id,
                now: at(secs),
            })
            .await
            .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    }
    let t = token();
    let j = running(driver, job_in("p", &q), t, t0()).await;
    assert!(finish(driver, finish_params(&j, t, state, at(secs))).await);
    let j = get(driver, j.id).await;
    assert_eq!(j.finished_at, Some(at(secs)));
    j
}

/// One unfinished job in every unfinished state (all created at T0, long
/// before any prune cutoff).
async fn unfinished(driver: &Arc<dyn Driver>) -> Vec<Job> {
    let mut v = Vec::new();
    for state in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retrying,
    ] {
        v.push(job_in_state(driver, state, token()).await);
    }
    v
}

async fn prune(driver: &Arc<dyn Driver>, params: JobPruneParams) -> u64 {
    driver
        .job_prune(&params)
        .await
        .unwrap_or_else(|e| panic!("job_prune({params:?}) failed: {e}"))
}

async fn existing(driver: &Arc<dyn Driver>, jobs: &[Job]) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for j in jobs {
        if exists(driver, j.id).await {
            out.insert(j.id);
        }
    }
    out
}

/// Pruning by age deletes finished jobs that finished strictly before the
/// cutoff, at most `limit` per call, never unfinished ones; with neither
/// criterion it deletes nothing.
pub async fn prune_by_age(driver: Arc<dyn Driver>) {
    let open = unfinished(&driver).await;
    let f1 = finished(&driver, JobState::Succeeded, 1).await;
    let f2 = finished(&driver, JobState::Failed, 2).await;
    let f3 = finished(&driver, JobState::Canceled, 3).await;
    let f4 = finished(&driver, JobState::Succeeded, 4).await;
    let f5 = finished(&driver, JobState::Failed, 5).await;
    let all_finished = vec![f1.clone(), f2.clone(), f3.clone(), f4.clone(), f5.clone()];

    let none = prune(
        &driver,
        JobPruneParams {
            finished_before: None,
            keep_last: None,
            limit: 1_000,
        },
    )
    .await;
    assert_eq!(none, 0, "a prune with neither criterion deletes nothing");

    let n = prune(
        &driver,
        JobPruneParams {
            finished_before: Some(at(3)),
            keep_last: None,
            limit: 1_000,
        },
    )
    .await;
    assert_eq!(n, 2, "finished strictly before T0+3: two jobs");
    assert_eq!(existing(&driver, &all_finished).await, ids(&[f3, f4, f5]));

    let by_age = |limit| JobPruneParams {
        finished_before: Some(at(1_000)),
        keep_last: None,
        limit,
    };
    assert_eq!(prune(&driver, by_age(2)).await, 2, "limit per call");
    assert_eq!(prune(&driver, by_age(2)).await, 1);
    assert_eq!(prune(&driver, by_age(2)).await, 0);
    assert!(existing(&driver, &all_finished).await.is_empty());
    for j in &open {
        assert_eq!(
            &get(&driver, j.id).await,
            j,
            "prune touched a {} job",
            j.state
        );
    }
}

/// Pruning by count keeps the newest `keep_last` finished jobs (by
/// finished_at), deleting at most `limit` per call, never unfinished ones.
pub async fn prune_by_keep_last_respects_limit(driver: Arc<dyn Driver>) {
    let open = unfinished(&driver).await;
    let mut done = Vec::new();
    for (i, state) in [
        JobState::Failed,
        JobState::Succeeded,
        JobState::Canceled,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Canceled,
    ]
    .into_iter()
    .enumerate()
    {
        // Finish times deliberately not in id order: 4, 1, 6, 2, 5, 3.
        let secs = [4, 1, 6, 2, 5, 3][i];
        done.push(finished(&driver, state, secs).await);
    }
    let newest2: BTreeSet<i64> = done
        .iter()
        .filter(|j| j.finished_at >= Some(at(5)))
        .map(|j| j.id)
        .collect();
    assert_eq!(newest2.len(), 2);

    let keep2 = |limit| JobPruneParams {
        finished_before: None,
        keep_last: Some(2),
        limit,
    };
    assert_eq!(
        prune(&driver, keep2(3)).await,
        3,
        "6 finished, keep 2, limit 3: delete 3"
    );
    let left = existing(&driver, &done).await;
    assert_eq!(left.len(), 3);
    assert!(
        left.is_superset(&newest2),
        "the newest two by finished_at are kept: {left:?}"
    );
    assert_eq!(prune(&driver, keep2(3)).await, 1);
    assert_eq!(
        existing(&driver, &done).await,
        newest2,
        "exactly the newest two remain"
    );
    assert_eq!(prune(&driver, keep2(3)).await, 0, "nothing more to prune");
    for j in &open {
        assert_eq!(
            &get(&driver, j.id).await,
            j,
            "prune touched a {} job",
            j.state
        );
    }
}
