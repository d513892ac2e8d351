//! Returns jobs whose lease expired (their worker died) to `retrying`, or
//! to `failed` when their attempts are spent. The attempt that was running
//! counts. Jobs whose worker keeps heartbeating are never touched, however
//! long they run.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rota_core::{AttemptError, ErrorKind, JobEvent, JobState, clock};
use rota_driver::{JobExpiredParams, JobFinishParams, JobListParams};

use super::{Report, Service};
use crate::error::Result;
use crate::hooks::AbnormalReason;
use crate::runtime::engine::Engine;

/// Expired leases handled per call.
pub(crate) const RESCUE_BATCH: u32 = 1000;

/// Rescues jobs with expired leases and reports jobs stuck past their
/// timeout.
#[derive(Debug)]
pub struct Rescuer {
    pub(crate) engine: Arc<Engine>,
    reported_stuck: Mutex<HashSet<(i64, u32)>>,
}

impl Rescuer {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            reported_stuck: Mutex::new(HashSet::new()),
        }
    }

    async fn rescue_expired(&self) -> Result<u64> {
        let now = self.engine.now();
        let expired = self
            .engine
            .driver
            .job_list_expired(&JobExpiredParams {
                now,
                limit: RESCUE_BATCH,
            })
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let mut params = Vec::with_capacity(expired.len());
        let mut jobs = Vec::with_capacity(expired.len());
        for job in expired {
            let Some(lease_token) = lease_token_of(&job) else {
                continue;
            };
            let step =
                match JobState::Running.apply(JobEvent::Rescue, job.attempt, job.max_attempts) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(job.id = job.id, error = %e, "cannot rescue");
                        continue;
                    }
                };
            let run_at = (step.to == JobState::Retrying).then(|| {
                self.engine
                    .backoff_for(&job)
                    .next_run_at(now, job.attempt, rand::random::<f64>())
            });
            params.push(JobFinishParams {
                id: job.id,
                execution_id: job.execution_id,
                lease_token,
                lease_expired_before: Some(now),
                state: step.to,
                attempt: step.attempt,
                run_at,
                finished_at: step.to.is_finished().then_some(now),
                error: Some(AttemptError {
                    attempt: job.attempt,
                    at: now,
                    kind: ErrorKind::Rescued,
                    message: format!(
                        "lease of node {} expired; worker presumed dead",
                        job.node.as_deref().unwrap_or("?")
                    ),
                }),
                output: None,
                progress: None,
                exit_code: None,
            });
            jobs.push(job);
        }
        let results = self.engine.driver.job_finish_many(params).await?;
        let mut n = 0;
        for (job, r) in jobs.iter().zip(results) {
            if r.applied {
                n += 1;
                metrics::counter!("rota_jobs_rescued_total", "queue" => job.queue.clone())
                    .increment(1);
                self.engine.hooks.abnormal(job, AbnormalReason::Rescued);
            }
        }
        Ok(n)
    }

    async fn report_stuck(&self) -> Result<()> {
        let now = self.engine.now();
        let running = self
            .engine
            .driver
            .job_list(&JobListParams {
                states: vec![JobState::Running],
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let mut reported = self
            .reported_stuck
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if reported.len() > 100_000 {
            reported.clear();
        }
        for job in running {
            let (Some(timeout), Some(started)) = (job.timeout, job.started_at) else {
                continue;
            };
            // Allow the cancel grace on top of the timeout before calling it stuck.
            let limit = clock::add(
                started,
                timeout + self.engine.config.cancel_grace + Duration::from_secs(1),
            );
            if limit < now && reported.insert((job.id, job.attempt)) {
                self.engine
                    .hooks
                    .abnormal(&job, AbnormalReason::StuckPastTimeout);
            }
        }
        Ok(())
    }
}

/// The fencing token of an expired run (always set on running rows).
fn lease_token_of(job: &rota_core::Job) -> Option<i64> {
    job.lease_token
}

#[async_trait]
impl Service for Rescuer {
    fn name(&self) -> &'static str {
        "rescuer"
    }

    fn interval(&self) -> Duration {
        self.engine.config.rescue_interval
    }

    async fn run_once(&self) -> Result<Report> {
        let mut total = 0;
        loop {
            let n = self.rescue_expired().await?;
            total += n;
            if n < u64::from(RESCUE_BATCH) {
                break;
            }
        }
        self.report_stuck().await?;
        Ok(Report {
            affected: total,
            summary: format!("rescued {total} jobs with expired leases"),
        })
    }
}
