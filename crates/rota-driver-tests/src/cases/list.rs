//! Listing: filters, attribute matching, keyset pagination, page cap.

use std::sync::Arc;

use rota_core::JobState;
use rota_driver::{Driver, JobInsertParams, JobListParams};

use crate::fixtures::{
    claim, finish, finish_params, get, id_list, insert, insert_all, job_in, list, map, scheduled,
    token,
};

fn page(limit: u32) -> JobListParams {
    JobListParams {
        limit,
        ..Default::default()
    }
}

/// Filters by states (any of), queue, kind and ids combine with AND; results
/// are newest first (descending id) and are full rows.
pub async fn list_filters_by_state_queue_kind_and_ids(driver: Arc<dyn Driver>) {
    let a1 = insert(&driver, job_in("email", "mail")).await;
    let a2 = insert(
        &driver,
        scheduled("email", "mail", crate::fixtures::at(600)),
    )
    .await;
    let a3 = insert(&driver, job_in("sms", "mail")).await;
    let a4 = insert(&driver, job_in("email", "other")).await;
    let t = token();
    assert_eq!(
        id_list(&claim(&driver, "other", 1, t, crate::fixtures::at(1)).await),
        vec![a4.id]
    );
    let a5 = insert(&driver, job_in("sms", "other")).await;
    let c = claim(&driver, "other", 1, t, crate::fixtures::at(2)).await;
    assert_eq!(id_list(&c), vec![a5.id]);
    assert!(
        finish(
            &driver,
            finish_params(&c[0], t, JobState::Succeeded, crate::fixtures::at(3))
        )
        .await
    );

    let q = |p: JobListParams| {
        let d = Arc::clone(&driver);
        async move { id_list(&list(&d, &p).await) }
    };
    let all = list(&driver, &page(100)).await;
    assert_eq!(
        id_list(&all),
        vec![a5.id, a4.id, a3.id, a2.id, a1.id],
        "empty filter: all, newest first"
    );
    for j in &all {
        assert_eq!(&get(&driver, j.id).await, j, "job_list returns full rows");
    }
    assert_eq!(
        q(JobListParams {
            states: vec![JobState::Available],
            ..page(100)
        })
        .await,
        vec![a3.id, a1.id]
    );
    assert_eq!(
        q(JobListParams {
            states: vec![JobState::Scheduled, JobState::Succeeded],
            ..page(100)
        })
        .await,
        vec![a5.id, a2.id],
        "states match any of"
    );
    assert_eq!(
        q(JobListParams {
            queue: Some("mail".into()),
            ..page(100)
        })
        .await,
        vec![a3.id, a2.id, a1.id]
    );
    assert_eq!(
        q(JobListParams {
            kind: Some("email".into()),
            ..page(100)
        })
        .await,
        vec![a4.id, a2.id, a1.id]
    );
    assert_eq!(
        q(JobListParams {
            states: vec![JobState::Available, JobState::Running],
            queue: Some("mail".into()),
            kind: Some("email".into()),
            ..page(100)
        })
        .await,
        vec![a1.id],
        "filters combine with AND"
    );
    assert_eq!(
        q(JobListParams {
            states: vec![JobState::Available],
            queue: Some("mail".into()),
            kind: Some("email".into()),
            ..page(100)
        })
        .await,
        vec![a1.id],
        "a queue's available jobs (the shape the queue index serves), with another filter"
    );
    assert_eq!(
        q(JobListParams {
            states: vec![JobState::Running],
            queue: Some("other".into()),
            ..page(100)
        })
        .await,
        vec![a4.id],
        "a queue's jobs in another state"
    );
    assert_eq!(
        q(JobListParams {
            ids: Some(vec![a1.id, a5.id, a4.id, a5.id + 1_000]),
            ..page(100)
        })
        .await,
        vec![a5.id, a4.id, a1.id],
        "ids filter"
    );
    assert_eq!(
        q(JobListParams {
            ids: Some(vec![a1.id, a4.id, a5.id]),
            states: vec![JobState::Running],
            ..page(100)
        })
        .await,
        vec![a4.id]
    );
    assert_eq!(
        q(JobListParams {
            before_id: Some(a3.id),
            ..page(100)
        })
        .await,
        vec![a2.id, a1.id],
        "before_id is exclusive"
    );
    assert_eq!(
        q(page(2)).await,
        vec![a5.id, a4.id],
        "limit takes the newest"
    );
    assert!(
        q(JobListParams {
            queue: Some("nope".into()),
            ..page(100)
        })
        .await
        .is_empty()
    );
    assert!(
        q(JobListParams {
            kind: Some("EMAIL".into()),
            ..page(100)
        })
        .await
        .is_empty(),
        "kind compares exactly"
    );
}

/// Attribute filters require every given key to be present with exactly the
/// given value. Keys with dots, quotes and JSON-path characters, and values
/// with SQL and LIKE meta-characters, match literally.
pub async fn list_filters_by_attributes_all_equal(driver: Arc<dyn Driver>) {
    let injection = "'; DROP TABLE jobs; --";
    let with = |attrs: &[(&str, &str)]| JobInsertParams {
        attributes: map(attrs),
        ..job_in("attr", "attrs")
    };
    let jobs = insert_all(
        &driver,
        vec![
            with(&[("tenant", "acme"), ("a.b", "1"), ("it's", "x")]),
            with(&[("tenant", "acme"), ("a.b", "1")]),
            with(&[("tenant", "acme"), ("a.b", "2")]),
            with(&[("tenant", injection), ("k\"q", "%")]),
            with(&[("tenant", "acme2"), ("k\"q", "abc")]),
            with(&[("$.tenant", "acme"), ("empty", "")]),
            with(&[("a", "{\"b\":\"1\"}")]),
            with(&[("path", "C:\\dir\\x"), ("q", "it's \"quoted\"")]),
            with(&[]),
        ],
    )
    .await;
    let id = |i: usize| jobs[i].id;
    let by = |attrs: Vec<(&'static str, &'static str)>| {
        let d = Arc::clone(&driver);
        async move {
            let p = JobListParams {
                attributes: map(&attrs),
                ..page(100)
            };
            id_list(&list(&d, &p).await)
        }
    };
    assert_eq!(
        by(vec![("tenant", "acme")]).await,
        vec![id(2), id(1), id(0)],
        "exact value, no prefix match"
    );
    assert_eq!(
        by(vec![("a.b", "1")]).await,
        vec![id(1), id(0)],
        "a dotted key is one key, not a path"
    );
    assert_eq!(
        by(vec![("a.b", "1"), ("it's", "x")]).await,
        vec![id(0)],
        "all pairs must match"
    );
    assert_eq!(
        by(vec![("tenant", "acme"), ("nope", "x")]).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        by(vec![("tenant", injection)]).await,
        vec![id(3)],
        "SQL meta-characters are data"
    );
    assert_eq!(
        by(vec![("k\"q", "%")]).await,
        vec![id(3)],
        "'%' is not a wildcard"
    );
    assert_eq!(
        by(vec![("k\"q", "_bc")]).await,
        Vec::<i64>::new(),
        "'_' is not a wildcard"
    );
    assert_eq!(
        by(vec![("tenant", "ACME")]).await,
        Vec::<i64>::new(),
        "values compare exactly"
    );
    assert_eq!(
        by(vec![("$.tenant", "acme")]).await,
        vec![id(5)],
        "a key looking like a JSON path"
    );
    assert_eq!(
        by(vec![("empty", "")]).await,
        vec![id(5)],
        "an empty value matches only a present key"
    );
    assert_eq!(by(vec![("missing", "")]).await, Vec::<i64>::new());
    assert_eq!(
        by(vec![("path", "C:\\dir\\x")]).await,
        vec![id(7)],
        "backslashes are data"
    );
    assert_eq!(by(vec![("q", "it's \"quoted\"")]).await, vec![id(7)]);
    assert_eq!(by(vec![("b", "1")]).await, Vec::<i64>::new());
    let p = JobListParams {
        attributes: map(&[("tenant", "acme")]),
        states: vec![JobState::Available],
        kind: Some("attr".into()),
        ..page(2)
    };
    assert_eq!(
        id_list(&list(&driver, &p).await),
        vec![id(2), id(1)],
        "combined with other filters and limit"
    );

    // The store survived the injection attempt.
    assert_eq!(list(&driver, &page(100)).await.len(), jobs.len());
}

/// Following `before_id` from the last row of each page walks every matching
/// job exactly once, newest first, even while new jobs are inserted.
pub async fn list_keyset_pagination_newest_first(driver: Arc<dyn Driver>) {
    let jobs = insert_all(
        &driver,
        (0..25)
            .map(|i| job_in(&format!("k{}", i % 3), "pages"))
            .collect(),
    )
    .await;
    let t = token();
    let claimed = claim(&driver, "pages", 6, t, crate::fixtures::at(1)).await;
    assert_eq!(claimed.len(), 6);
    let mut expected: Vec<i64> = id_list(&jobs);
    expected.reverse();

    let walk = |filter: JobListParams, size: u32| {
        let d = Arc::clone(&driver);
        async move {
            let mut seen = Vec::new();
            let mut before = None;
            for _ in 0..100 {
                let p = JobListParams {
                    before_id: before,
                    limit: size,
                    ..filter.clone()
                };
                let rows = list(&d, &p).await;
                assert!(rows.len() <= size as usize, "page larger than limit");
                if rows.is_empty() {
                    return seen;
                }
                seen.extend(id_list(&rows));
                before = rows.last().map(|j| j.id);
                // New jobs arriving between pages must not show up in later pages.
                insert(&d, job_in("late", "pages")).await;
            }
            panic!("pagination did not terminate")
        }
    };
    assert_eq!(
        walk(JobListParams::default(), 7).await,
        expected,
        "pages of 7"
    );
    // Jobs inserted by the walk above are newer than everything expected here.
    let walk1: Vec<i64> = walk(JobListParams::default(), 1)
        .await
        .into_iter()
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(walk1, expected, "pages of 1");

    let available: Vec<i64> = expected
        .iter()
        .copied()
        .filter(|id| !claimed.iter().any(|c| c.id == *id))
        .collect();
    let got: Vec<i64> = walk(
        JobListParams {
            states: vec![JobState::Available],
            kind: None,
            ..Default::default()
        },
        4,
    )
    .await
    .into_iter()
    .filter(|id| expected.contains(id))
    .collect();
    assert_eq!(got, available, "filtered pages of 4");
    let running: Vec<i64> = walk(
        JobListParams {
            states: vec![JobState::Running],
            ..Default::default()
        },
        4,
    )
    .await;
    let mut want_running = id_list(&claimed);
    want_running.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(running, want_running, "running jobs, newest first");
}

/// A page holds at most 10,000 jobs, whatever limit is asked for.
pub async fn list_limit_is_capped(driver: Arc<dyn Driver>) {
    let n = 10_003;
    let jobs = insert_all(&driver, (0..n).map(|_| job_in("cap", "cap")).collect()).await;
    for limit in [20_000, u32::MAX] {
        let rows = list(&driver, &page(limit)).await;
        assert_eq!(rows.len(), 10_000, "limit {limit} is capped at 10,000");
        assert_eq!(rows[0].id, jobs[n - 1].id, "newest first");
        assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "descending ids");
    }
    let rows = list(&driver, &page(10_000)).await;
    let rest = list(
        &driver,
        &JobListParams {
            before_id: rows.last().map(|j| j.id),
            ..page(10_000)
        },
    )
    .await;
    assert_eq!(id_list(&rest), vec![jobs[2].id, jobs[1].id, jobs[0].id]);
}
