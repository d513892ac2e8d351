//! Client settings, with named defaults validated at construction.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rota_core::{BackoffPolicy, Clock, QueueConfig, SystemClock, ValidationError};

/// How long finished jobs are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Delete finished jobs older than this (by `finished_at`).
    pub max_age: Option<Duration>,
    /// Keep at most this many finished jobs.
    pub keep_last: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            keep_last: None,
        }
    }
}

/// How many finished executions are kept per owner (`owner_kind`,
/// `owner_id`); older finished ones are deleted with their jobs, running
/// ones never. Where both rules apply, the smaller figure wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionRetention {
    /// For every owner kind (`None`: no limit).
    pub keep_last: Option<u64>,
    /// For owners of one kind.
    pub per_owner_kind: BTreeMap<String, u64>,
}

/// Everything a [`Client`](crate::Client) can be tuned with. Start from
/// `Config::default()` and change what you need.
#[derive(Debug, Clone)]
pub struct Config {
    /// This process's node id (default: `host-pid-random`).
    pub node_id: String,
    /// This node's labels; jobs with a label selector run only on matching
    /// nodes.
    pub node_labels: BTreeMap<String, String>,
    /// Queues this node works, each with its worker-pool size. Empty: the
    /// client only enqueues and queries.
    pub queues: Vec<QueueConfig>,
    /// How long a claim is valid without a heartbeat. A dead worker's jobs
    /// are rescued after this.
    pub lease: Duration,
    /// How often running jobs' leases are extended and cancel requests
    /// picked up. Must be under a third of `lease`.
    pub heartbeat_interval: Duration,
    /// Fallback polling when no wake-up arrives.
    pub poll_interval: Duration,
    /// Most jobs claimed per statement. A claim also takes at most half a
    /// queue's concurrency (see [`Config::claim_size`]).
    pub claim_batch: u32,
    /// Default attempts for jobs enqueued without `max_attempts`.
    pub default_max_attempts: u32,
    /// Default per-attempt timeout (a worker's or job's own wins).
    pub default_timeout: Option<Duration>,
    /// Default backoff (a worker's own wins).
    pub backoff: BackoffPolicy,
    /// How long a handler has to return after its token fires before its
    /// task is aborted.
    pub cancel_grace: Duration,
    /// Leader lease length.
    pub leader_ttl: Duration,
    /// Whether this client takes part in leader election and, when leader,
    /// runs maintenance (promote, rescue, prune).
    pub maintenance: bool,
    /// How often due scheduled/retrying jobs are promoted.
    pub promote_interval: Duration,
    /// How often expired leases are rescued.
    pub rescue_interval: Duration,
    /// How often retention is applied.
    pub prune_interval: Duration,
    /// Retention of finished jobs.
    pub retention: Retention,
    /// Cap on stored output per job.
    pub output_cap: usize,
    /// Finished executions kept per owner.
    pub execution_retention: ExecutionRetention,
    /// How often executions are checked against their jobs (repair).
    pub repair_interval: Duration,
    /// How often due schedules are fired.
    pub schedule_interval: Duration,
    /// Fire schedules on the database's clock (default), not the injected
    /// one, so nodes with skewed clocks agree. Tests with a manual clock
    /// turn this off.
    pub schedule_on_db_clock: bool,
    /// How often webhook events are expanded and deliveries attempted.
    pub webhook_interval: Duration,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
    /// Retries of failed webhook deliveries (`max_attempts` included).
    pub webhook_backoff: BackoffPolicy,
    /// Source of time.
    pub clock: Arc<dyn Clock>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: default_node_id(),
            node_labels: BTreeMap::new(),
            queues: Vec::new(),
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            claim_batch: 100,
            default_max_attempts: 25,
            default_timeout: None,
            backoff: BackoffPolicy::default(),
            cancel_grace: Duration::from_secs(5),
            leader_ttl: Duration::from_secs(15),
            maintenance: true,
            promote_interval: Duration::from_millis(500),
            rescue_interval: Duration::from_secs(5),
            prune_interval: Duration::from_secs(60),
            retention: Retention::default(),
            output_cap: crate::context::DEFAULT_OUTPUT_CAP,
            execution_retention: ExecutionRetention::default(),
            repair_interval: Duration::from_secs(60),
            schedule_interval: Duration::from_millis(200),
            schedule_on_db_clock: true,
            webhook_interval: Duration::from_millis(250),
            webhook_timeout: Duration::from_secs(10),
            webhook_backoff: BackoffPolicy {
                initial_interval: Duration::from_millis(500),
                multiplier: 2.0,
                max_interval: Duration::from_secs(60),
                jitter: 0.1,
                max_attempts: 20,
                reset_interval: None,
            },
            clock: Arc::new(SystemClock),
        }
    }
}

impl Config {
    /// The most jobs one claim takes on a queue of `concurrency`: the
    /// claim batch, and at most half the slots (rounded up), so that one
    /// batch is claimed while the last one's results are written. A claim
    /// of every slot waits for every result of the one before it, and
    /// claims and finishes then take turns (no-op jobs on PostgreSQL,
    /// concurrency 1,000: 37k jobs/s with claims of 1,000, 42k with claims
    /// of 500; docs/benchmarks.md, round 10).
    pub fn claim_size(&self, concurrency: u32) -> u32 {
        self.claim_batch.min(concurrency.div_ceil(2)).max(1)
    }

    /// Adds a queue served with `concurrency` workers.
    pub fn queue(mut self, name: impl Into<String>, concurrency: u32) -> Self {
        self.queues.push(QueueConfig::new(name, concurrency));
        self
    }

    /// Checks every setting; names the first one at fault.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.node_id.is_empty() || self.node_id.len() > 128 {
            return Err(ValidationError::new("node_id", "must be 1..=128 bytes"));
        }
        let mut seen = HashSet::new();
        for q in &self.queues {
            q.validate()?;
            if !seen.insert(q.name.as_str()) {
                return Err(ValidationError::new(
                    format!("queues.{}", q.name),
                    "listed twice",
                ));
            }
        }
        let positive = [
            ("lease", self.lease),
            ("heartbeat_interval", self.heartbeat_interval),
            ("poll_interval", self.poll_interval),
            ("leader_ttl", self.leader_ttl),
            ("promote_interval", self.promote_interval),
            ("rescue_interval", self.rescue_interval),
            ("prune_interval", self.prune_interval),
            ("repair_interval", self.repair_interval),
            ("schedule_interval", self.schedule_interval),
            ("webhook_interval", self.webhook_interval),
            ("webhook_timeout", self.webhook_timeout),
        ];
        for (field, d) in positive {
            if d.is_zero() {
                return Err(ValidationError::new(field, "must be positive"));
            }
        }
        if self.heartbeat_interval * 3 > self.lease {
            return Err(ValidationError::new(
                "heartbeat_interval",
                "must be at most a third of lease, so one late heartbeat does not lose the lease",
            ));
        }
        if self.claim_batch == 0 {
            return Err(ValidationError::new("claim_batch", "must be at least 1"));
        }
        if self.default_max_attempts == 0 {
            return Err(ValidationError::new(
                "default_max_attempts",
                "must be at least 1",
            ));
        }
        if self.default_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ValidationError::new("default_timeout", "must be positive"));
        }
        if self.output_cap < 64 {
            return Err(ValidationError::new(
                "output_cap",
                "must be at least 64 bytes",
            ));
        }
        self.webhook_backoff
            .validate()
            .map_err(|e| ValidationError::new(format!("webhook_backoff.{}", e.field), e.message))?;
        self.backoff
            .validate()
            .map_err(|e| ValidationError::new(format!("backoff.{}", e.field), e.message))?;
        Ok(())
    }
}

fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().queue("default", 10).validate().is_ok());
    }

    #[test]
    fn a_claim_takes_at_most_half_the_slots_and_never_none() {
        for (batch, concurrency, size) in [
            (100, 1000, 100),
            (1000, 1000, 500),
            (1000, 2000, 1000),
            (100, 100, 50),
            (100, 3, 2),
            (100, 2, 1),
            (100, 1, 1),
            (1, 1000, 1),
            (0, 1000, 1),
        ] {
            let config = Config {
                claim_batch: batch,
                ..Config::default()
            };
            assert_eq!(
                config.claim_size(concurrency),
                size,
                "{batch}, {concurrency}"
            );
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let e = |c: Config| c.validate().unwrap_err().field;
        assert_eq!(e(Config::default().queue("q", 0)), "queues.q.concurrency");
        assert_eq!(e(Config::default().queue("q", 1).queue("q", 2)), "queues.q");
        assert_eq!(
            e(Config {
                lease: Duration::from_secs(6),
                ..Config::default()
            }),
            "heartbeat_interval"
        );
        assert_eq!(
            e(Config {
                claim_batch: 0,
                ..Config::default()
            }),
            "claim_batch"
        );
        let mut c = Config::default();
        c.backoff.max_attempts = 0;
        assert_eq!(e(c), "backoff.max_attempts");
    }
}
