//! Webhooks: subscriptions, the status-change outbox (written only while a
//! subscription exists), deliveries and their attempts.
//!
//! Event times (`at`) come from the store's clock inside its triggers, so
//! they are not compared with the suite's fixed instants.

use std::sync::Arc;

use rota_core::{Job, JobState};
use rota_driver::{
    DeliveryAttemptParams, DeliveryCreateParams, DeliveryListParams, DeliveryRow, DeliveryStatus,
    Driver, EventRow, ExecutionMarkParams, ExecutionStatus, JobCancelParams, JobCheckinParams,
    JobHeartbeatParams, JobRetryParams, WebhookInsertParams, WebhookRow,
};
use serde_json::json;

use crate::fixtures::{
    assert_not_found_entity, at, claim, events, execution, finish_all, get, insert,
    insert_execution, insert_webhook, job_in, promote, queue, running, scheduled, t0, token,
};

/// `(revision, status)` of the events of one entity, in outbox order.
fn history(events: &[EventRow], entity: &str, id: i64) -> Vec<(i64, String)> {
    events
        .iter()
        .filter(|e| e.entity == entity && e.entity_id == id)
        .map(|e| (e.revision, e.status.clone()))
        .collect()
}

fn hist(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
    pairs.iter().map(|(r, s)| (*r, (*s).to_owned())).collect()
}

/// Statuses of the events of one entity, in outbox order.
fn statuses(events: &[EventRow], entity: &str, id: i64) -> Vec<String> {
    history(events, entity, id)
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

fn assert_increasing_ids(events: &[EventRow]) {
    assert!(
        events.windows(2).all(|w| w[0].id < w[1].id),
        "event_list is oldest first (increasing ids): {events:?}"
    );
}

async fn create_deliveries(driver: &Arc<dyn Driver>, params: DeliveryCreateParams) -> u64 {
    driver
        .delivery_create(&params)
        .await
        .unwrap_or_else(|e| panic!("delivery_create({params:?}) failed: {e}"))
}

async fn deliveries(driver: &Arc<dyn Driver>, webhook_id: i64) -> Vec<DeliveryRow> {
    let params = DeliveryListParams {
        webhook_id,
        before_id: None,
        limit: 0,
    };
    driver
        .delivery_list(&params)
        .await
        .unwrap_or_else(|e| panic!("delivery_list({params:?}) failed: {e}"))
}

async fn due(driver: &Arc<dyn Driver>, secs: i64, limit: u32) -> Vec<(DeliveryRow, WebhookRow)> {
    driver
        .delivery_due(at(secs), limit)
        .await
        .unwrap_or_else(|e| panic!("delivery_due failed: {e}"))
}

async fn record(driver: &Arc<dyn Driver>, params: DeliveryAttemptParams) -> DeliveryRow {
    driver
        .delivery_record(&params)
        .await
        .unwrap_or_else(|e| panic!("delivery_record({params:?}) failed: {e}"))
}

async fn webhooks(driver: &Arc<dyn Driver>) -> Vec<WebhookRow> {
    driver
        .webhook_list()
        .await
        .unwrap_or_else(|e| panic!("webhook_list failed: {e}"))
}

/// A job driven through insert, claim and success.
async fn lifecycle(driver: &Arc<dyn Driver>, kind: &str) -> Job {
    let q = queue("wh");
    let t = token();
    let job = running(driver, job_in(kind, &q), t, at(1)).await;
    finish_all(
        driver,
        std::slice::from_ref(&job),
        t,
        JobState::Succeeded,
        at(2),
    )
    .await;
    get(driver, job.id).await
}

/// While no webhook exists nothing reaches the outbox (job and execution
/// changes, progress check-ins); once one exists changes are recorded; once
/// the last is deleted, recording stops again.
pub async fn no_events_without_webhooks(driver: Arc<dyn Driver>) {
    let job = lifecycle(&driver, "quiet").await;
    let q = queue("wh");
    let (_, ejobs) =
        insert_execution(&driver, execution("o", "1", vec![job_in("e", &q)], at(0))).await;
    driver
        .job_cancel(&JobCancelParams {
            id: ejobs[0].id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e}"));
    driver
        .event_progress(job.id, at(4))
        .await
        .unwrap_or_else(|e| panic!("event_progress without webhooks must be a no-op: {e}"));
    assert!(events(&driver).await.is_empty(), "no webhook, no events");
    assert!(webhooks(&driver).await.is_empty());

    let wh = insert_webhook(&driver, "https://example.com/hook", at(5)).await;
    assert!(
        events(&driver).await.is_empty(),
        "earlier changes are not recorded after the fact"
    );
    let watched = insert(&driver, job_in("loud", &queue("wh"))).await;
    let seen = events(&driver).await;
    assert_eq!(
        history(&seen, "job", watched.id),
        hist(&[(1, "available")]),
        "an insert is recorded while a webhook exists: {seen:?}"
    );
    assert_eq!(seen.len(), 1, "{seen:?}");

    driver
        .webhook_delete(wh.id)
        .await
        .unwrap_or_else(|e| panic!("webhook_delete failed: {e}"));
    lifecycle(&driver, "quiet-again").await;
    let (e2, _) = insert_execution(&driver, execution("o", "2", Vec::new(), at(6))).await;
    driver
        .execution_mark(&ExecutionMarkParams {
            id: e2.id,
            status: ExecutionStatus::Succeeded,
            message: None,
            now: at(7),
        })
        .await
        .unwrap_or_else(|e| panic!("execution_mark failed: {e}"));
    driver
        .event_progress(watched.id, at(8))
        .await
        .unwrap_or_else(|e| panic!("event_progress failed: {e}"));
    assert_eq!(
        events(&driver).await,
        seen,
        "after the last webhook is gone, nothing more is recorded"
    );
}

/// With a webhook, every job state change — insert, claim, cancel request,
/// finish, promotion, operator retry — is recorded as a `job` event with the
/// job's new revision and state, kind and execution id, in order; heartbeats
/// and check-ins are not state changes.
pub async fn job_changes_produce_ordered_events(driver: Arc<dyn Driver>) {
    let wh = insert_webhook(&driver, "https://example.com/jobs", at(0)).await;
    assert_eq!(webhooks(&driver).await, vec![wh.clone()]);

    let a = lifecycle(&driver, "mail").await;

    let q2 = queue("wh");
    let t = token();
    let b = running(&driver, job_in("sms", &q2), t, at(1)).await;
    driver
        .job_heartbeat_many(&JobHeartbeatParams {
            jobs: vec![(b.id, t)],
            lease_expires_at: at(100),
            now: at(2),
        })
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    driver
        .job_checkin(&JobCheckinParams {
            id: b.id,
            lease_token: t,
            progress: Some(json!({"pct": 50})),
            output: Some("half".into()),
        })
        .await
        .unwrap_or_else(|e| panic!("checkin failed: {e}"));
    driver
        .job_cancel(&JobCancelParams {
            id: b.id,
            now: at(3),
        })
        .await
        .unwrap_or_else(|e| panic!("cancel request failed: {e}"));
    finish_all(
        &driver,
        std::slice::from_ref(&b),
        t,
        JobState::Canceled,
        at(4),
    )
    .await;

    let q3 = queue("wh");
    let c = insert(&driver, scheduled("report", &q3, at(600))).await;
    promote(&driver, at(600)).await;
    let t3 = token();
    let run = claim(&driver, &q3, 1, t3, at(601)).await;
    finish_all(&driver, &run, t3, JobState::Failed, at(602)).await;
    driver
        .job_retry(&JobRetryParams {
            id: c.id,
            now: at(603),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));

    let evs = events(&driver).await;
    assert_increasing_ids(&evs);
    assert_eq!(
        history(&evs, "job", a.id),
        hist(&[(1, "available"), (2, "running"), (3, "succeeded")]),
        "insert, claim, finish"
    );
    assert_eq!(
        history(&evs, "job", b.id),
        hist(&[
            (1, "available"),
            (2, "running"),
            (3, "running"),
            (4, "canceled")
        ]),
        "a cancel request is recorded (state still running); heartbeat and check-in are not"
    );
    assert_eq!(
        history(&evs, "job", c.id),
        hist(&[
            (1, "scheduled"),
            (2, "available"),
            (3, "running"),
            (4, "failed"),
            (5, "available")
        ]),
        "promotion and operator retry are recorded"
    );
    for (job, kind) in [(&a, "mail"), (&b, "sms"), (&c, "report")] {
        let stored = get(&driver, job.id).await;
        let mine: Vec<&EventRow> = evs
            .iter()
            .filter(|e| e.entity == "job" && e.entity_id == job.id)
            .collect();
        assert!(
            mine.iter()
                .all(|e| e.kind == kind && e.execution_id.is_none()),
            "{mine:?}"
        );
        assert_eq!(
            mine.last().map(|e| e.revision),
            Some(stored.revision),
            "the last event carries the job's current revision"
        );
    }
    assert_eq!(evs.len(), 12, "nothing else recorded: {evs:?}");
    let limited = driver
        .event_list(2)
        .await
        .unwrap_or_else(|e| panic!("event_list failed: {e}"));
    assert_eq!(
        limited,
        evs[..2].to_vec(),
        "event_list(limit) takes the oldest"
    );
}

/// With a webhook, execution status changes are recorded as `execution`
/// events (kind = owner kind) with increasing revisions: creation
/// (`running`), each derived status change, marks; job events of an
/// execution's jobs carry its id.
pub async fn execution_status_changes_produce_events(driver: Arc<dyn Driver>) {
    insert_webhook(&driver, "https://example.com/executions", at(0)).await;
    let q = queue("whe");
    let (e, ejobs) = insert_execution(
        &driver,
        execution("replication", "5", vec![job_in("c", &q)], at(0)),
    )
    .await;
    let t = token();
    let run = claim(&driver, &q, 1, t, at(1)).await;
    finish_all(&driver, &run, t, JobState::Succeeded, at(2)).await;

    let (m, _) = insert_execution(&driver, execution("backup", "1", Vec::new(), at(3))).await;
    driver
        .execution_mark(&ExecutionMarkParams {
            id: m.id,
            status: ExecutionStatus::Error,
            message: Some("no source".into()),
            now: at(4),
        })
        .await
        .unwrap_or_else(|e| panic!("execution_mark failed: {e}"));

    let q2 = queue("whe");
    let (r, rjobs) = insert_execution(
        &driver,
        execution("replication", "6", vec![job_in("c", &q2)], at(5)),
    )
    .await;
    let run = claim(&driver, &q2, 1, t, at(6)).await;
    finish_all(&driver, &run, t, JobState::Failed, at(7)).await;
    driver
        .job_retry(&JobRetryParams {
            id: rjobs[0].id,
            now: at(8),
        })
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    let t2 = token();
    let run = claim(&driver, &q2, 1, t2, at(9)).await;
    finish_all(&driver, &run, t2, JobState::Succeeded, at(10)).await;

    let evs = events(&driver).await;
    assert_increasing_ids(&evs);
    for (id, kind, want) in [
        (e.id, "replication", vec!["running", "succeeded"]),
        (m.id, "backup", vec!["running", "error"]),
        (
            r.id,
            "replication",
            vec!["running", "failed", "running", "succeeded"],
        ),
    ] {
        assert_eq!(
            statuses(&evs, "execution", id),
            want,
            "status changes of execution {id}: {evs:?}"
        );
        let revs: Vec<i64> = history(&evs, "execution", id)
            .iter()
            .map(|(r, _)| *r)
            .collect();
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "execution revisions increase: {revs:?}"
        );
        assert!(
            evs.iter()
                .filter(|ev| ev.entity == "execution" && ev.entity_id == id)
                .all(|ev| ev.kind == kind),
            "execution events carry the owner kind"
        );
    }
    for job in ejobs.iter().chain(&rjobs) {
        let mine: Vec<&EventRow> = evs
            .iter()
            .filter(|ev| ev.entity == "job" && ev.entity_id == job.id)
            .collect();
        assert!(!mine.is_empty());
        assert!(
            mine.iter()
                .all(|ev| ev.execution_id == job.execution_id && job.execution_id.is_some()),
            "job events carry the execution id: {mine:?}"
        );
    }
    assert_eq!(
        statuses(&evs, "job", ejobs[0].id),
        vec!["available", "running", "succeeded"]
    );
}

/// `event_progress` records a `progress` event for the job (its kind,
/// current revision, execution id) while a webhook exists.
pub async fn event_progress_records_progress_event(driver: Arc<dyn Driver>) {
    let q = queue("prog");
    let t = token();
    let (exec, _) =
        insert_execution(&driver, execution("o", "1", vec![job_in("p", &q)], t0())).await;
    let job = claim(&driver, &q, 1, t, at(1)).await.remove(0);
    driver
        .event_progress(job.id, at(2))
        .await
        .unwrap_or_else(|e| panic!("event_progress failed: {e}"));
    assert!(events(&driver).await.is_empty(), "no webhook: no-op");

    insert_webhook(&driver, "https://example.com/progress", at(3)).await;
    driver
        .event_progress(job.id, at(4))
        .await
        .unwrap_or_else(|e| panic!("event_progress failed: {e}"));
    let evs = events(&driver).await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!((e.entity.as_str(), e.entity_id), ("job", job.id));
    assert_eq!(e.status, "progress");
    assert_eq!(e.kind, "p");
    assert_eq!(e.execution_id, Some(exec.id));
    assert_eq!(
        e.revision,
        get(&driver, job.id).await.revision,
        "current revision"
    );
    assert_eq!(
        get(&driver, job.id).await.revision,
        job.revision,
        "progress is not a state change"
    );
}

/// `delivery_create` stores one pending delivery per (webhook, event) —
/// attempts 0, due at `now` — and consumes the events up to
/// `consumed_through`, in one go; later events stay.
pub async fn delivery_create_consumes_events(driver: Arc<dyn Driver>) {
    let wh = insert_webhook(&driver, "https://example.com/d?x='1'", at(0)).await;
    let q = queue("dc");
    for _ in 0..3 {
        insert(&driver, job_in("d", &q)).await;
    }
    let evs = events(&driver).await;
    assert_eq!(evs.len(), 3);
    let body = |e: &EventRow| json!({"type": format!("job.{}", e.status), "id": e.entity_id, "note": "it's \"x\""});
    let n = create_deliveries(
        &driver,
        DeliveryCreateParams {
            deliveries: vec![
                (wh.id, evs[0].id, body(&evs[0])),
                (wh.id, evs[1].id, body(&evs[1])),
            ],
            consumed_through: evs[1].id,
            now: at(10),
        },
    )
    .await;
    assert_eq!(n, 2, "two deliveries created");
    assert_eq!(
        events(&driver).await,
        vec![evs[2].clone()],
        "events through id consumed, later kept"
    );
    let rows = deliveries(&driver, wh.id).await;
    assert_eq!(
        rows.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        vec![evs[1].id, evs[0].id],
        "newest first"
    );
    for (d, e) in rows.iter().rev().zip(&evs) {
        assert_eq!(d.webhook_id, wh.id);
        assert_eq!(d.body, body(e), "body stored as given");
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.next_attempt_at, Some(at(10)), "first attempt due now");
        assert_eq!(d.created_at, at(10));
        assert_eq!(
            (d.last_status_code, d.last_error.as_deref(), d.delivered_at),
            (None, None, None)
        );
    }
    assert!(rows[0].id > rows[1].id);

    let n = create_deliveries(
        &driver,
        DeliveryCreateParams {
            deliveries: Vec::new(),
            consumed_through: evs[2].id,
            now: at(11),
        },
    )
    .await;
    assert_eq!(n, 0, "events matching no subscription are just consumed");
    assert!(events(&driver).await.is_empty());
    assert_eq!(deliveries(&driver, wh.id).await.len(), 2);
}

/// `delivery_due` lists pending deliveries due at `now`, oldest first, with
/// their webhook; `delivery_record` counts attempts and moves deliveries
/// through pending → delivered (`delivered_at = now`) or dead;
/// `delivery_list` pages newest first.
pub async fn delivery_due_record_and_list(driver: Arc<dyn Driver>) {
    let w1 = insert_webhook(&driver, "https://one.example.com/", at(0)).await;
    let w2 = driver
        .webhook_insert(&WebhookInsertParams {
            url: "http://two.example.com/hook".into(),
            events: vec!["job.failed".into()],
            kinds: vec!["mail".into(), "sms".into()],
            owner_kinds: vec!["replication".into()],
            secret: "other 'secret'".into(),
            now: at(1),
        })
        .await
        .unwrap_or_else(|e| panic!("webhook_insert failed: {e}"));
    assert_eq!(w2.events, vec!["job.failed"]);
    assert_eq!(w2.kinds, vec!["mail", "sms"]);
    assert_eq!(w2.owner_kinds, vec!["replication"]);
    assert_eq!(
        w2.secret, "other 'secret'",
        "the secret is stored for signing"
    );
    assert_eq!(w2.created_at, at(1));
    assert_eq!(webhooks(&driver).await, vec![w1.clone(), w2.clone()]);

    let q = queue("dd");
    for _ in 0..3 {
        insert(&driver, job_in("d", &q)).await;
    }
    let evs = events(&driver).await;
    let n = create_deliveries(
        &driver,
        DeliveryCreateParams {
            deliveries: vec![
                (w1.id, evs[0].id, json!({"n": 0})),
                (w2.id, evs[0].id, json!({"n": 1})),
                (w1.id, evs[1].id, json!({"n": 2})),
            ],
            consumed_through: evs[1].id,
            now: at(10),
        },
    )
    .await;
    assert_eq!(n, 3);
    let n = create_deliveries(
        &driver,
        DeliveryCreateParams {
            deliveries: vec![(w1.id, evs[2].id, json!({"n": 3}))],
            consumed_through: evs[2].id,
            now: at(20),
        },
    )
    .await;
    assert_eq!(n, 1);
    let mut all1 = deliveries(&driver, w1.id).await;
    all1.reverse();
    let [d0, d2, d3] = [all1[0].clone(), all1[1].clone(), all1[2].clone()];
    let d1 = deliveries(&driver, w2.id).await.remove(0);

    let ids = |rows: Vec<(DeliveryRow, WebhookRow)>| {
        rows.iter().map(|(d, w)| (d.id, w.id)).collect::<Vec<_>>()
    };
    assert!(
        due(&driver, 9, 100).await.is_empty(),
        "not due before next_attempt_at"
    );
    let rows = due(&driver, 10, 100).await;
    assert_eq!(
        ids(rows.clone()),
        vec![(d0.id, w1.id), (d1.id, w2.id), (d2.id, w1.id)],
        "due at now, oldest first, with their webhook"
    );
    assert_eq!(rows[1].1, w2, "the full webhook row (with its secret)");
    assert_eq!(rows[0].0, d0, "the full delivery row");
    assert_eq!(
        ids(due(&driver, 20, 2).await),
        vec![(d0.id, w1.id), (d1.id, w2.id)],
        "limit"
    );

    // d0 fails with a 500 and is retried later.
    let r = record(
        &driver,
        DeliveryAttemptParams {
            id: d0.id,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(at(70)),
            status_code: Some(500),
            error: Some("HTTP 500: 'oops'".into()),
            now: at(21),
        },
    )
    .await;
    assert_eq!(r.status, DeliveryStatus::Pending);
    assert_eq!(r.attempts, 1, "attempt counted");
    assert_eq!(r.next_attempt_at, Some(at(70)));
    assert_eq!(
        (r.last_status_code, r.last_error.as_deref()),
        (Some(500), Some("HTTP 500: 'oops'"))
    );
    assert_eq!(r.delivered_at, None);
    assert_eq!(
        (r.body.clone(), r.created_at, r.event_id),
        (d0.body.clone(), d0.created_at, d0.event_id)
    );

    // d1 is delivered.
    let r1 = record(
        &driver,
        DeliveryAttemptParams {
            id: d1.id,
            status: DeliveryStatus::Delivered,
            next_attempt_at: None,
            status_code: Some(204),
            error: None,
            now: at(22),
        },
    )
    .await;
    assert_eq!(r1.status, DeliveryStatus::Delivered);
    assert_eq!(r1.attempts, 1);
    assert_eq!(r1.delivered_at, Some(at(22)), "delivered_at = now");
    assert_eq!(r1.last_status_code, Some(204));

    assert_eq!(
        ids(due(&driver, 22, 100).await),
        vec![(d2.id, w1.id), (d3.id, w1.id)],
        "retried one waits, delivered one is done"
    );
    assert_eq!(
        ids(due(&driver, 70, 100).await),
        vec![(d0.id, w1.id), (d2.id, w1.id), (d3.id, w1.id)]
    );

    // d0 fails again and is given up; d2 times out, then is delivered.
    let r = record(
        &driver,
        DeliveryAttemptParams {
            id: d0.id,
            status: DeliveryStatus::Dead,
            next_attempt_at: None,
            status_code: None,
            error: Some("connection refused".into()),
            now: at(71),
        },
    )
    .await;
    assert_eq!(
        (r.status, r.attempts),
        (DeliveryStatus::Dead, 2),
        "attempts accumulate"
    );
    assert_eq!(
        (r.last_status_code, r.last_error.as_deref()),
        (None, Some("connection refused"))
    );
    assert_eq!(r.delivered_at, None);
    record(
        &driver,
        DeliveryAttemptParams {
            id: d2.id,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(at(80)),
            status_code: None,
            error: Some("timeout".into()),
            now: at(72),
        },
    )
    .await;
    let r2 = record(
        &driver,
        DeliveryAttemptParams {
            id: d2.id,
            status: DeliveryStatus::Delivered,
            next_attempt_at: None,
            status_code: Some(200),
            error: None,
            now: at(81),
        },
    )
    .await;
    assert_eq!(
        (r2.status, r2.attempts, r2.delivered_at),
        (DeliveryStatus::Delivered, 2, Some(at(81)))
    );
    assert_eq!(r2.last_status_code, Some(200));
    assert_eq!(
        ids(due(&driver, 10_000, 100).await),
        vec![(d3.id, w1.id)],
        "dead and delivered are never due"
    );

    // Listing: newest first, keyset, limit; rows are the recorded ones.
    let list = |before_id: Option<i64>, limit: u32| {
        let d = Arc::clone(&driver);
        async move {
            d.delivery_list(&DeliveryListParams {
                webhook_id: w1.id,
                before_id,
                limit,
            })
            .await
            .unwrap_or_else(|e| panic!("delivery_list failed: {e}"))
        }
    };
    let all = list(None, 0).await;
    assert_eq!(
        all.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![d3.id, d2.id, d0.id]
    );
    assert_eq!(all[1], r2, "list returns the stored row");
    assert_eq!(all[2].status, DeliveryStatus::Dead);
    assert_eq!(
        list(None, 1).await.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![d3.id]
    );
    assert_eq!(
        list(Some(d3.id), 0)
            .await
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        vec![d2.id, d0.id],
        "before_id is exclusive"
    );
    assert!(list(Some(d0.id), 0).await.is_empty());
    assert_eq!(deliveries(&driver, w2.id).await, vec![r1], "per webhook");
}

/// `webhook_delete` returns the subscription and removes its deliveries;
/// other subscriptions keep theirs; an unknown id is `NotFound` (entity
/// `webhook`).
pub async fn webhook_delete_removes_deliveries(driver: Arc<dyn Driver>) {
    let w1 = insert_webhook(&driver, "https://one.example.com/", at(0)).await;
    let w2 = insert_webhook(&driver, "https://two.example.com/", at(1)).await;
    insert(&driver, job_in("d", &queue("wd"))).await;
    let evs = events(&driver).await;
    assert_eq!(evs.len(), 1);
    create_deliveries(
        &driver,
        DeliveryCreateParams {
            deliveries: vec![(w1.id, evs[0].id, json!(1)), (w2.id, evs[0].id, json!(2))],
            consumed_through: evs[0].id,
            now: at(10),
        },
    )
    .await;
    let kept = deliveries(&driver, w2.id).await;
    assert_eq!(kept.len(), 1);

    let deleted = driver
        .webhook_delete(w1.id)
        .await
        .unwrap_or_else(|e| panic!("webhook_delete failed: {e}"));
    assert_eq!(deleted, w1, "delete returns the subscription");
    assert_eq!(webhooks(&driver).await, vec![w2.clone()]);
    assert!(
        deliveries(&driver, w1.id).await.is_empty(),
        "its deliveries are gone"
    );
    assert_eq!(deliveries(&driver, w2.id).await, kept, "others keep theirs");
    let due_now = due(&driver, 10, 100).await;
    assert_eq!(
        due_now
            .iter()
            .map(|(d, w)| (d.id, w.id))
            .collect::<Vec<_>>(),
        vec![(kept[0].id, w2.id)],
        "only the remaining subscription's delivery is due"
    );

    assert_not_found_entity(
        driver.webhook_delete(w1.id).await,
        "webhook",
        &w1.id.to_string(),
        "second webhook_delete",
    );
    let missing = w2.id + 1_000_000;
    assert_not_found_entity(
        driver.webhook_delete(missing).await,
        "webhook",
        &missing.to_string(),
        "webhook_delete",
    );
}
