//! The status-change outbox: written only while a webhook exists, in the
//! same transaction as the change; published ids follow commit order.

use rota_core::JobState;
use rota_driver::{DeliveryCreateParams, Driver, EventRow, JobCancelParams, WebhookInsertParams};
use rota_postgres::{PgDriver, job_insert_many_in};

use crate::common::{claim_params, job, now, with_default_driver};
use crate::executions::{finish, new_execution};

async fn outbox_rows(driver: &PgDriver) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".rota_events",
        driver.schema().unwrap()
    )))
    .fetch_one(driver.pool())
    .await
    .unwrap()
}

async fn marker(driver: &PgDriver) -> bool {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_regclass('\"{}\".rota_webhooks_active') IS NOT NULL",
        driver.schema().unwrap()
    )))
    .fetch_one(driver.pool())
    .await
    .unwrap()
}

fn hook() -> WebhookInsertParams {
    WebhookInsertParams {
        url: "http://127.0.0.1:9/hook".into(),
        events: vec!["job.*".into(), "execution.*".into()],
        kinds: vec![],
        owner_kinds: vec![],
        secret: "0123456789abcdef".into(),
        now: now(),
    }
}

fn summary(events: &[EventRow]) -> Vec<(String, i64, String, i64)> {
    events
        .iter()
        .map(|e| (e.entity.clone(), e.entity_id, e.status.clone(), e.revision))
        .collect()
}

async fn consume(driver: &PgDriver, events: &[EventRow]) {
    driver
        .delivery_create(&DeliveryCreateParams {
            deliveries: vec![],
            consumed_through: events.last().unwrap().id,
            now: now(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_only_while_a_webhook_exists() {
    with_default_driver(|driver, _| async move {
        // No webhook: changes write nothing.
        let (e0, _) = driver
            .execution_insert(new_execution(vec![job("ev")]))
            .await
            .unwrap();
        let j = driver.job_claim(&claim_params("ev", 1, 1)).await.unwrap();
        driver
            .job_finish_many(vec![finish(j[0].id, 1, JobState::Succeeded, 1)])
            .await
            .unwrap();
        driver.event_progress(j[0].id, now()).await.unwrap();
        assert_eq!(outbox_rows(&driver).await, 0);
        assert!(!marker(&driver).await);
        assert!(driver.event_list(100).await.unwrap().is_empty());

        // With one: every status change, in order, jobs before the
        // execution change they cause.
        let w = driver.webhook_insert(&hook()).await.unwrap();
        assert!(marker(&driver).await);
        let w2 = driver.webhook_insert(&hook()).await.unwrap();
        let (e, jobs) = driver
            .execution_insert(new_execution(vec![job("ev")]))
            .await
            .unwrap();
        let id = jobs[0].job.id;
        let c = driver.job_claim(&claim_params("ev", 1, 2)).await.unwrap();
        assert_eq!(c[0].id, id);
        driver
            .job_cancel(&JobCancelParams { id, now: now() })
            .await
            .unwrap();
        driver.event_progress(id, now()).await.unwrap();
        driver
            .job_finish_many(vec![finish(id, 2, JobState::Canceled, 1)])
            .await
            .unwrap();
        let events = driver.event_list(100).await.unwrap();
        let ex = |s: &str, r: i64| ("execution".to_owned(), e.id, s.to_owned(), r);
        let jb = |s: &str, r: i64| ("job".to_owned(), id, s.to_owned(), r);
        assert_eq!(
            summary(&events),
            vec![
                ex("running", 1),
                jb("available", 1),
                jb("running", 2),
                jb("running", 3),
                jb("progress", 3),
                jb("canceled", 4),
                ex("canceled", 2),
            ],
            "insert, claim, cancel request, progress, finish; then the execution"
        );
        assert!(events.windows(2).all(|p| p[0].id < p[1].id));
        assert_eq!(events[1].execution_id, Some(e.id));
        assert_eq!(events[1].kind, "test");
        assert_eq!(events[0].kind, "replication");
        assert_eq!(
            events,
            driver.event_list(100).await.unwrap(),
            "listing is stable"
        );
        assert_eq!(driver.event_list(2).await.unwrap(), events[..2].to_vec());
        consume(&driver, &events[..3]).await;
        assert_eq!(driver.event_list(100).await.unwrap(), events[3..].to_vec());
        consume(&driver, &events).await;
        assert!(driver.event_list(100).await.unwrap().is_empty());
        assert!(driver.execution_get(e0.id).await.unwrap().is_some());

        // The last webhook gone: nothing written any more.
        driver.webhook_delete(w.id).await.unwrap();
        assert!(marker(&driver).await, "one webhook is left");
        driver.webhook_delete(w2.id).await.unwrap();
        assert!(!marker(&driver).await);
        driver.job_insert_many(vec![job("ev")]).await.unwrap();
        driver.event_progress(id, now()).await.unwrap();
        assert_eq!(outbox_rows(&driver).await, 0);
    })
    .await;
}

/// A transaction that took a lower outbox id but commits after a listing
/// that consumed a higher one still gets its event delivered: published ids
/// are handed out at listing, in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commits_are_not_consumed_unseen() {
    with_default_driver(|driver, _| async move {
        driver.webhook_insert(&hook()).await.unwrap();
        let mut slow = driver.pool().begin().await.unwrap();
        let early = job_insert_many_in(&mut slow, vec![job("late")], driver.schema())
            .await
            .unwrap();
        let quick = driver.job_insert_many(vec![job("late")]).await.unwrap();
        let first = driver.event_list(100).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].entity_id, quick[0].job.id);
        consume(&driver, &first).await;
        slow.commit().await.unwrap();
        let second = driver.event_list(100).await.unwrap();
        assert_eq!(second.len(), 1, "the late event survived the consumption");
        assert_eq!(second[0].entity_id, early[0].job.id);
        assert!(
            second[0].id > first[0].id,
            "published ids follow commit order"
        );
    })
    .await;
}
