//! Test helpers for applications using [`rota`], in the spirit of River's
//! `rivertest`:
//!
//! - [`require_enqueued`] / [`require_enqueued_tx`]: assert a job of a kind
//!   was enqueued (inside the caller's still-open transaction for the `_tx`
//!   form) and get it back with typed args.
//! - [`require_not_enqueued`]: the opposite.
//! - [`run_inline`]: run a worker on args directly, no store, no queue, and
//!   see what it returned, logged and reported.
//!
//! The helpers panic with a descriptive message, as assertions do.

use std::collections::BTreeMap;

use rota::{
    Client, Job, JobArgs, JobContext, JobListParams, JobResult, JobState, TxConnection, Worker,
};

fn filter(kind: &str) -> JobListParams {
    JobListParams {
        kind: Some(kind.to_owned()),
        limit: 1000,
        ..Default::default()
    }
}

fn decode<A: JobArgs>(job: &Job) -> A {
    match serde_json::from_value(job.args.clone()) {
        Ok(a) => a,
        Err(e) => panic!(
            "job {} of kind {} has args that do not decode: {e}",
            job.id,
            A::KIND
        ),
    }
}

/// Asserts that at least one job of `A::KIND` exists; returns the newest
/// with its decoded args.
pub async fn require_enqueued<A: JobArgs>(client: &Client) -> (Job, A) {
    let jobs = match client.list(filter(A::KIND)).await {
        Ok(p) => p.jobs,
        Err(e) => panic!("listing jobs failed: {e}"),
    };
    let Some(job) = jobs.into_iter().next() else {
        panic!(
            "expected a job of kind {:?} to be enqueued, found none",
            A::KIND
        );
    };
    let args = decode(&job);
    (job, args)
}

/// Like [`require_enqueued`], but looks inside the caller's open
/// transaction (`&mut *tx`), so it sees jobs not yet committed.
pub async fn require_enqueued_tx<A: JobArgs, C: TxConnection + ?Sized>(
    client: &Client,
    conn: &mut C,
) -> (Job, A) {
    let jobs = match client.list_tx(conn, &filter(A::KIND)).await {
        Ok(j) => j,
        Err(e) => panic!("listing jobs in the transaction failed: {e}"),
    };
    let Some(job) = jobs.into_iter().next() else {
        panic!(
            "expected a job of kind {:?} enqueued in this transaction, found none",
            A::KIND
        );
    };
    let args = decode(&job);
    (job, args)
}

/// Asserts that no job of `A::KIND` exists.
pub async fn require_not_enqueued<A: JobArgs>(client: &Client) {
    match client.list(filter(A::KIND)).await {
        Ok(p) if p.jobs.is_empty() => {}
        Ok(p) => panic!(
            "expected no job of kind {:?}, found {} (newest id {})",
            A::KIND,
            p.jobs.len(),
            p.jobs[0].id
        ),
        Err(e) => panic!("listing jobs failed: {e}"),
    }
}

/// What an inline run produced.
#[derive(Debug)]
pub struct InlineRun {
    /// The handler's return value.
    pub result: JobResult,
    /// Output the handler logged.
    pub output: String,
    /// The last progress check-in.
    pub progress: Option<serde_json::Value>,
}

/// A job value as a worker would see it on its first attempt.
pub fn job_for<A: JobArgs>(args: &A) -> Job {
    let now = jiff::Timestamp::now();
    Job {
        id: 1,
        kind: A::KIND.to_owned(),
        queue: "default".to_owned(),
        state: JobState::Running,
        priority: 0,
        args: serde_json::to_value(args).unwrap_or(serde_json::Value::Null),
        attempt: 1,
        max_attempts: 25,
        run_at: now,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        errors: Vec::new(),
        progress: None,
        output: None,
        labels: BTreeMap::new(),
        attributes: BTreeMap::new(),
        unique_key: None,
        timeout: None,
        node: Some("inline".to_owned()),
        lease_expires_at: None,
        lease_token: None,
        cancel_requested_at: None,
        trace_context: None,
        exit_code: None,
        execution_id: None,
        schedule_id: None,
        revision: 1,
    }
}

/// Runs `worker` on `args` in the current task, without a store.
pub async fn run_inline<W: Worker>(worker: &W, args: W::Args) -> InlineRun {
    let ctx = JobContext::detached(job_for(&args));
    let result = worker.work(&ctx, args).await;
    InlineRun {
        result,
        output: ctx.output(),
        progress: ctx.progress(),
    }
}

/// Runs `worker` like [`run_inline`] but with the context's cancellation
/// token already fired, to test how a handler stops.
pub async fn run_inline_cancelled<W: Worker>(worker: &W, args: W::Args) -> InlineRun {
    let ctx = JobContext::detached(job_for(&args));
    ctx.cancellation_token().cancel();
    let result = worker.work(&ctx, args).await;
    InlineRun {
        result,
        output: ctx.output(),
        progress: ctx.progress(),
    }
}
