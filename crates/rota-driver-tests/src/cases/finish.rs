//! Finishing runs (to every target state), token and expiry fences,
//! heartbeats and check-ins.

use std::sync::Arc;

use rota_core::{ErrorKind, Job, JobState};
use rota_driver::{
    Driver, JobCancelParams, JobCheckinParams, JobFinishParams, JobHeartbeatParams, JobInsertParams,
};
use serde_json::json;

use crate::fixtures::{
    at, attempt_error, claim, finish, finish_params, get, id_list, job_in, promote, queue, running,
    t0, token,
};

/// A running job in its own queue with `max_attempts`, claimed at T0 with
/// `t`; lease until T0 + 30 s.
async fn run(driver: &Arc<dyn Driver>, max_attempts: u32, t: i64) -> Job {
    running(
        driver,
        JobInsertParams {
            max_attempts,
            args: json!({"k": "v"}),
            ..job_in("fin", &queue("fin"))
        },
        t,
        t0(),
    )
    .await
}

/// Finish to `succeeded` stores finished_at, output, progress and exit code
/// and keeps attempt, started_at and node.
pub async fn finish_succeeded_stores_output_and_progress(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let applied = finish(
        &driver,
        JobFinishParams {
            output: Some("line 1\nline 2 ✓ 'quoted'".into()),
            progress: Some(json!({"pct": 100, "step": "done"})),
            exit_code: Some(0),
            ..finish_params(&job, t, JobState::Succeeded, at(5))
        },
    )
    .await;
    assert!(applied, "finish with the current token applies");
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Succeeded);
    assert_eq!(got.finished_at, Some(at(5)));
    assert_eq!(got.output.as_deref(), Some("line 1\nline 2 ✓ 'quoted'"));
    assert_eq!(got.progress, Some(json!({"pct": 100, "step": "done"})));
    assert_eq!(got.exit_code, Some(0));
    assert_eq!(got.attempt, 1);
    assert_eq!(got.started_at, job.started_at, "started_at kept");
    assert_eq!(got.node, job.node, "node kept (the node that last ran it)");
    assert!(got.errors.is_empty());
    assert_eq!(got.args, job.args);
}

/// Finish to `retrying` sets run_at and appends the error; errors accumulate
/// oldest first across attempts; the job comes back through promotion.
pub async fn finish_retrying_appends_errors_and_sets_run_at(driver: Arc<dyn Driver>) {
    let t1 = token();
    let job = run(&driver, 3, t1).await;
    let e1 = attempt_error(
        1,
        at(2),
        ErrorKind::Error,
        "connection refused: 'db' \"primary\"",
    );
    assert!(
        finish(
            &driver,
            JobFinishParams {
                run_at: Some(at(60)),
                error: Some(e1.clone()),
                ..finish_params(&job, t1, JobState::Retrying, at(2))
            },
        )
        .await
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Retrying);
    assert_eq!(got.run_at, at(60), "run_at from the finish");
    assert_eq!(got.errors, vec![e1.clone()], "error appended");
    assert_eq!(got.attempt, 1);
    assert_eq!(got.finished_at, None, "retrying is not finished");

    assert!(
        claim(&driver, &job.queue, 1, token(), at(61))
            .await
            .is_empty(),
        "retrying is not claimable"
    );
    assert_eq!(promote(&driver, at(60)).await.get(&job.queue), Some(&1));
    let t2 = token();
    let again = claim(&driver, &job.queue, 1, t2, at(61)).await;
    assert_eq!(id_list(&again), vec![job.id]);
    assert_eq!(again[0].attempt, 2, "second attempt");
    let e2 = attempt_error(2, at(62), ErrorKind::Timeout, "timed out after 1s");
    assert!(
        finish(
            &driver,
            JobFinishParams {
                run_at: Some(at(200)),
                error: Some(e2.clone()),
                ..finish_params(&again[0], t2, JobState::Retrying, at(62))
            },
        )
        .await
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.errors, vec![e1, e2], "errors accumulate oldest first");
    assert_eq!(got.run_at, at(200));
}

/// Finish to `failed` stores finished_at and the error.
pub async fn finish_failed(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 1, t).await;
    let err = attempt_error(
        1,
        at(3),
        ErrorKind::Panic,
        "panicked at 'index out of bounds'",
    );
    assert!(
        finish(
            &driver,
            JobFinishParams {
                error: Some(err.clone()),
                exit_code: Some(101),
                ..finish_params(&job, t, JobState::Failed, at(3))
            },
        )
        .await
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Failed);
    assert_eq!(got.finished_at, Some(at(3)));
    assert_eq!(got.errors, vec![err]);
    assert_eq!(got.exit_code, Some(101));
    assert_eq!(got.attempt, 1);
}

/// A snooze (finish to `scheduled`) stores the attempt the engine gives back
/// and the new run_at; the job is claimed again after promotion.
pub async fn finish_snooze_back_to_scheduled(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    assert_eq!(job.attempt, 1);
    assert!(
        finish(
            &driver,
            JobFinishParams {
                attempt: 0,
                run_at: Some(at(300)),
                ..finish_params(&job, t, JobState::Scheduled, at(4))
            },
        )
        .await
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Scheduled);
    assert_eq!(got.attempt, 0, "attempt decremented as given");
    assert_eq!(got.run_at, at(300));
    assert_eq!(got.finished_at, None);
    assert!(got.errors.is_empty(), "a snooze records no error");
    assert!(promote(&driver, at(299)).await.is_empty(), "not due yet");
    assert_eq!(promote(&driver, at(300)).await.get(&job.queue), Some(&1));
    let again = claim(&driver, &job.queue, 1, token(), at(301)).await;
    assert_eq!(id_list(&again), vec![job.id]);
    assert_eq!(again[0].attempt, 1, "the snoozed attempt was not consumed");
}

/// After a cancel request, the run's finish to `canceled` ends it with
/// finished_at; the cancel request time is kept.
pub async fn finish_canceled_after_cancel_request(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let requested = driver
        .job_cancel(&JobCancelParams {
            id: job.id,
            now: at(2),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    assert_eq!(requested.state, JobState::Running);
    let err = attempt_error(1, at(3), ErrorKind::Canceled, "canceled");
    assert!(
        finish(
            &driver,
            JobFinishParams {
                error: Some(err.clone()),
                ..finish_params(&job, t, JobState::Canceled, at(3))
            },
        )
        .await
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Canceled);
    assert_eq!(got.finished_at, Some(at(3)));
    assert_eq!(
        got.cancel_requested_at,
        Some(at(2)),
        "cancel_requested_at kept"
    );
    assert_eq!(got.errors, vec![err]);
}

/// A hand-back (finish to `available`, attempt kept) makes the job claimable
/// again at once, with the next attempt number.
pub async fn finish_hand_back_to_available(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    assert!(finish(&driver, finish_params(&job, t, JobState::Available, at(5))).await);
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Available);
    assert_eq!(got.attempt, 1, "attempt kept");
    assert_eq!(got.run_at, at(5));
    assert_eq!(got.finished_at, None);
    let again = claim(&driver, &job.queue, 1, token(), at(6)).await;
    assert_eq!(id_list(&again), vec![job.id]);
    assert_eq!(again[0].attempt, 2);
}

/// A finish with a token other than the current run's changes nothing; so
/// does a second finish of an already finished run with its own token; and
/// an old run's token is stale once the job was claimed again.
pub async fn finish_with_stale_token_changes_nothing(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let before = get(&driver, job.id).await;
    for state in [
        JobState::Succeeded,
        JobState::Failed,
        JobState::Retrying,
        JobState::Canceled,
    ] {
        let applied = finish(
            &driver,
            JobFinishParams {
                output: Some("stale".into()),
                ..finish_params(&job, t + 1_000_000, state, at(5))
            },
        )
        .await;
        assert!(!applied, "a wrong token must not apply (to {state})");
        assert_eq!(
            get(&driver, job.id).await,
            before,
            "a stale finish to {state} changed the job"
        );
    }

    // Rescue-like hand-back, then a new claim: the first run's token is stale.
    assert!(finish(&driver, finish_params(&job, t, JobState::Available, at(6))).await);
    let t2 = token();
    let again = claim(&driver, &job.queue, 1, t2, at(7)).await;
    assert_eq!(id_list(&again), vec![job.id]);
    let before = get(&driver, job.id).await;
    assert!(
        !finish(
            &driver,
            finish_params(&before, t, JobState::Succeeded, at(8))
        )
        .await,
        "the previous run's token is stale after a new claim"
    );
    assert_eq!(get(&driver, job.id).await, before);

    // Finishing twice with the same token: the second finds no running job.
    assert!(
        finish(
            &driver,
            finish_params(&before, t2, JobState::Succeeded, at(9))
        )
        .await
    );
    let done = get(&driver, job.id).await;
    for state in [
        JobState::Failed,
        JobState::Retrying,
        JobState::Available,
        JobState::Scheduled,
    ] {
        assert!(
            !finish(&driver, finish_params(&before, t2, state, at(10))).await,
            "a finished job is not running: a repeated finish to {state} must not apply"
        );
        assert_eq!(get(&driver, job.id).await, done);
    }

    // A missing job never applies.
    let mut ghost = finish_params(&before, t2, JobState::Succeeded, at(11));
    ghost.id = job.id + 1_000_000;
    assert!(!finish(&driver, ghost).await, "finish of a missing job");
}

/// `job_finish_many` answers per input, in input order, applying the valid
/// ones and not the stale ones.
pub async fn finish_many_reports_per_input(driver: Arc<dyn Driver>) {
    let q = queue("many");
    let t = token();
    crate::fixtures::insert_all(&driver, (0..4).map(|_| job_in("m", &q)).collect()).await;
    let mut jobs = claim(&driver, &q, 4, t, t0()).await;
    jobs.sort_by_key(|j| j.id);
    assert_eq!(jobs.len(), 4);
    let params = vec![
        finish_params(&jobs[2], t, JobState::Succeeded, at(1)),
        finish_params(&jobs[0], t + 77_777, JobState::Succeeded, at(1)),
        finish_params(&jobs[3], t, JobState::Retrying, at(1)),
        finish_params(&jobs[1], t, JobState::Failed, at(1)),
    ];
    let out = driver
        .job_finish_many(params)
        .await
        .unwrap_or_else(|e| panic!("job_finish_many failed: {e}"));
    let got: Vec<(i64, bool)> = out.iter().map(|r| (r.id, r.applied)).collect();
    assert_eq!(
        got,
        vec![
            (jobs[2].id, true),
            (jobs[0].id, false),
            (jobs[3].id, true),
            (jobs[1].id, true)
        ],
        "one result per input, in input order"
    );
    assert_eq!(get(&driver, jobs[0].id).await.state, JobState::Running);
    assert_eq!(get(&driver, jobs[1].id).await.state, JobState::Failed);
    assert_eq!(get(&driver, jobs[3].id).await.state, JobState::Retrying);
    // A plain success (no output, error or fence) stores what any finish does.
    let done = get(&driver, jobs[2].id).await;
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.finished_at, Some(at(1)));
    assert_eq!(done.attempt, jobs[2].attempt);
    assert_eq!(done.started_at, jobs[2].started_at);
    assert_eq!((done.lease_token, done.lease_expires_at), (None, None));
    assert!(
        done.revision > jobs[2].revision,
        "a finish bumps the revision"
    );
    let empty = driver
        .job_finish_many(Vec::new())
        .await
        .unwrap_or_else(|e| panic!("empty job_finish_many failed: {e}"));
    assert!(empty.is_empty());
}

/// `job_finish_many_then` writes what `job_finish_many` writes and runs
/// its callback exactly once, by the time it returns; an empty batch runs
/// it too (nothing left to commit).
pub async fn finish_many_then_runs_its_callback_once(driver: Arc<dyn Driver>) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let q = queue("then");
    let t = token();
    crate::fixtures::insert_all(&driver, (0..3).map(|_| job_in("t", &q)).collect()).await;
    let mut jobs = claim(&driver, &q, 3, t, t0()).await;
    jobs.sort_by_key(|j| j.id);
    let params = vec![
        finish_params(&jobs[0], t, JobState::Succeeded, at(1)),
        finish_params(&jobs[1], t + 1, JobState::Succeeded, at(1)),
        finish_params(&jobs[2], t, JobState::Failed, at(1)),
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = |calls: &Arc<AtomicUsize>| -> rota_driver::OnCommitted {
        let calls = calls.clone();
        Box::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
        })
    };
    let out = driver
        .job_finish_many_then(params, counted(&calls))
        .await
        .unwrap_or_else(|e| panic!("job_finish_many_then failed: {e}"));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the callback ran once");
    let got: Vec<(i64, bool)> = out.iter().map(|r| (r.id, r.applied)).collect();
    assert_eq!(
        got,
        vec![(jobs[0].id, true), (jobs[1].id, false), (jobs[2].id, true)]
    );
    assert_eq!(get(&driver, jobs[0].id).await.state, JobState::Succeeded);
    assert_eq!(get(&driver, jobs[1].id).await.state, JobState::Running);
    assert_eq!(get(&driver, jobs[2].id).await.state, JobState::Failed);
    let empty = driver
        .job_finish_many_then(Vec::new(), counted(&calls))
        .await
        .unwrap_or_else(|e| panic!("empty job_finish_many_then failed: {e}"));
    assert!(empty.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Two finishes of one run in one batch (a failure, then a plain success):
/// exactly one applies, the result says which, and the stored state is
/// that one's, whichever a store runs first.
pub async fn finish_many_repeated_id_applies_once(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let fail = finish_params(&job, t, JobState::Failed, at(1));
    let succeed = finish_params(&job, t, JobState::Succeeded, at(1));
    let out = driver
        .job_finish_many(vec![fail, succeed])
        .await
        .unwrap_or_else(|e| panic!("job_finish_many failed: {e}"));
    let applied: Vec<bool> = out.iter().map(|r| r.applied).collect();
    assert_eq!(
        applied.iter().filter(|a| **a).count(),
        1,
        "exactly one of two finishes of one run applies: {out:?}"
    );
    let stored = get(&driver, job.id).await.state;
    let expected = if applied[0] {
        JobState::Failed
    } else {
        JobState::Succeeded
    };
    assert_eq!(stored, expected, "the applied finish is the stored one");
}

/// Two finishes of one run in one batch, a stale one first, both of the
/// same shape: the second applies, and the answer says so.
pub async fn finish_many_repeated_id_credits_the_one_that_applied(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let stale = JobFinishParams {
        output: Some("stale".into()),
        ..finish_params(&job, t + 1, JobState::Retrying, at(1))
    };
    let valid = JobFinishParams {
        output: Some("valid".into()),
        ..finish_params(&job, t, JobState::Retrying, at(1))
    };
    let out = driver
        .job_finish_many(vec![stale, valid])
        .await
        .unwrap_or_else(|e| panic!("job_finish_many failed: {e}"));
    let applied: Vec<bool> = out.iter().map(|r| r.applied).collect();
    assert_eq!(applied, [false, true], "{out:?}");
    let stored = get(&driver, job.id).await;
    assert_eq!(stored.state, JobState::Retrying);
    assert_eq!(stored.output.as_deref(), Some("valid"));
}

/// With `lease_expired_before`, a finish (a rescue) applies only if the lease
/// expired strictly before that instant: a fresh heartbeat wins.
pub async fn finish_lease_expired_before_fence(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await; // lease until T0 + 30 s
    assert_eq!(job.lease_expires_at, Some(at(30)));
    let rescue = |before_secs: i64, now_secs: i64| JobFinishParams {
        lease_expired_before: Some(at(before_secs)),
        error: Some(attempt_error(
            1,
            at(now_secs),
            ErrorKind::Rescued,
            "lease expired",
        )),
        ..finish_params(&job, t, JobState::Retrying, at(now_secs))
    };
    let before = get(&driver, job.id).await;
    assert!(
        !finish(&driver, rescue(20, 20)).await,
        "lease (T0+30) has not expired before T0+20"
    );
    assert_eq!(get(&driver, job.id).await, before);
    assert!(
        !finish(&driver, rescue(30, 30)).await,
        "a lease expiring exactly at the fence instant has not expired *before* it"
    );
    assert_eq!(get(&driver, job.id).await, before);

    // The worker heartbeats just in time: the rescue computed from the old
    // expiry loses.
    let hb = driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(job.id, t)],
            lease_expires_at: at(90),
            now: at(29),
        })
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    assert!(hb.iter().any(|r| r.id == job.id && r.held));
    let before = get(&driver, job.id).await;
    assert!(
        !finish(&driver, rescue(60, 60)).await,
        "fresh heartbeat (lease T0+90) wins over a rescue at T0+60"
    );
    assert_eq!(get(&driver, job.id).await, before);

    assert!(
        finish(&driver, rescue(91, 91)).await,
        "expired lease is rescued"
    );
    let got = get(&driver, job.id).await;
    assert_eq!(got.state, JobState::Retrying);
    assert_eq!(got.errors.len(), 1);
    assert_eq!(got.errors[0].kind, ErrorKind::Rescued);
}

/// Heartbeats extend held leases, report `held = false` for stale tokens,
/// finished or missing jobs, and `cancel_requested` after a cancel.
pub async fn heartbeat_extends_lease_and_reports_state(driver: Arc<dyn Driver>) {
    let t = token();
    let a = run(&driver, 3, t).await;
    let b = run(&driver, 3, t).await;
    let done = run(&driver, 3, t).await;
    assert!(finish(&driver, finish_params(&done, t, JobState::Succeeded, at(1))).await);
    let missing = done.id + 1_000_000;

    let beat = |jobs: Vec<(i64, i64)>, until: i64, now: i64| {
        let d = Arc::clone(&driver);
        async move {
            d.job_heartbeat_many(&JobHeartbeatParams {
                jobs,
                lease_expires_at: at(until),
                now: at(now),
            })
            .await
            .unwrap_or_else(|e| panic!("heartbeat failed: {e}"))
        }
    };
    let find = |rows: &[rota_driver::HeartbeatResult], id: i64| {
        let hits: Vec<_> = rows.iter().filter(|r| r.id == id).copied().collect();
        assert_eq!(
            hits.len(),
            1,
            "exactly one heartbeat result for job {id}: {rows:?}"
        );
        hits[0]
    };

    let rows = beat(
        vec![(a.id, t), (b.id, t + 999_999), (done.id, t), (missing, t)],
        120,
        10,
    )
    .await;
    assert_eq!(rows.len(), 4, "one result per job: {rows:?}");
    let ra = find(&rows, a.id);
    assert!(ra.held && !ra.cancel_requested, "{ra:?}");
    let rb = find(&rows, b.id);
    assert!(!rb.held, "wrong token is not held: {rb:?}");
    assert!(!find(&rows, done.id).held, "a finished job's lease is gone");
    assert!(
        !find(&rows, missing).held,
        "a missing job's lease is not held"
    );
    assert_eq!(
        get(&driver, a.id).await.lease_expires_at,
        Some(at(120)),
        "lease extended"
    );
    assert_eq!(
        get(&driver, b.id).await.lease_expires_at,
        Some(at(30)),
        "stale heartbeat changes nothing"
    );
    assert_eq!(get(&driver, done.id).await.state, JobState::Succeeded);

    driver
        .job_cancel(&JobCancelParams {
            id: a.id,
            now: at(11),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    let rows = beat(vec![(a.id, t), (b.id, t)], 150, 12).await;
    let ra = find(&rows, a.id);
    assert!(
        ra.held && ra.cancel_requested,
        "cancel is reported to the holder: {ra:?}"
    );
    let rb = find(&rows, b.id);
    assert!(rb.held && !rb.cancel_requested, "{rb:?}");
    assert_eq!(get(&driver, a.id).await.lease_expires_at, Some(at(150)));
    assert_eq!(get(&driver, b.id).await.lease_expires_at, Some(at(150)));
}

/// A check-in stores progress and/or output while the token matches, leaves
/// the other field alone when it is `None`, and changes nothing for a stale
/// token.
pub async fn checkin_is_fenced_by_token(driver: Arc<dyn Driver>) {
    let t = token();
    let job = run(&driver, 3, t).await;
    let checkin = |lease_token: i64, progress: Option<serde_json::Value>, output: Option<&str>| {
        JobCheckinParams {
            id: job.id,
            lease_token,
            progress,
            output: output.map(str::to_owned),
        }
    };
    let held = driver
        .job_checkin(&checkin(t, Some(json!({"pct": 10})), Some("first line\n")))
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    assert!(held);
    let got = get(&driver, job.id).await;
    assert_eq!(got.progress, Some(json!({"pct": 10})));
    assert_eq!(got.output.as_deref(), Some("first line\n"));

    let held = driver
        .job_checkin(&checkin(t, Some(json!({"pct": 50})), None))
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    assert!(held);
    let got = get(&driver, job.id).await;
    assert_eq!(got.progress, Some(json!({"pct": 50})));
    assert_eq!(
        got.output.as_deref(),
        Some("first line\n"),
        "output kept when not given"
    );

    let held = driver
        .job_checkin(&checkin(t, None, Some("first line\nsecond line\n")))
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    assert!(held);
    let got = get(&driver, job.id).await;
    assert_eq!(
        got.progress,
        Some(json!({"pct": 50})),
        "progress kept when not given"
    );
    assert_eq!(
        got.output.as_deref(),
        Some("first line\nsecond line\n"),
        "output replaced"
    );

    let before = got;
    let held = driver
        .job_checkin(&checkin(
            t + 5_000_000,
            Some(json!({"pct": 99})),
            Some("stale"),
        ))
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    assert!(!held, "stale token is not held");
    assert_eq!(
        get(&driver, job.id).await,
        before,
        "stale check-in changed the job"
    );

    assert!(
        finish(
            &driver,
            finish_params(&before, t, JobState::Succeeded, at(5))
        )
        .await
    );
    let done = get(&driver, job.id).await;
    let held = driver
        .job_checkin(&checkin(t, Some(json!({"pct": 100})), Some("late")))
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    assert!(!held, "a finished job's lease is not held");
    assert_eq!(
        get(&driver, job.id).await,
        done,
        "late check-in changed a finished job"
    );
}
