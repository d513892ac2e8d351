//! Rota's domain model, free of I/O.
//!
//! Everything here is pure: the job state machine ([`state`]), the backoff
//! policy ([`backoff`]), the injected [`Clock`], job and queue value types and
//! their validation ([`job`], [`queue`]), and the schedule model: cron and
//! interval rules, overlap and catch-up policies, and which fires are due
//! ([`schedule`]). Storage drivers and the runtime build
//! on these types; the state machine is the single source of truth for which
//! changes a job may undergo.

pub mod backoff;
pub mod clock;
pub mod job;
pub mod output;
pub mod queue;
pub mod schedule;
pub mod state;

pub use backoff::{BackoffPolicy, BackoffTracker};
pub use clock::{Clock, ManualClock, SystemClock};
pub use job::{AttemptError, ErrorKind, Job, JobSpec, MAX_PRIORITY, ValidationError};
pub use output::OutputBuffer;
pub use queue::{QueueConfig, validate_queue_name};
pub use schedule::{
    CatchUp, CompiledRule, FirePlan, OnOverlap, OverlapPolicy, ScheduleRule, ScheduleSpec,
    due_fires,
};
pub use state::{JobEvent, JobState, Step, TRANSITIONS, TransitionError};
