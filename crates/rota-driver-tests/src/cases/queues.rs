//! Queue listing and job counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use rota_core::JobState;
use rota_driver::{Driver, JobInsertParams, QueuePauseParams, QueueRow};

use crate::fixtures::{at, claim, finish, finish_params, insert_all, job_in, scheduled, token};

/// Jobs: `qa` 2 available + 1 scheduled, `qb` 1 running + 1 succeeded +
/// 1 available. Returns nothing; states are checked by the callers.
async fn populate(driver: &Arc<dyn Driver>) {
    insert_all(
        driver,
        vec![
            job_in("k", "qa"),
            job_in("k", "qa"),
            scheduled("k", "qa", at(500)),
        ],
    )
    .await;
    insert_all(
        driver,
        vec![job_in("k", "qb"), job_in("k", "qb"), job_in("k", "qb")],
    )
    .await;
    let t = token();
    let claimed = claim(driver, "qb", 2, t, at(1)).await;
    assert_eq!(claimed.len(), 2);
    assert!(
        finish(
            driver,
            finish_params(&claimed[0], t, JobState::Succeeded, at(2))
        )
        .await
    );
}

fn counts(pairs: &[(JobState, i64)]) -> BTreeMap<JobState, i64> {
    pairs.iter().copied().collect()
}

async fn queue_rows(driver: &Arc<dyn Driver>) -> BTreeMap<String, QueueRow> {
    let rows = driver
        .queue_list()
        .await
        .unwrap_or_else(|e| panic!("queue_list failed: {e}"));
    let mut out = BTreeMap::new();
    for r in rows {
        let name = r.name.clone();
        assert!(
            out.insert(name.clone(), r).is_none(),
            "queue {name} listed twice"
        );
    }
    out
}

/// `queue_list` lists every queue with jobs or a stored setting (a paused
/// queue without jobs), with `paused_at` and per-state counts (states without
/// jobs omitted).
pub async fn queue_list_shows_paused_at_and_counts(driver: Arc<dyn Driver>) {
    populate(&driver).await;
    let pause = |name: &str, secs: i64| QueuePauseParams {
        name: name.to_owned(),
        now: at(secs),
    };
    driver
        .queue_pause(&pause("qc", 7))
        .await
        .unwrap_or_else(|e| panic!("pause failed: {e}"));
    driver
        .queue_pause(&pause("qa", 8))
        .await
        .unwrap_or_else(|e| panic!("pause failed: {e}"));

    let rows = queue_rows(&driver).await;
    let expected = BTreeMap::from([
        (
            "qa".to_owned(),
            QueueRow {
                name: "qa".into(),
                paused_at: Some(at(8)),
                counts: counts(&[(JobState::Available, 2), (JobState::Scheduled, 1)]),
            },
        ),
        (
            "qb".to_owned(),
            QueueRow {
                name: "qb".into(),
                paused_at: None,
                counts: counts(&[
                    (JobState::Available, 1),
                    (JobState::Running, 1),
                    (JobState::Succeeded, 1),
                ]),
            },
        ),
        (
            "qc".to_owned(),
            QueueRow {
                name: "qc".into(),
                paused_at: Some(at(7)),
                counts: BTreeMap::new(),
            },
        ),
    ]);
    assert_eq!(rows, expected, "queue_list");

    driver
        .queue_resume(&pause("qa", 9))
        .await
        .unwrap_or_else(|e| panic!("resume failed: {e}"));
    let rows = queue_rows(&driver).await;
    let qa = rows
        .get("qa")
        .unwrap_or_else(|| panic!("qa missing after resume: {rows:?}"));
    assert_eq!(qa.paused_at, None, "resumed queue shows paused_at = None");
    assert_eq!(qa.counts, expected["qa"].counts);
}

/// `job_count` counts jobs per queue and state (zero rows, if any, ignored),
/// and follows state changes.
pub async fn job_count_per_queue_and_state(driver: Arc<dyn Driver>) {
    populate(&driver).await;
    insert_all(
        &driver,
        vec![JobInsertParams {
            priority: 4,
            ..job_in("other", "qa")
        }],
    )
    .await;
    let count = |d: Arc<dyn Driver>| async move {
        let rows = d
            .job_count()
            .await
            .unwrap_or_else(|e| panic!("job_count failed: {e}"));
        let mut out = BTreeMap::new();
        for r in rows {
            if r.count != 0 {
                assert!(
                    out.insert((r.queue.clone(), r.state), r.count).is_none(),
                    "job_count repeats ({}, {})",
                    r.queue,
                    r.state
                );
            }
        }
        out
    };
    let key = |q: &str, s: JobState| (q.to_owned(), s);
    assert_eq!(
        count(Arc::clone(&driver)).await,
        BTreeMap::from([
            (key("qa", JobState::Available), 3),
            (key("qa", JobState::Scheduled), 1),
            (key("qb", JobState::Available), 1),
            (key("qb", JobState::Running), 1),
            (key("qb", JobState::Succeeded), 1),
        ])
    );
    let claimed = claim(&driver, "qa", 10, token(), at(3)).await;
    assert_eq!(claimed.len(), 3);
    assert_eq!(
        count(Arc::clone(&driver)).await,
        BTreeMap::from([
            (key("qa", JobState::Running), 3),
            (key("qa", JobState::Scheduled), 1),
            (key("qb", JobState::Available), 1),
            (key("qb", JobState::Running), 1),
            (key("qb", JobState::Succeeded), 1),
        ])
    );
}
