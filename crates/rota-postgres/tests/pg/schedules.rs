//! Schedule fires: exactly one of two concurrent schedulers applies; each
//! fire is recorded once; fired jobs wake their queue.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::{
    Driver, ExecutionStatus, FireListParams, FireRecord, FireStatus, JobListParams,
    ScheduleFireParams, ScheduleInsertParams, Trigger,
};
use rota_postgres::PgDriver;
use tokio::sync::Barrier;

use crate::common::{claim_params, job, now, subscribe_ready, wait_for_queue, with_default_driver};
use crate::executions::finish;

fn minute(t: Timestamp, n: i64) -> Timestamp {
    t + Duration::from_secs(60 * u64::try_from(n).unwrap())
}

fn fired(at: Timestamp, queue: &str) -> FireRecord {
    FireRecord {
        fire_at: at,
        status: FireStatus::Fired,
        reason: None,
        jobs: vec![job(queue)],
        execution_owner: None,
    }
}

fn fire_params(
    id: i64,
    expected: Option<Timestamp>,
    fires: Vec<FireRecord>,
    next: Option<Timestamp>,
    node: &str,
) -> ScheduleFireParams {
    ScheduleFireParams {
        id,
        expected_next_fire_at: expected,
        fires,
        next_fire_at: next,
        state: serde_json::json!({"node": node}),
        node_id: node.to_owned(),
        now: now(),
    }
}

async fn schedule(driver: &PgDriver, name: &str, first: Timestamp) -> i64 {
    driver
        .schedule_insert(&ScheduleInsertParams {
            name: name.into(),
            spec: serde_json::json!({"every": "1m"}),
            next_fire_at: Some(first),
            now: now(),
        })
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fires_apply_once() {
    with_default_driver(|driver, _| async move {
        let t0 = now();
        let id = schedule(&driver, "race", t0).await;

        // Deterministic overlap: both block on the row, then race.
        let mut holder = driver.pool().begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM \"{}\".rota_schedules WHERE id = $1 FOR UPDATE",
            driver.schema().unwrap()
        )))
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for node in ["node-a", "node-b"] {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                d.schedule_fire(fire_params(
                    id,
                    Some(t0),
                    vec![fired(t0, "sched")],
                    Some(minute(t0, 1)),
                    node,
                ))
                .await
                .unwrap()
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.commit().await.unwrap();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        assert_eq!(outcomes.iter().filter(|o| o.applied).count(), 1);
        let loser = outcomes.iter().find(|o| !o.applied).unwrap();
        assert!(loser.jobs.is_empty() && loser.executions.is_empty());

        // Free races, many rounds.
        let barrier = Arc::new(Barrier::new(2));
        for round in 1..=20 {
            let at = minute(t0, round);
            let mut tasks = Vec::new();
            for node in ["node-a", "node-b"] {
                let (d, b) = (driver.clone(), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    b.wait().await;
                    d.schedule_fire(fire_params(
                        id,
                        Some(at),
                        vec![fired(at, "sched")],
                        Some(minute(at, 1)),
                        node,
                    ))
                    .await
                    .unwrap()
                }));
            }
            let mut applied = 0;
            for t in tasks {
                applied += usize::from(t.await.unwrap().applied);
            }
            assert_eq!(applied, 1, "round {round}");
        }
        let fires = driver
            .schedule_fires(&FireListParams {
                schedule_id: id,
                before: None,
                limit: 0,
            })
            .await
            .unwrap();
        assert_eq!(fires.len(), 21, "one record per fire time");
        let jobs = driver
            .job_list(&JobListParams {
                schedule_id: Some(id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(jobs.len(), 21, "one job per fire");
        let s = driver.schedule_get(id).await.unwrap().unwrap();
        assert_eq!(s.next_fire_at, Some(minute(t0, 21)));
        assert_eq!(s.last_fire_at, Some(minute(t0, 20)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_records_jobs_executions_and_wakes() {
    with_default_driver(|driver, _| async move {
        let mut rx = subscribe_ready(&driver).await;
        let t0 = now();
        let id = schedule(&driver, "fires", t0).await;
        let mut with_exec = fired(t0, "fired-q");
        with_exec.execution_owner = Some(("report".into(), "7".into()));
        let skipped = FireRecord {
            fire_at: minute(t0, 1),
            status: FireStatus::Skipped,
            reason: Some("overlap".into()),
            jobs: vec![],
            execution_owner: None,
        };
        let out = driver
            .schedule_fire(fire_params(
                id,
                Some(t0),
                vec![with_exec, skipped],
                Some(minute(t0, 2)),
                "node-a",
            ))
            .await
            .unwrap();
        assert!(out.applied);
        assert!(wait_for_queue(&mut rx, "fired-q", Duration::from_secs(5)).await);
        assert_eq!(out.jobs.len(), 2);
        assert_eq!(out.jobs[0].len(), 1);
        assert!(out.jobs[1].is_empty());
        let exec_id = out.executions[0].unwrap();
        assert_eq!(out.executions[1], None);
        let j = &out.jobs[0][0].job;
        assert_eq!((j.schedule_id, j.execution_id), (Some(id), Some(exec_id)));
        let e = driver.execution_get(exec_id).await.unwrap().unwrap();
        assert_eq!(e.trigger, Trigger::Schedule);
        assert_eq!(
            (e.owner_kind.as_str(), e.owner_id.as_str()),
            ("report", "7")
        );
        assert_eq!(driver.schedule_unfinished(id).await.unwrap(), 1);

        // A fire recorded before is never recorded (nor run) again, even
        // by a call with another expected next fire.
        let again = driver
            .schedule_fire(fire_params(
                id,
                Some(minute(t0, 2)),
                vec![fired(t0, "fired-q")],
                Some(minute(t0, 3)),
                "node-b",
            ))
            .await
            .unwrap();
        assert!(again.applied);
        assert!(again.jobs.is_empty(), "nothing recorded");
        assert_eq!(driver.schedule_unfinished(id).await.unwrap(), 1);

        let history = driver
            .schedule_fires(&FireListParams {
                schedule_id: id,
                before: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].status, FireStatus::Skipped, "newest first");
        assert_eq!(history[0].reason.as_deref(), Some("overlap"));
        let f = &history[1];
        assert_eq!(
            (f.node_id.as_str(), f.execution_id),
            ("node-a", Some(exec_id))
        );
        assert_eq!(f.job_ids, vec![j.id]);
        assert_eq!((f.unfinished, f.unsuccessful), (1, 0));
        assert_eq!((f.started_at, f.finished_at), (None, None));

        // Outcome once the job ran and failed.
        let c = driver
            .job_claim(&claim_params("fired-q", 1, 3))
            .await
            .unwrap();
        driver
            .job_finish_many(vec![finish(c[0].id, 3, JobState::Failed, 1)])
            .await
            .unwrap();
        let done = driver.job_get(j.id).await.unwrap().unwrap();
        let f = driver
            .schedule_fires(&FireListParams {
                schedule_id: id,
                before: Some(minute(t0, 1)),
                limit: 10,
            })
            .await
            .unwrap()
            .remove(0);
        assert_eq!((f.unfinished, f.unsuccessful), (0, 1));
        assert_eq!(f.started_at, done.started_at);
        assert_eq!(f.finished_at, done.finished_at);
        assert_eq!(
            driver.execution_get(exec_id).await.unwrap().unwrap().status,
            ExecutionStatus::Failed
        );
        assert_eq!(driver.schedule_unfinished(id).await.unwrap(), 0);
    })
    .await;
}
