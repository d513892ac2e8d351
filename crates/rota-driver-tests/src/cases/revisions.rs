//! Job revisions: 1 at insert, one more on every state change (claim,
//! finish, cancel and cancel request, retry, promotion, hand-back), and
//! untouched by writes that change no state.

use std::sync::Arc;

use rota_core::{Job, JobState};
use rota_driver::{
    Driver, JobCancelParams, JobCheckinParams, JobHeartbeatParams, JobInsertParams, JobRetryParams,
};
use serde_json::json;

use crate::fixtures::{
    at, claim, finish, finish_params, get, id_list, insert, job_in, promote, queue, scheduled,
    token,
};

/// Asserts the returned and the stored revision.
async fn expect_rev(
    driver: &Arc<dyn Driver>,
    returned: Option<&Job>,
    id: i64,
    rev: i64,
    what: &str,
) {
    if let Some(j) = returned {
        assert_eq!(j.revision, rev, "{what}: revision of the returned job");
    }
    assert_eq!(
        get(driver, id).await.revision,
        rev,
        "{what}: stored revision"
    );
}

async fn claim_one(driver: &Arc<dyn Driver>, job: &Job, t: i64, secs: i64) -> Job {
    let got = claim(driver, &job.queue, 1, t, at(secs)).await;
    assert_eq!(id_list(&got), vec![job.id], "claiming job {}", job.id);
    got.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// Every state change adds one to the revision, whichever path makes it.
pub async fn revision_starts_at_one_and_increments_on_state_changes(driver: Arc<dyn Driver>) {
    let q = queue("rev");
    let j = insert(
        &driver,
        JobInsertParams {
            max_attempts: 5,
            ..job_in("r", &q)
        },
    )
    .await;
    expect_rev(&driver, Some(&j), j.id, 1, "insert").await;

    let t = token();
    let c = claim_one(&driver, &j, t, 1).await;
    expect_rev(&driver, Some(&c), j.id, 2, "claim").await;
    assert!(finish(&driver, finish_params(&c, t, JobState::Retrying, at(2))).await);
    expect_rev(&driver, None, j.id, 3, "finish to retrying").await;
    assert_eq!(promote(&driver, at(62)).await.get(&q), Some(&1));
    expect_rev(&driver, None, j.id, 4, "promotion").await;

    let t = token();
    let c = claim_one(&driver, &j, t, 63).await;
    expect_rev(&driver, Some(&c), j.id, 5, "second claim").await;
    assert!(finish(&driver, finish_params(&c, t, JobState::Available, at(64))).await);
    expect_rev(&driver, None, j.id, 6, "hand-back to available").await;

    let t = token();
    let c = claim_one(&driver, &j, t, 65).await;
    expect_rev(&driver, Some(&c), j.id, 7, "third claim").await;
    let out = driver
        .job_cancel(&JobCancelParams {
            id: j.id,
            now: at(66),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel request failed: {e}"));
    assert_eq!(out.state, JobState::Running);
    expect_rev(
        &driver,
        Some(&out),
        j.id,
        8,
        "cancel request on a running job",
    )
    .await;
    assert!(finish(&driver, finish_params(&c, t, JobState::Canceled, at(67))).await);
    expect_rev(&driver, None, j.id, 9, "finish to canceled").await;

    let out = driver
        .job_retry(&JobRetryParams {
            id: j.id,
            now: at(68),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    expect_rev(
        &driver,
        Some(&out),
        j.id,
        10,
        "operator retry of a finished job",
    )
    .await;
    let out = driver
        .job_cancel(&JobCancelParams {
            id: j.id,
            now: at(69),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    assert_eq!(out.state, JobState::Canceled);
    expect_rev(&driver, Some(&out), j.id, 11, "cancel of a waiting job").await;

    // Snooze, retry of a scheduled job, success.
    let q2 = queue("rev");
    let s = insert(&driver, scheduled("s", &q2, at(600))).await;
    expect_rev(&driver, Some(&s), s.id, 1, "scheduled insert").await;
    let out = driver
        .job_retry(&JobRetryParams {
            id: s.id,
            now: at(10),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    expect_rev(&driver, Some(&out), s.id, 2, "retry of a scheduled job").await;
    let t = token();
    let c = claim_one(&driver, &s, t, 11).await;
    expect_rev(&driver, Some(&c), s.id, 3, "claim").await;
    assert!(finish(&driver, finish_params(&c, t, JobState::Scheduled, at(12))).await);
    expect_rev(&driver, None, s.id, 4, "snooze").await;
    assert_eq!(promote(&driver, at(72)).await.get(&q2), Some(&1));
    expect_rev(&driver, None, s.id, 5, "promotion of a snoozed job").await;
    let t = token();
    let c = claim_one(&driver, &s, t, 73).await;
    assert!(finish(&driver, finish_params(&c, t, JobState::Succeeded, at(74))).await);
    expect_rev(&driver, None, s.id, 7, "claim and success").await;
}

/// Heartbeats, check-ins, stale or refused operations, unique duplicates and
/// promotions of jobs not yet due leave the revision alone.
pub async fn revision_unchanged_without_state_change(driver: Arc<dyn Driver>) {
    let q = queue("rev-same");
    let j = insert(
        &driver,
        JobInsertParams {
            unique_key: Some("rev-key".into()),
            ..job_in("r", &q)
        },
    )
    .await;
    let dup = driver
        .job_insert_many(vec![JobInsertParams {
            unique_key: Some("rev-key".into()),
            ..job_in("r", &q)
        }])
        .await
        .unwrap_or_else(|e| panic!("insert failed: {e}"));
    assert!(!dup[0].inserted);
    expect_rev(&driver, Some(&dup[0].job), j.id, 1, "unique duplicate").await;

    let t = token();
    let c = claim_one(&driver, &j, t, 1).await;
    expect_rev(&driver, Some(&c), j.id, 2, "claim").await;
    driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(j.id, t)],
            lease_expires_at: at(100),
            now: at(2),
        })
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    expect_rev(&driver, None, j.id, 2, "heartbeat").await;
    assert!(
        driver
            .job_checkin(&JobCheckinParams {
                id: j.id,
                lease_token: t,
                progress: Some(json!({"pct": 1})),
                output: Some("x".into()),
            })
            .await
            .unwrap_or_else(|e| panic!("checkin failed: {e}"))
    );
    expect_rev(&driver, None, j.id, 2, "check-in").await;
    assert!(
        !finish(
            &driver,
            finish_params(&c, t + 1_000_000, JobState::Succeeded, at(3))
        )
        .await
    );
    expect_rev(&driver, None, j.id, 2, "stale finish").await;
    assert!(
        driver
            .job_retry(&JobRetryParams {
                id: j.id,
                now: at(4)
            })
            .await
            .is_err()
    );
    expect_rev(&driver, None, j.id, 2, "refused retry of a running job").await;

    assert!(finish(&driver, finish_params(&c, t, JobState::Succeeded, at(5))).await);
    expect_rev(&driver, None, j.id, 3, "success").await;
    assert!(
        driver
            .job_cancel(&JobCancelParams {
                id: j.id,
                now: at(6)
            })
            .await
            .is_err()
    );
    expect_rev(&driver, None, j.id, 3, "refused cancel of a finished job").await;
    assert!(!finish(&driver, finish_params(&c, t, JobState::Failed, at(7))).await);
    expect_rev(&driver, None, j.id, 3, "repeated finish").await;

    let s = insert(&driver, scheduled("s", &queue("rev-same"), at(600))).await;
    promote(&driver, at(599)).await;
    expect_rev(&driver, None, s.id, 1, "promotion before run_at").await;
    claim(&driver, &s.queue, 1, token(), at(599)).await;
    expect_rev(&driver, None, s.id, 1, "claim of a scheduled job").await;
}
