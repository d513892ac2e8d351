//! The job lifecycle as one explicit transition table.
//!
//! ```text
//!                 ┌────────── snooze ─────────────┐
//!                 ▼                               │
//!   insert ─► scheduled ─promote─► available ─claim─► running ─succeed─► succeeded
//!     │                              ▲   ▲            │  │  │
//!     └───────(run_at due)───────────┘   │            │  │  └─fatal / exhausted─► failed
//!                                        │            │  └─cancel ack─► canceled
//!            retrying ◄───── error / rescue (attempts left)
//!               └──────promote──────────┘
//! ```
//!
//! Every allowed change is one row of [`TRANSITIONS`]; anything else is a
//! [`TransitionError`]. Drivers encode the same rows in their SQL `WHERE`
//! clauses; the conformance suite checks they agree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at` (inserted for later, or snoozed).
    Scheduled,
    /// Ready to be claimed by a worker.
    Available,
    /// Claimed by a worker holding a lease.
    Running,
    /// Failed with attempts left; becomes available at its `run_at`.
    Retrying,
    /// Finished successfully. Terminal.
    Succeeded,
    /// Attempts exhausted or a fatal error. Terminal.
    Failed,
    /// Canceled by request. Terminal.
    Canceled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retrying,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Canceled,
    ];

    /// The states a job never leaves on its own (only an operator retry).
    pub const FINISHED: [JobState; 3] = [JobState::Succeeded, JobState::Failed, JobState::Canceled];

    /// The stable lowercase name used in storage and APIs.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    /// Whether the state is terminal.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Canceled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job state {0:?}; expected one of scheduled, available, running, retrying, succeeded, failed, canceled"
)]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    /// Its `run_at` came due (scheduled or retrying → available).
    Promote,
    /// A worker claimed it; starts an attempt.
    Claim,
    /// The handler returned success.
    Succeed,
    /// The handler returned a retryable error (or timed out / panicked).
    Error,
    /// The handler returned a fatal error: no retry.
    Fatal,
    /// The handler asked to run again later without using an attempt.
    Snooze,
    /// Someone asked for cancellation. Waiting jobs end at once; a running
    /// job records the request and keeps running until its handler stops.
    Cancel,
    /// The running handler stopped because of a cancel (or returned cancel).
    CancelAck,
    /// The lease expired: the worker is presumed dead. Counts the attempt.
    Rescue,
    /// Graceful shutdown gave the job back before it finished.
    HandBack,
    /// An operator asked to run it again (now).
    Retry,
}

/// A condition on the attempt counters that selects between rows with the
/// same state and event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Always applies.
    Always,
    /// Applies when `attempt < max_attempts`.
    AttemptsLeft,
    /// Applies when `attempt >= max_attempts`.
    AttemptsExhausted,
}

/// How a transition changes the attempt counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptChange {
    /// Unchanged.
    Keep,
    /// One more attempt started.
    Increment,
    /// The attempt is given back (snooze).
    Decrement,
    /// Start counting afresh (operator retry of a finished job).
    Reset,
}

/// One allowed transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: JobState,
    /// What happened.
    pub event: JobEvent,
    /// Condition on the attempt counters.
    pub guard: Guard,
    /// State after.
    pub to: JobState,
    /// Effect on `attempt`.
    pub attempt: AttemptChange,
}

const fn t(
    from: JobState,
    event: JobEvent,
    guard: Guard,
    to: JobState,
    attempt: AttemptChange,
) -> Transition {
    Transition {
        from,
        event,
        guard,
        to,
        attempt,
    }
}

use AttemptChange as A;
use Guard as G;
use JobEvent as E;
use JobState as S;

/// Every allowed transition. Anything not listed is an error.
pub const TRANSITIONS: &[Transition] = &[
    t(S::Scheduled, E::Promote, G::Always, S::Available, A::Keep),
    t(S::Retrying, E::Promote, G::Always, S::Available, A::Keep),
    t(
        S::Available,
        E::Claim,
        G::AttemptsLeft,
        S::Running,
        A::Increment,
    ),
    t(S::Running, E::Succeed, G::Always, S::Succeeded, A::Keep),
    t(S::Running, E::Error, G::AttemptsLeft, S::Retrying, A::Keep),
    t(
        S::Running,
        E::Error,
        G::AttemptsExhausted,
        S::Failed,
        A::Keep,
    ),
    t(S::Running, E::Fatal, G::Always, S::Failed, A::Keep),
    t(S::Running, E::Snooze, G::Always, S::Scheduled, A::Decrement),
    t(S::Running, E::Cancel, G::Always, S::Running, A::Keep),
    t(S::Running, E::CancelAck, G::Always, S::Canceled, A::Keep),
    t(S::Running, E::Rescue, G::AttemptsLeft, S::Retrying, A::Keep),
    t(
        S::Running,
        E::Rescue,
        G::AttemptsExhausted,
        S::Failed,
        A::Keep,
    ),
    t(
        S::Running,
        E::HandBack,
        G::AttemptsLeft,
        S::Available,
        A::Keep,
    ),
    t(
        S::Running,
        E::HandBack,
        G::AttemptsExhausted,
        S::Failed,
        A::Keep,
    ),
    t(S::Scheduled, E::Cancel, G::Always, S::Canceled, A::Keep),
    t(S::Available, E::Cancel, G::Always, S::Canceled, A::Keep),
    t(S::Retrying, E::Cancel, G::Always, S::Canceled, A::Keep),
    t(S::Scheduled, E::Retry, G::Always, S::Available, A::Keep),
    t(S::Retrying, E::Retry, G::Always, S::Available, A::Keep),
    t(S::Succeeded, E::Retry, G::Always, S::Available, A::Reset),
    t(S::Failed, E::Retry, G::Always, S::Available, A::Reset),
    t(S::Canceled, E::Retry, G::Always, S::Available, A::Reset),
];

/// An event that is not allowed in the job's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event:?} a job that is {from}")]
pub struct TransitionError {
    /// The job's state.
    pub from: JobState,
    /// The refused event.
    pub event: JobEvent,
}

/// The result of applying an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The new state.
    pub to: JobState,
    /// The new attempt counter.
    pub attempt: u32,
}

impl JobState {
    /// Applies `event` to a job in this state with the given counters,
    /// returning the new state and attempt, or why the event is refused.
    pub fn apply(
        self,
        event: JobEvent,
        attempt: u32,
        max_attempts: u32,
    ) -> Result<Step, TransitionError> {
        let row = TRANSITIONS
            .iter()
            .find(|r| {
                r.from == self
                    && r.event == event
                    && match r.guard {
                        Guard::Always => true,
                        Guard::AttemptsLeft => attempt < max_attempts,
                        Guard::AttemptsExhausted => attempt >= max_attempts,
                    }
            })
            .ok_or(TransitionError { from: self, event })?;
        let attempt = match row.attempt {
            AttemptChange::Keep => attempt,
            AttemptChange::Increment => attempt + 1,
            AttemptChange::Decrement => attempt.saturating_sub(1),
            AttemptChange::Reset => 0,
        };
        Ok(Step {
            to: row.to,
            attempt,
        })
    }

    /// The states from which `event` can apply (for drivers' `WHERE` clauses).
    pub fn sources(event: JobEvent) -> Vec<JobState> {
        let mut v: Vec<JobState> = TRANSITIONS
            .iter()
            .filter(|r| r.event == event)
            .map(|r| r.from)
            .collect();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests;
