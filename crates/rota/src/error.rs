//! The engine's error type.

use rota_core::{JobState, ValidationError};
use rota_driver::DriverError;

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a [`Client`](crate::Client) call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input breaks a rule; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No job with that id.
    #[error("job {0} not found")]
    NotFound(i64),
    /// No other entity (node, API key, ...) with that id.
    #[error("{entity} {id:?} not found")]
    Missing {
        /// What was looked up: `node`, `api_key`, ...
        entity: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The job's state does not allow the action.
    #[error("cannot {action} job {id}: it is {state}")]
    InvalidState {
        /// The job.
        id: i64,
        /// Its state.
        state: JobState,
        /// The refused action.
        action: &'static str,
    },
    /// A uniqueness rule was broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Waiting for something timed out.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Arguments could not be (de)serialized.
    #[error("job args: {0}")]
    Args(#[from] serde_json::Error),
    /// The client was started twice, or used after shutdown.
    #[error("client lifecycle: {0}")]
    Lifecycle(&'static str),
    /// The URL names no supported store.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A storage error.
    #[error(transparent)]
    Store(DriverError),
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::NotFound { id, entity: "job" } => match id.parse() {
                Ok(id) => Error::NotFound(id),
                Err(_) => Error::Missing { entity: "job", id },
            },
            DriverError::NotFound { id, entity } => Error::Missing { entity, id },
            DriverError::InvalidState { id, state, action } => {
                Error::InvalidState { id, state, action }
            }
            DriverError::Conflict(m) => Error::Conflict(m),
            other => Error::Store(other),
        }
    }
}

impl Error {
    /// Whether retrying later may succeed (store unavailable, pool busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_transient())
    }
}
