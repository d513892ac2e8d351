//! Retry backoff: how long to wait before attempt `n + 1`, and a tracker for
//! recurring work that forgives past failures after a healthy period.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::job::ValidationError;

/// Exponential backoff with a cap, jitter, an attempt limit and a reset
/// interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    /// Wait after the first failure.
    #[serde(with = "duration_ms")]
    pub initial_interval: Duration,
    /// Growth factor per further failure (≥ 1).
    pub multiplier: f64,
    /// Upper bound on any wait.
    #[serde(with = "duration_ms")]
    pub max_interval: Duration,
    /// Random spread as a fraction of the wait, in `0.0..=1.0`: a wait `w`
    /// becomes uniformly `w × (1 ± jitter)`.
    pub jitter: f64,
    /// Attempts before giving up (≥ 1).
    pub max_attempts: u32,
    /// After this long without a failure, a [`BackoffTracker`] forgets past
    /// failures and starts afresh. `None`: never.
    #[serde(with = "opt_duration_ms", default)]
    pub reset_interval: Option<Duration>,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            multiplier: 2.0,
            max_interval: Duration::from_secs(3600),
            jitter: 0.1,
            max_attempts: 25,
            reset_interval: Some(Duration::from_secs(3600)),
        }
    }
}

impl BackoffPolicy {
    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.max_attempts == 0 {
            return Err(ValidationError::new("max_attempts", "must be at least 1"));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ValidationError::new(
                "multiplier",
                "must be a finite number ≥ 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ValidationError::new("jitter", "must be between 0 and 1"));
        }
        if self.max_interval < self.initial_interval {
            return Err(ValidationError::new(
                "max_interval",
                "must not be below initial_interval",
            ));
        }
        Ok(())
    }

    /// The wait after failed attempt number `attempt` (1-based), before
    /// jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(1024) as i32;
        let secs = self.initial_interval.as_secs_f64() * self.multiplier.powi(exp);
        let max = self.max_interval.as_secs_f64();
        Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
    }

    /// The wait after failed attempt `attempt`, with jitter drawn from
    /// `sample` (uniform in `0.0..1.0`; pass `0.5` for no jitter). Never
    /// exceeds `max_interval`.
    pub fn delay(&self, attempt: u32, sample: f64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let spread = (sample.clamp(0.0, 1.0) * 2.0 - 1.0) * self.jitter;
        let secs = (base * (1.0 + spread)).clamp(0.0, self.max_interval.as_secs_f64());
        Duration::from_secs_f64(secs)
    }

    /// When attempt `attempt + 1` may run, given a failure at `now`.
    pub fn next_run_at(&self, now: Timestamp, attempt: u32, sample: f64) -> Timestamp {
        clock::add(now, self.delay(attempt, sample))
    }
}

/// Failure history of a recurring piece of work (a schedule, say), with the
/// reset interval applied: after `reset_interval` of health, past failures
/// are forgotten.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackoffTracker {
    /// Consecutive failures counted towards the backoff.
    pub failures: u32,
    /// When the current healthy stretch began (first success after a failure).
    pub healthy_since: Option<Timestamp>,
    /// Earliest time the work may run again.
    pub not_before: Option<Timestamp>,
}

impl BackoffTracker {
    fn maybe_reset(&mut self, policy: &BackoffPolicy, now: Timestamp) {
        if let (Some(since), Some(reset)) = (self.healthy_since, policy.reset_interval)
            && clock::add(since, reset) <= now
        {
            self.failures = 0;
        }
    }

    /// Records a success at `now`.
    pub fn success(&mut self, policy: &BackoffPolicy, now: Timestamp) {
        if self.healthy_since.is_none() {
            self.healthy_since = Some(now);
        }
        self.maybe_reset(policy, now);
        self.not_before = None;
    }

    /// Records a failure at `now`; returns when the work may run again.
    pub fn failure(&mut self, policy: &BackoffPolicy, now: Timestamp, sample: f64) -> Timestamp {
        self.maybe_reset(policy, now);
        self.healthy_since = None;
        self.failures = self.failures.saturating_add(1);
        let at = policy.next_run_at(now, self.failures, sample);
        self.not_before = Some(at);
        at
    }

    /// Whether the work may run at `now`.
    pub fn allow(&self, now: Timestamp) -> bool {
        self.not_before.is_none_or(|t| t <= now)
    }

    /// Whether failures have reached the policy's limit.
    pub fn exhausted(&self, policy: &BackoffPolicy) -> bool {
        self.failures >= policy.max_attempts
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(crate) mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis().min(u64::MAX as u128) as u64)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial_interval: Duration::from_secs(1),
            multiplier: 2.0,
            max_interval: Duration::from_secs(60),
            jitter: 0.0,
            max_attempts: 5,
            reset_interval: Some(Duration::from_secs(600)),
        }
    }

    #[test]
    fn grows_exponentially_and_caps() {
        let p = policy();
        let secs: Vec<u64> = (1..=8).map(|a| p.delay(a, 0.5).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = policy();
        p.max_attempts = 0;
        assert_eq!(p.validate().unwrap_err().field, "max_attempts");
        let mut p = policy();
        p.multiplier = 0.5;
        assert_eq!(p.validate().unwrap_err().field, "multiplier");
        let mut p = policy();
        p.jitter = 1.5;
        assert_eq!(p.validate().unwrap_err().field, "jitter");
        assert!(policy().validate().is_ok());
    }

    #[test]
    fn tracker_resets_after_sustained_health() {
        let p = policy();
        let t0 = Timestamp::UNIX_EPOCH;
        let mut tr = BackoffTracker::default();
        let at = |s: i64| Timestamp::from_second(s).unwrap_or(t0);
        assert_eq!(tr.failure(&p, at(0), 0.5), at(1));
        assert_eq!(tr.failure(&p, at(1), 0.5), at(3));
        assert!(!tr.allow(at(2)));
        assert!(tr.allow(at(3)));
        // Healthy, but not long enough: the next failure keeps growing.
        tr.success(&p, at(3));
        assert_eq!(tr.failure(&p, at(100), 0.5), at(104));
        // Healthy for the whole reset interval: backoff starts afresh.
        tr.success(&p, at(200));
        tr.success(&p, at(800));
        assert_eq!(tr.failures, 0);
        assert_eq!(tr.failure(&p, at(900), 0.5), at(901));
        assert!(!tr.exhausted(&p));
    }

    proptest! {
        #[test]
        fn delay_is_bounded(attempt in 0u32..10_000, sample in 0.0f64..1.0, jitter in 0.0f64..=1.0) {
            let p = BackoffPolicy { jitter, ..policy() };
            let d = p.delay(attempt, sample);
            prop_assert!(d <= p.max_interval);
            let base = p.base_delay(attempt).as_secs_f64();
            prop_assert!(d.as_secs_f64() >= base * (1.0 - jitter) - 1e-9);
        }
    }
}
