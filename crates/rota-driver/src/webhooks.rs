//! Params and rows of webhook subscriptions, the status-change outbox and
//! deliveries.
//!
//! Every job and execution status change writes an event row in the same
//! transaction as the change (stores do it with triggers, so no path can
//! skip it) — but only while at least one webhook exists, so the hot path
//! pays nothing otherwise. The leader turns events into one delivery per
//! matching subscription and delivers them with retries.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A new subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookInsertParams {
    /// Target URL (http or https).
    pub url: String,
    /// Event types (`job.<state>`, `job.*`, `execution.<status>`,
    /// `execution.*`, `job.progress`).
    pub events: Vec<String>,
    /// Only jobs of these kinds (empty: any).
    pub kinds: Vec<String>,
    /// Only executions of these owner kinds (empty: any).
    pub owner_kinds: Vec<String>,
    /// HMAC-SHA256 secret.
    pub secret: String,
    /// Current time.
    pub now: Timestamp,
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    /// Id.
    pub id: i64,
    /// Target URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Kind filter.
    pub kinds: Vec<String>,
    /// Owner-kind filter.
    pub owner_kinds: Vec<String>,
    /// Signing secret (never serialized).
    #[serde(skip_serializing, default)]
    pub secret: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// One status change from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Outbox id, increasing in commit order per store.
    pub id: i64,
    /// `job` or `execution`.
    pub entity: String,
    /// Job or execution id.
    pub entity_id: i64,
    /// Per-entity status revision, increasing with every change.
    pub revision: i64,
    /// New state / status name (`progress` for check-ins).
    pub status: String,
    /// Job kind (jobs) or owner kind (executions).
    pub kind: String,
    /// Execution id of a job, if any.
    pub execution_id: Option<i64>,
    /// When the change happened.
    pub at: Timestamp,
}

/// Turning events into deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryCreateParams {
    /// Deliveries to create: (webhook id, event id, JSON body).
    pub deliveries: Vec<(i64, i64, serde_json::Value)>,
    /// Events up to and including this id are consumed (deleted).
    pub consumed_through: i64,
    /// Current time (first attempt due).
    pub now: Timestamp,
}

/// State of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by the receiver (2xx).
    Delivered,
    /// Given up after the last attempt.
    Dead,
}

impl DeliveryStatus {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    /// Id.
    pub id: i64,
    /// Subscription.
    pub webhook_id: i64,
    /// Source event id.
    pub event_id: i64,
    /// Body to POST.
    pub body: serde_json::Value,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt due.
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttemptParams {
    /// Delivery id.
    pub id: i64,
    /// New state.
    pub status: DeliveryStatus,
    /// Next attempt (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status, if a response came.
    pub status_code: Option<i32>,
    /// Error text, if it failed.
    pub error: Option<String>,
    /// Current time.
    pub now: Timestamp,
}

/// Listing deliveries of one subscription, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryListParams {
    /// Subscription.
    pub webhook_id: i64,
    /// Only ids below this.
    pub before_id: Option<i64>,
    /// Page size (capped at 10,000; 0 means the cap).
    pub limit: u32,
}
