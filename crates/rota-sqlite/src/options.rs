//! Driver settings and the connection options every Rota connection uses.

use std::str::FromStr;
use std::time::Duration;

use rota_driver::{DriverError, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

/// How hard SQLite works to make a commit survive a power loss
/// (`PRAGMA synchronous`). Rota always runs in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `FULL` (default): the WAL is synced before a commit is
    /// acknowledged, so an acknowledged write survives a power loss or OS
    /// crash. Rota's writer syncs from a thread of its own, so one
    /// `fdatasync` covers every commit made while the previous one ran.
    /// Other connections (reads, your own transactions) may see a commit
    /// of the writer before that sync; nobody is answered before it.
    #[default]
    Full,
    /// `NORMAL`: the WAL is synced only at checkpoints. Commits survive an
    /// application crash, but the last commits before a power loss or OS
    /// crash may roll back — an acknowledged enqueue or finish can be lost.
    /// Opt in only where that is acceptable; it is several times faster on
    /// disks with slow `fsync`.
    Normal,
    /// `EXTRA`: like `FULL`, and also syncs the directory after a journal
    /// is deleted.
    Extra,
}

impl Synchronous {
    /// The pragma value, e.g. `FULL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Extra => "EXTRA",
        }
    }

    fn to_sqlx(self) -> SqliteSynchronous {
        match self {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Extra => SqliteSynchronous::Extra,
        }
    }
}

/// Settings of a [`SqliteDriver`](crate::SqliteDriver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of a commit; default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a statement waits for another connection's lock before
    /// failing (`PRAGMA busy_timeout`); default 30 s, so "database is
    /// locked" does not reach users under ordinary contention.
    pub busy_timeout: Duration,
    /// Apply pending migrations on open; default `true`.
    pub migrate: bool,
    /// Connections in the read-only pool; default 4.
    pub read_connections: u32,
    /// How long a read waits for a free pooled connection; default 30 s.
    pub acquire_timeout: Duration,
    /// Most operations the writer takes into one batch (group commit:
    /// one transaction per writer connection the batch uses); default 256.
    pub max_batch: usize,
    /// Operations that may wait for the writer before callers are held
    /// back; default 4096.
    pub writer_queue: usize,
    /// How often the wake-up watcher polls `PRAGMA data_version` to notice
    /// commits by other connections or processes; default 10 ms.
    pub watch_interval: Duration,
    /// Buffered wake-ups per subscriber before it lags; default 1024.
    pub wakeup_capacity: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(30),
            migrate: true,
            read_connections: 4,
            acquire_timeout: Duration::from_secs(30),
            max_batch: 256,
            writer_queue: 4096,
            watch_interval: Duration::from_millis(10),
            wakeup_capacity: 1024,
        }
    }
}

/// Connection options for the database at `url`, with the pragmas Rota
/// relies on: WAL, `synchronous = FULL`, `busy_timeout = 30 s`,
/// `foreign_keys = ON`, created if missing.
///
/// Accepts `sqlite://path`, `sqlite:path`, `sqlite:///absolute/path` (with
/// optional sqlx query parameters) or a plain file path. In-memory databases
/// are refused: Rota's writer and readers use separate connections, which
/// would each see a different empty database.
///
/// Use it to open your own pool for transactional enqueue
/// ([`job_insert_many_in`](crate::job_insert_many_in)) so that your
/// connections wait for Rota's writer instead of failing with
/// "database is locked". Open the driver first: it creates the file and
/// switches it to WAL (a switch that `busy_timeout` does not cover, which
/// [`SqliteDriver::open`](crate::SqliteDriver::open) retries).
pub fn connect_options(url: &str) -> Result<SqliteConnectOptions> {
    connect_options_with(url, &SqliteOptions::default())
}

/// [`connect_options`] with the pragmas taken from `options`.
pub(crate) fn connect_options_with(
    url: &str,
    options: &SqliteOptions,
) -> Result<SqliteConnectOptions> {
    Ok(base_options(url, options)?
        .journal_mode(SqliteJournalMode::Wal)
        .create_if_missing(true))
}

/// Options for read-only connections (no journal-mode change, no creation).
pub(crate) fn read_options(url: &str, options: &SqliteOptions) -> Result<SqliteConnectOptions> {
    Ok(base_options(url, options)?.read_only(true))
}

fn base_options(url: &str, options: &SqliteOptions) -> Result<SqliteConnectOptions> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(config_error(url, "empty database path"));
    }
    if trimmed.contains(":memory:") || trimmed.contains("mode=memory") {
        return Err(config_error(
            url,
            "in-memory databases are not supported; use a file (a temporary one for tests)",
        ));
    }
    let parsed = if trimmed.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(trimmed).map_err(|e| config_error(url, &e.to_string()))?
    } else {
        SqliteConnectOptions::new().filename(trimmed)
    };
    Ok(parsed
        .synchronous(options.synchronous.to_sqlx())
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true))
}

fn config_error(url: &str, message: &str) -> DriverError {
    DriverError::Database(format!("invalid SQLite database {url:?}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_spelling_of_a_file() {
        for url in [
            "sqlite://rota.db",
            "sqlite:rota.db",
            "rota.db",
            "sqlite:///tmp/rota.db",
            "/tmp/rota.db",
        ] {
            let o = connect_options(url).unwrap();
            assert!(o.get_filename().ends_with("rota.db"), "{url}");
        }
    }

    #[test]
    fn refuses_memory() {
        assert!(connect_options("sqlite::memory:").is_err());
        assert!(connect_options("").is_err());
    }
}
