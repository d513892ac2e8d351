//! [`Client`]: enqueue, query and control jobs; run workers.

use std::sync::Arc;
use std::time::Duration;

use rota_core::{Job, JobState, ValidationError, validate_queue_name};
use rota_driver::{
    Driver, DriverError, InsertedJob, JobCancelParams, JobCount, JobListParams, JobRetryParams,
    QueuePauseParams, QueueRow,
};
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::config::Config;
use crate::context::CancelReason;
use crate::enqueue::{EnqueueOpts, JobRequest};
use crate::error::{Error, Result};
use crate::hooks::{AbnormalCallback, ExecutionStatusCallback, Hooks, JobStatusCallback};
use crate::maintenance::{Gauges, LeaderState, Promoter, Pruner, Repairer, Rescuer, Service};
use crate::runtime::engine::Engine;
use crate::runtime::running::Running;
use crate::runtime::{Runtime, ShutdownReport};
use crate::schedules::Scheduler;
use crate::store::{Store, TxConnection};
use crate::webhooks::WebhookDeliverer;
use crate::worker::{JobArgs, RawWorker, Registry, Typed, Worker};

/// Most jobs per page of [`Client::list`].
pub const MAX_PAGE: u32 = 10_000;

/// Builds a [`Client`]: store, settings, workers, hooks.
#[derive(Debug)]
pub struct ClientBuilder {
    store: Store,
    config: Config,
    registry: Registry,
    hooks: Hooks,
}

impl ClientBuilder {
    /// Replaces the settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers a typed worker for `W::Args::KIND`.
    pub fn worker<W: Worker>(mut self, worker: W) -> Self {
        self.registry
            .insert(W::Args::KIND.to_owned(), Arc::new(Typed(worker)));
        self
    }

    /// Registers a handler over raw JSON args for `kind`.
    pub fn raw_worker(mut self, kind: impl Into<String>, worker: impl RawWorker) -> Self {
        self.registry.insert(kind.into(), Arc::new(worker));
        self
    }

    /// Accepts jobs of `kind` for enqueue (e.g. through the HTTP API) while
    /// this node does not run them: other nodes with a worker for it will.
    /// This node never claims them.
    pub fn accept_kind(mut self, kind: impl Into<String>) -> Self {
        self.registry.accept_elsewhere(kind.into());
        self
    }

    /// Calls `cb` for abnormal jobs (rescued after a lease expiry, or
    /// running past their timeout).
    pub fn on_abnormal(mut self, cb: AbnormalCallback) -> Self {
        self.hooks.abnormal.push(cb);
        self
    }

    /// Calls `cb` after every job status change this process commits
    /// (claim, end of a run, cancel, retry, progress check-in), for jobs of
    /// `kind` (`None`: all kinds). A panicking callback is logged and never
    /// undoes the change.
    pub fn on_job_status(mut self, kind: Option<&str>, cb: JobStatusCallback) -> Self {
        self.hooks.job.push((kind.map(str::to_owned), cb));
        self
    }

    /// Calls `cb` when an execution of `owner_kind` (`None`: any) reaches a
    /// final status through a change this process committed.
    pub fn on_execution_status(
        mut self,
        owner_kind: Option<&str>,
        cb: ExecutionStatusCallback,
    ) -> Self {
        self.hooks
            .execution
            .push((owner_kind.map(str::to_owned), cb));
        self
    }

    /// Validates the settings and builds the client (nothing runs until
    /// [`Client::start`]).
    pub fn build(self) -> Result<Client> {
        self.config.validate()?;
        if !self.config.queues.is_empty()
            && self.registry.is_empty()
            && self.registry.known().next().is_none()
        {
            return Err(ValidationError::new(
                "workers",
                "queues are configured but no worker is registered",
            )
            .into());
        }
        let now = self.config.clock.now();
        let engine = Arc::new(Engine {
            store: self.store.clone(),
            driver: self.store.driver().clone(),
            control: self.store.control().clone(),
            config: self.config,
            registry: self.registry,
            running: Running::default(),
            hooks: self.hooks,
            draining: Default::default(),
            started_at: now,
        });
        Ok(Client {
            inner: Arc::new(Inner {
                leader: LeaderState::default(),
                services: services(&engine),
                engine,
                store: self.store,
                runtime: Mutex::new(State::Idle),
            }),
        })
    }
}

fn services(engine: &Arc<Engine>) -> Services {
    Services {
        promoter: Arc::new(Promoter {
            engine: engine.clone(),
        }),
        rescuer: Arc::new(Rescuer::new(engine.clone())),
        pruner: Arc::new(Pruner {
            engine: engine.clone(),
        }),
        repairer: Arc::new(Repairer {
            engine: engine.clone(),
        }),
        scheduler: Arc::new(Scheduler {
            engine: engine.clone(),
        }),
        webhooks: Arc::new(WebhookDeliverer::new(engine.clone())),
        gauges: Arc::new(Gauges {
            engine: engine.clone(),
        }),
    }
}

/// The maintenance services of a client, for running a pass on demand.
#[derive(Debug, Clone)]
pub struct Services {
    /// Promotes due jobs.
    pub promoter: Arc<Promoter>,
    /// Rescues expired leases.
    pub rescuer: Arc<Rescuer>,
    /// Applies retention.
    pub pruner: Arc<Pruner>,
    /// Fixes executions whose status no longer matches their jobs.
    pub repairer: Arc<Repairer>,
    /// Fires due schedules.
    pub scheduler: Arc<Scheduler>,
    /// Delivers webhooks.
    pub webhooks: Arc<WebhookDeliverer>,
    /// Publishes queue-depth gauges.
    pub gauges: Arc<Gauges>,
}

#[derive(Debug)]
enum State {
    Idle,
    Running(Runtime),
    Stopped,
}

#[derive(Debug)]
struct Inner {
    engine: Arc<Engine>,
    store: Store,
    leader: LeaderState,
    services: Services,
    runtime: Mutex<State>,
}

/// A page of jobs and the cursor for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// Jobs, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `before_id` to get the next page; `None` at the end.
    pub next: Option<i64>,
}

/// The handle to Rota: enqueue and control jobs, and (once started) run the
/// registered workers. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Starts building a client on `store`.
    pub fn builder(store: Store) -> ClientBuilder {
        ClientBuilder {
            store,
            config: Config::default(),
            registry: Registry::default(),
            hooks: Hooks::default(),
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn inner_engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The storage driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.engine.driver
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.engine.config
    }

    /// Whether this client currently leads the cluster.
    pub fn leader(&self) -> &LeaderState {
        &self.inner.leader
    }

    /// The maintenance services (run a pass with `run_once`).
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Starts producers, executors, heartbeats and (if enabled) leader
    /// maintenance. Refuses a store with pending migrations: this build's
    /// engine relies on its schema (on SQLite, migration 8 moved the
    /// bookkeeping of state changes from a trigger into the driver, so an
    /// older schema would count them twice).
    pub async fn start(&self) -> Result<()> {
        let mut state = self.inner.runtime.lock().await;
        match *state {
            State::Idle => {}
            State::Running(_) => return Err(Error::Lifecycle("client already started")),
            State::Stopped => return Err(Error::Lifecycle("client was shut down")),
        }
        self.check_schema().await?;
        let s = &self.inner.services;
        let services: Vec<Arc<dyn Service>> = vec![
            s.promoter.clone(),
            s.rescuer.clone(),
            s.pruner.clone(),
            s.repairer.clone(),
            s.scheduler.clone(),
            s.webhooks.clone(),
            s.gauges.clone(),
        ];
        *state = State::Running(Runtime::start(
            self.inner.engine.clone(),
            self.inner.leader.clone(),
            services,
        ));
        tracing::info!(node = %self.config().node_id, queues = self.config().queues.len(), "client started");
        Ok(())
    }

    /// Fails when the store has migrations this build knows but the store
    /// has not applied. A store that cannot tell (not implemented) passes.
    async fn check_schema(&self) -> Result<()> {
        let status = match self.inner.engine.driver.migration_status().await {
            Ok(status) => status,
            Err(DriverError::NotImplemented(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let pending: Vec<String> = status
            .iter()
            .filter(|m| m.applied_at.is_none())
            .map(|m| format!("{} ({})", m.version, m.name))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        Err(Error::Store(DriverError::Migration(format!(
            "the store has {} pending migration(s): {}; run `rota migrate up` \
             or open the store with migrations applied",
            pending.len(),
            pending.join(", ")
        ))))
    }

    /// Graceful shutdown: stop claiming, let running jobs finish within
    /// `grace`, then stop the rest and hand them back with their attempt
    /// recorded. Returns once every result is written.
    pub async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport> {
        let mut state = self.inner.runtime.lock().await;
        match std::mem::replace(&mut *state, State::Stopped) {
            State::Running(rt) => Ok(rt.shutdown(self.engine(), grace).await),
            State::Idle | State::Stopped => Ok(ShutdownReport {
                interrupted: 0,
                clean: true,
            }),
        }
    }

    /// Enqueues one typed job. A unique-key duplicate returns the existing
    /// job with `inserted = false`. Returns after the commit.
    pub async fn enqueue<A: JobArgs>(&self, args: &A, opts: EnqueueOpts) -> Result<InsertedJob> {
        let mut v = self
            .enqueue_many(vec![JobRequest::new(args, opts)?])
            .await?;
        v.pop()
            .ok_or(Error::Lifecycle("store returned no row for an insert"))
    }

    /// Enqueues many jobs in one transaction: all or nothing. Every request
    /// is validated before anything is written.
    pub async fn enqueue_many(&self, requests: Vec<JobRequest>) -> Result<Vec<InsertedJob>> {
        let params = self.insert_params(requests)?;
        // Instrumented, not entered: a guard held across the `await` would
        // leave the span entered on the thread while this task waits, and
        // other tasks' events there would be recorded inside it.
        let span = tracing::debug_span!("rota.enqueue", jobs = params.len());
        let inserted = self
            .driver()
            .job_insert_many(params)
            .instrument(span)
            .await?;
        crate::bulk::tally(&inserted);
        Ok(inserted)
    }

    /// Enqueues inside the caller's own transaction (`&mut *tx`): the job
    /// exists if and only if that transaction commits.
    pub async fn enqueue_tx<A: JobArgs, C: TxConnection + ?Sized>(
        &self,
        conn: &mut C,
        args: &A,
        opts: EnqueueOpts,
    ) -> Result<InsertedJob> {
        let mut v = self
            .enqueue_many_tx(conn, vec![JobRequest::new(args, opts)?])
            .await?;
        v.pop()
            .ok_or(Error::Lifecycle("store returned no row for an insert"))
    }

    /// Enqueues many jobs inside the caller's own transaction.
    pub async fn enqueue_many_tx<C: TxConnection + ?Sized>(
        &self,
        conn: &mut C,
        requests: Vec<JobRequest>,
    ) -> Result<Vec<InsertedJob>> {
        let params = self.insert_params(requests)?;
        let inserted = conn.insert_jobs(&self.inner.store, params).await?;
        crate::bulk::tally(&inserted);
        Ok(inserted)
    }

    /// Lists jobs as the caller's open transaction sees them.
    pub async fn list_tx<C: TxConnection + ?Sized>(
        &self,
        conn: &mut C,
        filter: &JobListParams,
    ) -> Result<Vec<Job>> {
        conn.list_jobs(&self.inner.store, filter).await
    }

    pub(crate) fn insert_params(
        &self,
        requests: Vec<JobRequest>,
    ) -> Result<Vec<rota_driver::JobInsertParams>> {
        // One request's errors name its field; many requests' its position.
        let first = (requests.len() > 1).then_some(0);
        self.insert_params_at(requests, first)
    }

    /// [`insert_params`](Self::insert_params) of requests that start at
    /// position `first` of a larger input (`None`: a lone request).
    pub(crate) fn insert_params_at(
        &self,
        requests: Vec<JobRequest>,
        first: Option<usize>,
    ) -> Result<Vec<rota_driver::JobInsertParams>> {
        let now = self.engine().now();
        rota_driver::try_collect_exact(requests.into_iter().enumerate().map(|(i, r)| {
            r.into_params(now, self.config().default_max_attempts)
                .map_err(|e| match first {
                    Some(first) => Error::from(ValidationError::new(
                        format!("jobs[{}].{}", first + i, e.field),
                        e.message,
                    )),
                    None => e.into(),
                })
        }))
    }

    /// One job.
    pub async fn get(&self, id: i64) -> Result<Job> {
        self.driver().job_get(id).await?.ok_or(Error::NotFound(id))
    }

    /// Jobs matching `filter`, newest first; `filter.before_id` is the
    /// cursor from the previous page.
    pub async fn list(&self, filter: JobListParams) -> Result<JobPage> {
        if filter.limit == 0 || filter.limit > MAX_PAGE {
            return Err(
                ValidationError::new("limit", format!("must be between 1 and {MAX_PAGE}")).into(),
            );
        }
        if let Some(q) = &filter.queue {
            validate_queue_name(q)?;
        }
        let limit = filter.limit;
        let jobs = self.driver().job_list(&filter).await?;
        let next = (jobs.len() == limit as usize)
            .then(|| jobs.last().map(|j| j.id))
            .flatten();
        Ok(JobPage { jobs, next })
    }

    /// Jobs that failed or are waiting to retry: the operator's worklist.
    pub async fn list_unsuccessful(&self, limit: u32) -> Result<JobPage> {
        self.list(JobListParams {
            states: vec![JobState::Failed, JobState::Retrying],
            limit,
            ..Default::default()
        })
        .await
    }

    /// Job counts per queue and state.
    pub async fn counts(&self) -> Result<Vec<JobCount>> {
        Ok(self.driver().job_count().await?)
    }

    /// Cancels a job. Waiting jobs end `canceled` at once; a running job is
    /// told through its cancellation token (at once in this process, within
    /// one heartbeat elsewhere) and ends `canceled`. Finished jobs are an
    /// [`Error::InvalidState`].
    pub async fn cancel(&self, id: i64) -> Result<Job> {
        let job = self
            .driver()
            .job_cancel(&JobCancelParams {
                id,
                now: self.engine().now(),
            })
            .await?;
        if job.state == JobState::Running
            && let Some(entry) = self.engine().running.get(id)
        {
            entry.run.cancel(CancelReason::Requested);
        }
        self.engine().hooks.job_from(&job);
        Ok(job)
    }

    /// Cancels and waits until the job reaches a terminal state.
    pub async fn cancel_and_wait(&self, id: i64, timeout: Duration) -> Result<Job> {
        self.cancel(id).await?;
        self.wait(id, timeout).await
    }

    /// Waits until the job reaches a terminal state.
    pub async fn wait(&self, id: i64, timeout: Duration) -> Result<Job> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            let job = self.get(id).await?;
            if job.state.is_finished() {
                return Ok(job);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(timeout));
            }
            tokio::time::sleep(delay.min(deadline - tokio::time::Instant::now())).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// Operator retry: runs the job again now (finished jobs start with a
    /// fresh attempt count). Running jobs are an [`Error::InvalidState`].
    pub async fn retry(&self, id: i64) -> Result<Job> {
        let job = self
            .driver()
            .job_retry(&JobRetryParams {
                id,
                now: self.engine().now(),
            })
            .await?;
        self.engine().hooks.job_from(&job);
        Ok(job)
    }

    /// Forces a re-run of the chosen jobs; one result per id.
    pub async fn retry_many(&self, ids: &[i64]) -> Vec<Result<Job>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            out.push(self.retry(id).await);
        }
        out
    }

    /// Deletes a finished job.
    pub async fn delete(&self, id: i64) -> Result<Job> {
        Ok(self.driver().job_delete(id).await?)
    }

    /// Pauses a queue on every node: nothing more is claimed from it.
    pub async fn pause_queue(&self, name: &str) -> Result<()> {
        validate_queue_name(name)?;
        Ok(self.driver().queue_pause(&self.queue_params(name)).await?)
    }

    /// Resumes a paused queue.
    pub async fn resume_queue(&self, name: &str) -> Result<()> {
        validate_queue_name(name)?;
        Ok(self.driver().queue_resume(&self.queue_params(name)).await?)
    }

    fn queue_params(&self, name: &str) -> QueuePauseParams {
        QueuePauseParams {
            name: name.to_owned(),
            now: self.engine().now(),
        }
    }

    /// Every queue with its pause state and counts.
    pub async fn queues(&self) -> Result<Vec<QueueRow>> {
        Ok(self.driver().queue_list().await?)
    }

    /// The kinds this client accepts: those it has workers for, plus those
    /// registered with [`ClientBuilder::accept_kind`].
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.engine().registry.known().map(str::to_owned).collect();
        k.sort();
        k.dedup();
        k
    }

    /// The kinds this node runs (and claims).
    pub fn worker_kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.engine().registry.kinds().map(str::to_owned).collect();
        k.sort();
        k
    }

    /// Number of jobs this process is running now.
    pub fn running_count(&self) -> usize {
        self.engine().running.len()
    }
}
