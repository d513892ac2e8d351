//! Webhook subscriptions, the status-change outbox (`rota_events`, written
//! while a webhook exists: by the driver's job writes, and by the trigger
//! on `rota_executions` for execution status) and deliveries.

use rota_driver::{
    DeliveryAttemptParams, DeliveryCreateParams, DeliveryListParams, DeliveryRow, DriverError,
    EventRow, Result, WebhookInsertParams, WebhookRow,
};
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;
use crate::executions::page;
use crate::row::{
    delivery_columns, delivery_from_row, event_columns, event_from_row, micros, opt_micros,
    to_json, webhook_columns, webhook_from_row,
};

/// A new subscription.
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO rota_webhooks (url, events, kinds, owner_kinds, secret, created_at) \
     VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
    webhook_columns!()
);

/// Every subscription, by id.
pub(crate) const LIST_SQL: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM rota_webhooks ORDER BY id"
);

/// Deletes a subscription, returning it.
pub(crate) const DELETE_SQL: &str = concat!(
    "DELETE FROM rota_webhooks WHERE id = ? RETURNING ",
    webhook_columns!()
);

/// Unconsumed events, oldest first.
pub(crate) const EVENTS_SQL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM rota_events ORDER BY id LIMIT ?"
);

/// A progress event for a job, only while a webhook exists.
pub(crate) const PROGRESS_SQL: &str = "INSERT INTO rota_events \
     (entity, entity_id, revision, status, kind, execution_id, at) \
     SELECT 'job', id, revision, 'progress', kind, execution_id, ?1 FROM rota_jobs \
     WHERE id = ?2 AND EXISTS (SELECT 1 FROM rota_webhooks)";

/// One new delivery, first attempt due at once. The body is stored as
/// given (bound per row: no re-rendering of its JSON by SQLite).
pub(crate) const DELIVERY_INSERT_SQL: &str = "INSERT INTO rota_deliveries \
     (webhook_id, event_id, body, status, attempts, next_attempt_at, created_at) \
     VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)";

/// Consumes the events handled.
pub(crate) const EVENTS_CONSUME_SQL: &str = "DELETE FROM rota_events WHERE id <= ?";

/// Pending deliveries due at a time, oldest (by id) first, with their
/// webhook. The due index finds them; the top-`limit` sort is over the due
/// rows only.
pub(crate) const DUE_SQL: &str = "SELECT d.id, d.webhook_id, d.event_id, d.body, d.status, d.attempts, d.next_attempt_at, \
     d.last_status_code, d.last_error, d.created_at, d.delivered_at, \
     w.id AS w_id, w.url AS w_url, w.events AS w_events, w.kinds AS w_kinds, \
     w.owner_kinds AS w_owner_kinds, w.secret AS w_secret, w.created_at AS w_created_at \
     FROM rota_deliveries d INDEXED BY rota_deliveries_due_idx \
     JOIN rota_webhooks w ON w.id = d.webhook_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.id LIMIT ?";

/// Records one attempt.
pub(crate) const RECORD_SQL: &str = concat!(
    "UPDATE rota_deliveries SET attempts = attempts + 1, status = ?1, next_attempt_at = ?2, \
     last_status_code = ?3, last_error = ?4, \
     delivered_at = CASE WHEN ?1 = 'delivered' THEN ?5 ELSE delivered_at END \
     WHERE id = ?6 RETURNING ",
    delivery_columns!()
);

/// Deliveries of one subscription, newest first.
pub(crate) const LIST_DELIVERIES_SQL: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM rota_deliveries WHERE webhook_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
);

/// Creates a subscription.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    p: &WebhookInsertParams,
) -> Result<WebhookRow> {
    let row = sqlx::query(INSERT_SQL)
        .bind(p.url.as_str())
        .bind(to_json(&p.events)?)
        .bind(to_json(&p.kinds)?)
        .bind(to_json(&p.owner_kinds)?)
        .bind(p.secret.as_str())
        .bind(micros(p.now))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    webhook_from_row(&row, "")
}

/// Every subscription, by id.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<WebhookRow>> {
    let rows = sqlx::query(LIST_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(|r| webhook_from_row(r, "")).collect()
}

/// Deletes a subscription and its deliveries.
pub(crate) async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<WebhookRow> {
    let row = sqlx::query(DELETE_SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .ok_or_else(|| DriverError::NotFound {
            entity: "webhook",
            id: id.to_string(),
        })?;
    sqlx::query("DELETE FROM rota_deliveries WHERE webhook_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    webhook_from_row(&row, "")
}

/// Unconsumed events, oldest first.
pub(crate) async fn events(conn: &mut SqliteConnection, limit: u32) -> Result<Vec<EventRow>> {
    let rows = sqlx::query(EVENTS_SQL)
        .bind(page(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(event_from_row).collect()
}

/// A progress event for a job (a no-op without webhooks or job).
pub(crate) async fn progress(
    conn: &mut SqliteConnection,
    job_id: i64,
    now: jiff::Timestamp,
) -> Result<()> {
    sqlx::query(PROGRESS_SQL)
        .bind(micros(now))
        .bind(job_id)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Creates deliveries and consumes the events through `consumed_through`.
pub(crate) async fn create_deliveries(
    conn: &mut SqliteConnection,
    p: &DeliveryCreateParams,
) -> Result<u64> {
    let now = micros(p.now);
    let mut created = 0;
    for (webhook_id, event_id, body) in &p.deliveries {
        created += sqlx::query(DELIVERY_INSERT_SQL)
            .bind(webhook_id)
            .bind(event_id)
            .bind(to_json(body)?)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
    }
    sqlx::query(EVENTS_CONSUME_SQL)
        .bind(p.consumed_through)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(created)
}

/// Pending deliveries due at `now`, oldest first, with their webhook.
pub(crate) async fn due(
    conn: &mut SqliteConnection,
    now: jiff::Timestamp,
    limit: u32,
) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
    let rows = sqlx::query(DUE_SQL)
        .bind(micros(now))
        .bind(page(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter()
        .map(|r| Ok((delivery_from_row(r)?, webhook_from_row(r, "w_")?)))
        .collect()
}

/// Records one delivery attempt.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    p: &DeliveryAttemptParams,
) -> Result<DeliveryRow> {
    let row = sqlx::query(RECORD_SQL)
        .bind(p.status.as_str())
        .bind(opt_micros(p.next_attempt_at))
        .bind(p.status_code.map(i64::from))
        .bind(p.error.as_deref())
        .bind(micros(p.now))
        .bind(p.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .ok_or_else(|| DriverError::NotFound {
            entity: "delivery",
            id: p.id.to_string(),
        })?;
    delivery_from_row(&row)
}

/// Deliveries of one subscription, newest first.
pub(crate) async fn list_deliveries(
    conn: &mut SqliteConnection,
    p: &DeliveryListParams,
) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query(LIST_DELIVERIES_SQL)
        .bind(p.webhook_id)
        .bind(p.before_id.unwrap_or(i64::MAX))
        .bind(page(p.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter().map(delivery_from_row).collect()
}
