//! Mapping of sqlx and SQLite errors onto [`DriverError`].

use rota_driver::DriverError;
use sqlx::error::ErrorKind;

// Primary SQLite result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_PROTOCOL: i64 = 15;

/// Classifies a sqlx error.
///
/// Pool timeouts become [`DriverError::PoolTimedOut`]; I/O, connection and
/// "busy/locked/full/can't open" errors become [`DriverError::Unavailable`]
/// (transient); unique violations become [`DriverError::Conflict`]; anything
/// else is [`DriverError::Database`].
pub(crate) fn map_sqlx(err: sqlx::Error) -> DriverError {
    match err {
        sqlx::Error::PoolTimedOut => DriverError::PoolTimedOut,
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) => {
            DriverError::Unavailable(err.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            DriverError::Corrupt(err.to_string())
        }
        sqlx::Error::Database(db) => {
            if matches!(db.kind(), ErrorKind::UniqueViolation) {
                return DriverError::Conflict(db.message().to_owned());
            }
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            match primary {
                Some(
                    SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN
                    | SQLITE_PROTOCOL,
                ) => DriverError::Unavailable(db.to_string()),
                _ => DriverError::Database(db.to_string()),
            }
        }
        other => DriverError::Database(other.to_string()),
    }
}

/// Classifies an error of the writer's native (rusqlite) connection, the
/// same way [`map_sqlx`] does.
pub(crate) fn map_native(err: rusqlite::Error) -> DriverError {
    use rusqlite::ErrorCode;
    match &err {
        rusqlite::Error::SqliteFailure(e, msg) => {
            let text = msg.clone().unwrap_or_else(|| e.to_string());
            match e.code {
                ErrorCode::ConstraintViolation
                    if matches!(
                        e.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    DriverError::Conflict(text)
                }
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::FileLockingProtocolFailed => DriverError::Unavailable(text),
                _ => DriverError::Database(text),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnType(..) => DriverError::Corrupt(err.to_string()),
        _ => DriverError::Database(err.to_string()),
    }
}

/// Whether an error means the connection itself is gone (so a new one is
/// needed), rather than one statement failing.
pub(crate) fn is_connection_lost(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
    )
}

/// Whether the error is `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended code).
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

/// A copy of an error, for handing one failure (a failed `COMMIT`) to every
/// caller of a batch. `DriverError` is not `Clone`; this rebuilds it.
pub(crate) fn duplicate(err: &DriverError) -> DriverError {
    match err {
        DriverError::NotFound { entity, id } => DriverError::NotFound {
            entity,
            id: id.clone(),
        },
        DriverError::InvalidState { id, state, action } => DriverError::InvalidState {
            id: *id,
            state: *state,
            action,
        },
        DriverError::Conflict(m) => DriverError::Conflict(m.clone()),
        DriverError::Unavailable(m) => DriverError::Unavailable(m.clone()),
        DriverError::PoolTimedOut => DriverError::PoolTimedOut,
        DriverError::Migration(m) => DriverError::Migration(m.clone()),
        DriverError::Corrupt(m) => DriverError::Corrupt(m.clone()),
        DriverError::NotImplemented(m) => DriverError::NotImplemented(m),
        DriverError::Database(m) => DriverError::Database(m.clone()),
        other => DriverError::Database(other.to_string()),
    }
}

/// The error callers get when the writer thread is gone.
pub(crate) fn writer_gone() -> DriverError {
    DriverError::Unavailable("the SQLite writer thread has stopped".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keeps_variant_and_message() {
        let e = DriverError::Conflict("x".into());
        assert!(matches!(duplicate(&e), DriverError::Conflict(m) if m == "x"));
        assert!(matches!(
            duplicate(&DriverError::PoolTimedOut),
            DriverError::PoolTimedOut
        ));
    }

    #[test]
    fn pool_timeout_maps() {
        assert!(matches!(
            map_sqlx(sqlx::Error::PoolTimedOut),
            DriverError::PoolTimedOut
        ));
        assert!(map_sqlx(sqlx::Error::WorkerCrashed).is_transient());
    }
}
