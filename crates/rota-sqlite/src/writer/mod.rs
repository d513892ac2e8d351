//! The one writer: a thread that owns the writing connections and commits
//! concurrent callers' operations together (group commit).
//!
//! Callers send a boxed operation and wait on a oneshot reply. An operation
//! is either *native* — a synchronous closure over the writer's own
//! `rusqlite` connection, used by the hot paths (enqueue, claim, finish,
//! heartbeat) — or an async closure over a sqlx `SqliteConnection`, which
//! shares its SQL with reads and users' own transactions. The thread runs
//! sqlx operations to completion with the runtime's `Handle::block_on`.
//! Native operations skip sqlx's connection thread: no hand-off per
//! statement and no copy of every returned value (bulk enqueue got ~1.7×
//! and processing ~1.5× faster; docs/benchmarks.md).
//!
//! The thread takes the first queued operation, drains whatever else is
//! already queued (up to
//! [`SqliteOptions::max_batch`](crate::SqliteOptions::max_batch)), and runs
//! the native operations, then the sqlx ones, each group as
//!
//! ```text
//! BEGIN IMMEDIATE
//!   SAVEPOINT rota_op  <op 1>  RELEASE rota_op          -- kept
//!   SAVEPOINT rota_op  <op 2>  ROLLBACK TO rota_op ...  -- failed: undone alone
//!   ...
//! COMMIT
//! ```
//!
//! on its connection, and only then replies to that group's callers. The
//! two connections never write at the same time: the thread runs one
//! transaction after the other. An acknowledgement therefore always
//! follows its commit, while concurrent callers share one commit. With
//! `synchronous = FULL` (or `EXTRA`) the acknowledgement also follows an
//! `fdatasync` of the WAL, made by a thread of its own ([`sync`]) while the
//! writer goes on with the next batch; commits made meanwhile share the
//! next sync. A failed operation
//! is returned to its own caller only; a failed `BEGIN`, savepoint or
//! `COMMIT` fails every caller of the batch. Panics inside an operation are
//! caught and reported as errors, so the thread survives them. When the
//! thread is gone (a panic in the writer's own code would end it), callers
//! get [`DriverError::Unavailable`].

mod checkpoint;
mod op;
mod sync;
mod thread;

pub(crate) use checkpoint::{BUSY_PAGES, IDLE_PAGES};
pub(crate) use sync::SyncFn;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rota_driver::{DriverError, OnCommitted, ParkingLot, Result, Wakeup};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc};

use crate::error::map_native;

pub(crate) use op::WriterHandle;
#[cfg(test)]
pub(crate) use op::detached;
use thread::Writer;

/// A boxed future borrowing the writer's connection for `'c`.
pub(crate) type BoxFut<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// What an operation reports besides its result; applied only when the
/// operation's savepoint is kept and its batch commits.
#[derive(Default)]
pub(crate) struct OpEffects {
    wake: BTreeSet<String>,
    committed: Vec<OnCommitted>,
}

impl std::fmt::Debug for OpEffects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpEffects")
            .field("wake", &self.wake)
            .field("committed", &self.committed.len())
            .finish()
    }
}

impl OpEffects {
    /// Asks for a wake-up of `queue` once the batch has committed.
    pub(crate) fn wake(&mut self, queue: &str) {
        if !self.wake.contains(queue) {
            self.wake.insert(queue.to_owned());
        }
    }

    /// Runs `f` right after the batch commits, before the commit is synced
    /// and the callers answered (see [`rota_driver::Driver::job_finish_many_then`]).
    pub(crate) fn when_committed(&mut self, f: OnCommitted) {
        self.committed.push(f);
    }

    /// Takes over `other`'s effects (a kept operation's, into its batch's).
    fn absorb(&mut self, mut other: OpEffects) {
        self.wake.append(&mut other.wake);
        self.committed.append(&mut other.committed);
    }
}

/// Commit counters shared with the wake-up watcher and [`WriterStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// `COMMIT`s issued (incremented just before each).
    pub(crate) commits_started: AtomicU64,
    /// `COMMIT`s returned, successfully or not (incremented just after).
    pub(crate) commits_finished: AtomicU64,
    /// Batches committed successfully.
    pub(crate) batches: AtomicU64,
    /// Operations run inside committed batches.
    pub(crate) ops: AtomicU64,
    /// Syncs of the WAL by the sync thread.
    pub(crate) syncs: AtomicU64,
    /// WAL checkpoints by the writer's native connection (see
    /// [`checkpoint`]).
    pub(crate) checkpoints: AtomicU64,
    /// The sync thread runs (see [`sync`]).
    pub(crate) sync_thread: AtomicBool,
    /// The watcher asks the writer to check for foreign commits.
    pub(crate) probe_requested: AtomicBool,
}

impl Counters {
    /// Counts one commit for the wake-up watcher: started now, finished
    /// when the returned guard drops (whether the commit succeeded or not).
    fn commit(&self) -> CommitInFlight<'_> {
        self.commits_started.fetch_add(1, Ordering::SeqCst);
        CommitInFlight(self)
    }
}

/// A commit in flight; see [`Counters::commit`].
struct CommitInFlight<'a>(&'a Counters);

impl Drop for CommitInFlight<'_> {
    fn drop(&mut self) {
        self.0.commits_finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// Group-commit figures of a driver's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions the writer committed.
    pub batches: u64,
    /// Operations those transactions carried; `ops / batches` is the
    /// average group-commit size.
    pub ops: u64,
    /// `fdatasync`s of the WAL made off the writer thread (0 when the
    /// writer's own commits sync, with `synchronous` below `FULL`).
    pub syncs: u64,
    /// WAL checkpoints the writer ran: when idle, or past 32 MiB of WAL
    /// while busy.
    pub checkpoints: u64,
}

/// One of the writer's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The `rusqlite` connection of native operations.
    Native,
    /// The sqlx connection.
    Sqlx,
}

/// The writer's connections.
pub(crate) struct Conns {
    rt: Handle,
    sqlx: SqliteConnection,
    native: rusqlite::Connection,
}

/// Opens the writer's native connection to the file `connect` names, with
/// the same pragmas as the sqlx one. The sqlx connection opens (and switches
/// the file to WAL) first.
pub(crate) fn open_native(
    connect: &SqliteConnectOptions,
    synchronous: &str,
    busy_timeout: std::time::Duration,
) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        rusqlite::Connection::open_with_flags(connect.get_filename(), flags).map_err(map_native)?;
    conn.busy_timeout(busy_timeout).map_err(map_native)?;
    // `temp_store = MEMORY` keeps the sub-journal in memory. Every page a
    // statement inside the writer's transaction (its savepoints, its group
    // commits) changes is first copied there; on a file, each claim or
    // finish past 64 KiB of them became `pwrite`s, ~6 % of the writer's
    // time (perf, round 15). It holds only pages that existed before the
    // savepoint or statement, and is emptied when the statement or the
    // operation's savepoint ends. This connection runs only the hot
    // operations (claims, finishes, heartbeats and inserts: bounded
    // batches, whose inserts mostly fill new pages); the rest run on the
    // sqlx connection, whose temporary files stay on disk.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(map_native)?;
    // Every statement shape of the hot paths stays prepared: up to ten
    // padded widths each of the finish, quiet finish, plain-success finish
    // and heartbeat statements, the claim's two, the change effects' three,
    // the savepoint controls, inserts (multi-row inserts of odd sizes are
    // prepared uncached, so they never evict it).
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// The writer's settings and shared state.
pub(crate) struct WriterSetup {
    pub(crate) connect: SqliteConnectOptions,
    pub(crate) max_batch: usize,
    pub(crate) queue: usize,
    pub(crate) counters: Arc<Counters>,
    pub(crate) wake: broadcast::Sender<Wakeup>,
    pub(crate) parked: Arc<ParkingLot>,
    /// Who makes commits durable.
    pub(crate) durability: Durability,
}

/// Who makes the writer's commits durable.
pub(crate) enum Durability {
    /// Each commit, as `synchronous` says (below `FULL`, or when the sync
    /// thread cannot start).
    OwnCommits,
    /// An `fdatasync` of the WAL before every answer, off the writer
    /// thread when work is queued (for `FULL` and `EXTRA`); see [`sync`].
    SyncThread,
    /// As `SyncThread`, with this sync instead of the WAL file's.
    #[cfg(test)]
    SyncWith(SyncFn),
}

/// Starts the writer thread on `sqlx` and `native`; it stops when every
/// handle is dropped. Must be called inside a Tokio runtime, which runs
/// the sqlx operations.
pub(crate) fn spawn(
    sqlx: SqliteConnection,
    native: rusqlite::Connection,
    mut setup: WriterSetup,
) -> Result<WriterHandle> {
    let rt = Handle::try_current().map_err(|e| {
        DriverError::Unavailable(format!("the SQLite writer needs a Tokio runtime: {e}"))
    })?;
    let (tx, rx) = mpsc::channel(setup.queue.max(1));
    let syncer = match std::mem::replace(&mut setup.durability, Durability::OwnCommits) {
        Durability::OwnCommits => None,
        Durability::SyncThread => start_syncer(&native, &setup.counters, None),
        #[cfg(test)]
        Durability::SyncWith(sync) => start_syncer(&native, &setup.counters, Some(sync)),
    };
    checkpoint::take_over(&native);
    let writer = Writer::new(Conns { rt, sqlx, native }, setup, syncer, rx);
    std::thread::Builder::new()
        .name("rota-sqlite-writer".to_owned())
        .spawn(move || writer.run())
        .map_err(|e| DriverError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
    Ok(WriterHandle::new(tx))
}

/// Starts the sync thread for the database of `native` (with `sync`, or
/// a sync of its WAL file) and lowers the native connection to
/// `synchronous = NORMAL` (the sqlx one follows when the writer starts).
/// On any failure the writer keeps syncing its own commits, as
/// `synchronous` says.
fn start_syncer(
    native: &rusqlite::Connection,
    counters: &Arc<Counters>,
    sync: Option<SyncFn>,
) -> Option<sync::Syncer> {
    let started = (|| -> std::result::Result<sync::Syncer, String> {
        let sync = match sync {
            Some(sync) => sync,
            None => sync::wal_sync(open_wal(native)?),
        };
        let syncer = sync::Syncer::start(sync, counters.clone()).map_err(|e| e.to_string())?;
        native
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(|e| e.to_string())?;
        counters.sync_thread.store(true, Ordering::Relaxed);
        Ok(syncer)
    })();
    started
        .inspect_err(|e| {
            tracing::warn!(error = %e, "SQLite writer syncs its own commits");
        })
        .ok()
}

/// The WAL file of `native`'s database, which must be in WAL mode.
fn open_wal(native: &rusqlite::Connection) -> std::result::Result<std::fs::File, String> {
    let db = native
        .path()
        .filter(|p| !p.is_empty())
        .ok_or("the database has no file")?;
    // A read opens (creating if needed) the WAL; it stays while any
    // connection is open, so the file opened here is the one SQLite
    // writes until the writer closes.
    native
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .map_err(|e| e.to_string())
        .and_then(|mode| {
            if mode.eq_ignore_ascii_case("wal") {
                Ok(())
            } else {
                Err(format!("journal_mode is {mode}, not wal"))
            }
        })?;
    // Opened for writing too, though only synced: some platforms sync
    // only files open for writing.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{db}-wal"))
        .map_err(|e| e.to_string())
}
