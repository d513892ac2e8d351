//! Schedules (distributed cron), as pure values: when a schedule fires
//! ([`ScheduleRule`]), what a fire does when the previous run is still going
//! ([`OverlapPolicy`], [`OnOverlap`]), what happens to fires missed during
//! downtime ([`CatchUp`]), and which fires a scheduler records at a given
//! instant ([`due_fires`]).
//!
//! Storage and the scheduler loop live elsewhere; they record each fire
//! exactly once, keyed by (schedule, fire time), so several schedulers, a
//! leader change or a restart never double-fire. Everything here is
//! deterministic, so every node computes the same fire times from the same
//! stored state.
//!
//! ```
//! use rota_core::schedule::{CatchUp, ScheduleRule, due_fires};
//! use jiff::Timestamp;
//!
//! let rule = ScheduleRule::parse("30 2 * * *", Some("Europe/Berlin"))?.compile()?;
//! // 2026-03-29 is the spring-forward day in Berlin: 02:30 does not exist,
//! // so the fire happens at 03:00 CEST (01:00 UTC).
//! let t: Timestamp = "2026-03-28T12:00:00Z".parse()?;
//! let next = rule.next_after(t).unwrap();
//! assert_eq!(next.to_string(), "2026-03-29T01:00:00Z");
//!
//! // A scheduler waking up 10 s after that fire records it.
//! let now: Timestamp = "2026-03-29T01:00:10Z".parse()?;
//! let plan = due_fires(&rule, None, next, now, &CatchUp::Latest);
//! assert_eq!(plan.fires, vec![next]);
//! assert_eq!(plan.next_fire.to_string(), "2026-03-30T00:30:00Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod plan;
mod rule;

pub use plan::{FirePlan, MAX_CATCH_UP_LIMIT, MAX_COUNTED_MISSED, ON_TIME_TOLERANCE, due_fires};
pub use rule::{
    CompiledRule, DEFAULT_TIMEZONE, MAX_CRON_LEN, MAX_TIMEZONE_LEN, MIN_INTERVAL,
    NEVER_FIRES_HORIZON_YEARS, ScheduleRule,
};

use serde::{Deserialize, Serialize};

use crate::job::ValidationError;
use crate::queue::validate_queue_name;

/// How a schedule's fires relate to nodes and to each other's runs.
///
/// Serialized as `"common"`, `"alone"` or `"interval"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Fan-out: each fire creates one job per node matching the template's
    /// labels, so the work runs on every such node. Runs of consecutive
    /// fires may overlap.
    Common,
    /// Never two runs of this schedule at once, cluster-wide. A fire that
    /// becomes due while a run is unfinished is handled per [`OnOverlap`]:
    /// skipped (and recorded as skipped) or queued behind the running one.
    Alone,
    /// At most once per period however many schedulers run: each fire
    /// creates exactly one job, run by one node. Runs of consecutive fires
    /// may overlap if a run outlasts the period. The default: plain cron,
    /// made safe for a cluster.
    #[default]
    Interval,
}

/// What an [`OverlapPolicy::Alone`] schedule does with a fire that becomes
/// due while its previous run is unfinished. Ignored by other policies.
///
/// Serialized as `"skip"` or `"queue"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOverlap {
    /// Record the fire as skipped (visible in the run history) and create no
    /// job. The default: a slow run never builds a backlog.
    #[default]
    Skip,
    /// Record the fire and create its job, held until the running one ends;
    /// runs then follow one another in fire order. Nothing is dropped, so if
    /// runs are persistently slower than the period the backlog grows.
    Queue,
}

/// What happens to fires that were missed (due more than
/// [`ON_TIME_TOLERANCE`] ago) because no scheduler ran, e.g. after downtime.
/// On-time fires always run; see [`due_fires`] for the exact rule.
///
/// Serialized as `"none"`, `"latest"` or `{"all": {"limit": 10}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Skip every missed fire and carry on with the next one.
    None,
    /// Run the most recent due fire even if it was missed; skip older
    /// missed ones. The default: the work catches up once, without a storm.
    #[default]
    Latest,
    /// Run missed fires too, oldest first: the newest `limit` of them
    /// (1..=[`MAX_CATCH_UP_LIMIT`]); older ones are skipped.
    All {
        /// Most missed fires run at once.
        limit: u32,
    },
}

impl CatchUp {
    /// Checks the `all` limit: 1..=[`MAX_CATCH_UP_LIMIT`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Self::All { limit } = self
            && !(1..=MAX_CATCH_UP_LIMIT).contains(limit)
        {
            return Err(ValidationError::new(
                "catch_up.limit",
                format!("must be between 1 and {MAX_CATCH_UP_LIMIT}"),
            ));
        }
        Ok(())
    }
}

/// Checks a schedule name: the rules of queue names (1..=128 bytes of
/// letters, digits, `_`, `-`, `.`, `:`); the error names the field `name`.
pub fn validate_schedule_name(name: &str) -> Result<(), ValidationError> {
    validate_queue_name(name).map_err(|e| ValidationError::new("name", e.message))
}

/// The timing part of a schedule as a caller asks for it; validated by
/// [`ScheduleSpec::validate`]. What a fire creates (the job template) is
/// kept alongside by the layers that create jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Unique name, following queue-name rules.
    pub name: String,
    /// When it fires.
    pub rule: ScheduleRule,
    /// How fires relate to nodes and to each other's runs.
    #[serde(default)]
    pub overlap: OverlapPolicy,
    /// What an `alone` schedule does with a fire while a run is unfinished.
    #[serde(default)]
    pub on_overlap: OnOverlap,
    /// What happens to fires missed during downtime.
    #[serde(default)]
    pub catch_up: CatchUp,
}

impl ScheduleSpec {
    /// A spec with default policies: [`OverlapPolicy::Interval`],
    /// [`OnOverlap::Skip`], [`CatchUp::Latest`].
    pub fn new(name: impl Into<String>, rule: ScheduleRule) -> Self {
        Self {
            name: name.into(),
            rule,
            overlap: OverlapPolicy::default(),
            on_overlap: OnOverlap::default(),
            catch_up: CatchUp::default(),
        }
    }

    /// Checks every field; the first problem found is returned, naming
    /// `name`, `cron`, `timezone`, `interval` or `catch_up.limit`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_schedule_name(&self.name)?;
        self.rule.validate()?;
        self.catch_up.validate()
    }
}

#[cfg(test)]
mod tests;
