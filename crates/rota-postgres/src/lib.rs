//! PostgreSQL storage driver for Rota.
//!
//! [`PgDriver`] implements [`rota_driver::Driver`] over a sqlx pool:
//!
//! - claims use `FOR UPDATE SKIP LOCKED` over a partial index of available
//!   jobs, so many workers claim concurrently and the claim stays flat as the
//!   finished history grows; the claim is a PL/pgSQL function whose
//!   planner settings keep that an ordered index walk even when the
//!   table's statistics are stale;
//! - bulk inserts send one `INSERT ... SELECT FROM UNNEST(...)` per few
//!   thousand rows, inside one transaction;
//! - wake-ups are `pg_notify` calls: the driver's own inserts send them
//!   after they commit, from one task that merges the queues of concurrent
//!   commits (a notifying commit would hold PostgreSQL's server-wide
//!   notification lock through its WAL flush); inserts in a caller's
//!   transaction, executions' and schedule fires' inserts, promotions and
//!   retries make them inside the statement, so they are delivered exactly
//!   when it commits. A background `LISTEN` task
//!   forwards them to [`Driver::subscribe`]rs;
//! - every run's writes are fenced by its lease token;
//! - executions' per-state counters and derived status, and the webhook
//!   outbox, are kept by plpgsql triggers on `rota_jobs` (so users' own
//!   transactions and pruning keep them right too); their `WHEN` clauses
//!   make jobs outside executions, and stores without webhooks, skip them.
//!   Statements changing jobs of several executions take their locks in one
//!   order (the jobs, then those executions by id) so concurrent claims and
//!   finishes do not deadlock on them (a deadlock the server still breaks
//!   is retried).
//!
//! Rota's tables can live in their own schema ([`PgOptions::schema`]); all
//! statements use schema-qualified names, so connections' `search_path` is
//! never changed. Trigger functions are created in that schema and name
//! its tables explicitly, so they work under any caller's `search_path`.
//!
//! Transactional enqueue and completion in a caller's own transaction use the
//! free functions [`job_insert_many_in`], [`job_list_in`] and
//! [`job_finish_in`] on a `&mut PgConnection` (e.g. `&mut *tx`).

mod api_keys;
mod copy;
mod error;
mod executions;
mod jobs;
mod kept;
mod leader;
mod listener;
mod migrate;
mod nodes;
mod notifier;
mod options;
mod queues;
mod row;
mod schedules;
mod webhooks;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rota_core::Job;
use rota_driver::{
    ApiKeyInsertParams, ApiKeyRow, DeliveryAttemptParams, DeliveryCreateParams, DeliveryListParams,
    DeliveryRow, Driver, DriverError, EventRow, ExecutionAddJobsParams, ExecutionInsertParams,
    ExecutionListParams, ExecutionMarkParams, ExecutionPruneParams, ExecutionRepair, ExecutionRow,
    ExecutionStopParams, FinishResult, FireListParams, FireOutcome, FireRow, HeartbeatResult,
    InsertedJob, JobCancelParams, JobCheckinParams, JobClaimParams, JobCount, JobExpiredParams,
    JobFinishParams, JobHeartbeatParams, JobInsertParams, JobListParams, JobPromoteParams,
    JobPruneParams, JobRetryParams, LeaderElectParams, LeaderReelectParams, LeaderTerm,
    MigrationStatus, NodeDrainParams, NodePruneParams, NodeRow, NodeUpsertParams, QueueCount,
    QueuePauseParams, QueueRow, Result, ScheduleFireParams, ScheduleInsertParams, ScheduleRow,
    ScheduleUpdateParams, StoreInfo, Wakeup, WebhookInsertParams, WebhookRow,
};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tokio::sync::broadcast;

use crate::error::{SqlxResultExt, map_sqlx};
pub use crate::listener::LISTENER_APPLICATION_NAME;
pub use crate::migrate::{MIGRATIONS, Migration};
pub use crate::notifier::NOTIFIER_APPLICATION_NAME;
use crate::options::Tables;
pub use crate::options::{MAX_SCHEMA_LEN, PgOptions, validate_schema};

/// Capacity of the wake-up broadcast channel; slow receivers just miss
/// messages (consumers also poll).
const WAKEUP_CAPACITY: usize = 1024;

/// Rota's PostgreSQL driver. Cheap to clone; clones share one pool and one
/// listener. The listener task stops when the last clone is dropped.
#[derive(Clone)]
pub struct PgDriver {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    connect_options: PgConnectOptions,
    tables: Tables,
    wakeups: broadcast::Sender<Wakeup>,
    listener: Mutex<Option<listener::ListenerTask>>,
    /// Notifies queues after the driver's own inserts commit.
    notifier: notifier::Notifier,
    /// The connection lone inserts reuse (see [`kept`]).
    kept: kept::Kept,
}

impl std::fmt::Debug for PgDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDriver")
            .field("schema", &self.inner.tables.schema)
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgDriver {
    /// Connects to `url` (e.g. `postgres://user:pass@host:5432/db`), creating
    /// the schema and applying migrations when `options.migrate` is set.
    ///
    /// Fails with [`DriverError::Unavailable`] when the server cannot be
    /// reached or is at its connection limit (the message says which), and
    /// with [`DriverError::Database`] for a malformed URL, an invalid schema
    /// name, or a connection the server refused (wrong password, unknown
    /// database).
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgDriver> {
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(|e| DriverError::Database(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(connect_options, options).await
    }

    /// Like [`PgDriver::connect`], from parsed connection options.
    pub async fn connect_with(
        connect_options: PgConnectOptions,
        options: PgOptions,
    ) -> Result<PgDriver> {
        let tables = Tables::new(options.schema.as_deref())?;
        // New connections are readied for claims only once the schema is
        // migrated (see `jobs::warm`).
        let ready = Arc::new(AtomicBool::new(!options.migrate));
        let pool = match PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every idle connection before handing it out: one
            // extra round trip per statement. A dead connection instead
            // fails its statement as `Unavailable`, which every caller
            // already retries, and the pool drops it.
            .test_before_acquire(false)
            .after_connect({
                let (t, ready) = (tables.clone(), ready.clone());
                move |conn, _| {
                    let t = t.clone();
                    let ready = ready.load(Ordering::Relaxed);
                    Box::pin(async move {
                        if ready {
                            jobs::warm(conn, &t).await?;
                        }
                        Ok(())
                    })
                }
            })
            .connect_with(connect_options.clone())
            .await
            .map_err(map_sqlx)
        {
            Ok(pool) => pool,
            Err(DriverError::PoolTimedOut) => {
                return Err(why_unconnected(&connect_options, options.acquire_timeout).await);
            }
            Err(e) => return Err(e),
        };
        let (wakeups, _) = broadcast::channel(WAKEUP_CAPACITY);
        let notifier = notifier::Notifier::new(
            connect_options.clone(),
            tables.channel.clone(),
            wakeups.clone(),
        );
        let driver = PgDriver {
            inner: Arc::new(Inner {
                notifier,
                pool,
                connect_options,
                tables,
                wakeups,
                listener: Mutex::new(None),
                kept: kept::Kept::new(options.max_connections),
            }),
        };
        if options.migrate {
            driver.migrate().await?;
            ready.store(true, Ordering::Relaxed);
        }
        Ok(driver)
    }

    /// The connection pool (for users' own queries and transactions).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema holding Rota's tables, if one was configured. Pass it to
    /// the `*_in` functions.
    pub fn schema(&self) -> Option<&str> {
        self.inner.tables.schema.as_deref()
    }

    /// The NOTIFY channel this driver listens on: `rota_jobs`, or
    /// `rota_jobs_<schema>` when a schema is set.
    pub fn channel(&self) -> &str {
        &self.inner.tables.channel
    }

    fn t(&self) -> &Tables {
        &self.inner.tables
    }
}

/// Longest the direct attempt of [`why_unconnected`] waits for an answer.
const DIAGNOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the pool's first connection failed with `PoolTimedOut`. The pool
/// gives up on most connect errors at once, with the error itself (a wrong
/// password, a missing database, an unknown host), but retries the ones it
/// deems temporary until its acquire timeout and then reports only that it
/// timed out: an operator read "pool exhausted" for a refused connection,
/// a server at its connection limit, or one that never answered. One
/// direct attempt, of at most [`DIAGNOSE_TIMEOUT`], gets the server's (or
/// the network's) own answer.
async fn why_unconnected(options: &PgConnectOptions, waited: std::time::Duration) -> DriverError {
    use sqlx::Connection as _;
    let target = match options.get_socket() {
        Some(dir) => format!("{} (port {})", dir.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let within = waited.min(DIAGNOSE_TIMEOUT);
    match tokio::time::timeout(within, PgConnection::connect_with(options)).await {
        Err(_) => DriverError::Unavailable(format!(
            "cannot connect to PostgreSQL at {target}: no answer within {waited:?}"
        )),
        Ok(Err(e)) => match map_sqlx(e) {
            DriverError::Unavailable(m) => {
                DriverError::Unavailable(format!("cannot connect to PostgreSQL at {target}: {m}"))
            }
            DriverError::Database(m) => DriverError::Database(format!(
                "PostgreSQL at {target} refused the connection: {m}"
            )),
            other => other,
        },
        // A plain connection works: the server came up meanwhile, or the
        // pool's own setup of each new connection (readying it for claims)
        // kept failing.
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            DriverError::Unavailable(format!(
                "PostgreSQL at {target} accepts connections, but the pool could not open a \
                 usable one within {waited:?}"
            ))
        }
    }
}

/// Connections a worker opens and readies for claims when it starts.
const READY_CONNECTIONS: u32 = 4;

/// Opens up to [`READY_CONNECTIONS`] pool connections at once and readies
/// each for claims (`jobs::warm`; the pool's first connection may predate
/// the migrations). Opening one costs a few milliseconds (the connection,
/// then the server's catalog caches): paid here instead of by a pick-up
/// that finds no idle connection.
async fn open_ready(pool: PgPool, t: Tables) {
    let n = READY_CONNECTIONS.min(pool.options().get_max_connections());
    // Held until the last is open, so that each acquire opens another.
    let mut held = Vec::new();
    for _ in 0..n {
        match pool.acquire().await {
            Ok(mut conn) => {
                if let Err(e) = jobs::warm(&mut conn, &t).await {
                    tracing::debug!(error = %e, "connection not readied");
                    conn.close_on_drop();
                }
                held.push(conn);
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection not opened ahead");
                break;
            }
        }
    }
}

/// Inserts jobs on the caller's connection, typically inside the caller's
/// transaction (`&mut *tx`), so the jobs exist if and only if it commits.
/// Queues that get available jobs are notified; PostgreSQL delivers the
/// notification on commit, and not at all on rollback. Large inputs and
/// unique keys use a savepoint so a failure leaves the caller's transaction
/// usable. `schema` must match the driver's ([`PgDriver::schema`]).
pub async fn job_insert_many_in(
    conn: &mut PgConnection,
    params: Vec<JobInsertParams>,
    schema: Option<&str>,
) -> Result<Vec<InsertedJob>> {
    let t = Tables::new(schema)?;
    jobs::insert_many(conn, &t, params).await
}

/// Lists jobs on the caller's connection (sees the caller's uncommitted
/// inserts), with the same filters and order as [`Driver::job_list`].
pub async fn job_list_in(
    conn: &mut PgConnection,
    params: &JobListParams,
    schema: Option<&str>,
) -> Result<Vec<Job>> {
    let t = Tables::new(schema)?;
    jobs::list(conn, &t, params).await
}

/// Finishes one run on the caller's connection, fenced by its lease token:
/// with the handler's own writes in the same transaction, the effect and the
/// new job state commit together. `applied = false` means the lease was lost
/// (the caller should roll back).
pub async fn job_finish_in(
    conn: &mut PgConnection,
    params: JobFinishParams,
    schema: Option<&str>,
) -> Result<FinishResult> {
    let t = Tables::new(schema)?;
    let id = params.id;
    let out = jobs::finish_on(conn, &t, std::slice::from_ref(&params)).await?;
    Ok(out
        .into_iter()
        .next()
        .unwrap_or(FinishResult { id, applied: false }))
}

#[async_trait]
impl Driver for PgDriver {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        migrate::migrate(&self.inner.pool, self.t()).await
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        migrate::status(&self.inner.pool, self.t()).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .db()?;
        Ok(())
    }

    async fn store_info(&self) -> Result<StoreInfo> {
        let version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
            .fetch_one(&self.inner.pool)
            .await
            .db()?;
        let rows = sqlx::query(
            "SELECT name, setting FROM pg_settings WHERE name IN
             ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
              'shared_buffers', 'max_connections', 'default_transaction_isolation')",
        )
        .fetch_all(&self.inner.pool)
        .await
        .db()?;
        let mut settings = BTreeMap::new();
        for r in &rows {
            settings.insert(r.try_get("name").db()?, r.try_get("setting").db()?);
        }
        if let Some(s) = self.schema() {
            settings.insert("rota_schema".to_owned(), s.to_owned());
        }
        Ok(StoreInfo {
            store: "postgres".to_owned(),
            version,
            settings,
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        let rx = self.inner.wakeups.subscribe();
        let mut guard = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = listener::spawn(
                self.inner.connect_options.clone(),
                self.inner.tables.channel.clone(),
                self.inner.wakeups.clone(),
                self.inner.notifier.pid(),
            );
            // A subscriber is a worker about to claim: open and ready its
            // first connections now, not on its first pick-ups.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(open_ready(
                    self.inner.pool.clone(),
                    self.inner.tables.clone(),
                ));
            }
        }
        rx
    }

    async fn job_insert_many(&self, params: Vec<JobInsertParams>) -> Result<Vec<InsertedJob>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let mut lease = self.inner.kept.acquire(&self.inner.pool).await?;
        let out = jobs::insert_many_from(
            lease.conn(),
            self.t(),
            &params,
            jobs::Origin::default(),
            jobs::Wake::AfterCommit,
        )
        .await?;
        lease.done();
        self.inner.notifier.notify(jobs::available_queues(&out));
        Ok(out)
    }

    async fn job_get(&self, id: i64) -> Result<Option<Job>> {
        jobs::get(&self.inner.pool, self.t(), id).await
    }

    async fn job_list(&self, params: &JobListParams) -> Result<Vec<Job>> {
        let mut conn = self.inner.pool.acquire().await.db()?;
        jobs::list(&mut conn, self.t(), params).await
    }

    async fn job_count(&self) -> Result<Vec<JobCount>> {
        jobs::count(&self.inner.pool, self.t()).await
    }

    async fn job_claim(&self, params: &JobClaimParams) -> Result<Vec<Job>> {
        jobs::claim(&self.inner.pool, self.t(), params).await
    }

    async fn job_finish_many(&self, params: Vec<JobFinishParams>) -> Result<Vec<FinishResult>> {
        jobs::finish_many(&self.inner.pool, self.t(), params).await
    }

    async fn job_heartbeat_many(
        &self,
        params: &JobHeartbeatParams,
    ) -> Result<Vec<HeartbeatResult>> {
        jobs::heartbeat(&self.inner.pool, self.t(), params).await
    }

    async fn job_checkin(&self, params: &JobCheckinParams) -> Result<bool> {
        jobs::checkin(&self.inner.pool, self.t(), params).await
    }

    async fn job_cancel(&self, params: &JobCancelParams) -> Result<Job> {
        jobs::cancel(&self.inner.pool, self.t(), params).await
    }

    async fn job_retry(&self, params: &JobRetryParams) -> Result<Job> {
        jobs::retry(&self.inner.pool, self.t(), params).await
    }

    async fn job_delete(&self, id: i64) -> Result<Job> {
        jobs::delete(&self.inner.pool, self.t(), id).await
    }

    async fn job_list_expired(&self, params: &JobExpiredParams) -> Result<Vec<Job>> {
        jobs::list_expired(&self.inner.pool, self.t(), params).await
    }

    async fn job_promote_due(&self, params: &JobPromoteParams) -> Result<Vec<QueueCount>> {
        jobs::promote_due(&self.inner.pool, self.t(), params).await
    }

    async fn job_prune(&self, params: &JobPruneParams) -> Result<u64> {
        jobs::prune(&self.inner.pool, self.t(), params).await
    }

    async fn queue_pause(&self, params: &QueuePauseParams) -> Result<()> {
        queues::pause(&self.inner.pool, self.t(), params).await
    }

    async fn queue_resume(&self, params: &QueuePauseParams) -> Result<()> {
        queues::resume(&self.inner.pool, self.t(), params).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        queues::list(&self.inner.pool, self.t()).await
    }

    async fn leader_attempt_elect(&self, params: &LeaderElectParams) -> Result<Option<LeaderTerm>> {
        leader::attempt_elect(&self.inner.pool, self.t(), params).await
    }

    async fn leader_attempt_reelect(
        &self,
        params: &LeaderReelectParams,
    ) -> Result<Option<LeaderTerm>> {
        leader::attempt_reelect(&self.inner.pool, self.t(), params).await
    }

    async fn leader_resign(&self, params: &LeaderReelectParams) -> Result<()> {
        leader::resign(&self.inner.pool, self.t(), params).await
    }

    async fn leader_get(&self, now: jiff::Timestamp) -> Result<Option<LeaderTerm>> {
        leader::get(&self.inner.pool, self.t(), now).await
    }

    async fn leader_terms(&self) -> Result<Vec<LeaderTerm>> {
        leader::terms(&self.inner.pool, self.t()).await
    }

    async fn node_upsert(&self, params: &NodeUpsertParams) -> Result<NodeRow> {
        nodes::upsert(&self.inner.pool, self.t(), params).await
    }

    async fn node_list(&self) -> Result<Vec<NodeRow>> {
        nodes::list(&self.inner.pool, self.t()).await
    }

    async fn node_drain(&self, params: &NodeDrainParams) -> Result<NodeRow> {
        nodes::drain(&self.inner.pool, self.t(), params).await
    }

    async fn node_delete(&self, id: &str) -> Result<()> {
        nodes::delete(&self.inner.pool, self.t(), id).await
    }

    async fn node_prune(&self, params: &NodePruneParams) -> Result<u64> {
        nodes::prune(&self.inner.pool, self.t(), params).await
    }

    async fn api_key_insert(&self, params: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
        api_keys::insert(&self.inner.pool, self.t(), params).await
    }

    async fn api_key_get(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        api_keys::get(&self.inner.pool, self.t(), id).await
    }

    async fn api_key_list(&self) -> Result<Vec<ApiKeyRow>> {
        api_keys::list(&self.inner.pool, self.t()).await
    }

    async fn api_key_revoke(&self, id: &str, now: jiff::Timestamp) -> Result<ApiKeyRow> {
        api_keys::revoke(&self.inner.pool, self.t(), id, now).await
    }

    async fn db_now(&self) -> Result<jiff::Timestamp> {
        let now: row::PgTs = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.inner.pool)
            .await
            .db()?;
        Ok(now.to_jiff())
    }

    async fn execution_insert(
        &self,
        params: ExecutionInsertParams,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        executions::insert(&self.inner.pool, self.t(), params).await
    }

    async fn execution_get(&self, id: i64) -> Result<Option<ExecutionRow>> {
        executions::get(&self.inner.pool, self.t(), id).await
    }

    async fn execution_list(&self, params: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        executions::list(&self.inner.pool, self.t(), params).await
    }

    async fn execution_add_jobs(&self, params: ExecutionAddJobsParams) -> Result<Vec<InsertedJob>> {
        executions::add_jobs(&self.inner.pool, self.t(), params).await
    }

    async fn execution_mark(&self, params: &ExecutionMarkParams) -> Result<ExecutionRow> {
        executions::mark(&self.inner.pool, self.t(), params).await
    }

    async fn execution_stop(
        &self,
        params: &ExecutionStopParams,
    ) -> Result<(ExecutionRow, Vec<i64>)> {
        executions::stop(&self.inner.pool, self.t(), params).await
    }

    async fn execution_prune(&self, params: &ExecutionPruneParams) -> Result<u64> {
        executions::prune(&self.inner.pool, self.t(), params).await
    }

    async fn execution_repair(&self, limit: u32) -> Result<Vec<ExecutionRepair>> {
        executions::repair(&self.inner.pool, self.t(), limit).await
    }

    async fn schedule_insert(&self, params: &ScheduleInsertParams) -> Result<ScheduleRow> {
        schedules::insert(&self.inner.pool, self.t(), params).await
    }

    async fn schedule_get(&self, id: i64) -> Result<Option<ScheduleRow>> {
        schedules::get(&self.inner.pool, self.t(), id).await
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleRow>> {
        schedules::list(&self.inner.pool, self.t()).await
    }

    async fn schedule_update(&self, params: &ScheduleUpdateParams) -> Result<ScheduleRow> {
        schedules::update(&self.inner.pool, self.t(), params).await
    }

    async fn schedule_delete(&self, id: i64) -> Result<ScheduleRow> {
        schedules::delete(&self.inner.pool, self.t(), id).await
    }

    async fn schedule_due(&self, now: jiff::Timestamp, limit: u32) -> Result<Vec<ScheduleRow>> {
        schedules::due(&self.inner.pool, self.t(), now, limit).await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        schedules::fire(&self.inner.pool, self.t(), params).await
    }

    async fn schedule_fires(&self, params: &FireListParams) -> Result<Vec<FireRow>> {
        schedules::fires(&self.inner.pool, self.t(), params).await
    }

    async fn schedule_unfinished(&self, id: i64) -> Result<i64> {
        schedules::unfinished(&self.inner.pool, self.t(), id).await
    }

    async fn webhook_insert(&self, params: &WebhookInsertParams) -> Result<WebhookRow> {
        webhooks::insert(&self.inner.pool, self.t(), params).await
    }

    async fn webhook_list(&self) -> Result<Vec<WebhookRow>> {
        webhooks::list(&self.inner.pool, self.t()).await
    }

    async fn webhook_delete(&self, id: i64) -> Result<WebhookRow> {
        webhooks::delete(&self.inner.pool, self.t(), id).await
    }

    async fn event_list(&self, limit: u32) -> Result<Vec<EventRow>> {
        webhooks::events(&self.inner.pool, self.t(), limit).await
    }

    async fn event_progress(&self, job_id: i64, now: jiff::Timestamp) -> Result<()> {
        webhooks::progress(&self.inner.pool, self.t(), job_id, now).await
    }

    async fn delivery_create(&self, params: &DeliveryCreateParams) -> Result<u64> {
        webhooks::create_deliveries(&self.inner.pool, self.t(), params).await
    }

    async fn delivery_due(
        &self,
        now: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        webhooks::due(&self.inner.pool, self.t(), now, limit).await
    }

    async fn delivery_record(&self, params: &DeliveryAttemptParams) -> Result<DeliveryRow> {
        webhooks::record(&self.inner.pool, self.t(), params).await
    }

    async fn delivery_list(&self, params: &DeliveryListParams) -> Result<Vec<DeliveryRow>> {
        webhooks::list_deliveries(&self.inner.pool, self.t(), params).await
    }
}
