//! Exit codes, stable so scripts can branch on them.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::http::HttpError;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Everything worked (and every waited-for job succeeded).
    Success = 0,
    /// A job failed, or the server refused the request (not found, state
    /// conflict, authentication), or another error.
    Failure = 1,
    /// Bad usage or invalid input: flags, settings, or a 400/413/422 answer.
    Usage = 2,
    /// A waited-for job was canceled.
    Canceled = 3,
    /// Gave up waiting for jobs.
    Timeout = 4,
    /// The server (or, for direct commands, the store) could not be
    /// reached, or answered 503.
    Unreachable = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error that decides its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Fail {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Fail {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    /// Bad input from the user.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
}

/// The exit code for an error: the first error in the chain that knows.
pub(crate) fn code_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Fail>() {
            return f.exit;
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return Exit::Usage;
        }
        if let Some(h) = cause.downcast_ref::<HttpError>() {
            return h.exit();
        }
        if let Some(e) = cause.downcast_ref::<rota::Error>() {
            return match e {
                rota::Error::Invalid(_) | rota::Error::UnsupportedUrl(_) => Exit::Usage,
                e if e.is_transient() => Exit::Unreachable,
                _ => Exit::Failure,
            };
        }
    }
    Exit::Failure
}

/// Whether the error is stdout having been closed (`rota job list | head`):
/// not worth a message.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == broken
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
    })
}
