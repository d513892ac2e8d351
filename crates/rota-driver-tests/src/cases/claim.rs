//! Claims: order, limits, queues, pauses, label selectors, fields set,
//! exclusivity under concurrency.

use std::collections::BTreeSet;
use std::sync::Arc;

use rota_core::JobState;
use rota_driver::{Driver, JobClaimParams, JobInsertParams, JobListParams, QueuePauseParams};
use serde_json::json;

use crate::fixtures::{
    at, claim, claim_params, claim_with, get, id_list, ids, insert, insert_all, job_in, list, map,
    queue, token,
};

/// Claims one at a time come out by priority (0 first), then `run_at`
/// (earliest first), then id (lowest first); a larger claim takes the first
/// ones of that order.
pub async fn claim_orders_by_priority_then_run_at_then_id(driver: Arc<dyn Driver>) {
    let q = queue("order");
    let mk = |name: &str, priority: i16, run_at_secs: i64| JobInsertParams {
        args: json!(name),
        priority,
        run_at: at(run_at_secs),
        ..job_in(name, &q)
    };
    // Inserted in an order that matches none of the criteria alone.
    let jobs = insert_all(
        &driver,
        vec![
            mk("a", 1, -10),
            mk("c", 0, -20),
            mk("b", 0, -5),
            mk("e", 2, -100),
            mk("d", 0, -20),
            mk("f", 1, -30),
        ],
    )
    .await;
    let by_name = |n: &str| {
        jobs.iter()
            .find(|j| j.kind == n)
            .map(|j| j.id)
            .unwrap_or_else(|| panic!("no job {n}"))
    };
    let expected: Vec<i64> = ["c", "d", "b", "f", "a", "e"]
        .iter()
        .map(|n| by_name(n))
        .collect();

    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let claimed = claim(&driver, &q, 1, token(), at(0)).await;
        assert_eq!(claimed.len(), 1, "one job per max=1 claim");
        got.push(claimed[0].id);
    }
    assert_eq!(
        got, expected,
        "claim order must be priority, then run_at, then id"
    );
    assert!(
        claim(&driver, &q, 1, token(), at(0)).await.is_empty(),
        "queue drained"
    );

    // A bigger claim takes the head of the same order.
    let q2 = queue("order");
    let mk2 = |name: &str, priority: i16, run_at_secs: i64| JobInsertParams {
        priority,
        run_at: at(run_at_secs),
        ..job_in(name, &q2)
    };
    let jobs = insert_all(
        &driver,
        vec![
            mk2("x", 5, -1),
            mk2("y", 0, -1),
            mk2("z", 5, -50),
            mk2("w", 0, -2),
        ],
    )
    .await;
    let claimed = claim(&driver, &q2, 2, token(), at(0)).await;
    assert_eq!(
        ids(&claimed),
        BTreeSet::from([jobs[1].id, jobs[3].id]),
        "max=2 takes the two priority-0 jobs"
    );
    let claimed = claim(&driver, &q2, 1, token(), at(0)).await;
    assert_eq!(
        id_list(&claimed),
        vec![jobs[2].id],
        "then the earlier run_at among priority 5"
    );
}

/// A claim returns at most `max` jobs; `max = 0` claims nothing.
pub async fn claim_respects_max(driver: Arc<dyn Driver>) {
    let q = queue("max");
    insert_all(&driver, (0..5).map(|_| job_in("m", &q)).collect()).await;
    assert!(
        claim(&driver, &q, 0, token(), at(0)).await.is_empty(),
        "max = 0 claims nothing"
    );
    assert_eq!(claim(&driver, &q, 2, token(), at(0)).await.len(), 2);
    assert_eq!(
        claim(&driver, &q, 10, token(), at(0)).await.len(),
        3,
        "only 3 left"
    );
    assert!(claim(&driver, &q, 10, token(), at(0)).await.is_empty());
    let running = list(
        &driver,
        &JobListParams {
            states: vec![JobState::Running],
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(running.len(), 5, "all five claimed exactly once");
}

/// A claim only takes jobs of its own queue.
pub async fn claim_only_from_its_queue(driver: Arc<dyn Driver>) {
    let q1 = queue("qa");
    let q2 = queue("qb");
    let a = insert_all(&driver, vec![job_in("k", &q1), job_in("k", &q1)]).await;
    let b = insert(&driver, job_in("k", &q2)).await;
    let claimed = claim(&driver, &q1, 10, token(), at(0)).await;
    assert_eq!(ids(&claimed), ids(&a), "only jobs of {q1}");
    assert!(claimed.iter().all(|j| j.queue == q1));
    assert_eq!(
        get(&driver, b.id).await.state,
        JobState::Available,
        "other queue untouched"
    );
    assert!(
        claim(&driver, "no-such-queue", 10, token(), at(0))
            .await
            .is_empty()
    );
}

/// Nothing is claimed from a paused queue (its jobs stay available, other
/// queues are unaffected); once resumed its jobs are claimed. Pause and resume
/// are idempotent.
pub async fn claim_skips_paused_queue(driver: Arc<dyn Driver>) {
    let q = queue("paused");
    let other = queue("other");
    let jobs = insert_all(&driver, vec![job_in("p", &q), job_in("p", &q)]).await;
    let o = insert(&driver, job_in("p", &other)).await;
    let pause = QueuePauseParams {
        name: q.clone(),
        now: at(1),
    };
    driver
        .queue_pause(&pause)
        .await
        .unwrap_or_else(|e| panic!("pause failed: {e}"));
    driver
        .queue_pause(&QueuePauseParams {
            now: at(2),
            ..pause.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("second pause failed (must be idempotent): {e}"));

    assert!(
        claim(&driver, &q, 10, token(), at(3)).await.is_empty(),
        "paused queue yields nothing"
    );
    for j in &jobs {
        assert_eq!(
            get(&driver, j.id).await.state,
            JobState::Available,
            "paused jobs stay available"
        );
    }
    assert_eq!(
        id_list(&claim(&driver, &other, 10, token(), at(3)).await),
        vec![o.id],
        "other queues run"
    );

    // A job inserted while paused is not claimed either.
    let late = insert(&driver, job_in("p", &q)).await;
    assert!(claim(&driver, &q, 10, token(), at(4)).await.is_empty());

    let resume = QueuePauseParams {
        name: q.clone(),
        now: at(5),
    };
    driver
        .queue_resume(&resume)
        .await
        .unwrap_or_else(|e| panic!("resume failed: {e}"));
    driver
        .queue_resume(&resume)
        .await
        .unwrap_or_else(|e| panic!("second resume failed (must be idempotent): {e}"));
    let claimed = claim(&driver, &q, 10, token(), at(6)).await;
    let mut want = ids(&jobs);
    want.insert(late.id);
    assert_eq!(ids(&claimed), want, "resumed queue is claimed");

    // Resuming a queue that was never paused is fine too.
    driver
        .queue_resume(&QueuePauseParams {
            name: queue("never-paused"),
            now: at(7),
        })
        .await
        .unwrap_or_else(|e| panic!("resume of a never-paused queue failed: {e}"));
}

/// A job's labels are a selector: only a node carrying all of them (equal
/// values; extra node labels are fine) claims it. A job without labels is
/// claimed by any node, including one without labels.
pub async fn claim_label_selector_is_a_subset_match(driver: Arc<dyn Driver>) {
    let q = queue("labels");
    let mk = |kind: &str, labels: &[(&str, &str)]| JobInsertParams {
        labels: map(labels),
        ..job_in(kind, &q)
    };
    let tricky_key = "team.o'neil \"x\"";
    let tricky_val = "v'; DROP TABLE jobs; --";
    let jobs = insert_all(
        &driver,
        vec![
            mk("eu", &[("region", "eu")]),
            mk("us", &[("region", "us")]),
            mk("eu-gpu", &[("region", "eu"), ("gpu", "yes")]),
            mk("none", &[]),
            mk("tricky", &[(tricky_key, tricky_val)]),
        ],
    )
    .await;
    let [eu, us, eu_gpu, none, tricky] = [0, 1, 2, 3, 4].map(|i| jobs[i].id);

    let claim_as = |labels: &[(&str, &str)]| JobClaimParams {
        node_labels: map(labels),
        kinds: None,
        ..claim_params(&q, 10, token(), at(0))
    };
    let got = ids(&claim_with(&driver, &claim_as(&[])).await);
    assert_eq!(
        got,
        BTreeSet::from([none]),
        "a node without labels only gets unlabeled jobs"
    );

    let got = ids(&claim_with(&driver, &claim_as(&[("region", "us"), ("zone", "a")])).await);
    assert_eq!(
        got,
        BTreeSet::from([us]),
        "region=us (+ extra labels) gets only the us job"
    );

    let got = ids(&claim_with(&driver, &claim_as(&[("region", "EU"), ("gpu", "yes")])).await);
    assert!(got.is_empty(), "label values compare exactly: {got:?}");

    let got = ids(&claim_with(&driver, &claim_as(&[("gpu", "yes")])).await);
    assert!(
        got.is_empty(),
        "a missing label fails the selector: {got:?}"
    );

    let got = ids(&claim_with(&driver, &claim_as(&[(tricky_key, "v")])).await);
    assert!(got.is_empty(), "tricky label with another value: {got:?}");
    let got = ids(&claim_with(&driver, &claim_as(&[(tricky_key, tricky_val)])).await);
    assert_eq!(
        got,
        BTreeSet::from([tricky]),
        "labels with quotes and SQL meta-characters match literally"
    );

    let got = ids(&claim_with(&driver, &claim_as(&[("region", "eu")])).await);
    assert_eq!(got, BTreeSet::from([eu]), "region=eu alone lacks gpu=yes");

    let got = ids(&claim_with(
        &driver,
        &claim_as(&[("region", "eu"), ("gpu", "yes"), ("x", "y")]),
    )
    .await);
    assert_eq!(
        got,
        BTreeSet::from([eu_gpu]),
        "the node with both labels gets the eu+gpu job"
    );

    // An unlabeled job is claimed by a labeled node too.
    let q2 = queue("labels");
    let free = insert(&driver, job_in("none", &q2)).await;
    let got = ids(&claim_with(
        &driver,
        &JobClaimParams {
            node_labels: map(&[("region", "eu")]),
            kinds: None,
            ..claim_params(&q2, 10, token(), at(0))
        },
    )
    .await);
    assert_eq!(
        got,
        BTreeSet::from([free.id]),
        "unlabeled jobs run anywhere"
    );
}

/// A claimed job is `running` with `attempt + 1`, `started_at = now`,
/// `node = node_id`, the given lease expiry and `revision + 1`; the row
/// returned equals the stored row and nothing else changed.
pub async fn claim_sets_running_fields(driver: Arc<dyn Driver>) {
    let q = queue("fields");
    let before = insert(
        &driver,
        JobInsertParams {
            args: json!({"x": 1}),
            max_attempts: 3,
            attributes: map(&[("a", "b")]),
            ..job_in("f", &q)
        },
    )
    .await;
    let params = JobClaimParams {
        queue: q.clone(),
        max: 5,
        node_id: "node-a".into(),
        node_labels: map(&[("region", "eu")]),
        kinds: None,
        lease_token: token(),
        lease_expires_at: at(31),
        now: at(1),
    };
    let claimed = claim_with(&driver, &params).await;
    assert_eq!(claimed.len(), 1);
    let got = &claimed[0];
    assert_eq!(got.state, JobState::Running);
    assert_eq!(got.attempt, 1, "attempt + 1");
    assert_eq!(got.started_at, Some(at(1)), "started_at = now");
    assert_eq!(got.node.as_deref(), Some("node-a"), "node = node_id");
    assert_eq!(got.lease_expires_at, Some(at(31)), "lease expiry as given");
    assert_eq!(
        got.lease_token,
        Some(params.lease_token),
        "lease token as given"
    );
    assert_eq!(got.finished_at, None);
    assert_eq!(got.cancel_requested_at, None);
    let expected = rota_core::Job {
        state: JobState::Running,
        attempt: 1,
        started_at: Some(at(1)),
        node: Some("node-a".into()),
        lease_expires_at: Some(at(31)),
        lease_token: Some(params.lease_token),
        revision: before.revision + 1,
        ..before
    };
    assert_eq!(
        got, &expected,
        "claim changes only state, attempt, started_at, node, lease and revision (+1)"
    );
    assert_eq!(
        &get(&driver, got.id).await,
        got,
        "returned row equals stored row"
    );
}

/// Several nodes claiming concurrently never get the same job, and together
/// they claim every job exactly once.
pub async fn concurrent_claimers_never_share_a_job(driver: Arc<dyn Driver>) {
    let q = queue("race");
    let n = 300;
    insert_all(&driver, (0..n).map(|_| job_in("r", &q)).collect()).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let d = Arc::clone(&driver);
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let params = JobClaimParams {
                    node_id: format!("node-{w}"),
                    ..claim_params(&q, 7, token(), at(0))
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
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "some job was claimed twice");
    // Claimers may stop early when every remaining row is locked by another
    // claimer; whatever is left must still be claimable.
    let mut rest = claim(&driver, &q, 1_000, token(), at(0)).await;
    all.extend(rest.drain(..).map(|j| j.id));
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "some job was claimed twice");
    assert_eq!(all.len(), n, "every job claimed once");
    for id in [all[0], all[n / 2], all[n - 1]] {
        assert_eq!(get(&driver, id).await.attempt, 1, "claimed once: attempt 1");
    }
}

/// With `kinds`, a node claims only jobs of those kinds (the kinds it has
/// workers for); the others stay available, in order, for another node.
pub async fn claim_only_kinds_the_node_runs(driver: Arc<dyn Driver>) {
    let q = queue("kinds");
    insert_all(
        &driver,
        vec![
            job_in("shell", &q),
            job_in("email", &q),
            job_in("shell", &q),
            job_in("report", &q),
        ],
    )
    .await;
    let mut p = claim_params(&q, 10, token(), at(1));
    p.kinds = Some(vec!["email".to_owned(), "report".to_owned()]);
    let got = driver
        .job_claim(&p)
        .await
        .unwrap_or_else(|e| panic!("claim failed: {e}"));
    let kinds: Vec<&str> = got.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["email", "report"], "only the node's kinds");
    p.kinds = Some(Vec::new());
    assert!(
        driver.job_claim(&p).await.unwrap_or_default().is_empty(),
        "no kinds: nothing"
    );
    p.kinds = None;
    let rest = driver
        .job_claim(&p)
        .await
        .unwrap_or_else(|e| panic!("claim failed: {e}"));
    assert_eq!(
        rest.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["shell", "shell"]
    );
}
