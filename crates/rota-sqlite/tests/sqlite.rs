//! SQLite-specific behaviour on real temporary files: group commit, claim
//! order and selectors, pause, unique keys, fencing, wake-ups from other
//! connections, migrations, transactional enqueue.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::{
    Driver, DriverError, JobClaimParams, JobFinishParams, JobInsertParams, JobListParams,
    QueuePauseParams, Wakeup,
};
use rota_sqlite::{SqliteDriver, SqliteOptions, connect_options, job_insert_many_in, job_list_in};
use sqlx::{Connection, SqlitePool};
use tokio::sync::broadcast;

mod common;
use common::{at, claim_at, fresh, job, open_in};

fn claim_params(queue: &str, max: u32, token: i64) -> JobClaimParams {
    claim_at(queue, max, token, at(1), at(100))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn insert(driver: &SqliteDriver, p: JobInsertParams) -> rota_core::Job {
    driver.job_insert_many(vec![p]).await.unwrap().remove(0).job
}

/// Waits up to `within` for a wake-up matching `want`.
async fn wait_for(rx: &mut broadcast::Receiver<Wakeup>, want: &Wakeup, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(w) if &w == want => return true,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_64_concurrent_inserters() {
    let (_dir, driver) = fresh().await;
    let before = driver.writer_stats();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let d = driver.clone();
            tokio::spawn(async move { insert(&d, job(&format!("k{i}"), "bulk")).await.id })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64, "every insert got its own job");
    let stored = driver
        .job_list(&JobListParams {
            queue: Some("bulk".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        64,
        "every acknowledged insert is committed and visible to readers"
    );
    let stats = driver.writer_stats();
    let (ops, batches) = (stats.ops - before.ops, stats.batches - before.batches);
    assert_eq!(ops, 64);
    assert!(
        batches < ops,
        "concurrent callers share commits: {batches} commits for {ops} ops"
    );
}

#[tokio::test]
async fn claim_orders_by_priority_then_run_at_then_id() {
    let (_dir, driver) = fresh().await;
    let mk = |prio: i16, run: i64| JobInsertParams {
        priority: prio,
        run_at: at(run),
        ..job("order", "q")
    };
    let late_p0 = insert(&driver, mk(0, 5)).await;
    let p2 = insert(&driver, mk(2, 0)).await;
    let early_p0 = insert(&driver, mk(0, 1)).await;
    let early_p0_b = insert(&driver, mk(0, 1)).await;
    let p1 = insert(&driver, mk(1, 0)).await;
    let got: Vec<i64> = driver
        .job_claim(&claim_params("q", 10, 7))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        got,
        vec![early_p0.id, early_p0_b.id, late_p0.id, p1.id, p2.id]
    );

    let more = insert(&driver, mk(0, 0)).await;
    let _ = insert(&driver, mk(3, 0)).await;
    let two = driver.job_claim(&claim_params("q", 1, 8)).await.unwrap();
    assert_eq!(two.len(), 1, "max is respected");
    assert_eq!(two[0].id, more.id);
    assert_eq!(two[0].state, JobState::Running);
    assert_eq!(two[0].attempt, 1);
    assert_eq!(two[0].lease_token, Some(8));
    assert_eq!(two[0].node.as_deref(), Some("node-1"));
}

#[tokio::test]
async fn claim_matches_label_selector_as_subset_of_node_labels() {
    let (_dir, driver) = fresh().await;
    let with = |l: &[(&str, &str)]| JobInsertParams {
        labels: labels(l),
        ..job("lbl", "labels")
    };
    let any = insert(&driver, with(&[])).await;
    let linux = insert(&driver, with(&[("os", "linux")])).await;
    let gpu = insert(&driver, with(&[("os", "linux"), ("gpu", "yes")])).await;
    let mac = insert(&driver, with(&[("os", "mac")])).await;
    let quoted = insert(&driver, with(&[("it's", "a \"b\"")])).await;

    let node = |l: &[(&str, &str)], token: i64| JobClaimParams {
        node_labels: labels(l),
        kinds: None,
        ..claim_params("labels", 100, token)
    };
    let ids = |jobs: Vec<rota_core::Job>| {
        let mut v: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        v.sort_unstable();
        v
    };
    let got = ids(driver
        .job_claim(&node(&[("os", "linux"), ("zone", "a")], 1))
        .await
        .unwrap());
    assert_eq!(
        got,
        vec![any.id, linux.id],
        "no selector and a subset match; a missing label does not"
    );
    let got = ids(driver
        .job_claim(&node(&[("os", "linux"), ("gpu", "yes")], 2))
        .await
        .unwrap());
    assert_eq!(got, vec![gpu.id]);
    let got = ids(driver.job_claim(&node(&[("os", "MAC")], 3)).await.unwrap());
    assert!(got.is_empty(), "values compare exactly");
    let got = ids(driver
        .job_claim(&node(&[("it's", "a \"b\""), ("os", "mac")], 4))
        .await
        .unwrap());
    assert_eq!(got, vec![mac.id, quoted.id], "quotes are data");
}

#[tokio::test]
async fn paused_queue_is_not_claimed_until_resumed() {
    let (_dir, driver) = fresh().await;
    let j = insert(&driver, job("p", "pausable")).await;
    let other = insert(&driver, job("p", "other")).await;
    let pause = QueuePauseParams {
        name: "pausable".into(),
        now: at(1),
    };
    driver.queue_pause(&pause).await.unwrap();
    driver
        .queue_pause(&QueuePauseParams {
            now: at(2),
            ..pause.clone()
        })
        .await
        .unwrap();
    let queues = driver.queue_list().await.unwrap();
    let row = queues.iter().find(|q| q.name == "pausable").unwrap();
    assert_eq!(
        row.paused_at,
        Some(at(1)),
        "pausing again keeps the first time"
    );
    assert_eq!(row.counts.get(&JobState::Available), Some(&1));
    assert!(
        driver
            .job_claim(&claim_params("pausable", 10, 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        driver
            .job_claim(&claim_params("other", 10, 1))
            .await
            .unwrap()[0]
            .id,
        other.id
    );

    let mut rx = driver.subscribe();
    driver.queue_resume(&pause).await.unwrap();
    assert!(
        wait_for(
            &mut rx,
            &Wakeup {
                queue: Some("pausable".into())
            },
            Duration::from_secs(5)
        )
        .await,
        "resume wakes the queue"
    );
    assert_eq!(
        driver
            .job_claim(&claim_params("pausable", 10, 2))
            .await
            .unwrap()[0]
            .id,
        j.id
    );
}

#[tokio::test]
async fn unique_duplicate_returns_the_existing_job() {
    let (_dir, driver) = fresh().await;
    let unique = |kind: &str| JobInsertParams {
        unique_key: Some("report:2026-11".into()),
        ..job(kind, "unique")
    };
    let out = driver
        .job_insert_many(vec![
            unique("first"),
            job("plain", "unique"),
            unique("second"),
        ])
        .await
        .unwrap();
    assert!(out[0].inserted && out[1].inserted);
    assert!(
        !out[2].inserted,
        "a duplicate in the same batch is not inserted"
    );
    assert_eq!(out[2].job, out[0].job, "the holder is returned");
    let again = driver
        .job_insert_many(vec![unique("third")])
        .await
        .unwrap()
        .remove(0);
    assert!(!again.inserted);
    assert_eq!(again.job.id, out[0].job.id);
    assert_eq!(again.job.kind, "first");
    let all = driver
        .job_list(&JobListParams {
            queue: Some("unique".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn stale_lease_token_changes_nothing() {
    let (_dir, driver) = fresh().await;
    insert(&driver, job("fence", "fence")).await;
    let claimed = driver
        .job_claim(&claim_params("fence", 1, 41))
        .await
        .unwrap()
        .remove(0);
    let finish = |token: i64| JobFinishParams {
        id: claimed.id,
        execution_id: claimed.execution_id,
        lease_token: token,
        lease_expired_before: None,
        state: JobState::Succeeded,
        attempt: claimed.attempt,
        run_at: None,
        finished_at: Some(at(5)),
        error: None,
        output: Some("stale output".into()),
        progress: None,
        exit_code: Some(0),
    };
    let stale = driver.job_finish_many(vec![finish(40)]).await.unwrap();
    assert!(!stale[0].applied, "a stale token does not apply");
    let row = driver.job_get(claimed.id).await.unwrap().unwrap();
    assert_eq!(row, claimed, "the row is unchanged");
    let fenced = JobFinishParams {
        lease_expired_before: Some(at(50)),
        ..finish(41)
    };
    assert!(
        !driver.job_finish_many(vec![fenced]).await.unwrap()[0].applied,
        "a lease expiring after the fence is not rescued"
    );
    assert!(driver.job_finish_many(vec![finish(41)]).await.unwrap()[0].applied);
    let done = driver.job_get(claimed.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.lease_token, None);
    assert_eq!(done.node.as_deref(), Some("node-1"), "node is kept");
    assert!(
        !driver.job_finish_many(vec![finish(41)]).await.unwrap()[0].applied,
        "applies once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_on_a_second_pool_wakes_subscribers() {
    let (dir, driver) = fresh().await;
    let mut rx = driver.subscribe();
    // Let the watcher take its first sample.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let path = dir.path().join("rota.db");
    let pool = SqlitePool::connect_with(connect_options(path.to_str().unwrap()).unwrap())
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let inserted = job_insert_many_in(&mut tx, vec![job("tx", "transactional")])
        .await
        .unwrap();
    let seen_inside = job_list_in(
        &mut tx,
        &JobListParams {
            queue: Some("transactional".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(seen_inside.len(), 1, "the transaction sees its own insert");
    assert_eq!(
        driver.job_get(inserted[0].job.id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.commit().await.unwrap();

    assert!(
        wait_for(&mut rx, &Wakeup { queue: None }, Duration::from_secs(5)).await,
        "a foreign commit wakes every queue"
    );
    assert_eq!(
        driver
            .job_claim(&claim_params("transactional", 5, 1))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_driver_on_the_same_file_wakes_the_first() {
    let (dir, a) = fresh().await;
    let b = open_in(&dir).await;
    let mut rx = a.subscribe();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Both write at once: busy_timeout makes them wait, never fail.
    let (ra, rb) = tokio::join!(
        a.job_insert_many((0..200).map(|_| job("a", "shared")).collect()),
        b.job_insert_many((0..200).map(|_| job("b", "shared")).collect()),
    );
    assert_eq!(ra.unwrap().len() + rb.unwrap().len(), 400);
    assert!(wait_for(&mut rx, &Wakeup { queue: None }, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_commits_wake_their_queue_but_not_every_queue() {
    let (_dir, driver) = fresh().await;
    let mut rx = driver.subscribe();
    tokio::time::sleep(Duration::from_millis(50)).await;
    insert(&driver, job("own", "mine")).await;
    assert!(
        wait_for(
            &mut rx,
            &Wakeup {
                queue: Some("mine".into())
            },
            Duration::from_secs(5)
        )
        .await
    );
    for token in 0..20 {
        driver
            .job_claim(&claim_params("mine", 1, token))
            .await
            .unwrap();
        insert(&driver, job("own", "mine")).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut spurious = 0;
    while let Ok(w) = rx.try_recv() {
        if w.queue.is_none() {
            spurious += 1;
        }
    }
    assert_eq!(
        spurious, 0,
        "the driver's own commits are not mistaken for foreign ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("rota.db");
    let path = path.to_str().unwrap().to_owned();
    let url = format!("sqlite://{path}");
    // Two "processes" racing on a fresh file.
    let (a, b) = tokio::join!(
        SqliteDriver::open(&path, SqliteOptions::default()),
        SqliteDriver::open(&url, SqliteOptions::default()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    insert(&a, job("m", "m")).await;
    a.migrate().await.unwrap();
    b.migrate().await.unwrap();
    drop((a, b));
    let c = SqliteDriver::open(&format!("sqlite:{path}"), SqliteOptions::default())
        .await
        .unwrap();
    let status = c.migration_status().await.unwrap();
    assert!(!status.is_empty());
    assert!(status.iter().all(|m| m.applied_at.is_some()), "{status:?}");
    assert_eq!(status[0].version, 1);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rota_migrations")
        .fetch_one(c.read_pool())
        .await
        .unwrap();
    assert_eq!(
        applied as usize,
        status.len(),
        "each migration recorded once"
    );
    assert_eq!(
        c.job_count().await.unwrap()[0].count,
        1,
        "data survives reopening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_fresh_file_all_succeed() {
    // Switching a new file to WAL is not covered by busy_timeout; open()
    // retries it, so racing processes never see "database is locked".
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db").to_str().unwrap().to_owned();
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let p = path.clone();
                tokio::spawn(async move { SqliteDriver::open(&p, SqliteOptions::default()).await })
            })
            .collect();
        for o in opens {
            if let Err(e) = o.await.unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}

#[tokio::test]
async fn without_migrate_a_fresh_file_reports_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rota.db");
    let options = SqliteOptions {
        migrate: false,
        ..SqliteOptions::default()
    };
    let driver = SqliteDriver::open(path.to_str().unwrap(), options)
        .await
        .unwrap();
    assert!(
        driver
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied_at.is_none())
    );
    assert!(driver.job_get(1).await.is_err(), "no tables yet");
    driver.migrate().await.unwrap();
    assert!(
        driver
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied_at.is_some())
    );
    assert_eq!(driver.job_get(1).await.unwrap(), None);
}

#[tokio::test]
async fn store_info_reports_wal_and_full_sync() {
    let (_dir, driver) = fresh().await;
    let info = driver.store_info().await.unwrap();
    assert_eq!(info.store, "sqlite");
    assert!(info.version.starts_with('3'), "{}", info.version);
    assert_eq!(
        info.settings.get("journal_mode").map(String::as_str),
        Some("wal")
    );
    assert_eq!(
        info.settings.get("synchronous").map(String::as_str),
        Some("FULL")
    );
    driver.ping().await.unwrap();
    let write = sqlx::query("DELETE FROM rota_jobs")
        .execute(driver.read_pool())
        .await;
    assert!(write.is_err(), "the read pool is read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_call_does_not_fail_its_batch_mates() {
    let (_dir, driver) = fresh().await;
    let held = JobInsertParams {
        unique_key: Some("held".into()),
        ..job("u", "mates")
    };
    let old = insert(&driver, held.clone()).await;
    let claimed = driver
        .job_claim(&claim_params("mates", 1, 9))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claimed.id, old.id);
    driver
        .job_cancel(&rota_driver::JobCancelParams {
            id: old.id,
            now: at(2),
        })
        .await
        .unwrap();
    let ack = JobFinishParams {
        id: old.id,
        execution_id: old.execution_id,
        lease_token: 9,
        lease_expired_before: None,
        state: JobState::Canceled,
        attempt: 1,
        run_at: None,
        finished_at: Some(at(3)),
        error: None,
        output: None,
        progress: None,
        exit_code: None,
    };
    assert!(driver.job_finish_many(vec![ack]).await.unwrap()[0].applied);
    insert(&driver, held).await;

    let d = Arc::new(driver);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            if i % 8 == 0 {
                let r = d
                    .job_retry(&rota_driver::JobRetryParams {
                        id: old.id,
                        now: at(4),
                    })
                    .await;
                assert!(matches!(r, Err(DriverError::Conflict(_))), "{r:?}");
                None
            } else {
                Some(insert(&d, job("mate", "mates")).await.id)
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            assert!(d.job_get(id).await.unwrap().is_some());
            ok += 1;
        }
    }
    assert_eq!(ok, 28);
    assert_eq!(
        d.job_get(old.id).await.unwrap().unwrap().state,
        JobState::Canceled
    );
}

#[tokio::test]
async fn bad_urls_are_refused() {
    assert!(
        SqliteDriver::open("sqlite::memory:", SqliteOptions::default())
            .await
            .is_err()
    );
    assert!(connect_options("").is_err());
}

#[tokio::test]
async fn inserted_job_equals_the_stored_row() {
    let (_dir, driver) = fresh().await;
    let odd = JobInsertParams {
        args: serde_json::json!({"f": 0.1, "big": u64::MAX, "neg": -7, "s": "é\"\\\n", "a": [1, {"b": null}]}),
        run_at: Timestamp::from_nanosecond(1_800_000_000_123_456_789).unwrap(),
        created_at: Timestamp::from_nanosecond(-1_234_567_891).unwrap(),
        timeout: Some(Duration::from_micros(2_500_700)),
        labels: labels(&[("zone", "eu\u{1F600}")]),
        attributes: labels(&[("k\"ey", "v\\al")]),
        trace_context: Some("00-abc-def-01".into()),
        priority: 9,
        state: JobState::Scheduled,
        ..job("odd", "odd")
    };
    let returned = insert(&driver, odd).await;
    let stored = driver.job_get(returned.id).await.unwrap().unwrap();
    assert_eq!(returned, stored);
    assert_eq!(
        stored.timeout,
        Some(Duration::from_millis(2_500)),
        "stored in whole milliseconds"
    );
    assert_eq!(
        stored.run_at.subsec_nanosecond() % 1_000,
        0,
        "stored in whole microseconds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_driver_stops_its_tasks() {
    let (_dir, driver) = fresh().await;
    let mut rx = driver.subscribe();
    insert(&driver, job("d", "drop")).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(driver);
    // The channel closes only when the writer thread has exited and nothing
    // (the watcher included) keeps the driver's state alive.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Err(broadcast::error::RecvError::Closed) => return,
                _ => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "writer or watcher outlived the driver");
}
