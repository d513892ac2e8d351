//! Executions: one run of an action for an owner, grouping jobs, with a
//! status derived from them by the store (see
//! [`ExecutionStatus`] for the rule).

use std::collections::BTreeMap;
use std::time::Duration;

use rota_core::{Job, ValidationError};
use rota_driver::{
    ExecutionAddJobsParams, ExecutionInsertParams, ExecutionListParams, ExecutionMarkParams,
    ExecutionRow, ExecutionStatus, ExecutionStopParams, InsertedJob, JobListParams, Trigger,
};

use crate::client::{Client, JobPage, MAX_PAGE};
use crate::context::CancelReason;
use crate::enqueue::JobRequest;
use crate::error::{Error, Result};
use crate::runtime::engine::Engine;

/// A new execution and its first jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRequest {
    /// Owner type, e.g. `replication`.
    pub owner_kind: String,
    /// Owner id, e.g. `42`.
    pub owner_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// Queryable attributes.
    pub attributes: BTreeMap<String, String>,
    /// Initial status message.
    pub status_message: Option<String>,
    /// Jobs created with it, in the same transaction.
    pub jobs: Vec<JobRequest>,
}

impl ExecutionRequest {
    /// A manual execution for an owner, without jobs yet.
    pub fn new(owner_kind: impl Into<String>, owner_id: impl Into<String>) -> Self {
        Self {
            owner_kind: owner_kind.into(),
            owner_id: owner_id.into(),
            trigger: Trigger::Manual,
            attributes: BTreeMap::new(),
            status_message: None,
            jobs: Vec::new(),
        }
    }

    /// Adds a job.
    pub fn job(mut self, job: JobRequest) -> Self {
        self.jobs.push(job);
        self
    }

    /// Sets the trigger.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Adds an attribute.
    pub fn attribute(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("owner_kind", &self.owner_kind),
            ("owner_id", &self.owner_id),
        ] {
            if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
                return Err(
                    ValidationError::new(field, "must be 1..=128 printable characters").into(),
                );
            }
        }
        for (k, v) in &self.attributes {
            if k.is_empty() || k.len() > 128 || k.contains('\0') || v.contains('\0') {
                return Err(
                    ValidationError::new(format!("attributes.{k}"), "bad attribute").into(),
                );
            }
        }
        Ok(())
    }
}

impl Client {
    /// Creates an execution with its jobs in one transaction.
    pub async fn create_execution(
        &self,
        req: ExecutionRequest,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        req.validate()?;
        let jobs = self.insert_params(req.jobs)?;
        let (ex, jobs) = self
            .driver()
            .execution_insert(ExecutionInsertParams {
                owner_kind: req.owner_kind,
                owner_id: req.owner_id,
                trigger: req.trigger,
                attributes: req.attributes,
                status_message: req.status_message,
                jobs,
                now: self.config().clock.now(),
            })
            .await?;
        Ok((ex, jobs))
    }

    /// Adds jobs to an execution.
    pub async fn add_execution_jobs(
        &self,
        id: i64,
        jobs: Vec<JobRequest>,
    ) -> Result<Vec<InsertedJob>> {
        let jobs = self.insert_params(jobs)?;
        Ok(self
            .driver()
            .execution_add_jobs(ExecutionAddJobsParams {
                id,
                jobs,
                now: self.config().clock.now(),
            })
            .await?)
    }

    /// One execution with its job counts.
    pub async fn execution(&self, id: i64) -> Result<ExecutionRow> {
        self.driver()
            .execution_get(id)
            .await?
            .ok_or(Error::Missing {
                entity: "execution",
                id: id.to_string(),
            })
    }

    /// Executions matching the filter, newest first.
    pub async fn executions(&self, filter: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        if filter.limit == 0 || filter.limit > MAX_PAGE {
            return Err(
                ValidationError::new("limit", format!("must be between 1 and {MAX_PAGE}")).into(),
            );
        }
        Ok(self.driver().execution_list(filter).await?)
    }

    /// The jobs of an execution, newest first.
    pub async fn execution_jobs(
        &self,
        id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<JobPage> {
        self.execution(id).await?;
        self.list(JobListParams {
            execution_id: Some(id),
            before_id,
            limit,
            ..Default::default()
        })
        .await
    }

    /// Marks an execution that has no jobs as done (`Succeeded`) or
    /// `Error`, with a message.
    pub async fn mark_execution(
        &self,
        id: i64,
        status: ExecutionStatus,
        message: Option<String>,
    ) -> Result<ExecutionRow> {
        if !matches!(status, ExecutionStatus::Succeeded | ExecutionStatus::Error) {
            return Err(ValidationError::new("status", "must be succeeded or error").into());
        }
        let ex = self
            .driver()
            .execution_mark(&ExecutionMarkParams {
                id,
                status,
                message,
                now: self.config().clock.now(),
            })
            .await?;
        self.inner_engine().hooks.execution(&ex);
        Ok(ex)
    }

    /// Stops an execution: every unfinished job is canceled (running ones
    /// through their cancellation token).
    pub async fn stop_execution(&self, id: i64) -> Result<ExecutionRow> {
        let (ex, running) = self
            .driver()
            .execution_stop(&ExecutionStopParams {
                id,
                now: self.config().clock.now(),
            })
            .await?;
        for job in running {
            if let Some(entry) = self.inner_engine().running.get(job) {
                entry.run.cancel(CancelReason::Requested);
            }
        }
        Ok(ex)
    }

    /// Stops an execution and waits until it is finished.
    pub async fn stop_execution_and_wait(
        &self,
        id: i64,
        timeout: Duration,
    ) -> Result<ExecutionRow> {
        self.stop_execution(id).await?;
        self.wait_execution(id, timeout).await
    }

    /// Waits until an execution reaches a final status.
    pub async fn wait_execution(&self, id: i64, timeout: Duration) -> Result<ExecutionRow> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            let ex = self.execution(id).await?;
            if ex.status.is_finished() {
                return Ok(ex);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(timeout));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// The jobs of an execution as plain values (all pages).
    pub async fn all_execution_jobs(&self, id: i64) -> Result<Vec<Job>> {
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self.execution_jobs(id, before, MAX_PAGE).await?;
            out.extend(page.jobs);
            match page.next {
                Some(n) => before = Some(n),
                None => return Ok(out),
            }
        }
    }
}

/// Calls execution hooks for the given executions that are now finished.
pub(crate) async fn report_finished(engine: &Engine, ids: &[i64]) {
    for &id in ids {
        match engine.driver.execution_get(id).await {
            Ok(Some(ex)) if ex.status.is_finished() => engine.hooks.execution(&ex),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(execution.id = id, error = %e, "cannot read execution for its hooks")
            }
        }
    }
}
