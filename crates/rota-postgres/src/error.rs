//! Classification of sqlx errors into [`DriverError`].

use rota_driver::DriverError;

/// Maps a sqlx error onto the driver's error classes.
pub(crate) fn map_sqlx(err: sqlx::Error) -> DriverError {
    match err {
        sqlx::Error::PoolTimedOut => DriverError::PoolTimedOut,
        sqlx::Error::Io(e) => DriverError::Unavailable(e.to_string()),
        sqlx::Error::Tls(e) => DriverError::Unavailable(format!("tls: {e}")),
        sqlx::Error::PoolClosed => DriverError::Unavailable("connection pool closed".to_owned()),
        sqlx::Error::WorkerCrashed => {
            DriverError::Unavailable("database connection worker crashed".to_owned())
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = db.message().to_owned();
            match code.as_str() {
                "23505" => DriverError::Conflict(match db.constraint() {
                    Some(c) => format!("{msg} ({c})"),
                    None => msg,
                }),
                // admin_shutdown, crash_shutdown, cannot_connect_now,
                // too_many_connections (the server or role at its limit)
                "57P01" | "57P02" | "57P03" | "53300" => {
                    DriverError::Unavailable(format!("{code}: {msg}"))
                }
                c if c.starts_with("08") => DriverError::Unavailable(format!("{code}: {msg}")),
                _ => DriverError::Database(format!("{code}: {msg}")),
            }
        }
        e @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)) => {
            DriverError::Corrupt(e.to_string())
        }
        e @ sqlx::Error::Protocol(_) if is_closed_message(&e.to_string()) => {
            DriverError::Unavailable(e.to_string())
        }
        other => DriverError::Database(other.to_string()),
    }
}

fn is_closed_message(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("connection closed") || m.contains("connection reset") || m.contains("broken pipe")
}

/// `.db()?` on sqlx results.
pub(crate) trait SqlxResultExt<T> {
    /// Maps the error with [`map_sqlx`].
    fn db(self) -> Result<T, DriverError>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, DriverError> {
        self.map_err(map_sqlx)
    }
}

/// How often a statement that lost a deadlock is run again.
const DEADLOCK_TRIES: usize = 3;

/// Whether `err` is PostgreSQL's `deadlock_detected` (40P01).
pub(crate) fn is_deadlock(err: &DriverError) -> bool {
    matches!(err, DriverError::Database(m) if m.starts_with("40P01:"))
}

/// Runs `f` (one statement or transaction of its own) again when the server
/// aborted it to break a deadlock. Jobs of several executions changed in one
/// statement lock their executions' rows (counter triggers) in row order, so
/// two such statements can deadlock; the loser was rolled back entirely and
/// is safe to repeat.
pub(crate) async fn retry_deadlocks<T, F, Fut>(mut f: F) -> Result<T, DriverError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DriverError>>,
{
    let mut tries = 1;
    loop {
        match f().await {
            Err(e) if is_deadlock(&e) && tries < DEADLOCK_TRIES => {
                tracing::debug!(error = %e, "statement lost a deadlock; running it again");
                tries += 1;
            }
            other => return other,
        }
    }
}
