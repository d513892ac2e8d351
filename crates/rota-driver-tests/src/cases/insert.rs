//! Inserts: returned rows, initial state, unique keys, wake-ups.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rota_core::{Job, JobState};
use rota_driver::{Driver, JobCancelParams, JobInsertParams, JobListParams, JobRetryParams};
use serde_json::json;

use crate::fixtures::{
    at, at_ms, claim, drain, expect_wakeup, finish, finish_params, get, insert, insert_all, job,
    job_in, job_in_state_with, list, map, promote, queue, running, scheduled, token,
};

/// Asserts a freshly inserted row carries exactly what was asked for and the
/// initial values of everything else.
fn assert_fresh_row(job: &Job, p: &JobInsertParams) {
    let ctx = format!("inserted row {job:?} for {p:?}");
    assert_eq!(job.kind, p.kind, "kind: {ctx}");
    assert_eq!(job.args, p.args, "args: {ctx}");
    assert_eq!(job.queue, p.queue, "queue: {ctx}");
    assert_eq!(job.state, p.state, "state: {ctx}");
    assert_eq!(job.priority, p.priority, "priority: {ctx}");
    assert_eq!(job.run_at, p.run_at, "run_at: {ctx}");
    assert_eq!(job.created_at, p.created_at, "created_at: {ctx}");
    assert_eq!(job.max_attempts, p.max_attempts, "max_attempts: {ctx}");
    assert_eq!(job.timeout, p.timeout, "timeout: {ctx}");
    assert_eq!(job.unique_key, p.unique_key, "unique_key: {ctx}");
    assert_eq!(job.labels, p.labels, "labels: {ctx}");
    assert_eq!(job.attributes, p.attributes, "attributes: {ctx}");
    assert_eq!(job.trace_context, p.trace_context, "trace_context: {ctx}");
    assert_eq!(job.attempt, 0, "attempt: {ctx}");
    assert_eq!(job.started_at, None, "started_at: {ctx}");
    assert_eq!(job.finished_at, None, "finished_at: {ctx}");
    assert!(job.errors.is_empty(), "errors: {ctx}");
    assert_eq!(job.progress, None, "progress: {ctx}");
    assert_eq!(job.output, None, "output: {ctx}");
    assert_eq!(job.node, None, "node: {ctx}");
    assert_eq!(job.lease_expires_at, None, "lease_expires_at: {ctx}");
    assert_eq!(job.lease_token, None, "lease_token: {ctx}");
    assert_eq!(job.cancel_requested_at, None, "cancel_requested_at: {ctx}");
    assert_eq!(job.exit_code, None, "exit_code: {ctx}");
    assert_eq!(job.execution_id, None, "execution_id: {ctx}");
    assert_eq!(job.schedule_id, None, "schedule_id: {ctx}");
    assert_eq!(job.revision, 1, "revision starts at 1: {ctx}");
}

/// `job_insert_many` returns one row per spec in input order, each the full
/// stored row (equal to `job_get`), with ids increasing in input order. An
/// empty batch returns an empty result.
pub async fn insert_many_keeps_input_order_and_returns_full_rows(driver: Arc<dyn Driver>) {
    let empty = driver
        .job_insert_many(Vec::new())
        .await
        .unwrap_or_else(|e| panic!("empty insert failed: {e}"));
    assert!(empty.is_empty(), "an empty batch inserts nothing");

    let specs = vec![
        JobInsertParams {
            args: json!({"to": "a@example.com", "n": 42, "nested": {"list": [1, 2, 3], "flag": true, "none": null}}),
            queue: "mail".into(),
            priority: 3,
            max_attempts: 5,
            timeout: Some(Duration::from_millis(1_500)),
            labels: map(&[("region", "eu"), ("gpu", "yes")]),
            attributes: map(&[("tenant", "acme"), ("it's", "o'neil \"quoted\"")]),
            trace_context: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..job("email")
        },
        JobInsertParams {
            args: json!("héllo ✓ — unicode"),
            state: JobState::Scheduled,
            run_at: at(3_600),
            created_at: at_ms(1),
            unique_key: Some("report:2030-01".into()),
            ..job("report")
        },
        JobInsertParams {
            args: json!([1, "two", 3.5, {"k": "v"}]),
            priority: 9,
            max_attempts: 1,
            created_at: at_ms(2),
            run_at: at(-10),
            ..job("zeta")
        },
        JobInsertParams {
            args: json!(null),
            queue: "mail".into(),
            ..job("alpha")
        },
        JobInsertParams {
            args: json!({"script": "echo '; DROP TABLE jobs; --"}),
            attributes: map(&[("sql", "'; DROP TABLE jobs; --")]),
            ..job("shell")
        },
    ];
    let out = driver
        .job_insert_many(specs.clone())
        .await
        .unwrap_or_else(|e| panic!("job_insert_many failed: {e}"));
    assert_eq!(out.len(), specs.len(), "one result per spec");
    let mut last_id = i64::MIN;
    for (row, spec) in out.iter().zip(&specs) {
        assert!(row.inserted, "a new job reports inserted = true: {row:?}");
        assert_fresh_row(&row.job, spec);
        assert!(
            row.job.id > last_id,
            "ids increase in input order: {:?}",
            out
        );
        last_id = row.job.id;
        let stored = get(&driver, row.job.id).await;
        assert_eq!(stored, row.job, "the returned row is the full stored row");
    }
    let ids: BTreeSet<i64> = out.iter().map(|r| r.job.id).collect();
    assert_eq!(ids.len(), specs.len(), "ids are distinct");
}

/// A batch of 10,005 jobs (beyond any per-statement parameter limit) is
/// inserted whole, in order.
pub async fn insert_many_large_batch(driver: Arc<dyn Driver>) {
    let n = 10_005;
    let specs: Vec<JobInsertParams> = (0..n)
        .map(|i| JobInsertParams {
            args: json!({ "i": i }),
            priority: (i % 10) as i16,
            attributes: map(&[("batch", "big")]),
            ..job_in("bulk", "bulk")
        })
        .collect();
    let jobs = insert_all(&driver, specs).await;
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j.args, json!({ "i": i }), "result {i} is spec {i}");
    }
    assert!(
        jobs.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase in input order"
    );
    let counts = driver
        .job_count()
        .await
        .unwrap_or_else(|e| panic!("job_count failed: {e}"));
    let total: i64 = counts
        .iter()
        .filter(|c| c.queue == "bulk" && c.state == JobState::Available)
        .map(|c| c.count)
        .sum();
    assert_eq!(total, n as i64, "all {n} jobs stored");
}

/// A batch large enough for a store's bulk path (PostgreSQL: binary COPY)
/// returns exactly what reading the rows back returns, for varied jobs.
pub async fn insert_many_bulk_path_returns_stored_rows(driver: Arc<dyn Driver>) {
    // Enough rows for several pieces of each store's bulk path (SQLite:
    // 500-row statements; PostgreSQL: COPY data sent per 1,000 rows).
    let specs: Vec<JobInsertParams> = (0..2_500i64)
        .map(|i| JobInsertParams {
            args: match i % 4 {
                0 => json!({"i": i, "f": 0.1, "big": u64::MAX, "s": "héllo ✓", "n": null}),
                1 => json!([i, "two", 3.5, {"k": [true, false]}]),
                2 => json!(format!("quote ' and \\ backslash {i}")),
                _ => json!(null),
            },
            queue: if i % 3 == 0 {
                "bulk-a".into()
            } else {
                "bulk-b".into()
            },
            priority: (i % 7) as i16 - 3,
            state: if i % 5 == 0 {
                JobState::Scheduled
            } else {
                JobState::Available
            },
            run_at: at_ms(i * 1_001),
            created_at: at_ms(i),
            max_attempts: 1 + (i as u32 % 9),
            timeout: (i % 2 == 0).then(|| Duration::from_micros(1_500_700 + i as u64)),
            labels: if i % 4 == 0 {
                map(&[("region", "eu")])
            } else {
                map(&[])
            },
            attributes: map(&[("tenant", "acme"), ("row", "x'y")]),
            trace_context: (i % 3 == 1).then(|| format!("00-{i:032x}-{i:016x}-01")),
            ..job("bulk")
        })
        .collect();
    let out = driver
        .job_insert_many(specs.clone())
        .await
        .unwrap_or_else(|e| panic!("job_insert_many failed: {e}"));
    assert_eq!(out.len(), specs.len(), "one result per spec");
    for (row, spec) in out.iter().zip(&specs) {
        assert!(row.inserted);
        let stored = get(&driver, row.job.id).await;
        assert_eq!(stored, row.job, "returned row equals the stored row");
        assert_eq!(stored.args, spec.args);
        assert_eq!(stored.state, spec.state);
    }
    assert!(
        out.windows(2).all(|w| w[0].job.id < w[1].job.id),
        "ids increase in input order"
    );
}

/// A bulk batch of default rows with a few exceptions stores each row as
/// given: a store may leave columns at their defaults where every row has
/// the default (PostgreSQL's `COPY` does), and one row that differs must
/// still get its value, the others theirs.
pub async fn insert_many_bulk_path_mostly_defaults(driver: Arc<dyn Driver>) {
    let q = queue("bulk-defaults");
    let plain = |i: i64| JobInsertParams {
        args: json!({ "i": i }),
        ..job(&q)
    };
    // All defaults, then one exception per optional column.
    let all_default: Vec<JobInsertParams> = (0..300).map(plain).collect();
    let mut mixed: Vec<JobInsertParams> = (0..300).map(plain).collect();
    mixed[10].priority = -2;
    mixed[20].timeout = Some(Duration::from_millis(1_500));
    mixed[30].labels = map(&[("region", "eu")]);
    mixed[40].attributes = map(&[("tenant", "acme")]);
    mixed[50].trace_context = Some(format!("00-{:032x}-{:016x}-01", 7, 7));
    for batch in [all_default, mixed] {
        let out = driver
            .job_insert_many(batch.clone())
            .await
            .unwrap_or_else(|e| panic!("job_insert_many failed: {e}"));
        assert_eq!(out.len(), batch.len(), "one result per spec");
        for (row, spec) in out.iter().zip(&batch) {
            let stored = get(&driver, row.job.id).await;
            assert_eq!(stored, row.job, "returned row equals the stored row");
            assert_eq!(stored.priority, spec.priority);
            assert_eq!(stored.timeout, spec.timeout);
            assert_eq!(stored.labels, spec.labels);
            assert_eq!(stored.attributes, spec.attributes);
            assert_eq!(stored.trace_context, spec.trace_context);
        }
    }
}

/// The state given at insert is stored: `Scheduled` (run_at in the future) is
/// not claimable, not even after its run_at, until promoted; `Available` is
/// claimable at once.
pub async fn insert_scheduled_vs_available(driver: Arc<dyn Driver>) {
    let q = queue("sched");
    let later = insert(&driver, scheduled("later", &q, at(600))).await;
    let now_job = insert(&driver, job_in("now", &q)).await;
    assert_eq!(get(&driver, later.id).await.state, JobState::Scheduled);
    assert_eq!(get(&driver, now_job.id).await.state, JobState::Available);

    let claimed = claim(&driver, &q, 10, token(), at(1)).await;
    assert_eq!(
        crate::fixtures::id_list(&claimed),
        vec![now_job.id],
        "only the available job is claimed"
    );

    let claimed = claim(&driver, &q, 10, token(), at(700)).await;
    assert!(
        claimed.is_empty(),
        "a scheduled job is not claimable before promotion, even past its run_at: {claimed:?}"
    );
    assert_eq!(get(&driver, later.id).await.state, JobState::Scheduled);

    let promoted = promote(&driver, at(700)).await;
    assert_eq!(
        promoted.get(&q),
        Some(&1),
        "the due job is promoted: {promoted:?}"
    );
    let claimed = claim(&driver, &q, 10, token(), at(701)).await;
    assert_eq!(
        crate::fixtures::id_list(&claimed),
        vec![later.id],
        "claimable once promoted"
    );
}

/// Inserting a spec whose unique key is held returns the existing job with
/// `inserted = false` and stores nothing new.
pub async fn unique_key_duplicate_returns_existing(driver: Arc<dyn Driver>) {
    let first = insert(
        &driver,
        JobInsertParams {
            args: json!({"v": 1}),
            unique_key: Some("order:42".into()),
            ..job("sync")
        },
    )
    .await;
    let out = driver
        .job_insert_many(vec![
            JobInsertParams {
                args: json!({"v": 2}),
                unique_key: Some("order:42".into()),
                created_at: at(5),
                priority: 7,
                ..job("sync")
            },
            JobInsertParams {
                unique_key: Some("order:43".into()),
                ..job("sync")
            },
        ])
        .await
        .unwrap_or_else(|e| panic!("insert failed: {e}"));
    assert_eq!(out.len(), 2);
    assert!(!out[0].inserted, "duplicate key reports inserted = false");
    assert_eq!(
        out[0].job, first,
        "duplicate key returns the existing job unchanged"
    );
    assert!(out[1].inserted, "a different key is inserted");
    assert_eq!(
        get(&driver, first.id).await,
        first,
        "the existing job is untouched"
    );
    let all = list(
        &driver,
        &JobListParams {
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 2, "nothing else stored: {all:?}");
}

/// Two specs with the same key in one batch: the first is inserted, the
/// second returns it with `inserted = false`.
pub async fn unique_key_duplicate_within_one_batch(driver: Arc<dyn Driver>) {
    let out = driver
        .job_insert_many(vec![
            JobInsertParams {
                args: json!(1),
                unique_key: Some("k".into()),
                ..job("a")
            },
            JobInsertParams {
                args: json!(2),
                unique_key: Some("k".into()),
                ..job("a")
            },
        ])
        .await
        .unwrap_or_else(|e| panic!("insert failed: {e}"));
    assert_eq!(out.len(), 2);
    assert!(
        out[0].inserted && !out[1].inserted,
        "first wins within a batch: {out:?}"
    );
    assert_eq!(
        out[1].job, out[0].job,
        "the duplicate returns the job inserted first"
    );
    let all = list(
        &driver,
        &JobListParams {
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 1, "one job stored");
}

/// A key is held by a job in every unfinished state: scheduled, available,
/// running, retrying.
pub async fn unique_key_held_by_every_unfinished_state(driver: Arc<dyn Driver>) {
    for state in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retrying,
    ] {
        let key = format!("held-by-{state}");
        let holder = job_in_state_with(
            &driver,
            JobInsertParams {
                unique_key: Some(key.clone()),
                ..job_in("u", &queue("uniq"))
            },
            state,
            token(),
        )
        .await;
        let out = driver
            .job_insert_many(vec![JobInsertParams {
                unique_key: Some(key.clone()),
                ..job_in("u", &queue("uniq"))
            }])
            .await
            .unwrap_or_else(|e| panic!("insert failed: {e}"));
        assert!(!out[0].inserted, "key held by a {state} job: {out:?}");
        assert_eq!(
            out[0].job, holder,
            "the {state} holder is returned unchanged"
        );
    }
}

/// Once the holder is finished (succeeded, failed or canceled) the key is free:
/// a new job is inserted with a new id.
pub async fn unique_key_free_again_after_finish(driver: Arc<dyn Driver>) {
    for state in [JobState::Succeeded, JobState::Failed, JobState::Canceled] {
        let key = format!("freed-by-{state}");
        let q = queue("uniq");
        let params = JobInsertParams {
            unique_key: Some(key.clone()),
            ..job_in("u", &q)
        };
        let first = insert(&driver, params.clone()).await;
        let dup = driver
            .job_insert_many(vec![params.clone()])
            .await
            .unwrap_or_else(|e| panic!("insert failed: {e}"));
        assert!(!dup[0].inserted, "held while available");
        // Finish the holder.
        match state {
            JobState::Canceled => {
                driver
                    .job_cancel(&JobCancelParams {
                        id: first.id,
                        now: at(1),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("cancel failed: {e}"));
            }
            _ => {
                let t = token();
                let claimed = claim(&driver, &q, 1, t, at(1)).await;
                assert_eq!(crate::fixtures::id_list(&claimed), vec![first.id]);
                assert!(finish(&driver, finish_params(&claimed[0], t, state, at(2))).await);
            }
        }
        assert_eq!(get(&driver, first.id).await.state, state);
        let second = insert(&driver, params).await;
        assert_ne!(
            second.id, first.id,
            "a new job once the {state} holder finished"
        );
        assert_eq!(second.unique_key.as_deref(), Some(key.as_str()));
        assert_eq!(
            get(&driver, first.id).await.state,
            state,
            "the old job stays as it was"
        );
    }
}

/// 100 concurrent single inserts with one unique key yield exactly one job;
/// every call succeeds and returns that job.
pub async fn concurrent_unique_inserts_yield_one_job(driver: Arc<dyn Driver>) {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let d = Arc::clone(&driver);
        tasks.push(tokio::spawn(async move {
            d.job_insert_many(vec![JobInsertParams {
                args: json!({ "task": i }),
                unique_key: Some("the-one".into()),
                ..job("race")
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
        assert_eq!(out.len(), 1);
        if out[0].inserted {
            inserted += 1;
        }
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

/// After an insert of an available job commits, a receiver subscribed
/// before it gets a wake-up within 1 s.
pub async fn insert_wakes_subscribers(driver: Arc<dyn Driver>) {
    let mut rx = driver.subscribe();
    let q = queue("wake");
    insert(&driver, job_in("w", &q)).await;
    expect_wakeup(&mut rx, &q, Duration::from_secs(1), "an insert").await;
}

/// Promotions and operator retries also wake subscribers within 1 s.
pub async fn promote_and_retry_wake_subscribers(driver: Arc<dyn Driver>) {
    let q = queue("wake");
    let mut rx = driver.subscribe();
    insert(&driver, scheduled("w", &q, at(60))).await;
    drain(&mut rx).await;
    let promoted = promote(&driver, at(60)).await;
    assert_eq!(promoted.get(&q), Some(&1));
    expect_wakeup(&mut rx, &q, Duration::from_secs(1), "a promotion").await;

    let q2 = queue("wake");
    let t = token();
    let run = running(
        &driver,
        JobInsertParams {
            max_attempts: 1,
            ..job_in("w", &q2)
        },
        t,
        at(61),
    )
    .await;
    assert!(finish(&driver, finish_params(&run, t, JobState::Failed, at(62))).await);
    drain(&mut rx).await;
    driver
        .job_retry(&JobRetryParams {
            id: run.id,
            now: at(63),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    expect_wakeup(&mut rx, &q2, Duration::from_secs(1), "an operator retry").await;
}
