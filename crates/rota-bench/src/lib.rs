//! The workload behind `rota bench`.
//!
//! Runs on a fresh store it creates and removes afterwards (a new SQLite
//! file next to the given path, or a new PostgreSQL schema), and measures
//! no-op jobs end to end through the public [`rota::Client`] API:
//!
//! 1. **bulk** — `enqueue_all` of N jobs, verified by counting rows;
//! 2. **single** — sequential one-job enqueues (each acknowledged after its
//!    commit), then the same with 16 concurrent callers (group commit),
//!    next to a raw one-row-per-commit INSERT loop on the same store and
//!    durability settings;
//! 3. **process** — N pre-loaded jobs, from worker start until the store
//!    shows all N `succeeded`;
//! 4. **latency** — an idle worker, jobs enqueued one at a time 10 ms apart,
//!    enqueue-commit → handler-start percentiles;
//! 5. the machine and store settings, so a figure can be judged.

mod baseline;
mod fresh;
mod machine;
mod phases;
mod report;

pub use machine::Machine;
pub use report::{BenchReport, Latency, Phase, Rss, render_table};

use std::time::Duration;

/// What went wrong while benchmarking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The engine failed.
    #[error(transparent)]
    Rota(#[from] rota::Error),
    /// A bulk enqueue stopped part way.
    #[error(transparent)]
    Bulk(#[from] rota::BulkError),
    /// A raw baseline statement failed.
    #[error("baseline: {0}")]
    Baseline(#[from] rota::sqlx::Error),
    /// A check on the outcome failed (lost jobs, wrong counts).
    #[error("check failed: {0}")]
    Check(String),
    /// Bad options.
    #[error("invalid option {field}: {message}")]
    Invalid {
        /// Option name.
        field: &'static str,
        /// Why.
        message: String,
    },
}

/// Which parts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhaseKind {
    /// Bulk enqueue.
    Bulk,
    /// Single enqueue (sequential and 16 concurrent callers) and baseline.
    Single,
    /// Processing of pre-loaded jobs.
    Process,
    /// Idle-worker latency.
    Latency,
}

impl PhaseKind {
    /// Parses `bulk`, `single`, `process` or `latency`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bulk" => Some(PhaseKind::Bulk),
            "single" => Some(PhaseKind::Single),
            "process" => Some(PhaseKind::Process),
            "latency" => Some(PhaseKind::Latency),
            _ => None,
        }
    }
}

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `sqlite://PATH` (a fresh file is created beside PATH) or
    /// `postgres://...` (a fresh schema is created in that database).
    pub database: String,
    /// Jobs for bulk enqueue and processing.
    pub jobs: u64,
    /// Jobs for the single-enqueue phase.
    pub single: u64,
    /// Jobs for the latency phase.
    pub latency: u64,
    /// Phases to run, in order.
    pub phases: Vec<PhaseKind>,
    /// Worker concurrency for processing.
    pub concurrency: u32,
    /// Concurrent callers in the group-commit part of the single phase.
    pub callers: u32,
    /// Finished jobs to put in the table first (run through the engine in
    /// a separate queue), to measure against a long history.
    pub history: u64,
    /// Give up on a phase after this long.
    pub phase_timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            database: "sqlite://rota-bench.db".to_owned(),
            jobs: 100_000,
            single: 5_000,
            latency: 200,
            phases: vec![
                PhaseKind::Bulk,
                PhaseKind::Single,
                PhaseKind::Process,
                PhaseKind::Latency,
            ],
            concurrency: 1000,
            callers: 16,
            history: 0,
            phase_timeout: Duration::from_secs(600),
        }
    }
}

/// Runs the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    for (field, v) in [
        ("jobs", opts.jobs),
        ("single", opts.single),
        ("latency", opts.latency),
    ] {
        if v == 0 {
            return Err(BenchError::Invalid {
                field,
                message: "must be at least 1".into(),
            });
        }
    }
    if opts.concurrency == 0 || opts.callers == 0 {
        return Err(BenchError::Invalid {
            field: "concurrency",
            message: "must be at least 1".into(),
        });
    }
    let fresh = fresh::FreshStore::create(&opts.database).await?;
    let result = phases::run_all(opts, &fresh).await;
    fresh.remove().await;
    result
}
