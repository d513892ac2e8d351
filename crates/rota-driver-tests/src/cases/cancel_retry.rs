//! Operator actions: cancel, retry, delete.

use std::sync::Arc;

use rota_core::JobState;
use rota_driver::{Driver, DriverError, JobCancelParams, JobInsertParams, JobRetryParams};

use crate::fixtures::{
    assert_invalid_state, assert_not_found, at, claim, exists, get, id_list, insert, job_in,
    job_in_state, job_in_state_with, queue, token,
};

fn cancel_at(id: i64, secs: i64) -> JobCancelParams {
    JobCancelParams { id, now: at(secs) }
}

fn retry_at(id: i64, secs: i64) -> JobRetryParams {
    JobRetryParams { id, now: at(secs) }
}

/// Cancel of a waiting job (scheduled, available, retrying) ends it at once:
/// `canceled` with `finished_at = now`; the returned job is the stored one.
pub async fn cancel_waiting_job_finishes_it(driver: Arc<dyn Driver>) {
    for state in [JobState::Scheduled, JobState::Available, JobState::Retrying] {
        let job = job_in_state(&driver, state, token()).await;
        let out = driver
            .job_cancel(&cancel_at(job.id, 10))
            .await
            .unwrap_or_else(|e| panic!("cancel of {state} job failed: {e}"));
        assert_eq!(out.state, JobState::Canceled, "cancel of a {state} job");
        assert_eq!(
            out.finished_at,
            Some(at(10)),
            "finished_at = now for a canceled {state} job"
        );
        assert_eq!(out.attempt, job.attempt, "attempt kept");
        assert_eq!(
            get(&driver, job.id).await,
            out,
            "returned job is the stored job"
        );
        assert!(
            claim(&driver, &job.queue, 10, token(), at(100_000))
                .await
                .is_empty(),
            "a canceled job is never claimed"
        );
    }
}

/// Cancel of a running job records `cancel_requested_at = now` and leaves it
/// running (no finished_at); asking again is accepted.
pub async fn cancel_running_job_requests_cancellation(driver: Arc<dyn Driver>) {
    let job = job_in_state(&driver, JobState::Running, token()).await;
    let out = driver
        .job_cancel(&cancel_at(job.id, 10))
        .await
        .unwrap_or_else(|e| panic!("cancel of running job failed: {e}"));
    assert_eq!(
        out.state,
        JobState::Running,
        "a running job keeps running until its worker stops"
    );
    assert_eq!(out.cancel_requested_at, Some(at(10)));
    assert_eq!(out.finished_at, None);
    assert_eq!(out.attempt, job.attempt);
    assert_eq!(
        out.lease_expires_at, job.lease_expires_at,
        "the lease is untouched"
    );
    assert_eq!(
        get(&driver, job.id).await,
        out,
        "returned job is the stored job"
    );

    let again = driver
        .job_cancel(&cancel_at(job.id, 11))
        .await
        .unwrap_or_else(|e| panic!("a repeated cancel of a running job failed: {e}"));
    assert_eq!(again.state, JobState::Running);
    assert!(again.cancel_requested_at.is_some());
}

/// Cancel of a finished job is `InvalidState { action: "cancel" }` and
/// changes nothing.
pub async fn cancel_finished_job_is_invalid_state(driver: Arc<dyn Driver>) {
    for state in JobState::FINISHED {
        let job = job_in_state(&driver, state, token()).await;
        assert_invalid_state(
            driver.job_cancel(&cancel_at(job.id, 10)).await,
            job.id,
            state,
            "cancel",
        );
        assert_eq!(
            get(&driver, job.id).await,
            job,
            "a refused cancel changed the {state} job"
        );
    }
}

/// Cancel, retry and delete of an id that does not exist are `NotFound`
/// (entity `job`).
pub async fn missing_job_is_not_found(driver: Arc<dyn Driver>) {
    let real = insert(&driver, job_in("x", &queue("nf"))).await;
    let missing = real.id + 1_000_000;
    assert_not_found(
        driver.job_cancel(&cancel_at(missing, 1)).await,
        missing,
        "cancel",
    );
    assert_not_found(
        driver.job_retry(&retry_at(missing, 1)).await,
        missing,
        "retry",
    );
    assert_not_found(driver.job_delete(missing).await, missing, "delete");
    let none = driver
        .job_get(missing)
        .await
        .unwrap_or_else(|e| panic!("job_get failed: {e}"));
    assert!(none.is_none());
}

/// Retry of a finished job makes it `available` now with `attempt = 0`; it is
/// then claimed as attempt 1.
pub async fn retry_finished_job_resets_attempt(driver: Arc<dyn Driver>) {
    for state in JobState::FINISHED {
        let job = job_in_state(&driver, state, token()).await;
        let out = driver
            .job_retry(&retry_at(job.id, 20))
            .await
            .unwrap_or_else(|e| panic!("retry of {state} job failed: {e}"));
        assert_eq!(out.state, JobState::Available, "retry of a {state} job");
        assert_eq!(out.attempt, 0, "retry of a finished job resets attempt");
        assert_eq!(out.run_at, at(20), "run_at = now");
        assert_eq!(
            get(&driver, job.id).await,
            out,
            "returned job is the stored job"
        );
        let claimed = claim(&driver, &job.queue, 1, token(), at(21)).await;
        assert_eq!(
            id_list(&claimed),
            vec![job.id],
            "a retried {state} job is claimable"
        );
        assert_eq!(claimed[0].attempt, 1);
    }
}

/// Retry of a running job is `InvalidState { action: "retry" }`; so is retry
/// of an available job, which the transition table does not allow either.
pub async fn retry_running_job_is_invalid_state(driver: Arc<dyn Driver>) {
    let job = job_in_state(&driver, JobState::Running, token()).await;
    assert_invalid_state(
        driver.job_retry(&retry_at(job.id, 5)).await,
        job.id,
        JobState::Running,
        "retry",
    );
    assert_eq!(
        get(&driver, job.id).await,
        job,
        "a refused retry changed the running job"
    );

    let job = job_in_state(&driver, JobState::Available, token()).await;
    assert_invalid_state(
        driver.job_retry(&retry_at(job.id, 5)).await,
        job.id,
        JobState::Available,
        "retry",
    );
    assert_eq!(
        get(&driver, job.id).await,
        job,
        "a refused retry changed the available job"
    );
}

/// Retry of a waiting job (retrying or scheduled) makes it available now,
/// keeping its attempt count.
pub async fn retry_waiting_job_makes_it_available_now(driver: Arc<dyn Driver>) {
    for state in [JobState::Retrying, JobState::Scheduled] {
        let job = job_in_state(&driver, state, token()).await;
        assert!(job.run_at > at(5), "set-up: run_at in the future");
        let out = driver
            .job_retry(&retry_at(job.id, 5))
            .await
            .unwrap_or_else(|e| panic!("retry of {state} job failed: {e}"));
        assert_eq!(out.state, JobState::Available, "retry of a {state} job");
        assert_eq!(out.run_at, at(5), "run_at = now");
        assert_eq!(out.attempt, job.attempt, "a waiting job keeps its attempt");
        assert_eq!(out.errors, job.errors, "errors kept");
        assert_eq!(get(&driver, job.id).await, out);
        let claimed = claim(&driver, &job.queue, 1, token(), at(5)).await;
        assert_eq!(id_list(&claimed), vec![job.id], "claimable right away");
    }
}

/// Retrying a finished job whose unique key is now held by another unfinished
/// job is a `Conflict` and changes nothing.
pub async fn retry_conflicts_with_unique_key_holder(driver: Arc<dyn Driver>) {
    let params = JobInsertParams {
        unique_key: Some("nightly".into()),
        ..job_in("u", &queue("conflict"))
    };
    let old = job_in_state_with(&driver, params.clone(), JobState::Succeeded, token()).await;
    let holder = insert(
        &driver,
        JobInsertParams {
            queue: queue("conflict"),
            ..params
        },
    )
    .await;
    match driver.job_retry(&retry_at(old.id, 30)).await {
        Err(DriverError::Conflict(_)) => {}
        other => panic!(
            "retry of a job whose unique key is held elsewhere: expected Conflict, got {other:?}"
        ),
    }
    assert_eq!(
        get(&driver, old.id).await,
        old,
        "refused retry changed the job"
    );
    assert_eq!(
        get(&driver, holder.id).await,
        holder,
        "refused retry changed the holder"
    );
}

/// Delete removes a finished job and returns it; other states are
/// `InvalidState { action: "delete" }` and stay.
pub async fn delete_only_finished_jobs(driver: Arc<dyn Driver>) {
    for state in JobState::ALL {
        let job = job_in_state(&driver, state, token()).await;
        let result = driver.job_delete(job.id).await;
        if state.is_finished() {
            let deleted = result.unwrap_or_else(|e| panic!("delete of {state} job failed: {e}"));
            assert_eq!(deleted, job, "delete returns the job as it was");
            assert!(
                !exists(&driver, job.id).await,
                "deleted {state} job still there"
            );
            assert_not_found(driver.job_delete(job.id).await, job.id, "second delete");
        } else {
            assert_invalid_state(result, job.id, state, "delete");
            assert_eq!(
                get(&driver, job.id).await,
                job,
                "refused delete changed the {state} job"
            );
        }
    }
}
