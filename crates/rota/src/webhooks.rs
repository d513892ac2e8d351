//! Outgoing webhooks: subscriptions, and the leader services that turn the
//! store's status-change outbox into deliveries and deliver them.
//!
//! Each status change writes an outbox event in the same transaction as the
//! change itself (the store's triggers or driver), so no change can be lost between commit
//! and delivery. Deliveries are retried with backoff until the receiver
//! answers 2xx or the attempts run out. Each request carries:
//!
//! - `Rota-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   — receivers recompute it and reject old timestamps (replays);
//! - `Rota-Event-Id` (idempotency) and `Rota-Revision` — the job's or
//!   execution's status revision, increasing with each change, so a
//!   receiver can drop an event older than one it already has.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rota_core::{BackoffPolicy, ValidationError, clock};
use rota_driver::{
    DeliveryAttemptParams, DeliveryCreateParams, DeliveryListParams, DeliveryRow, DeliveryStatus,
    EventRow, WebhookInsertParams, WebhookRow,
};
use sha2::Sha256;

use crate::client::Client;
use crate::error::Result;
use crate::maintenance::{Report, Service};
use crate::runtime::engine::Engine;

/// A new subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRequest {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Event patterns: `job.*`, `job.succeeded`, `job.progress`,
    /// `execution.*`, `execution.failed`, ... (empty: everything).
    pub events: Vec<String>,
    /// Only jobs of these kinds (empty: any).
    pub kinds: Vec<String>,
    /// Only executions of these owner kinds (empty: any).
    pub owner_kinds: Vec<String>,
    /// Signing secret (at least 16 bytes).
    pub secret: String,
}

/// The signature header value for `body` at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch is unreachable.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `Rota-Signature` header against `body` (for receivers written
/// in Rust, and for tests): the HMAC matches and the timestamp is within
/// `tolerance` of `now_unix`.
pub fn verify(secret: &str, header: &str, body: &[u8], now_unix: i64, tolerance: Duration) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_unix - t).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

fn pattern_matches(patterns: &[String], ev: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| {
            p == ev
                || p == "*"
                || p.strip_suffix(".*")
                    .is_some_and(|prefix| ev.split('.').next() == Some(prefix))
        })
}

/// Whether subscription `w` wants event `e`.
pub(crate) fn wants(w: &WebhookRow, e: &EventRow) -> bool {
    let name = format!("{}.{}", e.entity, e.status);
    if !pattern_matches(&w.events, &name) {
        return false;
    }
    match e.entity.as_str() {
        "job" => w.kinds.is_empty() || w.kinds.contains(&e.kind),
        _ => w.owner_kinds.is_empty() || w.owner_kinds.contains(&e.kind),
    }
}

/// The JSON body of an event.
pub(crate) fn body(e: &EventRow) -> serde_json::Value {
    serde_json::json!({
        "type": format!("{}.{}", e.entity, e.status),
        "event_id": e.id,
        "entity": e.entity,
        "id": e.entity_id,
        "revision": e.revision,
        "status": e.status,
        "kind": e.kind,
        "execution_id": e.execution_id,
        "at": e.at,
    })
}

impl Client {
    /// Subscribes a URL to status events.
    pub async fn create_webhook(&self, req: WebhookRequest) -> Result<WebhookRow> {
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| ValidationError::new("url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ValidationError::new("url", "must be http or https").into());
        }
        if req.secret.len() < 16 {
            return Err(ValidationError::new("secret", "must be at least 16 bytes").into());
        }
        for e in &req.events {
            let ok = e == "*"
                || matches!(e.split_once('.'), Some(("job" | "execution", rest)) if !rest.is_empty());
            if !ok {
                return Err(ValidationError::new(
                    "events",
                    format!("{e:?} is not job.<state>, job.*, execution.<status> or execution.*"),
                )
                .into());
            }
        }
        Ok(self
            .driver()
            .webhook_insert(&WebhookInsertParams {
                url: req.url,
                events: req.events,
                kinds: req.kinds,
                owner_kinds: req.owner_kinds,
                secret: req.secret,
                now: self.config().clock.now(),
            })
            .await?)
    }

    /// Every subscription (secrets are not serialized).
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>> {
        Ok(self.driver().webhook_list().await?)
    }

    /// Removes a subscription and its deliveries.
    pub async fn delete_webhook(&self, id: i64) -> Result<WebhookRow> {
        Ok(self.driver().webhook_delete(id).await?)
    }

    /// Deliveries of a subscription, newest first, with their attempts.
    pub async fn webhook_deliveries(
        &self,
        id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        Ok(self
            .driver()
            .delivery_list(&DeliveryListParams {
                webhook_id: id,
                before_id,
                limit,
            })
            .await?)
    }
}

/// Turns outbox events into deliveries, then delivers what is due.
#[derive(Debug)]
pub struct WebhookDeliverer {
    pub(crate) engine: Arc<Engine>,
    http: reqwest::Client,
}

impl WebhookDeliverer {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(engine.config.webhook_timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { engine, http }
    }

    async fn expand(&self) -> Result<u64> {
        let events = self.engine.driver.event_list(1000).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(0);
        };
        let hooks = self.engine.driver.webhook_list().await?;
        let deliveries = events
            .iter()
            .flat_map(|e| {
                hooks
                    .iter()
                    .filter(|w| wants(w, e))
                    .map(move |w| (w.id, e.id, body(e)))
            })
            .collect();
        Ok(self
            .engine
            .driver
            .delivery_create(&DeliveryCreateParams {
                deliveries,
                consumed_through: last,
                now: self.engine.now(),
            })
            .await?)
    }

    async fn deliver(&self) -> Result<u64> {
        let now = self.engine.now();
        let due = self.engine.driver.delivery_due(now, 200).await?;
        let mut delivered = 0;
        for (d, w) in due {
            let body = serde_json::to_vec(&d.body)?;
            let sig = sign(&w.secret, now.as_second(), &body);
            let revision = d.body.get("revision").and_then(|r| r.as_i64()).unwrap_or(0);
            let sent = self
                .http
                .post(&w.url)
                .header("content-type", "application/json")
                .header("rota-signature", sig)
                .header("rota-event-id", d.event_id.to_string())
                .header("rota-revision", revision.to_string())
                .body(body)
                .send()
                .await;
            let (ok, code, error) = match sent {
                Ok(r) if r.status().is_success() => {
                    (true, Some(i32::from(r.status().as_u16())), None)
                }
                Ok(r) => (
                    false,
                    Some(i32::from(r.status().as_u16())),
                    Some(format!("HTTP {}", r.status())),
                ),
                Err(e) => (false, None, Some(e.to_string())),
            };
            let policy: &BackoffPolicy = &self.engine.config.webhook_backoff;
            let attempt = d.attempts + 1;
            let (status, next) = if ok {
                delivered += 1;
                (DeliveryStatus::Delivered, None)
            } else if attempt >= policy.max_attempts {
                (DeliveryStatus::Dead, None)
            } else {
                (
                    DeliveryStatus::Pending,
                    Some(clock::add(
                        now,
                        policy.delay(attempt, rand::random::<f64>()),
                    )),
                )
            };
            self.engine
                .driver
                .delivery_record(&DeliveryAttemptParams {
                    id: d.id,
                    status,
                    next_attempt_at: next,
                    status_code: code,
                    error,
                    now,
                })
                .await?;
        }
        Ok(delivered)
    }
}

#[async_trait]
impl Service for WebhookDeliverer {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn interval(&self) -> Duration {
        self.engine.config.webhook_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let created = self.expand().await?;
        let delivered = self.deliver().await?;
        Ok(Report {
            affected: created + delivered,
            summary: format!("queued {created} and delivered {delivered} webhook deliveries"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_expire() {
        let h = sign("s3cret-s3cret-s3", 1_000, b"{}");
        assert!(verify(
            "s3cret-s3cret-s3",
            &h,
            b"{}",
            1_010,
            Duration::from_secs(300)
        ));
        assert!(!verify(
            "other-secret-xxxx",
            &h,
            b"{}",
            1_010,
            Duration::from_secs(300)
        ));
        assert!(!verify(
            "s3cret-s3cret-s3",
            &h,
            b"{ }",
            1_010,
            Duration::from_secs(300)
        ));
        assert!(!verify(
            "s3cret-s3cret-s3",
            &h,
            b"{}",
            5_000,
            Duration::from_secs(300)
        ));
    }

    #[test]
    fn patterns() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(pattern_matches(&p(&[]), "job.failed"));
        assert!(pattern_matches(&p(&["job.*"]), "job.failed"));
        assert!(pattern_matches(&p(&["job.failed"]), "job.failed"));
        assert!(!pattern_matches(&p(&["job.failed"]), "job.succeeded"));
        assert!(!pattern_matches(&p(&["execution.*"]), "job.failed"));
    }
}
