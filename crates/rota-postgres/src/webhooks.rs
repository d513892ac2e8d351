//! Webhook subscriptions, the status-change outbox and deliveries.
//!
//! Events are written by the triggers of migration 0003, only while a
//! webhook exists. A trigger's `WHEN` clause cannot query a table, so the
//! statements here keep a marker, the view `rota_webhooks_active`, existing
//! exactly while `rota_webhooks` has rows: it is created with the first
//! webhook and dropped with the last, in the same transaction, under a lock
//! that serializes webhook changes. Stores without webhooks pay one catalog
//! cache lookup per changed job, and no query.
//!
//! Event ids: transactions take `rota_events.id` values in insertion order
//! but commit in any order, so a reader could see id 7 before id 5 commits
//! and consume "through 7". Readers therefore get `seq` instead, handed out
//! when a committed event is first listed: published ids increase in commit
//! (listing) order, and consuming through one never drops an event that was
//! not yet visible.

use rota_driver::{
    DeliveryAttemptParams, DeliveryCreateParams, DeliveryListParams, DeliveryRow, DriverError,
    EventRow, Result, WebhookInsertParams, WebhookRow,
};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};

use crate::error::SqlxResultExt;
use crate::jobs::MAX_LIST_LIMIT;
use crate::options::Tables;
use crate::row::{delivery_from_row, event_from_row, ts, ts_opt, webhook_from_row};

/// Serializes webhook changes, so the marker view follows the row count.
async fn lock_webhooks(conn: &mut PgConnection, t: &Tables) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        t.webhooks
    )))
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// Creates or drops the marker view to match whether webhooks exist.
async fn sync_marker(conn: &mut PgConnection, t: &Tables) -> Result<()> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {}) AS hooks, to_regclass($1) IS NOT NULL AS marker",
        t.webhooks
    )))
    .bind(&t.webhooks_active)
    .fetch_one(&mut *conn)
    .await
    .db()?;
    let hooks: bool = row.try_get("hooks").db()?;
    let marker: bool = row.try_get("marker").db()?;
    let ddl = match (hooks, marker) {
        (true, false) => format!("CREATE VIEW {} AS SELECT true AS active", t.webhooks_active),
        (false, true) => format!("DROP VIEW {}", t.webhooks_active),
        _ => return Ok(()),
    };
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Creates a subscription (and turns event writing on).
pub(crate) async fn insert(
    pool: &PgPool,
    t: &Tables,
    p: &WebhookInsertParams,
) -> Result<WebhookRow> {
    let mut tx = pool.begin().await.db()?;
    lock_webhooks(&mut tx, t).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (url, events, kinds, owner_kinds, secret, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING *",
        t.webhooks
    )))
    .bind(p.url.as_str())
    .bind(Json(&p.events))
    .bind(Json(&p.kinds))
    .bind(Json(&p.owner_kinds))
    .bind(p.secret.as_str())
    .bind(ts(p.now))
    .fetch_one(&mut *tx)
    .await
    .db()?;
    sync_marker(&mut tx, t).await?;
    tx.commit().await.db()?;
    webhook_from_row(&row, "")
}

/// Every subscription, by id.
pub(crate) async fn list(pool: &PgPool, t: &Tables) -> Result<Vec<WebhookRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} ORDER BY id",
        t.webhooks
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(|r| webhook_from_row(r, "")).collect()
}

/// Deletes a subscription and its deliveries (the last one turns event
/// writing off).
pub(crate) async fn delete(pool: &PgPool, t: &Tables, id: i64) -> Result<WebhookRow> {
    let mut tx = pool.begin().await.db()?;
    lock_webhooks(&mut tx, t).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE id = $1 RETURNING *",
        t.webhooks
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .db()?
    .ok_or_else(|| DriverError::NotFound {
        entity: "webhook",
        id: id.to_string(),
    })?;
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE webhook_id = $1",
        t.deliveries
    )))
    .bind(id)
    .execute(&mut *tx)
    .await
    .db()?;
    sync_marker(&mut tx, t).await?;
    tx.commit().await.db()?;
    webhook_from_row(&row, "")
}

/// Unconsumed events, oldest first: those listed before (still
/// unconsumed), then newly committed ones, which get their published ids
/// now, in insertion order.
pub(crate) async fn events(pool: &PgPool, t: &Tables, limit: u32) -> Result<Vec<EventRow>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await.db()?;
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {ev} e SET seq = s.seq
         FROM (SELECT id, nextval('{seq}') AS seq
               FROM (SELECT id FROM {ev} WHERE seq IS NULL ORDER BY id LIMIT $1
                     FOR UPDATE SKIP LOCKED) pending) s
         WHERE e.id = s.id",
        ev = t.events,
        seq = t.events_seq,
    )))
    .bind(i64::from(limit))
    .execute(&mut *tx)
    .await
    .db()?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE seq IS NOT NULL ORDER BY seq LIMIT $1",
        t.events
    )))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()?;
    rows.iter().map(event_from_row).collect()
}

/// Records a progress event for a job, if a webhook exists.
pub(crate) async fn progress(
    pool: &PgPool,
    t: &Tables,
    job_id: i64,
    now: jiff::Timestamp,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {ev} (entity, entity_id, revision, status, kind, execution_id, at)
         SELECT 'job', id, revision, 'progress', kind, execution_id, $2
         FROM {jobs} WHERE id = $1 AND EXISTS (SELECT 1 FROM {hooks})",
        ev = t.events,
        jobs = t.jobs,
        hooks = t.webhooks,
    )))
    .bind(job_id)
    .bind(ts(now))
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

/// Inserts deliveries and consumes the events through `consumed_through`,
/// in one transaction; returns how many deliveries.
pub(crate) async fn create_deliveries(
    pool: &PgPool,
    t: &Tables,
    p: &DeliveryCreateParams,
) -> Result<u64> {
    let mut tx = pool.begin().await.db()?;
    let mut created = 0;
    if !p.deliveries.is_empty() {
        let webhook_ids: Vec<i64> = p.deliveries.iter().map(|d| d.0).collect();
        let event_ids: Vec<i64> = p.deliveries.iter().map(|d| d.1).collect();
        let bodies: Vec<Json<&serde_json::Value>> =
            p.deliveries.iter().map(|d| Json(&d.2)).collect();
        created = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (webhook_id, event_id, body, status, attempts, next_attempt_at,
                             created_at)
             SELECT u.webhook_id, u.event_id, u.body, 'pending', 0, $4, $4
             FROM UNNEST($1::bigint[], $2::bigint[], $3::jsonb[])
                  WITH ORDINALITY AS u(webhook_id, event_id, body, ord)
             ORDER BY u.ord",
            t.deliveries
        )))
        .bind(webhook_ids)
        .bind(event_ids)
        .bind(bodies)
        .bind(ts(p.now))
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
    }
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE seq <= $1",
        t.events
    )))
    .bind(p.consumed_through)
    .execute(&mut *tx)
    .await
    .db()?;
    tx.commit().await.db()?;
    Ok(created)
}

/// Pending deliveries due at `now`, oldest first, with their webhook.
pub(crate) async fn due(
    pool: &PgPool,
    t: &Tables,
    now: jiff::Timestamp,
    limit: u32,
) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT d.*, w.id AS w_id, w.url AS w_url, w.events AS w_events, w.kinds AS w_kinds,
                w.owner_kinds AS w_owner_kinds, w.secret AS w_secret,
                w.created_at AS w_created_at
         FROM {d} d JOIN {w} w ON w.id = d.webhook_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1
         ORDER BY d.id
         LIMIT $2",
        d = t.deliveries,
        w = t.webhooks,
    )))
    .bind(ts(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter()
        .map(|r| Ok((delivery_from_row(r)?, webhook_from_row(r, "w_")?)))
        .collect()
}

/// Records one delivery attempt.
pub(crate) async fn record(
    pool: &PgPool,
    t: &Tables,
    p: &DeliveryAttemptParams,
) -> Result<DeliveryRow> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET
            attempts = attempts + 1,
            status = $2,
            next_attempt_at = $3,
            last_status_code = $4,
            last_error = $5,
            delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END
         WHERE id = $1
         RETURNING *",
        t.deliveries
    )))
    .bind(p.id)
    .bind(p.status.as_str())
    .bind(ts_opt(p.next_attempt_at))
    .bind(p.status_code)
    .bind(p.error.as_deref())
    .bind(ts(p.now))
    .fetch_optional(pool)
    .await
    .db()?;
    match row {
        Some(row) => delivery_from_row(&row),
        None => Err(DriverError::NotFound {
            entity: "delivery",
            id: p.id.to_string(),
        }),
    }
}

/// Deliveries of one subscription, newest first.
pub(crate) async fn list_deliveries(
    pool: &PgPool,
    t: &Tables,
    p: &DeliveryListParams,
) -> Result<Vec<DeliveryRow>> {
    let limit = if p.limit == 0 || p.limit > MAX_LIST_LIMIT {
        MAX_LIST_LIMIT
    } else {
        p.limit
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE webhook_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
        t.deliveries
    )))
    .bind(p.webhook_id)
    .bind(p.before_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter().map(delivery_from_row).collect()
}
