//! The driver and the transition table agree.
//!
//! For every state and every event a driver method performs, a fresh job in
//! that state is subjected to the event; the driver must accept exactly when
//! [`JobState::apply`] does (delete: exactly finished jobs, per the trait
//! docs), land in the state and attempt count `apply` computes, and change
//! nothing when it refuses. All disagreements are collected and reported
//! together.

use std::sync::Arc;

use rota_core::{Job, JobEvent, JobState};
use rota_driver::{Driver, DriverError, JobCancelParams, JobRetryParams};

use crate::fixtures::{
    at, claim, finish, finish_params, get, id_list, job_in_state, promote, token,
};

/// The engine event that leads a running job to `target` via a finish.
fn finish_event(target: JobState) -> JobEvent {
    match target {
        JobState::Succeeded => JobEvent::Succeed,
        JobState::Retrying => JobEvent::Error,
        JobState::Failed => JobEvent::Fatal,
        JobState::Scheduled => JobEvent::Snooze,
        JobState::Canceled => JobEvent::CancelAck,
        JobState::Available => JobEvent::HandBack,
        JobState::Running => JobEvent::Claim,
    }
}

/// Checks that a refused action left the job exactly as it was.
async fn unchanged(driver: &Arc<dyn Driver>, before: &Job, what: &str, problems: &mut Vec<String>) {
    let after = get(driver, before.id).await;
    if &after != before {
        problems.push(format!(
            "{what}: refused, but the job changed from {before:?} to {after:?}"
        ));
    }
}

/// Checks state and attempt after an accepted action.
fn landed(job: &Job, want: JobState, attempt: u32, what: &str, problems: &mut Vec<String>) {
    if job.state != want || job.attempt != attempt {
        problems.push(format!(
            "{what}: expected {want} with attempt {attempt}, got {} with attempt {}",
            job.state, job.attempt
        ));
    }
}

fn refusal(result: &Result<Job, DriverError>, from: JobState, action: &str) -> Option<String> {
    match result {
        Err(DriverError::InvalidState {
            state, action: a, ..
        }) if *state == from && *a == action => None,
        other => Some(format!(
            "{action} of a {from} job: the table refuses it, expected InvalidState {{ state: {from}, action: {action:?} }}, got {other:?}"
        )),
    }
}

/// For every (state, event) pair the driver can perform — cancel, retry,
/// delete, finish to each target, promote, claim — the driver's accept/refuse
/// and outcome match the transition table.
pub async fn driver_agrees_with_transition_table(driver: Arc<dyn Driver>) {
    let mut problems = Vec::new();
    let now = at(10);
    for from in JobState::ALL {
        // Cancel.
        let job = job_in_state(&driver, from, token()).await;
        let what = format!("cancel of a {from} job");
        let result = driver
            .job_cancel(&JobCancelParams { id: job.id, now })
            .await;
        match from.apply(JobEvent::Cancel, job.attempt, job.max_attempts) {
            Ok(step) => match result {
                Ok(out) => {
                    landed(&out, step.to, step.attempt, &what, &mut problems);
                    let stored = get(&driver, job.id).await;
                    if stored != out {
                        problems.push(format!("{what}: returned {out:?} but stored {stored:?}"));
                    }
                    if step.to == JobState::Canceled && out.finished_at != Some(now) {
                        problems.push(format!(
                            "{what}: finished_at {:?}, expected now",
                            out.finished_at
                        ));
                    }
                    if step.to == JobState::Running && out.cancel_requested_at != Some(now) {
                        problems.push(format!(
                            "{what}: cancel_requested_at {:?}, expected now",
                            out.cancel_requested_at
                        ));
                    }
                }
                Err(e) => problems.push(format!(
                    "{what}: the table allows it ({step:?}), driver said {e}"
                )),
            },
            Err(_) => {
                problems.extend(refusal(&result, from, "cancel"));
                unchanged(&driver, &job, &what, &mut problems).await;
            }
        }

        // Retry.
        let job = job_in_state(&driver, from, token()).await;
        let what = format!("retry of a {from} job");
        let result = driver.job_retry(&JobRetryParams { id: job.id, now }).await;
        match from.apply(JobEvent::Retry, job.attempt, job.max_attempts) {
            Ok(step) => match result {
                Ok(out) => {
                    landed(&out, step.to, step.attempt, &what, &mut problems);
                    if out.run_at != now {
                        problems.push(format!("{what}: run_at {}, expected now", out.run_at));
                    }
                    let stored = get(&driver, job.id).await;
                    if stored != out {
                        problems.push(format!("{what}: returned {out:?} but stored {stored:?}"));
                    }
                }
                Err(e) => problems.push(format!(
                    "{what}: the table allows it ({step:?}), driver said {e}"
                )),
            },
            Err(_) => {
                problems.extend(refusal(&result, from, "retry"));
                unchanged(&driver, &job, &what, &mut problems).await;
            }
        }

        // Delete: finished jobs only (trait docs).
        let job = job_in_state(&driver, from, token()).await;
        let what = format!("delete of a {from} job");
        let result = driver.job_delete(job.id).await;
        if from.is_finished() {
            match result {
                Ok(_) => {
                    if driver.job_get(job.id).await.ok().flatten().is_some() {
                        problems.push(format!("{what}: accepted but the job is still there"));
                    }
                }
                Err(e) => problems.push(format!(
                    "{what}: finished jobs may be deleted, driver said {e}"
                )),
            }
        } else {
            problems.extend(refusal(&result, from, "delete"));
            unchanged(&driver, &job, &what, &mut problems).await;
        }

        // Finish to every target, with the job's own (last) lease token.
        for target in JobState::ALL
            .into_iter()
            .filter(|s| *s != JobState::Running)
        {
            let t = token();
            let job = job_in_state(&driver, from, t).await;
            let what = format!("finish of a {from} job to {target}");
            let params = finish_params(&job, t, target, now);
            let attempt = params.attempt;
            let allowed = from
                .apply(finish_event(target), job.attempt, job.max_attempts)
                .is_ok_and(|s| s.to == target);
            let applied = finish(&driver, params).await;
            if applied != allowed {
                problems.push(format!(
                    "{what}: table says allowed = {allowed}, driver applied = {applied}"
                ));
            }
            if applied {
                landed(
                    &get(&driver, job.id).await,
                    target,
                    attempt,
                    &what,
                    &mut problems,
                );
            } else {
                unchanged(&driver, &job, &what, &mut problems).await;
            }
        }

        // Promote (everything is due far in the future).
        let job = job_in_state(&driver, from, token()).await;
        let what = format!("promotion of a {from} job");
        let counts = promote(&driver, at(100_000)).await;
        let promoted = counts.get(&job.queue).copied().unwrap_or(0);
        match from.apply(JobEvent::Promote, job.attempt, job.max_attempts) {
            Ok(step) => {
                if promoted != 1 {
                    problems.push(format!(
                        "{what}: expected a count of 1 for its queue, got {counts:?}"
                    ));
                }
                landed(
                    &get(&driver, job.id).await,
                    step.to,
                    step.attempt,
                    &what,
                    &mut problems,
                );
            }
            Err(_) => {
                if promoted != 0 {
                    problems.push(format!(
                        "{what}: refused by the table, driver counted {promoted}"
                    ));
                }
                unchanged(&driver, &job, &what, &mut problems).await;
            }
        }

        // Claim.
        let job = job_in_state(&driver, from, token()).await;
        let what = format!("claim of a {from} job");
        let claimed = claim(&driver, &job.queue, 10, token(), at(200_000)).await;
        match from.apply(JobEvent::Claim, job.attempt, job.max_attempts) {
            Ok(step) => {
                if id_list(&claimed) != vec![job.id] {
                    problems.push(format!(
                        "{what}: expected it claimed, got {:?}",
                        id_list(&claimed)
                    ));
                } else {
                    landed(&claimed[0], step.to, step.attempt, &what, &mut problems);
                }
            }
            Err(_) => {
                if !claimed.is_empty() {
                    problems.push(format!(
                        "{what}: refused by the table, driver claimed {:?}",
                        id_list(&claimed)
                    ));
                }
                unchanged(&driver, &job, &what, &mut problems).await;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the driver disagrees with the transition table in {} place(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
