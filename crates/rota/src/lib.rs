//! # Rota
//!
//! Durable background jobs for Rust services, on an embedded SQLite file or
//! a PostgreSQL cluster, with the same semantics on both.
//!
//! - Define a job as a serde type implementing [`JobArgs`], and a
//!   [`Worker`] for it.
//! - Enqueue with a [`Client`] — alone, many at once, or inside your own
//!   `sqlx` transaction ([`Client::enqueue_tx`]) so the job exists if and
//!   only if your data commits.
//! - Start the client to run workers: per-queue worker pools, leases with
//!   heartbeats, retries with backoff, durable cancellation, graceful
//!   shutdown. The elected leader promotes due jobs, rescues jobs of dead
//!   workers and prunes old ones.
//!
//! ```no_run
//! use std::time::Duration;
//! use rota::{Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, Store, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greet { name: String }
//! impl JobArgs for Greet { const KIND: &'static str = "greet"; }
//!
//! struct Greeter;
//! #[async_trait::async_trait]
//! impl Worker for Greeter {
//!     type Args = Greet;
//!     async fn work(&self, ctx: &JobContext, args: Greet) -> JobResult {
//!         ctx.log(format!("hello {}", args.name));
//!         Ok(JobOutcome::Done)
//!     }
//! }
//!
//! # async fn run() -> Result<(), rota::Error> {
//! let store = Store::open("sqlite://jobs.db").await?;
//! let client = Client::builder(store)
//!     .config(Config::default().queue("default", 10))
//!     .worker(Greeter)
//!     .build()?;
//! client.start().await?;
//! client.enqueue(&Greet { name: "world".into() }, EnqueueOpts::default()).await?;
//! client.shutdown(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

mod bulk;
mod client;
mod config;
mod context;
mod enqueue;
mod error;
mod executions;
mod hooks;
mod keys;
pub mod maintenance;
mod nodes;
mod runtime;
mod schedules;
mod store;
mod webhooks;
mod worker;

pub use bulk::{BULK_CHUNK, BULK_IN_FLIGHT, BulkEnqueued, BulkError};
pub use client::{Client, ClientBuilder, JobPage, MAX_PAGE, Services};
pub use config::{Config, ExecutionRetention, Retention};
pub use context::{CancelReason, DEFAULT_OUTPUT_CAP, JobContext};
pub use enqueue::{EnqueueOpts, JobRequest};
pub use error::{Error, Result};
pub use executions::ExecutionRequest;
pub use hooks::{
    AbnormalCallback, AbnormalReason, ExecutionStatusCallback, JobStatusCallback, JobStatusEvent,
};
pub use keys::NewApiKey;
pub use runtime::ShutdownReport;
pub use schedules::{JobTemplate, NODE_LABEL, ScheduleDefinition, ScheduleView, Scheduler};
pub use store::{CONTROL_CONNECTIONS, Store, TxConnection};
pub use webhooks::{
    WebhookDeliverer, WebhookRequest, sign as sign_webhook, verify as verify_webhook,
};
pub use worker::{JobArgs, JobError, JobOutcome, JobResult, RawWorker, Worker};

pub use rota_core::job::{MAX_NAME_LEN, MAX_PRIORITY};
pub use rota_core::output::CUT_MARKER;
pub use rota_core::{
    AttemptError, BackoffPolicy, BackoffTracker, CatchUp, Clock, ErrorKind, Job, JobState,
    ManualClock, OnOverlap, OverlapPolicy, QueueConfig, ScheduleRule, ScheduleSpec, SystemClock,
    ValidationError, validate_queue_name,
};
pub use rota_driver::{
    ApiKeyRow, ApiKeyScope, DeliveryRow, DeliveryStatus, Driver, DriverError, ExecutionListParams,
    ExecutionRow, ExecutionStatus, FireRow, FireStatus, InsertedJob, JobCount, JobListParams,
    NodeRow, QueueRow, ScheduleRow, StoreInfo, Trigger, WebhookRow,
};

/// Re-exported for implementing [`Worker`].
pub use async_trait::async_trait;
/// Re-exported so users name the same `sqlx` for transactional enqueue.
pub use sqlx;
/// Store drivers, for advanced options.
pub mod drivers {
    pub use rota_postgres as postgres;
    pub use rota_sqlite as sqlite;
}
