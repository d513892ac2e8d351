//! Job value types and the validation of what callers ask to insert.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::queue::validate_queue_name;
use crate::state::JobState;

/// Highest allowed priority number. Priorities run from 0 (first) to this.
pub const MAX_PRIORITY: i16 = 9;
/// Longest kind, queue, label or attribute name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// Longest unique key accepted.
pub const MAX_UNIQUE_KEY_LEN: usize = 512;

/// Input that breaks a rule; names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ValidationError {
    /// The offending field, e.g. `max_attempts`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why an attempt ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The handler returned a retryable error.
    Error,
    /// The handler returned a fatal error.
    Fatal,
    /// The handler panicked.
    Panic,
    /// The attempt exceeded its timeout.
    Timeout,
    /// The worker's lease expired (presumed dead) and the job was rescued.
    Rescued,
    /// A graceful shutdown handed the job back.
    Shutdown,
    /// The job was canceled while running.
    Canceled,
}

/// One recorded failure, kept per attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// When it failed.
    pub at: Timestamp,
    /// Classification.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique id, increasing with insertion order.
    pub id: i64,
    /// What runs it.
    pub kind: String,
    /// The queue it waits in.
    pub queue: String,
    /// Lifecycle state.
    pub state: JobState,
    /// 0 runs first, [`MAX_PRIORITY`] last.
    pub priority: i16,
    /// Handler arguments.
    pub args: serde_json::Value,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it may run next.
    pub run_at: Timestamp,
    /// When it was inserted.
    pub created_at: Timestamp,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// Per-attempt failures, oldest first.
    pub errors: Vec<AttemptError>,
    /// Last progress check-in.
    pub progress: Option<serde_json::Value>,
    /// Captured output (capped).
    pub output: Option<String>,
    /// Node selector: only nodes carrying all these labels may run it.
    pub labels: BTreeMap<String, String>,
    /// User attributes, queryable.
    pub attributes: BTreeMap<String, String>,
    /// Uniqueness among unfinished jobs.
    pub unique_key: Option<String>,
    /// Per-attempt time limit.
    #[serde(with = "crate::backoff::opt_duration_ms", default)]
    pub timeout: Option<Duration>,
    /// The node running (or that last ran) it.
    pub node: Option<String>,
    /// When the current lease expires (running jobs).
    pub lease_expires_at: Option<Timestamp>,
    /// Fencing token of the current run (running jobs). Internal: never
    /// serialized, so API clients cannot forge a completion.
    #[serde(skip)]
    pub lease_token: Option<i64>,
    /// When cancellation was requested, if it was.
    pub cancel_requested_at: Option<Timestamp>,
    /// W3C `traceparent` of the enqueuer, if any.
    pub trace_context: Option<String>,
    /// Exit code of a shell job's process.
    pub exit_code: Option<i32>,
    /// The execution this job belongs to, if any.
    #[serde(default)]
    pub execution_id: Option<i64>,
    /// The schedule that created this job, if any.
    #[serde(default)]
    pub schedule_id: Option<i64>,
    /// Status revision: increases with every state change, so receivers
    /// of status events can drop out-of-order ones.
    #[serde(default)]
    pub revision: i64,
}

/// What a caller asks to insert; validated by [`JobSpec::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// What runs it; non-empty.
    pub kind: String,
    /// Handler arguments.
    pub args: serde_json::Value,
    /// Queue name; defaults to `default`.
    pub queue: String,
    /// 0..=[`MAX_PRIORITY`]; 0 runs first.
    pub priority: i16,
    /// Run no earlier than this; `None` means now.
    pub run_at: Option<Timestamp>,
    /// Attempts allowed, ≥ 1.
    pub max_attempts: u32,
    /// Per-attempt time limit; must be positive when set.
    #[serde(with = "crate::backoff::opt_duration_ms", default)]
    pub timeout: Option<Duration>,
    /// At most one unfinished job carries this key.
    pub unique_key: Option<String>,
    /// Node selector.
    pub labels: BTreeMap<String, String>,
    /// Queryable user attributes.
    pub attributes: BTreeMap<String, String>,
    /// W3C `traceparent` of the enqueuer.
    pub trace_context: Option<String>,
}

impl JobSpec {
    /// A spec with defaults for everything but kind and args.
    pub fn new(kind: impl Into<String>, args: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            args,
            queue: "default".to_owned(),
            priority: 0,
            run_at: None,
            max_attempts: 25,
            timeout: None,
            unique_key: None,
            labels: BTreeMap::new(),
            attributes: BTreeMap::new(),
            trace_context: None,
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("kind", &self.kind)?;
        validate_queue_name(&self.queue).map_err(|e| ValidationError::new("queue", e.message))?;
        if !(0..=MAX_PRIORITY).contains(&self.priority) {
            return Err(ValidationError::new(
                "priority",
                format!("must be between 0 and {MAX_PRIORITY}"),
            ));
        }
        if self.max_attempts == 0 {
            return Err(ValidationError::new("max_attempts", "must be at least 1"));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ValidationError::new("timeout", "must be positive"));
        }
        if let Some(key) = &self.unique_key
            && (key.is_empty() || key.len() > MAX_UNIQUE_KEY_LEN || key.contains('\0'))
        {
            return Err(ValidationError::new(
                "unique_key",
                format!("must be 1..={MAX_UNIQUE_KEY_LEN} bytes without NUL"),
            ));
        }
        for (map, field) in [(&self.labels, "labels"), (&self.attributes, "attributes")] {
            for (k, v) in map {
                validate_name(field, k)?;
                if v.contains('\0') {
                    return Err(ValidationError::new(
                        format!("{field}.{k}"),
                        "must not contain NUL",
                    ));
                }
            }
        }
        if contains_nul(&self.args) {
            return Err(ValidationError::new(
                "args",
                "must not contain NUL characters",
            ));
        }
        Ok(())
    }
}

fn validate_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_NAME_LEN} bytes"),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn contains_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(contains_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_specs_name_their_field() {
        let ok = JobSpec::new("email", json!({"to": "a"}));
        assert!(ok.validate().is_ok());
        let cases: Vec<(JobSpec, &str)> = vec![
            (
                JobSpec {
                    kind: String::new(),
                    ..ok.clone()
                },
                "kind",
            ),
            (
                JobSpec {
                    queue: String::new(),
                    ..ok.clone()
                },
                "queue",
            ),
            (
                JobSpec {
                    priority: 10,
                    ..ok.clone()
                },
                "priority",
            ),
            (
                JobSpec {
                    priority: -1,
                    ..ok.clone()
                },
                "priority",
            ),
            (
                JobSpec {
                    max_attempts: 0,
                    ..ok.clone()
                },
                "max_attempts",
            ),
            (
                JobSpec {
                    timeout: Some(Duration::ZERO),
                    ..ok.clone()
                },
                "timeout",
            ),
            (
                JobSpec {
                    unique_key: Some(String::new()),
                    ..ok.clone()
                },
                "unique_key",
            ),
            (
                JobSpec {
                    args: json!({"a": "x\u{0}y"}),
                    ..ok.clone()
                },
                "args",
            ),
            (
                JobSpec {
                    kind: "a\nb".into(),
                    ..ok.clone()
                },
                "kind",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field, field, "{spec:?}");
        }
    }
}
