//! Schedules: definitions, due lookup, fires recorded exactly once and
//! fenced by the expected `next_fire_at`, fire history with job outcomes,
//! and the database clock.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rota_core::{Job, JobState};
use rota_driver::{
    Driver, DriverError, ExecutionListParams, ExecutionStatus, FireListParams, FireOutcome,
    FireRecord, FireRow, FireStatus, JobCancelParams, JobInsertParams, JobListParams,
    ScheduleFireParams, ScheduleInsertParams, ScheduleRow, ScheduleUpdateParams, Trigger,
};
use serde_json::json;

use crate::fixtures::{
    assert_conflict, assert_not_found_entity, at, claim, counts, finish_all, get, get_execution,
    id_list, insert, job_in, list, nonzero, queue, scheduled, token,
};

/// Insert params with a small definition.
fn schedule(name: &str, next_fire_at: Option<Timestamp>, now: Timestamp) -> ScheduleInsertParams {
    ScheduleInsertParams {
        name: name.to_owned(),
        spec: json!({"rule": {"every": "60s"}, "template": {"kind": "tick"}}),
        next_fire_at,
        now,
    }
}

async fn insert_schedule(driver: &Arc<dyn Driver>, params: ScheduleInsertParams) -> ScheduleRow {
    driver
        .schedule_insert(&params)
        .await
        .unwrap_or_else(|e| panic!("schedule_insert({params:?}) failed: {e}"))
}

async fn get_schedule(driver: &Arc<dyn Driver>, id: i64) -> ScheduleRow {
    driver
        .schedule_get(id)
        .await
        .unwrap_or_else(|e| panic!("schedule_get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("schedule {id} should exist"))
}

async fn update(driver: &Arc<dyn Driver>, params: ScheduleUpdateParams) -> ScheduleRow {
    driver
        .schedule_update(&params)
        .await
        .unwrap_or_else(|e| panic!("schedule_update({params:?}) failed: {e}"))
}

/// An update changing nothing but `updated_at`.
fn touch(id: i64, now: Timestamp) -> ScheduleUpdateParams {
    ScheduleUpdateParams {
        id,
        spec: None,
        next_fire_at: None,
        paused_at: None,
        now,
    }
}

/// A fired record creating `jobs`.
fn fired(fire_at: Timestamp, jobs: Vec<JobInsertParams>) -> FireRecord {
    FireRecord {
        fire_at,
        status: FireStatus::Fired,
        reason: None,
        jobs,
        execution_owner: None,
    }
}

/// A fired record creating `jobs` inside a new execution of `owner`.
fn fired_in(fire_at: Timestamp, jobs: Vec<JobInsertParams>, owner: (&str, &str)) -> FireRecord {
    FireRecord {
        execution_owner: Some((owner.0.to_owned(), owner.1.to_owned())),
        ..fired(fire_at, jobs)
    }
}

/// A skipped record.
fn skipped(fire_at: Timestamp, reason: &str) -> FireRecord {
    FireRecord {
        fire_at,
        status: FireStatus::Skipped,
        reason: Some(reason.to_owned()),
        jobs: Vec::new(),
        execution_owner: None,
    }
}

fn fire_params(
    id: i64,
    expected: Option<Timestamp>,
    fires: Vec<FireRecord>,
    next: Option<Timestamp>,
    now: Timestamp,
) -> ScheduleFireParams {
    ScheduleFireParams {
        id,
        expected_next_fire_at: expected,
        fires,
        next_fire_at: next,
        state: json!({}),
        node_id: "node-a".into(),
        now,
    }
}

async fn fire(driver: &Arc<dyn Driver>, params: ScheduleFireParams) -> FireOutcome {
    driver
        .schedule_fire(params.clone())
        .await
        .unwrap_or_else(|e| panic!("schedule_fire({params:?}) failed: {e}"))
}

async fn fire_list(
    driver: &Arc<dyn Driver>,
    schedule_id: i64,
    before: Option<Timestamp>,
    limit: u32,
) -> Vec<FireRow> {
    let params = FireListParams {
        schedule_id,
        before,
        limit,
    };
    driver
        .schedule_fires(&params)
        .await
        .unwrap_or_else(|e| panic!("schedule_fires({params:?}) failed: {e}"))
}

async fn unfinished(driver: &Arc<dyn Driver>, id: i64) -> i64 {
    driver
        .schedule_unfinished(id)
        .await
        .unwrap_or_else(|e| panic!("schedule_unfinished({id}) failed: {e}"))
}

/// Jobs created by a schedule, newest first.
async fn schedule_jobs(driver: &Arc<dyn Driver>, id: i64) -> Vec<Job> {
    list(
        driver,
        &JobListParams {
            schedule_id: Some(id),
            limit: 1_000,
            ..Default::default()
        },
    )
    .await
}

async fn all_executions(driver: &Arc<dyn Driver>) -> Vec<rota_driver::ExecutionRow> {
    driver
        .execution_list(&ExecutionListParams::default())
        .await
        .unwrap_or_else(|e| panic!("execution_list failed: {e}"))
}

/// Jobs of one outcome, flattened, checking they were all inserted.
fn outcome_jobs(out: &FireOutcome) -> Vec<Job> {
    out.jobs
        .iter()
        .flatten()
        .map(|r| {
            assert!(r.inserted, "a fire's job is new: {r:?}");
            r.job.clone()
        })
        .collect()
}

/// Insert, get, list, update (definition, pause/resume, next fire) and
/// delete; a duplicate name is a `Conflict`; unknown ids are `NotFound`
/// (entity `schedule`).
pub async fn schedule_insert_get_list_update_delete(driver: Arc<dyn Driver>) {
    let spec = json!({
        "rule": {"cron": "*/5 * * * *", "tz": "Europe/Zürich"},
        "template": {"kind": "report", "args": {"q": "it's \"x\"", "n": [1, 2.5, null]}},
        "policy": {"overlap": "skip"}
    });
    let a = insert_schedule(
        &driver,
        ScheduleInsertParams {
            name: "nightly 'report'".into(),
            spec: spec.clone(),
            next_fire_at: Some(at(300)),
            now: at(1),
        },
    )
    .await;
    assert_eq!(a.name, "nightly 'report'");
    assert_eq!(a.spec, spec, "spec round-trips");
    assert_eq!(a.state, json!({}), "state starts as an empty object");
    assert_eq!(a.paused_at, None);
    assert_eq!(a.next_fire_at, Some(at(300)));
    assert_eq!(a.last_fire_at, None);
    assert_eq!(a.created_at, at(1));
    assert_eq!(a.updated_at, at(1));
    assert_eq!(get_schedule(&driver, a.id).await, a, "get = insert result");

    assert_conflict(
        driver
            .schedule_insert(&schedule("nightly 'report'", None, at(2)))
            .await,
        "insert of a duplicate schedule name",
    );
    assert_eq!(
        get_schedule(&driver, a.id).await,
        a,
        "the first is untouched"
    );

    let b = insert_schedule(&driver, schedule("hourly", None, at(2))).await;
    assert!(b.id > a.id);
    assert_eq!(b.next_fire_at, None);
    let listed = driver
        .schedule_list()
        .await
        .unwrap_or_else(|e| panic!("schedule_list failed: {e}"));
    assert_eq!(listed, vec![a.clone(), b.clone()], "every schedule, by id");

    let spec2 = json!({"rule": {"every": "10m"}});
    let u = update(
        &driver,
        ScheduleUpdateParams {
            spec: Some(spec2.clone()),
            ..touch(a.id, at(10))
        },
    )
    .await;
    assert_eq!(u.spec, spec2, "spec replaced");
    assert_eq!(u.next_fire_at, Some(at(300)), "next_fire_at kept");
    assert_eq!(
        (u.created_at, u.updated_at),
        (at(1), at(10)),
        "updated_at = now"
    );
    assert_eq!(u.paused_at, None);

    let u = update(
        &driver,
        ScheduleUpdateParams {
            paused_at: Some(Some(at(11))),
            ..touch(a.id, at(11))
        },
    )
    .await;
    assert_eq!(u.paused_at, Some(at(11)), "paused");
    assert_eq!(u.spec, spec2, "spec kept");
    assert_eq!(u.next_fire_at, Some(at(300)));

    let u = update(
        &driver,
        ScheduleUpdateParams {
            next_fire_at: Some(Some(at(900))),
            ..touch(a.id, at(12))
        },
    )
    .await;
    assert_eq!(u.next_fire_at, Some(at(900)));
    assert_eq!(u.paused_at, Some(at(11)), "still paused");

    let u = update(
        &driver,
        ScheduleUpdateParams {
            paused_at: Some(None),
            next_fire_at: Some(None),
            ..touch(a.id, at(13))
        },
    )
    .await;
    assert_eq!(u.paused_at, None, "resumed");
    assert_eq!(u.next_fire_at, None, "never fires again");
    assert_eq!(u.updated_at, at(13));
    assert_eq!(u.last_fire_at, None);
    assert_eq!(u.state, json!({}));
    assert_eq!(
        get_schedule(&driver, a.id).await,
        u,
        "update returns the stored row"
    );

    let missing = b.id + 1_000_000;
    assert_not_found_entity(
        driver.schedule_update(&touch(missing, at(14))).await,
        "schedule",
        &missing.to_string(),
        "update",
    );

    let deleted = driver
        .schedule_delete(b.id)
        .await
        .unwrap_or_else(|e| panic!("schedule_delete failed: {e}"));
    assert_eq!(deleted, b, "delete returns the row");
    assert!(
        driver
            .schedule_get(b.id)
            .await
            .unwrap_or_else(|e| panic!("schedule_get failed: {e}"))
            .is_none(),
        "deleted"
    );
    let listed = driver
        .schedule_list()
        .await
        .unwrap_or_else(|e| panic!("schedule_list failed: {e}"));
    assert_eq!(listed, vec![u], "the other schedule stays");
    assert_not_found_entity(
        driver.schedule_delete(b.id).await,
        "schedule",
        &b.id.to_string(),
        "second delete",
    );
    // The name is free again.
    insert_schedule(&driver, schedule("hourly", None, at(20))).await;
}

/// `schedule_due` returns active schedules with `next_fire_at <= now`,
/// earliest first, at most `limit`; paused and never-firing ones are left
/// out.
pub async fn schedule_due_orders_and_skips_paused(driver: Arc<dyn Driver>) {
    let s1 = insert_schedule(&driver, schedule("s1", Some(at(30)), at(0))).await;
    let s2 = insert_schedule(&driver, schedule("s2", Some(at(10)), at(0))).await;
    let s3 = insert_schedule(&driver, schedule("s3", Some(at(25)), at(0))).await;
    let _s4 = insert_schedule(&driver, schedule("s4", None, at(0))).await;
    let s5 = insert_schedule(&driver, schedule("s5", Some(at(100)), at(0))).await;
    let s6 = insert_schedule(&driver, schedule("s6", Some(at(20)), at(0))).await;
    update(
        &driver,
        ScheduleUpdateParams {
            paused_at: Some(Some(at(1))),
            ..touch(s3.id, at(1))
        },
    )
    .await;
    let due = |now: i64, limit: u32| {
        let d = Arc::clone(&driver);
        async move {
            d.schedule_due(at(now), limit)
                .await
                .unwrap_or_else(|e| panic!("schedule_due failed: {e}"))
        }
    };
    let ids = |rows: Vec<ScheduleRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(due(5, 100).await.is_empty(), "nothing due at T0+5");
    assert_eq!(
        ids(due(20, 100).await),
        vec![s2.id, s6.id],
        "next_fire_at == now is due; paused s3 is not"
    );
    let rows = due(1_000, 100).await;
    assert_eq!(
        ids(rows.clone()),
        vec![s2.id, s6.id, s1.id, s5.id],
        "earliest due first; paused and never-firing left out"
    );
    for r in &rows {
        assert_eq!(&get_schedule(&driver, r.id).await, r, "full rows");
    }
    assert_eq!(ids(due(1_000, 2).await), vec![s2.id, s6.id], "limit");

    update(
        &driver,
        ScheduleUpdateParams {
            paused_at: Some(None),
            ..touch(s3.id, at(2))
        },
    )
    .await;
    update(
        &driver,
        ScheduleUpdateParams {
            paused_at: Some(Some(at(2))),
            ..touch(s2.id, at(2))
        },
    )
    .await;
    assert_eq!(
        ids(due(1_000, 100).await),
        vec![s6.id, s3.id, s1.id, s5.id],
        "resumed s3 is due again, paused s2 is not"
    );
}

/// A fire records each fire and creates its jobs (carrying `schedule_id`),
/// or an execution with trigger `schedule` holding them; skipped fires
/// create nothing; the schedule advances (`next_fire_at`, `last_fire_at` =
/// latest recorded fire, kept when none, `state`, `updated_at`). An expected
/// `None` matches a schedule that has no next fire.
pub async fn schedule_fire_records_fires_and_creates_jobs(driver: Arc<dyn Driver>) {
    let (q, q2) = (queue("sf"), queue("sf"));
    let s = insert_schedule(&driver, schedule("every-minute", Some(at(60)), at(0))).await;
    let solo = insert(&driver, job_in("solo", &q)).await;
    assert_eq!(unfinished(&driver, s.id).await, 0);

    let out = fire(
        &driver,
        ScheduleFireParams {
            state: json!({"failures": 0, "note": "it's ok"}),
            ..fire_params(
                s.id,
                Some(at(60)),
                vec![fired(at(60), vec![job_in("tick", &q), job_in("tock", &q)])],
                Some(at(120)),
                at(61),
            )
        },
    )
    .await;
    assert!(out.applied, "the expected next fire matched");
    assert_eq!(out.jobs.len(), 1, "one recorded fire: {out:?}");
    assert_eq!(out.executions, vec![None], "no execution without an owner");
    let jobs = outcome_jobs(&out);
    assert_eq!(
        jobs.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        vec!["tick", "tock"],
        "jobs in record order"
    );
    for j in &jobs {
        assert_eq!(j.schedule_id, Some(s.id), "job carries schedule_id");
        assert_eq!(j.execution_id, None);
        assert_eq!(j.state, JobState::Available);
        assert_eq!(j.revision, 1);
        assert_eq!(&get(&driver, j.id).await, j, "returned job = stored job");
    }
    let row = get_schedule(&driver, s.id).await;
    assert_eq!(row.next_fire_at, Some(at(120)), "advanced");
    assert_eq!(row.last_fire_at, Some(at(60)));
    assert_eq!(
        row.state,
        json!({"failures": 0, "note": "it's ok"}),
        "state stored"
    );
    assert_eq!(row.updated_at, at(61));
    assert_eq!(
        (row.created_at, &row.spec),
        (s.created_at, &s.spec),
        "definition kept"
    );
    let mut want = id_list(&jobs);
    want.reverse();
    assert_eq!(
        id_list(&schedule_jobs(&driver, s.id).await),
        want,
        "JobListParams.schedule_id lists the schedule's jobs only"
    );
    assert_eq!(get(&driver, solo.id).await.schedule_id, None);
    let history = fire_list(&driver, s.id, None, 0).await;
    assert_eq!(history.len(), 1);
    let f = &history[0];
    assert_eq!(
        (f.schedule_id, f.fire_at, f.status, f.reason.as_deref()),
        (s.id, at(60), FireStatus::Fired, None)
    );
    assert_eq!((f.node_id.as_str(), f.recorded_at), ("node-a", at(61)));
    assert_eq!(f.execution_id, None);
    assert_eq!(f.job_ids, id_list(&jobs), "fire row lists its jobs");
    assert_eq!(unfinished(&driver, s.id).await, 2);

    // A catch-up: one fire skipped, one fired into an execution.
    let out = fire(
        &driver,
        fire_params(
            s.id,
            Some(at(120)),
            vec![
                skipped(at(120), "overlap: 2 unfinished"),
                fired_in(at(180), vec![job_in("tick", &q2)], ("report", "7")),
            ],
            Some(at(240)),
            at(181),
        ),
    )
    .await;
    assert!(out.applied);
    assert_eq!(out.jobs.len(), 2, "one entry per recorded fire: {out:?}");
    assert!(out.jobs[0].is_empty(), "a skipped fire creates no job");
    let exec_id = match out.executions.as_slice() {
        [None, Some(id)] => *id,
        other => panic!("expected [None, Some(execution)], got {other:?}"),
    };
    let ejobs = outcome_jobs(&out);
    assert_eq!(ejobs.len(), 1);
    assert_eq!(ejobs[0].execution_id, Some(exec_id), "job in the execution");
    assert_eq!(ejobs[0].schedule_id, Some(s.id), "and from the schedule");
    let exec = get_execution(&driver, exec_id).await;
    assert_eq!(
        (
            exec.owner_kind.as_str(),
            exec.owner_id.as_str(),
            exec.trigger
        ),
        ("report", "7", Trigger::Schedule)
    );
    assert_eq!(exec.status, ExecutionStatus::Running);
    assert_eq!(nonzero(&exec.counts), counts(&[(JobState::Available, 1)]));
    let row = get_schedule(&driver, s.id).await;
    assert_eq!(row.next_fire_at, Some(at(240)));
    assert_eq!(row.last_fire_at, Some(at(180)), "the latest recorded fire");
    let history = fire_list(&driver, s.id, None, 0).await;
    assert_eq!(
        history
            .iter()
            .map(|f| (f.fire_at, f.status))
            .collect::<Vec<_>>(),
        vec![
            (at(180), FireStatus::Fired),
            (at(120), FireStatus::Skipped),
            (at(60), FireStatus::Fired)
        ],
        "newest first"
    );
    assert_eq!(history[0].execution_id, Some(exec_id));
    assert_eq!(history[0].job_ids, id_list(&ejobs));
    assert_eq!(history[1].reason.as_deref(), Some("overlap: 2 unfinished"));
    assert!(history[1].job_ids.is_empty() && history[1].execution_id.is_none());
    assert_eq!(history[1].recorded_at, at(181));

    // No record at all: the schedule advances, last_fire_at stays.
    let out = fire(
        &driver,
        fire_params(s.id, Some(at(240)), Vec::new(), Some(at(300)), at(241)),
    )
    .await;
    assert!(
        out.applied && out.jobs.is_empty() && out.executions.is_empty(),
        "{out:?}"
    );
    let row = get_schedule(&driver, s.id).await;
    assert_eq!(
        (row.next_fire_at, row.last_fire_at),
        (Some(at(300)), Some(at(180)))
    );

    // The last fire: no next one.
    let out = fire(
        &driver,
        fire_params(
            s.id,
            Some(at(300)),
            vec![skipped(at(300), "ended")],
            None,
            at(301),
        ),
    )
    .await;
    assert!(out.applied);
    let row = get_schedule(&driver, s.id).await;
    assert_eq!((row.next_fire_at, row.last_fire_at), (None, Some(at(300))));
    assert!(
        driver
            .schedule_due(at(100_000), 100)
            .await
            .unwrap_or_else(|e| panic!("schedule_due failed: {e}"))
            .is_empty(),
        "a schedule without next fire is never due"
    );

    // Expected `None` matches a schedule without next fire.
    let out = fire(
        &driver,
        fire_params(s.id, None, Vec::new(), Some(at(600)), at(302)),
    )
    .await;
    assert!(out.applied, "expected None matches next_fire_at NULL");
    assert_eq!(
        get_schedule(&driver, s.id).await.next_fire_at,
        Some(at(600))
    );
    assert_eq!(fire_list(&driver, s.id, None, 0).await.len(), 4);
}

/// A fire whose expected `next_fire_at` is stale (another scheduler moved
/// the schedule on) is not applied and writes nothing: no fire, no job, no
/// execution, the schedule unchanged.
pub async fn schedule_fire_with_stale_expected_writes_nothing(driver: Arc<dyn Driver>) {
    let q = queue("stale");
    let s = insert_schedule(&driver, schedule("stale", Some(at(60)), at(0))).await;
    let before = get_schedule(&driver, s.id).await;
    for expected in [Some(at(30)), Some(at(61)), None] {
        let out = fire(
            &driver,
            ScheduleFireParams {
                state: json!({"changed": true}),
                ..fire_params(
                    s.id,
                    expected,
                    vec![
                        fired(at(30), vec![job_in("t", &q)]),
                        fired_in(at(60), vec![job_in("t", &q)], ("o", "1")),
                    ],
                    Some(at(120)),
                    at(61),
                )
            },
        )
        .await;
        assert!(!out.applied, "expected {expected:?} vs stored Some(T0+60)");
        assert!(
            out.jobs.iter().all(Vec::is_empty) && out.executions.iter().all(Option::is_none),
            "nothing created: {out:?}"
        );
        assert_eq!(
            get_schedule(&driver, s.id).await,
            before,
            "schedule unchanged"
        );
    }
    assert!(
        fire_list(&driver, s.id, None, 0).await.is_empty(),
        "no fire recorded"
    );
    assert!(
        schedule_jobs(&driver, s.id).await.is_empty(),
        "no job created"
    );
    assert!(
        list(
            &driver,
            &JobListParams {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .is_empty(),
        "no job at all"
    );
    assert!(
        all_executions(&driver).await.is_empty(),
        "no execution created"
    );

    // An unknown schedule: not applied (or NotFound), nothing written.
    let missing = s.id + 1_000_000;
    match driver
        .schedule_fire(fire_params(
            missing,
            Some(at(60)),
            vec![fired(at(60), vec![job_in("t", &q)])],
            Some(at(120)),
            at(61),
        ))
        .await
    {
        Ok(out) => assert!(!out.applied, "fire of an unknown schedule applied: {out:?}"),
        Err(DriverError::NotFound { .. }) => {}
        Err(e) => panic!("fire of an unknown schedule: expected applied = false, got {e}"),
    }
    assert!(
        list(
            &driver,
            &JobListParams {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .is_empty(),
        "no job at all"
    );
}

/// The same `(schedule, fire_at)` offered twice (a second call, with the
/// then-current expected value after an operator update) is recorded once:
/// its jobs and execution are created once; the second call still advances
/// the schedule.
pub async fn schedule_fire_same_fire_at_recorded_once(driver: Arc<dyn Driver>) {
    let q = queue("once");
    let s = insert_schedule(&driver, schedule("once", Some(at(60)), at(0))).await;
    let first = fire(
        &driver,
        fire_params(
            s.id,
            Some(at(60)),
            vec![fired_in(at(60), vec![job_in("t", &q)], ("o", "1"))],
            Some(at(120)),
            at(61),
        ),
    )
    .await;
    assert!(first.applied);
    let first_jobs = outcome_jobs(&first);
    assert_eq!(first_jobs.len(), 1);
    update(
        &driver,
        ScheduleUpdateParams {
            next_fire_at: Some(Some(at(90))),
            ..touch(s.id, at(70))
        },
    )
    .await;
    let second = fire(
        &driver,
        ScheduleFireParams {
            node_id: "node-b".into(),
            ..fire_params(
                s.id,
                Some(at(90)),
                vec![fired_in(
                    at(60),
                    vec![job_in("t", &q), job_in("t", &q)],
                    ("o", "1"),
                )],
                Some(at(150)),
                at(91),
            )
        },
    )
    .await;
    assert!(second.applied, "the schedule itself matched and advances");
    assert!(
        outcome_jobs(&second).is_empty() && second.executions.iter().all(Option::is_none),
        "an already recorded fire creates nothing: {second:?}"
    );
    assert_eq!(
        get_schedule(&driver, s.id).await.next_fire_at,
        Some(at(150))
    );
    let history = fire_list(&driver, s.id, None, 0).await;
    assert_eq!(history.len(), 1, "recorded once: {history:?}");
    assert_eq!(history[0].node_id, "node-a", "the first record stays");
    assert_eq!(history[0].recorded_at, at(61));
    assert_eq!(history[0].job_ids, id_list(&first_jobs));
    assert_eq!(history[0].execution_id, first.executions[0]);
    assert_eq!(
        id_list(&schedule_jobs(&driver, s.id).await),
        id_list(&first_jobs),
        "jobs created once"
    );
    assert_eq!(all_executions(&driver).await.len(), 1, "one execution");
}

/// Several schedulers firing the same schedule with the same expected
/// value, concurrently, through the given drivers: exactly one applies; one
/// fire, one execution and its jobs exist. Shared with the `peers` cases.
pub async fn race_schedule_fire(drivers: Vec<Arc<dyn Driver>>) {
    let driver = Arc::clone(&drivers[0]);
    let q = queue("race");
    let s = insert_schedule(&driver, schedule("race", Some(at(60)), at(0))).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let d = Arc::clone(&drivers[i % drivers.len()]);
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let params = ScheduleFireParams {
                node_id: format!("node-{i}"),
                state: json!({ "by": i }),
                ..fire_params(
                    s.id,
                    Some(at(60)),
                    vec![fired_in(
                        at(60),
                        vec![job_in("t", &q), job_in("t", &q)],
                        ("o", "1"),
                    )],
                    Some(at(120)),
                    at(61),
                )
            };
            let out = d
                .schedule_fire(params)
                .await
                .unwrap_or_else(|e| panic!("concurrent schedule_fire failed: {e}"));
            (i, out)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, out) = t
            .await
            .unwrap_or_else(|e| panic!("fire task panicked: {e}"));
        if out.applied {
            winners.push((i, out));
        } else {
            assert!(
                outcome_jobs(&out).is_empty() && out.executions.iter().all(Option::is_none),
                "a loser created something: {out:?}"
            );
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one scheduler applies: {winners:?}"
    );
    let (i, out) = &winners[0];
    let jobs = outcome_jobs(out);
    assert_eq!(jobs.len(), 2);
    let history = fire_list(&driver, s.id, None, 0).await;
    assert_eq!(history.len(), 1, "one fire recorded: {history:?}");
    assert_eq!(history[0].node_id, format!("node-{i}"), "by the winner");
    assert_eq!(history[0].job_ids, id_list(&jobs));
    let row = get_schedule(&driver, s.id).await;
    assert_eq!(row.next_fire_at, Some(at(120)));
    assert_eq!(row.state, json!({ "by": i }), "the winner's state");
    let mut want = id_list(&jobs);
    want.reverse();
    assert_eq!(
        id_list(&schedule_jobs(&driver, s.id).await),
        want,
        "two jobs"
    );
    assert_eq!(all_executions(&driver).await.len(), 1, "one execution");
}

/// Concurrent fires of one schedule from several tasks on one driver: one
/// winner.
pub async fn concurrent_schedule_fire_has_one_winner(driver: Arc<dyn Driver>) {
    race_schedule_fire(vec![driver]).await;
}

/// Fire history: newest first, `before` keyset and limit, with each fire's
/// jobs summarized: unfinished, unsuccessful (failed + canceled), earliest
/// start, and latest finish once none is unfinished.
pub async fn schedule_fires_history_with_job_outcomes(driver: Arc<dyn Driver>) {
    let (q1, q2, q3) = (queue("h"), queue("h"), queue("h"));
    let s = insert_schedule(&driver, schedule("history", Some(at(60)), at(0))).await;
    let other = insert_schedule(&driver, schedule("other", Some(at(60)), at(0))).await;
    let steps = [
        (
            60,
            vec![fired(at(60), vec![job_in("a", &q1), job_in("a", &q1)])],
        ),
        (
            120,
            vec![fired(at(120), vec![job_in("b", &q2), job_in("b", &q2)])],
        ),
        (180, vec![skipped(at(180), "overlap")]),
        (
            240,
            vec![fired(at(240), vec![scheduled("c", &q3, at(10_000))])],
        ),
    ];
    for (secs, records) in steps {
        let out = fire(
            &driver,
            fire_params(s.id, Some(at(secs)), records, Some(at(secs + 60)), at(secs)),
        )
        .await;
        assert!(out.applied);
    }
    let o = fire(
        &driver,
        fire_params(
            other.id,
            Some(at(60)),
            vec![fired(at(60), vec![job_in("x", &queue("h"))])],
            Some(at(120)),
            at(60),
        ),
    )
    .await;
    assert!(o.applied);

    // Fire 60: started T0+61 and T0+62, one succeeded at T0+70, one failed at T0+75.
    let t = token();
    let a1 = claim(&driver, &q1, 1, t, at(61)).await;
    let a2 = claim(&driver, &q1, 1, t, at(62)).await;
    finish_all(&driver, &a1, t, JobState::Succeeded, at(70)).await;
    finish_all(&driver, &a2, t, JobState::Failed, at(75)).await;
    // Fire 120: one running since T0+121, one still available.
    claim(&driver, &q2, 1, t, at(121)).await;
    // Fire 240: its scheduled job canceled at T0+250.
    let c = schedule_jobs(&driver, s.id).await;
    let c = c
        .iter()
        .find(|j| j.kind == "c")
        .unwrap_or_else(|| panic!("job c missing"));
    driver
        .job_cancel(&JobCancelParams {
            id: c.id,
            now: at(250),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));

    let all = fire_list(&driver, s.id, None, 0).await;
    let summary: Vec<_> = all
        .iter()
        .map(|f| {
            (
                f.fire_at,
                f.status,
                f.job_ids.len(),
                f.unfinished,
                f.unsuccessful,
                f.started_at,
                f.finished_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (at(240), FireStatus::Fired, 1, 0, 1, None, Some(at(250))),
            (at(180), FireStatus::Skipped, 0, 0, 0, None, None),
            (at(120), FireStatus::Fired, 2, 2, 0, Some(at(121)), None),
            (
                at(60),
                FireStatus::Fired,
                2,
                0,
                1,
                Some(at(61)),
                Some(at(75))
            ),
        ],
        "(fire_at, status, jobs, unfinished, unsuccessful, started_at, finished_at), newest first"
    );
    let at_of = |rows: Vec<FireRow>| rows.iter().map(|f| f.fire_at).collect::<Vec<_>>();
    assert_eq!(
        at_of(fire_list(&driver, s.id, None, 2).await),
        vec![at(240), at(180)],
        "limit"
    );
    assert_eq!(
        at_of(fire_list(&driver, s.id, Some(at(180)), 0).await),
        vec![at(120), at(60)],
        "before is exclusive"
    );
    assert_eq!(
        at_of(fire_list(&driver, s.id, Some(at(180)), 1).await),
        vec![at(120)]
    );
    assert!(fire_list(&driver, s.id, Some(at(60)), 0).await.is_empty());
    let theirs = fire_list(&driver, other.id, None, 0).await;
    assert_eq!(theirs.len(), 1, "fires of another schedule stay apart");
    assert_eq!((theirs[0].unfinished, theirs[0].unsuccessful), (1, 0));

    // Deleting the schedule deletes its history, not its jobs.
    let jobs_before = schedule_jobs(&driver, s.id).await;
    driver
        .schedule_delete(s.id)
        .await
        .unwrap_or_else(|e| panic!("schedule_delete failed: {e}"));
    assert!(
        fire_list(&driver, s.id, None, 0).await.is_empty(),
        "history deleted"
    );
    assert_eq!(
        id_list(&schedule_jobs(&driver, s.id).await),
        id_list(&jobs_before),
        "its jobs stay"
    );
    assert_eq!(fire_list(&driver, other.id, None, 0).await.len(), 1);
}

/// `schedule_unfinished` counts the schedule's jobs that are scheduled,
/// available, running or retrying.
pub async fn schedule_unfinished_counts_open_jobs(driver: Arc<dyn Driver>) {
    let q = queue("unf");
    let s = insert_schedule(&driver, schedule("unf", Some(at(60)), at(0))).await;
    let other = insert_schedule(&driver, schedule("unf-other", Some(at(60)), at(0))).await;
    assert_eq!(unfinished(&driver, s.id).await, 0);
    let out = fire(
        &driver,
        fire_params(
            s.id,
            Some(at(60)),
            vec![fired(
                at(60),
                vec![
                    job_in("u", &q),
                    job_in("u", &q),
                    job_in("u", &q),
                    scheduled("u", &q, at(10_000)),
                ],
            )],
            Some(at(120)),
            at(60),
        ),
    )
    .await;
    let jobs = outcome_jobs(&out);
    fire(
        &driver,
        fire_params(
            other.id,
            Some(at(60)),
            vec![fired(at(60), vec![job_in("x", &queue("unf"))])],
            Some(at(120)),
            at(60),
        ),
    )
    .await;
    insert(&driver, job_in("plain", &queue("unf"))).await;
    assert_eq!(
        unfinished(&driver, s.id).await,
        4,
        "3 available + 1 scheduled"
    );
    let t = token();
    let mut run = claim(&driver, &q, 2, t, at(61)).await;
    run.sort_by_key(|j| j.id);
    assert_eq!(unfinished(&driver, s.id).await, 4, "running is unfinished");
    finish_all(&driver, &run[..1], t, JobState::Succeeded, at(62)).await;
    finish_all(&driver, &run[1..], t, JobState::Retrying, at(62)).await;
    assert_eq!(unfinished(&driver, s.id).await, 3, "retrying is unfinished");
    driver
        .job_cancel(&JobCancelParams {
            id: jobs[3].id,
            now: at(63),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    assert_eq!(unfinished(&driver, s.id).await, 2);
    assert_eq!(unfinished(&driver, other.id).await, 1);
    assert_eq!(
        unfinished(&driver, s.id + 1_000_000).await,
        0,
        "unknown schedule"
    );
}

/// `db_now` is the database's clock: within a few seconds of this process's.
pub async fn db_now_is_close_to_system_time(driver: Arc<dyn Driver>) {
    let before = Timestamp::now();
    let db = driver
        .db_now()
        .await
        .unwrap_or_else(|e| panic!("db_now failed: {e}"));
    let after = Timestamp::now();
    let slack = SignedDuration::from_secs(5);
    assert!(
        db >= before - slack && db <= after + slack,
        "db_now {db} is not within 5 s of the system clock ({before} .. {after})"
    );
}
