//! Enqueue options and the translation of a request into insert params.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::{JobSpec, JobState, ValidationError, clock};
use rota_driver::JobInsertParams;

use crate::worker::JobArgs;

/// Options for one enqueue; unset fields take the kind's or the client's
/// defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnqueueOpts {
    /// Queue (default `default`).
    pub queue: Option<String>,
    /// 0 (first) ..= 9 (last); default 0.
    pub priority: Option<i16>,
    /// Run at this time (exclusive with `delay`).
    pub run_at: Option<Timestamp>,
    /// Run after this delay (exclusive with `run_at`).
    pub delay: Option<Duration>,
    /// Attempts allowed (≥ 1); default from the client.
    pub max_attempts: Option<u32>,
    /// Per-attempt timeout (> 0).
    pub timeout: Option<Duration>,
    /// At most one unfinished job with this key; a duplicate enqueue
    /// returns the existing job.
    pub unique_key: Option<String>,
    /// Node selector: only nodes with all these labels run the job.
    pub labels: BTreeMap<String, String>,
    /// Queryable attributes.
    pub attributes: BTreeMap<String, String>,
    /// W3C `traceparent` of the caller; generated when absent.
    pub trace_context: Option<String>,
}

impl EnqueueOpts {
    /// Sets the queue.
    pub fn queue(mut self, q: impl Into<String>) -> Self {
        self.queue = Some(q.into());
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, p: i16) -> Self {
        self.priority = Some(p);
        self
    }

    /// Runs at `at`.
    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Runs after `d`.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Sets max attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Sets the unique key.
    pub fn unique_key(mut self, k: impl Into<String>) -> Self {
        self.unique_key = Some(k.into());
        self
    }

    /// Adds a node-selector label.
    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// Adds an attribute.
    pub fn attribute(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    /// Fills unset fields from `defaults`.
    fn or(self, defaults: EnqueueOpts) -> EnqueueOpts {
        let mut labels = defaults.labels;
        labels.extend(self.labels);
        let mut attributes = defaults.attributes;
        attributes.extend(self.attributes);
        EnqueueOpts {
            queue: self.queue.or(defaults.queue),
            priority: self.priority.or(defaults.priority),
            run_at: self.run_at.or(defaults.run_at),
            delay: self.delay.or(defaults.delay),
            max_attempts: self.max_attempts.or(defaults.max_attempts),
            timeout: self.timeout.or(defaults.timeout),
            unique_key: self.unique_key.or(defaults.unique_key),
            labels,
            attributes,
            trace_context: self.trace_context.or(defaults.trace_context),
        }
    }
}

/// One job to enqueue, typed args already serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// Kind.
    pub kind: String,
    /// Args.
    pub args: serde_json::Value,
    /// Options.
    pub opts: EnqueueOpts,
}

impl JobRequest {
    /// A request for typed args, with the kind's default options under `opts`.
    pub fn new<A: JobArgs>(args: &A, opts: EnqueueOpts) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: A::KIND.to_owned(),
            args: serde_json::to_value(args)?,
            opts: opts.or(A::default_opts()),
        })
    }

    /// A request for a kind by name with raw JSON args.
    pub fn raw(kind: impl Into<String>, args: serde_json::Value, opts: EnqueueOpts) -> Self {
        Self {
            kind: kind.into(),
            args,
            opts,
        }
    }

    /// Validates and resolves against `now`, producing insert params.
    pub(crate) fn into_params(
        self,
        now: Timestamp,
        default_max_attempts: u32,
    ) -> Result<JobInsertParams, ValidationError> {
        let o = self.opts;
        if o.run_at.is_some() && o.delay.is_some() {
            return Err(ValidationError::new(
                "delay",
                "give either run_at or delay, not both",
            ));
        }
        let run_at = match (o.run_at, o.delay) {
            (Some(at), _) => at,
            (None, Some(d)) => clock::add(now, d),
            (None, None) => now,
        };
        let spec = JobSpec {
            kind: self.kind,
            args: self.args,
            queue: o.queue.unwrap_or_else(|| "default".to_owned()),
            priority: o.priority.unwrap_or(0),
            run_at: Some(run_at),
            max_attempts: o.max_attempts.unwrap_or(default_max_attempts),
            timeout: o.timeout,
            unique_key: o.unique_key,
            labels: o.labels,
            attributes: o.attributes,
            trace_context: Some(o.trace_context.unwrap_or_else(new_traceparent)),
        };
        spec.validate()?;
        Ok(JobInsertParams {
            state: if run_at > now {
                JobState::Scheduled
            } else {
                JobState::Available
            },
            kind: spec.kind,
            args: spec.args,
            queue: spec.queue,
            priority: spec.priority,
            run_at,
            created_at: now,
            max_attempts: spec.max_attempts,
            timeout: spec.timeout,
            unique_key: spec.unique_key,
            labels: spec.labels,
            attributes: spec.attributes,
            trace_context: spec.trace_context,
        })
    }
}

/// A fresh W3C `traceparent` (version 00, sampled), so the enqueue and every
/// run of the job share one trace id in logs even without OpenTelemetry.
fn new_traceparent() -> String {
    // The thread-local generator, not `Uuid::new_v4` (a `getrandom` system
    // call per id, measurable in bulk enqueues). All-zero ids are invalid.
    let trace = rand::random::<u128>().max(1);
    let span = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resolves_state_from_run_at() {
        let now = Timestamp::UNIX_EPOCH;
        let p = JobRequest::raw("k", json!({}), EnqueueOpts::default()).into_params(now, 3);
        assert_eq!(p.map(|p| p.state), Ok(JobState::Available));
        let p = JobRequest::raw(
            "k",
            json!({}),
            EnqueueOpts::default().delay(Duration::from_secs(1)),
        )
        .into_params(now, 3);
        assert_eq!(p.map(|p| p.state), Ok(JobState::Scheduled));
    }

    #[test]
    fn rejects_both_run_at_and_delay() {
        let o = EnqueueOpts::default()
            .delay(Duration::from_secs(1))
            .run_at(Timestamp::UNIX_EPOCH);
        let e = JobRequest::raw("k", json!({}), o).into_params(Timestamp::UNIX_EPOCH, 3);
        assert_eq!(e.map(|_| ()).unwrap_err().field, "delay");
    }
}
