//! The storage boundary between Rota's engine and its stores.
//!
//! One [`Driver`] trait, implemented by `rota-sqlite` and `rota-postgres`.
//! Methods are named entity first (`job_claim`, `leader_attempt_elect`) and
//! take one params struct. Drivers own all SQL; the engine decides *what*
//! state a job moves to (through [`rota_core::state`]), drivers make the
//! change atomically and *fence* it: a run's writes apply only while its
//! lease token still matches.
//!
//! Times are passed in by the caller (from its injected clock) so that logic
//! depending on time is testable and every node agrees on one source.

mod collect;
mod error;
mod executions;
mod params;
mod park;
mod schedules;
mod webhooks;

use async_trait::async_trait;
use rota_core::Job;
use tokio::sync::broadcast;

pub use collect::try_collect_exact;
pub use error::{DriverError, Result};
pub use executions::*;
pub use params::*;
pub use park::*;
pub use schedules::*;
pub use webhooks::*;

/// Run once by a store when a write it was given is committed (see
/// [`Driver::job_finish_many_then`]).
pub type OnCommitted = Box<dyn FnOnce() + Send>;

/// A storage backend for Rota.
///
/// Methods with a default body are optional capabilities: a driver lacking
/// one returns [`DriverError::NotImplemented`].
///
/// Every method is one atomic unit (one transaction) unless it says
/// otherwise. Implementations must be cheap to share (`Arc<dyn Driver>`).
#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug + 'static {
    /// Short store name: `sqlite` or `postgres`.
    fn name(&self) -> &'static str;

    /// Applies pending migrations (idempotent; safe to run concurrently).
    async fn migrate(&self) -> Result<()>;

    /// Lists known migrations and whether each is applied.
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>>;

    /// Checks the store is reachable.
    async fn ping(&self) -> Result<()>;

    /// Store version and durability settings, for benchmarks and `readyz`.
    async fn store_info(&self) -> Result<StoreInfo>;

    /// Subscribes to wake-ups: a message arrives soon after jobs become
    /// available (committed inserts, promotions, retries), from this process
    /// or, where the store can tell, from others. Lagging receivers just
    /// miss messages; consumers also poll.
    fn subscribe(&self) -> broadcast::Receiver<Wakeup>;

    /// Inserts jobs in one transaction; returns once committed. A spec whose
    /// `unique_key` is held by an unfinished job is not inserted: the
    /// existing job is returned with `inserted = false`. Results keep input
    /// order.
    async fn job_insert_many(&self, params: Vec<JobInsertParams>) -> Result<Vec<InsertedJob>>;

    /// One job by id.
    async fn job_get(&self, id: i64) -> Result<Option<Job>>;

    /// Jobs matching the filter, newest first, keyset-paginated by id.
    async fn job_list(&self, params: &JobListParams) -> Result<Vec<Job>>;

    /// Counts jobs per queue and state.
    async fn job_count(&self) -> Result<Vec<JobCount>>;

    /// Claims up to `max` available jobs of one queue, ordered by priority,
    /// then `run_at`, then id; skips everything when the queue is paused and
    /// jobs whose label selector the node does not satisfy. Claimed jobs are
    /// `running` with `attempt + 1`, the given lease token and expiry,
    /// `started_at = now`, `node = node_id`.
    async fn job_claim(&self, params: &JobClaimParams) -> Result<Vec<Job>>;

    /// Parks an idle producer's claim on `queue`: the store runs it (built
    /// by `make` at that moment, as its own transaction) right after this
    /// process next commits a write that makes jobs of `queue` available,
    /// and delivers the result. `None` when the store cannot park; the
    /// caller then waits for a wake-up and claims.
    fn job_claim_park(&self, queue: &str, make: ClaimParamsFn) -> Option<ParkedClaim> {
        let _ = (queue, make);
        None
    }

    /// Moves running jobs to the states the engine computed, each fenced by
    /// its lease token (and optionally by lease expiry). Returns, per input,
    /// whether it applied; a stale token changes nothing.
    async fn job_finish_many(&self, params: Vec<JobFinishParams>) -> Result<Vec<FinishResult>>;

    /// [`job_finish_many`](Self::job_finish_many), running `committed`
    /// once the writes are committed, before this call returns and
    /// possibly before they are durable. Never when they are not committed
    /// (an error, a rollback); and it may not run even when they are (the
    /// call failed after the commit, or was dropped), so a caller releases
    /// anyway what the callback would. The engine frees the runs' queue
    /// slots there, so the next claim need not wait for the sync.
    ///
    /// The callback must not block: SQLite runs it on its writer thread.
    ///
    /// A store may run it before the commit is durable only if every claim
    /// it answers afterwards is answered once these writes are as durable
    /// as the claim's own (SQLite syncs its WAL in commit order before any
    /// answer). Then a crash repeats at most a queue's concurrency in runs,
    /// as when slots wait for the answer. The default runs it once
    /// `job_finish_many` has returned `Ok`.
    async fn job_finish_many_then(
        &self,
        params: Vec<JobFinishParams>,
        committed: OnCommitted,
    ) -> Result<Vec<FinishResult>> {
        let results = self.job_finish_many(params).await?;
        committed();
        Ok(results)
    }

    /// Extends the leases of held running jobs. Reports per job whether the
    /// lease is still held and whether cancellation was requested.
    async fn job_heartbeat_many(&self, params: &JobHeartbeatParams)
    -> Result<Vec<HeartbeatResult>>;

    /// Stores progress and/or output of a running job, fenced by lease token.
    /// Returns whether the lease was still held.
    async fn job_checkin(&self, params: &JobCheckinParams) -> Result<bool>;

    /// Requests cancellation. Waiting jobs become `canceled` at once; a
    /// running job gets `cancel_requested_at` and stays running until its
    /// worker stops. A finished job is [`DriverError::InvalidState`].
    async fn job_cancel(&self, params: &JobCancelParams) -> Result<Job>;

    /// Operator retry: a `scheduled`, `retrying` or finished job becomes
    /// `available` now (finished ones with `attempt = 0`). An `available` or
    /// `running` job is [`DriverError::InvalidState`] (the transition table
    /// has no such row: it is already runnable, or running).
    async fn job_retry(&self, params: &JobRetryParams) -> Result<Job>;

    /// Deletes a finished job; other states are [`DriverError::InvalidState`].
    async fn job_delete(&self, id: i64) -> Result<Job>;

    /// Running jobs whose lease expired before `now`, oldest expiry first.
    async fn job_list_expired(&self, params: &JobExpiredParams) -> Result<Vec<Job>>;

    /// Makes `scheduled` and `retrying` jobs whose `run_at` has come
    /// `available`; returns how many per queue.
    async fn job_promote_due(&self, params: &JobPromoteParams) -> Result<Vec<QueueCount>>;

    /// Deletes finished jobs by age and/or count; returns how many. Jobs of
    /// an execution are not pruned here: execution retention deletes them
    /// with their execution, so a finished execution's figures never change.
    async fn job_prune(&self, params: &JobPruneParams) -> Result<u64>;

    /// Pauses a queue (its jobs stay, nothing is claimed). Idempotent.
    async fn queue_pause(&self, params: &QueuePauseParams) -> Result<()>;

    /// Resumes a paused queue. Idempotent.
    async fn queue_resume(&self, params: &QueuePauseParams) -> Result<()>;

    /// Every queue that has jobs or a stored setting.
    async fn queue_list(&self) -> Result<Vec<QueueRow>>;

    /// Becomes leader if there is none or the lease expired. Returns the new
    /// term when elected. Each term is recorded in the term history.
    async fn leader_attempt_elect(&self, params: &LeaderElectParams) -> Result<Option<LeaderTerm>>;

    /// Extends our own term; `None` when it was lost (expired and taken).
    async fn leader_attempt_reelect(
        &self,
        params: &LeaderReelectParams,
    ) -> Result<Option<LeaderTerm>>;

    /// Gives up leadership of `term` at once.
    async fn leader_resign(&self, params: &LeaderReelectParams) -> Result<()>;

    /// The current leader, if its lease has not expired at `now`.
    async fn leader_get(&self, now: jiff::Timestamp) -> Result<Option<LeaderTerm>>;

    /// Recorded leader terms, oldest first.
    async fn leader_terms(&self) -> Result<Vec<LeaderTerm>>;

    /// Registers a node or records its heartbeat (insert or update by id;
    /// `started_at` and `draining_at` survive updates). Returns the row, so
    /// the node learns whether it was asked to drain.
    async fn node_upsert(&self, _params: &NodeUpsertParams) -> Result<NodeRow> {
        Err(DriverError::NotImplemented("node_upsert"))
    }

    /// Every known node, by id.
    async fn node_list(&self) -> Result<Vec<NodeRow>> {
        Err(DriverError::NotImplemented("node_list"))
    }

    /// Asks a node to stop claiming new work (idempotent; keeps the first
    /// `draining_at`). Unknown id: [`DriverError::NotFound`] with entity `node`.
    async fn node_drain(&self, _params: &NodeDrainParams) -> Result<NodeRow> {
        Err(DriverError::NotImplemented("node_drain"))
    }

    /// Removes a node (clean shutdown). Unknown ids are ignored.
    async fn node_delete(&self, _id: &str) -> Result<()> {
        Err(DriverError::NotImplemented("node_delete"))
    }

    /// Removes nodes whose last heartbeat is older than the cutoff; returns
    /// how many.
    async fn node_prune(&self, _params: &NodePruneParams) -> Result<u64> {
        Err(DriverError::NotImplemented("node_prune"))
    }

    /// Stores a new API key. A duplicate id is [`DriverError::Conflict`].
    async fn api_key_insert(&self, _params: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
        Err(DriverError::NotImplemented("api_key_insert"))
    }

    /// One API key by id (revoked ones included).
    async fn api_key_get(&self, _id: &str) -> Result<Option<ApiKeyRow>> {
        Err(DriverError::NotImplemented("api_key_get"))
    }

    /// Every API key, by creation time.
    async fn api_key_list(&self) -> Result<Vec<ApiKeyRow>> {
        Err(DriverError::NotImplemented("api_key_list"))
    }

    /// Revokes a key (idempotent; keeps the first `revoked_at`). Unknown id:
    /// [`DriverError::NotFound`] with entity `api_key`.
    async fn api_key_revoke(&self, _id: &str, _now: jiff::Timestamp) -> Result<ApiKeyRow> {
        Err(DriverError::NotImplemented("api_key_revoke"))
    }

    /// The database's current time, for decisions several nodes must agree
    /// on (schedule fires). SQLite: the local clock.
    async fn db_now(&self) -> Result<jiff::Timestamp> {
        Err(DriverError::NotImplemented("db_now"))
    }

    /// Creates an execution and its first jobs in one transaction.
    async fn execution_insert(
        &self,
        _params: ExecutionInsertParams,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        Err(DriverError::NotImplemented("execution_insert"))
    }

    /// One execution by id, with its per-state job counts.
    async fn execution_get(&self, _id: i64) -> Result<Option<ExecutionRow>> {
        Err(DriverError::NotImplemented("execution_get"))
    }

    /// Executions matching the filter, newest first.
    async fn execution_list(&self, _params: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        Err(DriverError::NotImplemented("execution_list"))
    }

    /// Adds jobs to an execution (not to one marked `succeeded`/`error`
    /// without jobs: [`DriverError::InvalidState`]-like `Conflict`). Unknown
    /// id: `NotFound` with entity `execution`.
    async fn execution_add_jobs(
        &self,
        _params: ExecutionAddJobsParams,
    ) -> Result<Vec<InsertedJob>> {
        Err(DriverError::NotImplemented("execution_add_jobs"))
    }

    /// Marks an execution without jobs `succeeded` or `error` with a
    /// message. One with jobs: [`DriverError::Conflict`] (its status is
    /// derived). Unknown id: `NotFound` with entity `execution`.
    async fn execution_mark(&self, _params: &ExecutionMarkParams) -> Result<ExecutionRow> {
        Err(DriverError::NotImplemented("execution_mark"))
    }

    /// Cancels every unfinished job of the execution in one transaction:
    /// waiting jobs end `canceled`, running ones get a cancel request.
    /// Returns the execution and the ids of running jobs told to stop.
    async fn execution_stop(
        &self,
        _params: &ExecutionStopParams,
    ) -> Result<(ExecutionRow, Vec<i64>)> {
        Err(DriverError::NotImplemented("execution_stop"))
    }

    /// Deletes finished executions beyond the newest `keep_last` per owner,
    /// with their jobs; never touches running ones. Returns how many.
    async fn execution_prune(&self, _params: &ExecutionPruneParams) -> Result<u64> {
        Err(DriverError::NotImplemented("execution_prune"))
    }

    /// Recomputes counts and status of executions whose stored figures no
    /// longer match their jobs (e.g. after a crash between writes); returns
    /// what it fixed.
    async fn execution_repair(&self, _limit: u32) -> Result<Vec<ExecutionRepair>> {
        Err(DriverError::NotImplemented("execution_repair"))
    }

    /// Creates a schedule. A duplicate name is [`DriverError::Conflict`].
    async fn schedule_insert(&self, _params: &ScheduleInsertParams) -> Result<ScheduleRow> {
        Err(DriverError::NotImplemented("schedule_insert"))
    }

    /// One schedule by id.
    async fn schedule_get(&self, _id: i64) -> Result<Option<ScheduleRow>> {
        Err(DriverError::NotImplemented("schedule_get"))
    }

    /// Every schedule, by id.
    async fn schedule_list(&self) -> Result<Vec<ScheduleRow>> {
        Err(DriverError::NotImplemented("schedule_list"))
    }

    /// Changes definition, next fire and/or pause state. Unknown id:
    /// `NotFound` with entity `schedule`.
    async fn schedule_update(&self, _params: &ScheduleUpdateParams) -> Result<ScheduleRow> {
        Err(DriverError::NotImplemented("schedule_update"))
    }

    /// Deletes a schedule and its fire history (its jobs stay).
    async fn schedule_delete(&self, _id: i64) -> Result<ScheduleRow> {
        Err(DriverError::NotImplemented("schedule_delete"))
    }

    /// Active schedules whose `next_fire_at <= now`, oldest due first.
    async fn schedule_due(&self, _now: jiff::Timestamp, _limit: u32) -> Result<Vec<ScheduleRow>> {
        Err(DriverError::NotImplemented("schedule_due"))
    }

    /// Records fires and advances the schedule atomically (see
    /// [`ScheduleFireParams`]).
    async fn schedule_fire(&self, _params: ScheduleFireParams) -> Result<FireOutcome> {
        Err(DriverError::NotImplemented("schedule_fire"))
    }

    /// Fire history of a schedule, newest first, with job outcomes.
    async fn schedule_fires(&self, _params: &FireListParams) -> Result<Vec<FireRow>> {
        Err(DriverError::NotImplemented("schedule_fires"))
    }

    /// Unfinished jobs created by a schedule (for the `alone` policy).
    async fn schedule_unfinished(&self, _id: i64) -> Result<i64> {
        Err(DriverError::NotImplemented("schedule_unfinished"))
    }

    /// Creates a webhook subscription.
    async fn webhook_insert(&self, _params: &WebhookInsertParams) -> Result<WebhookRow> {
        Err(DriverError::NotImplemented("webhook_insert"))
    }

    /// Every webhook subscription.
    async fn webhook_list(&self) -> Result<Vec<WebhookRow>> {
        Err(DriverError::NotImplemented("webhook_list"))
    }

    /// Deletes a subscription and its deliveries. Unknown id: `NotFound`
    /// with entity `webhook`.
    async fn webhook_delete(&self, _id: i64) -> Result<WebhookRow> {
        Err(DriverError::NotImplemented("webhook_delete"))
    }

    /// Unconsumed status-change events, oldest first.
    async fn event_list(&self, _limit: u32) -> Result<Vec<EventRow>> {
        Err(DriverError::NotImplemented("event_list"))
    }

    /// Records a progress check-in event for a job (only while webhooks
    /// exist; a no-op otherwise).
    async fn event_progress(&self, _job_id: i64, _now: jiff::Timestamp) -> Result<()> {
        Err(DriverError::NotImplemented("event_progress"))
    }

    /// Creates deliveries and consumes the events they came from, in one
    /// transaction.
    async fn delivery_create(&self, _params: &DeliveryCreateParams) -> Result<u64> {
        Err(DriverError::NotImplemented("delivery_create"))
    }

    /// Pending deliveries due at `now`, oldest first, with their webhook.
    async fn delivery_due(
        &self,
        _now: jiff::Timestamp,
        _limit: u32,
    ) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        Err(DriverError::NotImplemented("delivery_due"))
    }

    /// Records one delivery attempt.
    async fn delivery_record(&self, _params: &DeliveryAttemptParams) -> Result<DeliveryRow> {
        Err(DriverError::NotImplemented("delivery_record"))
    }

    /// Deliveries of one subscription, newest first.
    async fn delivery_list(&self, _params: &DeliveryListParams) -> Result<Vec<DeliveryRow>> {
        Err(DriverError::NotImplemented("delivery_list"))
    }
}
