//! Rota's SQLite storage driver.
//!
//! [`SqliteDriver`] implements [`rota_driver::Driver`] on one SQLite file in
//! WAL mode:
//!
//! - **One writer, group commit.** Every write goes to a single thread that
//!   owns the writing connections (a `rusqlite` one for enqueue, claim,
//!   finish and heartbeat; a sqlx one for everything else). It commits all
//!   operations queued at the moment in one `BEGIN IMMEDIATE` transaction
//!   per connection, each inside its own savepoint, and acknowledges them
//!   only after `COMMIT` — durable acks (`synchronous = FULL` by default) at
//!   the cost of one `fsync` per batch, not per caller. A failing operation
//!   is undone and reported alone. [`SqliteOptions::max_batch`] bounds a
//!   batch; [`SqliteDriver::writer_stats`] shows how many operations shared
//!   each commit.
//! - **Readers beside it.** Reads use a read-only pool
//!   ([`SqliteDriver::read_pool`]); WAL lets them run while the writer commits.
//! - **Wake-ups.** Committed inserts (also those of executions and schedule
//!   fires), promotions, retries and hand-backs wake their queue; commits by
//!   other connections or processes (a user's own transaction, see
//!   [`job_insert_many_in`]) are noticed by polling `PRAGMA data_version`
//!   and wake every queue.
//! - **Executions, schedules, webhooks.** Execution counters and status,
//!   and the webhook outbox, are written by the driver in the transaction
//!   of every insert (`insert_effects`) and state change
//!   (`change_effects`), users' own transactions through
//!   [`job_insert_many_in`] and [`job_finish_in`] included: a row trigger
//!   costs SQLite a sub-program call per row even when its `WHEN` is false
//!   (migrations 7 and 8). Deletes (pruning) keep a trigger; the execution
//!   table's own trigger derives the status from the counters. Every
//!   state-changing job `UPDATE` bumps the job's `revision`.
//! - **Own migrations**, tracked in `rota_migrations`.
//!
//! ```no_run
//! # async fn example() -> rota_driver::Result<()> {
//! use rota_sqlite::{SqliteDriver, SqliteOptions};
//!
//! let driver = SqliteDriver::open("sqlite://rota.db", SqliteOptions::default()).await?;
//! # let _ = driver;
//! # Ok(())
//! # }
//! ```

mod api_keys;
mod bind;
mod change_effects;
#[cfg(test)]
mod checkpoint_tests;
mod error;
mod executions;
#[doc(hidden)]
pub mod hot_sql;
mod insert;
#[cfg(test)]
mod insert_atomic_tests;
mod insert_effects;
mod jobs;
mod leader;
mod migrate;
mod nodes;
mod options;
mod queues;
mod raw_rows;
mod row;
mod runs;
#[cfg(test)]
mod runs_tests;
mod savepoint;
mod schedules;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
mod watch;
mod webhooks;
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rota_core::Job;
use rota_driver::{
    ApiKeyInsertParams, ApiKeyRow, ClaimParamsFn, DeliveryAttemptParams, DeliveryCreateParams,
    DeliveryListParams, DeliveryRow, Driver, DriverError, EventRow, ExecutionAddJobsParams,
    ExecutionInsertParams, ExecutionListParams, ExecutionMarkParams, ExecutionPruneParams,
    ExecutionRepair, ExecutionRow, ExecutionStopParams, FinishResult, FireListParams, FireOutcome,
    FireRow, HeartbeatResult, InsertedJob, JobCancelParams, JobCheckinParams, JobClaimParams,
    JobCount, JobExpiredParams, JobFinishParams, JobHeartbeatParams, JobInsertParams,
    JobListParams, JobPromoteParams, JobPruneParams, JobRetryParams, LeaderElectParams,
    LeaderReelectParams, LeaderTerm, MigrationStatus, NodeDrainParams, NodePruneParams, NodeRow,
    NodeUpsertParams, OnCommitted, ParkedClaim, ParkingLot, QueueCount, QueuePauseParams, QueueRow,
    Result, ScheduleFireParams, ScheduleInsertParams, ScheduleRow, ScheduleUpdateParams, StoreInfo,
    Wakeup, WebhookInsertParams, WebhookRow,
};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Row};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

pub use insert::job_insert_many_in;
pub use jobs::{MAX_LIST_LIMIT, job_list_in};
pub use options::{SqliteOptions, Synchronous, connect_options};
pub use runs::job_finish_in;
pub use writer::WriterStats;

use crate::error::{map_sqlx, writer_gone};
use crate::writer::{Counters, WriterHandle};

/// The SQLite driver. Cheap to clone; clones share one writer and pool.
/// The writer thread and the wake-up watcher stop when the last clone is
/// dropped.
#[derive(Clone)]
pub struct SqliteDriver {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) writer: WriterHandle,
    pub(crate) wake: broadcast::Sender<Wakeup>,
    pub(crate) counters: Arc<Counters>,
    /// Idle producers' claims, run by the writer right after a commit
    /// that makes their queue's jobs available.
    parked: Arc<ParkingLot>,
    read: SqlitePool,
    read_options: SqliteConnectOptions,
    options: SqliteOptions,
    watcher_started: AtomicBool,
    watcher: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut w) = self.watcher.lock()
            && let Some(handle) = w.take()
        {
            handle.abort();
        }
    }
}

impl std::fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDriver")
            .field("file", &self.inner.read_options.get_filename())
            .field("options", &self.inner.options)
            .field("writer", &self.inner.writer)
            .finish_non_exhaustive()
    }
}

impl SqliteDriver {
    /// Opens (creating if missing) the database at `url_or_path` —
    /// `sqlite://path`, `sqlite:path` or a plain path — sets WAL,
    /// `synchronous`, `busy_timeout` and `foreign_keys`, applies migrations
    /// when [`SqliteOptions::migrate`] is set, and starts the writer thread.
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// Query parameters of a `sqlite://` URL (sqlx's connect options, e.g.
    /// `vfs`) apply to the read pool and the writer's sqlx connection only;
    /// the writer's native connection opens the same file with Rota's
    /// pragmas (`synchronous`, `busy_timeout`, `foreign_keys`).
    pub async fn open(url_or_path: &str, options: SqliteOptions) -> Result<SqliteDriver> {
        let write_options = options::connect_options_with(url_or_path, &options)?;
        if let Some(dir) = write_options.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return Err(DriverError::Unavailable(format!(
                "cannot create {}: {e}",
                dir.display()
            )));
        }
        let mut conn = connect_writer(&write_options, options.busy_timeout).await?;
        if options.migrate {
            migrate::migrate(&mut conn).await?;
        }
        let read_options = options::read_options(url_or_path, &options)?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(read_options.clone())
            .await
            .map_err(map_sqlx)?;
        let counters = Arc::new(Counters::default());
        let (wake, _) = broadcast::channel(options.wakeup_capacity.max(1));
        let parked = Arc::new(ParkingLot::default());
        let native = writer::open_native(
            &write_options,
            options.synchronous.as_str(),
            options.busy_timeout,
        )?;
        let writer = writer::spawn(
            conn,
            native,
            writer::WriterSetup {
                connect: write_options,
                max_batch: options.max_batch,
                queue: options.writer_queue,
                counters: counters.clone(),
                wake: wake.clone(),
                parked: parked.clone(),
                durability: if matches!(options.synchronous, Synchronous::Full | Synchronous::Extra)
                {
                    writer::Durability::SyncThread
                } else {
                    writer::Durability::OwnCommits
                },
            },
        )?;
        Ok(SqliteDriver {
            inner: Arc::new(Inner {
                writer,
                wake,
                counters,
                parked,
                read,
                read_options,
                options,
                watcher_started: AtomicBool::new(false),
                watcher: Mutex::new(None),
            }),
        })
    }

    /// The read-only pool the driver reads through. Writes on it fail.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.inner.read
    }

    /// The settings the driver was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Group-commit figures so far: committed batches and the operations
    /// they carried.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            batches: self.inner.counters.batches.load(Ordering::Relaxed),
            ops: self.inner.counters.ops.load(Ordering::Relaxed),
            syncs: self.inner.counters.syncs.load(Ordering::Relaxed),
            checkpoints: self.inner.counters.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Finishes runs on the writer; `committed` runs right after the
    /// batch's commit, before its sync (every claim's answer waits for a
    /// later sync, which covers this commit too).
    async fn finish_many(
        &self,
        params: Vec<JobFinishParams>,
        committed: Option<OnCommitted>,
    ) -> Result<Vec<FinishResult>> {
        if params.is_empty() {
            if let Some(f) = committed {
                f();
            }
            return Ok(Vec::new());
        }
        let plan = runs::FinishPlan::new(&params)?;
        let atomic = plan.is_one_statement();
        self.inner
            .writer
            .write_native(atomic, move |conn, fx| {
                let (results, woken) = runs::finish_many_native(conn, plan, &params)?;
                for q in &woken {
                    fx.wake(q);
                }
                if let Some(f) = committed {
                    fx.when_committed(f);
                }
                Ok(results)
            })
            .await
    }

    async fn read(&self) -> Result<PoolConnection<Sqlite>> {
        self.inner.read.acquire().await.map_err(map_sqlx)
    }

    fn start_watcher(&self) {
        if self.inner.watcher_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // Not in a runtime: try again on the next subscribe.
            self.inner.watcher_started.store(false, Ordering::SeqCst);
            return;
        };
        let task = rt.spawn(watch::run(
            Arc::downgrade(&self.inner),
            self.inner.read_options.clone(),
            self.inner.options.watch_interval,
        ));
        if let Ok(mut w) = self.inner.watcher.lock() {
            *w = Some(task.abort_handle());
        }
    }
}

/// Opens the writing connection. Switching a new database to WAL needs a
/// lock SQLite's busy handler does not wait for, so when several processes
/// open a fresh file at once, "database is locked" is retried here for up
/// to `busy_timeout`.
async fn connect_writer(
    options: &SqliteConnectOptions,
    busy_timeout: std::time::Duration,
) -> Result<sqlx::SqliteConnection> {
    let deadline = tokio::time::Instant::now() + busy_timeout;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match options.connect().await {
            Ok(conn) => return Ok(conn),
            Err(e) if error::is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(map_sqlx(e)),
        }
    }
}

#[async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        self.inner
            .writer
            .alone(|conn, _| Box::pin(migrate::migrate(conn)))
            .await
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        migrate::status(&mut *self.read().await?).await
    }

    async fn ping(&self) -> Result<()> {
        if self.inner.writer.is_closed() {
            return Err(writer_gone());
        }
        sqlx::query("SELECT 1")
            .execute(&mut *self.read().await?)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn store_info(&self) -> Result<StoreInfo> {
        let mut conn = self.read().await?;
        let row = sqlx::query(
            "SELECT sqlite_version() AS version, (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
             (SELECT page_size FROM pragma_page_size) AS page_size",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
        let get = |c: &str| -> Result<String> {
            row.try_get::<String, _>(c)
                .or_else(|_| row.try_get::<i64, _>(c).map(|v| v.to_string()))
                .map_err(map_sqlx)
        };
        let o = &self.inner.options;
        let settings = BTreeMap::from([
            ("journal_mode".to_owned(), get("journal_mode")?),
            ("synchronous".to_owned(), o.synchronous.as_str().to_owned()),
            (
                "busy_timeout_ms".to_owned(),
                o.busy_timeout.as_millis().to_string(),
            ),
            ("page_size".to_owned(), get("page_size")?),
            (
                "writer".to_owned(),
                format!(
                    "one thread (rusqlite hot paths, sqlx for the rest), group commit{}, \
                     WAL checkpointed by the writer between loads (at {} pages when idle, \
                     {} during a load)",
                    if self.inner.counters.sync_thread.load(Ordering::Relaxed) {
                        ", WAL synced by a thread of its own before each acknowledgement"
                    } else {
                        ""
                    },
                    writer::IDLE_PAGES,
                    writer::BUSY_PAGES,
                ),
            ),
            ("max_batch".to_owned(), o.max_batch.to_string()),
            (
                "read_connections".to_owned(),
                o.read_connections.to_string(),
            ),
        ]);
        Ok(StoreInfo {
            store: "sqlite".to_owned(),
            version: get("version")?,
            settings,
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        let rx = self.inner.wake.subscribe();
        self.start_watcher();
        rx
    }

    async fn job_insert_many(&self, params: Vec<JobInsertParams>) -> Result<Vec<InsertedJob>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let plan = insert::InsertPlan::new(params, insert::JobOrigin::default())?;
        // Never autocommit: the insert and its outbox statement must
        // commit together.
        let ran = self
            .inner
            .writer
            .write_native(false, move |conn, fx| {
                let ran = insert::insert_many_native(conn, plan)?;
                for queue in ran.woken_queues() {
                    fx.wake(queue);
                }
                Ok(ran)
            })
            .await?;
        // Built here, not on the writer thread.
        ran.results()
    }

    async fn job_get(&self, id: i64) -> Result<Option<Job>> {
        jobs::get(&mut *self.read().await?, id).await
    }

    async fn job_list(&self, params: &JobListParams) -> Result<Vec<Job>> {
        job_list_in(&mut *self.read().await?, params).await
    }

    async fn job_count(&self) -> Result<Vec<JobCount>> {
        jobs::count(&mut *self.read().await?).await
    }

    async fn job_claim(&self, params: &JobClaimParams) -> Result<Vec<Job>> {
        if params.max == 0 {
            return Ok(Vec::new());
        }
        let p = params.clone();
        let rows = self
            .inner
            .writer
            .write_native(true, move |conn, _| runs::claim_rows_native(conn, &p))
            .await?;
        // Decoded here, off the writer thread.
        runs::decode_claimed(&rows, params)
    }

    fn job_claim_park(&self, queue: &str, make: ClaimParamsFn) -> Option<ParkedClaim> {
        if self.inner.writer.is_closed() {
            return None;
        }
        Some(self.inner.parked.park(queue, make))
    }

    async fn job_finish_many(&self, params: Vec<JobFinishParams>) -> Result<Vec<FinishResult>> {
        self.finish_many(params, None).await
    }

    async fn job_finish_many_then(
        &self,
        params: Vec<JobFinishParams>,
        committed: OnCommitted,
    ) -> Result<Vec<FinishResult>> {
        self.finish_many(params, Some(committed)).await
    }

    async fn job_heartbeat_many(
        &self,
        params: &JobHeartbeatParams,
    ) -> Result<Vec<HeartbeatResult>> {
        if params.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let p = params.clone();
        self.inner
            .writer
            .write_native(p.jobs.len() <= runs::CHUNK, move |conn, _| {
                runs::heartbeat_many_native(conn, &p)
            })
            .await
    }

    async fn job_checkin(&self, params: &JobCheckinParams) -> Result<bool> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { runs::checkin(conn, &p).await }))
            .await
    }

    async fn job_cancel(&self, params: &JobCancelParams) -> Result<Job> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { jobs::cancel(conn, &p).await }))
            .await
    }

    async fn job_retry(&self, params: &JobRetryParams) -> Result<Job> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, fx| {
                Box::pin(async move {
                    let job = jobs::retry(conn, &p).await?;
                    fx.wake(&job.queue);
                    Ok(job)
                })
            })
            .await
    }

    async fn job_delete(&self, id: i64) -> Result<Job> {
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { jobs::delete(conn, id).await }))
            .await
    }

    async fn job_list_expired(&self, params: &JobExpiredParams) -> Result<Vec<Job>> {
        runs::list_expired(&mut *self.read().await?, params).await
    }

    async fn job_promote_due(&self, params: &JobPromoteParams) -> Result<Vec<QueueCount>> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, fx| {
                Box::pin(async move {
                    let counts = runs::promote_due(conn, &p).await?;
                    for c in &counts {
                        fx.wake(&c.queue);
                    }
                    Ok(counts)
                })
            })
            .await
    }

    async fn job_prune(&self, params: &JobPruneParams) -> Result<u64> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { jobs::prune(conn, &p).await }))
            .await
    }

    async fn queue_pause(&self, params: &QueuePauseParams) -> Result<()> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { queues::pause(conn, &p).await }))
            .await
    }

    async fn queue_resume(&self, params: &QueuePauseParams) -> Result<()> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, fx| {
                Box::pin(async move {
                    if queues::resume(conn, &p).await? {
                        fx.wake(&p.name);
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        queues::list(&mut *self.read().await?).await
    }

    async fn leader_attempt_elect(&self, params: &LeaderElectParams) -> Result<Option<LeaderTerm>> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { leader::attempt_elect(conn, &p).await }))
            .await
    }

    async fn leader_attempt_reelect(
        &self,
        params: &LeaderReelectParams,
    ) -> Result<Option<LeaderTerm>> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { leader::attempt_reelect(conn, &p).await }))
            .await
    }

    async fn leader_resign(&self, params: &LeaderReelectParams) -> Result<()> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { leader::resign(conn, &p).await }))
            .await
    }

    async fn leader_get(&self, now: jiff::Timestamp) -> Result<Option<LeaderTerm>> {
        leader::get(&mut *self.read().await?, now).await
    }

    async fn leader_terms(&self) -> Result<Vec<LeaderTerm>> {
        leader::terms(&mut *self.read().await?).await
    }

    async fn node_upsert(&self, params: &NodeUpsertParams) -> Result<NodeRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { nodes::upsert(conn, &p).await }))
            .await
    }

    async fn node_list(&self) -> Result<Vec<NodeRow>> {
        nodes::list(&mut *self.read().await?).await
    }

    async fn node_drain(&self, params: &NodeDrainParams) -> Result<NodeRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { nodes::drain(conn, &p).await }))
            .await
    }

    async fn node_delete(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { nodes::delete(conn, &id).await }))
            .await
    }

    async fn node_prune(&self, params: &NodePruneParams) -> Result<u64> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { nodes::prune(conn, &p).await }))
            .await
    }

    async fn api_key_insert(&self, params: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { api_keys::insert(conn, &p).await }))
            .await
    }

    async fn api_key_get(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        api_keys::get(&mut *self.read().await?, id).await
    }

    async fn api_key_list(&self) -> Result<Vec<ApiKeyRow>> {
        api_keys::list(&mut *self.read().await?).await
    }

    async fn api_key_revoke(&self, id: &str, now: jiff::Timestamp) -> Result<ApiKeyRow> {
        let id = id.to_owned();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { api_keys::revoke(conn, &id, now).await }))
            .await
    }
    async fn db_now(&self) -> Result<jiff::Timestamp> {
        Ok(jiff::Timestamp::now())
    }

    async fn execution_insert(
        &self,
        params: ExecutionInsertParams,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        self.inner
            .writer
            .write(move |conn, fx| Box::pin(executions::insert(conn, fx, params)))
            .await
    }

    async fn execution_get(&self, id: i64) -> Result<Option<ExecutionRow>> {
        executions::get(&mut *self.read().await?, id).await
    }

    async fn execution_list(&self, params: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        executions::list(&mut *self.read().await?, params).await
    }

    async fn execution_add_jobs(&self, params: ExecutionAddJobsParams) -> Result<Vec<InsertedJob>> {
        self.inner
            .writer
            .write(move |conn, fx| Box::pin(executions::add_jobs(conn, fx, params)))
            .await
    }

    async fn execution_mark(&self, params: &ExecutionMarkParams) -> Result<ExecutionRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { executions::mark(conn, &p).await }))
            .await
    }

    async fn execution_stop(
        &self,
        params: &ExecutionStopParams,
    ) -> Result<(ExecutionRow, Vec<i64>)> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { executions::stop(conn, &p).await }))
            .await
    }

    async fn execution_prune(&self, params: &ExecutionPruneParams) -> Result<u64> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { executions::prune(conn, &p).await }))
            .await
    }

    async fn execution_repair(&self, limit: u32) -> Result<Vec<ExecutionRepair>> {
        self.inner
            .writer
            .write(move |conn, _| Box::pin(executions::repair(conn, limit)))
            .await
    }

    async fn schedule_insert(&self, params: &ScheduleInsertParams) -> Result<ScheduleRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { schedules::insert(conn, &p).await }))
            .await
    }

    async fn schedule_get(&self, id: i64) -> Result<Option<ScheduleRow>> {
        schedules::get(&mut *self.read().await?, id).await
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleRow>> {
        schedules::list(&mut *self.read().await?).await
    }

    async fn schedule_update(&self, params: &ScheduleUpdateParams) -> Result<ScheduleRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { schedules::update(conn, &p).await }))
            .await
    }

    async fn schedule_delete(&self, id: i64) -> Result<ScheduleRow> {
        self.inner
            .writer
            .write(move |conn, _| Box::pin(schedules::delete(conn, id)))
            .await
    }

    async fn schedule_due(&self, now: jiff::Timestamp, limit: u32) -> Result<Vec<ScheduleRow>> {
        schedules::due(&mut *self.read().await?, now, limit).await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        self.inner
            .writer
            .write(move |conn, fx| Box::pin(schedules::fire(conn, fx, params)))
            .await
    }

    async fn schedule_fires(&self, params: &FireListParams) -> Result<Vec<FireRow>> {
        schedules::fires(&mut *self.read().await?, params).await
    }

    async fn schedule_unfinished(&self, id: i64) -> Result<i64> {
        schedules::unfinished(&mut *self.read().await?, id).await
    }

    async fn webhook_insert(&self, params: &WebhookInsertParams) -> Result<WebhookRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { webhooks::insert(conn, &p).await }))
            .await
    }

    async fn webhook_list(&self) -> Result<Vec<WebhookRow>> {
        webhooks::list(&mut *self.read().await?).await
    }

    async fn webhook_delete(&self, id: i64) -> Result<WebhookRow> {
        self.inner
            .writer
            .write(move |conn, _| Box::pin(webhooks::delete(conn, id)))
            .await
    }

    async fn event_list(&self, limit: u32) -> Result<Vec<EventRow>> {
        webhooks::events(&mut *self.read().await?, limit).await
    }

    async fn event_progress(&self, job_id: i64, now: jiff::Timestamp) -> Result<()> {
        self.inner
            .writer
            .write(move |conn, _| Box::pin(webhooks::progress(conn, job_id, now)))
            .await
    }

    async fn delivery_create(&self, params: &DeliveryCreateParams) -> Result<u64> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| {
                Box::pin(async move { webhooks::create_deliveries(conn, &p).await })
            })
            .await
    }

    async fn delivery_due(
        &self,
        now: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        webhooks::due(&mut *self.read().await?, now, limit).await
    }

    async fn delivery_record(&self, params: &DeliveryAttemptParams) -> Result<DeliveryRow> {
        let p = params.clone();
        self.inner
            .writer
            .write(move |conn, _| Box::pin(async move { webhooks::record(conn, &p).await }))
            .await
    }

    async fn delivery_list(&self, params: &DeliveryListParams) -> Result<Vec<DeliveryRow>> {
        webhooks::list_deliveries(&mut *self.read().await?, params).await
    }
}
