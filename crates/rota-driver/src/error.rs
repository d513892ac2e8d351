//! The one error type every driver returns.

use rota_core::JobState;

/// Result alias for driver calls.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// What went wrong in a storage call, classified without naming any
/// database library's types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// No row with that id.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked up: `job`, `queue`, ...
        entity: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The job's state does not allow the action (see the transition table).
    #[error("cannot {action} job {id}: it is {state}")]
    InvalidState {
        /// The job.
        id: i64,
        /// Its current state.
        state: JobState,
        /// What was refused: `cancel`, `retry`, `delete`.
        action: &'static str,
    },
    /// A uniqueness rule was broken (e.g. retrying a job whose unique key is
    /// now held by another unfinished job).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store cannot be reached right now; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Every pooled connection stayed busy for the acquire timeout.
    #[error("timed out waiting for a database connection (pool exhausted)")]
    PoolTimedOut,
    /// Applying or reading migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The driver does not support this operation.
    #[error("not implemented by this driver: {0}")]
    NotImplemented(&'static str),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl DriverError {
    /// Whether retrying the same call later might succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DriverError::Unavailable(_) | DriverError::PoolTimedOut
        )
    }
}
