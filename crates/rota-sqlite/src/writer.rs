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
//! statement and no copy of every returned value, which roughly doubled
//! bulk-enqueue and claim throughput (docs/benchmarks.md).
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
//! follows its commit (a durable ack with `synchronous = FULL`), while
//! concurrent callers share one commit and one `fsync`. A failed operation
//! is returned to its own caller only; a failed `BEGIN`, savepoint or
//! `COMMIT` fails every caller of the batch. Panics inside an operation are
//! caught and reported as errors, so the thread survives them. When the
//! thread is gone (a panic in the writer's own code would end it), callers
//! get [`DriverError::Unavailable`].

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rota_driver::{DriverError, ParkedRequest, ParkingLot, Result, Wakeup};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{duplicate, is_connection_lost, map_native, map_sqlx, writer_gone};

/// A boxed future borrowing the writer's connection for `'c`.
pub(crate) type BoxFut<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// What an operation reports besides its result; applied only when the
/// operation's savepoint is kept and its batch commits.
#[derive(Debug, Default)]
pub(crate) struct OpEffects {
    wake: BTreeSet<String>,
}

impl OpEffects {
    /// Asks for a wake-up of `queue` once the batch has committed.
    pub(crate) fn wake(&mut self, queue: &str) {
        if !self.wake.contains(queue) {
            self.wake.insert(queue.to_owned());
        }
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
}

trait ErasedOp: Send {
    /// Runs the operation; `true` when it succeeded.
    fn run(&mut self, conns: &mut Conns, fx: &mut OpEffects) -> bool;
    /// Replies to the caller: its own result, or `failure` for all.
    fn complete(self: Box<Self>, failure: Option<&DriverError>);
    /// The operation is one statement (atomic by itself): alone in a batch
    /// it may run in autocommit mode, without `BEGIN` and `COMMIT`.
    fn atomic(&self) -> bool;
    /// Which connection the operation writes on.
    fn on(&self) -> On;
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

/// The reply half every operation shares.
struct Reply<T> {
    out: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T> Reply<T> {
    fn complete(self, failure: Option<&DriverError>) {
        let result = match failure {
            Some(err) => Err(duplicate(err)),
            None => self.out.unwrap_or_else(|| {
                Err(DriverError::Database(
                    "the write operation panicked".to_owned(),
                ))
            }),
        };
        // The caller may have stopped waiting; its operation still ran.
        let _ = self.tx.send(result);
    }

    fn record(&mut self, result: Result<T>) -> bool {
        let ok = result.is_ok();
        self.out = Some(result);
        ok
    }
}

struct SqlxOp<T, F> {
    f: Option<F>,
    atomic: bool,
    reply: Reply<T>,
}

impl<T, F> ErasedOp for SqlxOp<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
        + Send
        + 'static,
{
    fn run(&mut self, conns: &mut Conns, fx: &mut OpEffects) -> bool {
        let Some(f) = self.f.take() else { return false };
        let result = conns.rt.block_on(f(&mut conns.sqlx, fx));
        self.reply.record(result)
    }

    fn complete(self: Box<Self>, failure: Option<&DriverError>) {
        self.reply.complete(failure);
    }

    fn atomic(&self) -> bool {
        self.atomic
    }

    fn on(&self) -> On {
        On::Sqlx
    }
}

struct NativeOp<T, F> {
    f: Option<F>,
    atomic: bool,
    reply: Reply<T>,
}

impl<T, F> ErasedOp for NativeOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, &mut OpEffects) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conns: &mut Conns, fx: &mut OpEffects) -> bool {
        let Some(f) = self.f.take() else { return false };
        let result = f(&conns.native, fx);
        self.reply.record(result)
    }

    fn complete(self: Box<Self>, failure: Option<&DriverError>) {
        self.reply.complete(failure);
    }

    fn atomic(&self) -> bool {
        self.atomic
    }

    fn on(&self) -> On {
        On::Native
    }
}

enum Msg {
    /// Runs inside the next group-commit transaction.
    Batched(Box<dyn ErasedOp>),
    /// Runs alone, outside any transaction (migrations manage their own).
    Alone(Box<dyn ErasedOp>),
    /// Check `PRAGMA data_version` for commits by other connections.
    Probe,
}

/// A cheap handle for sending operations to the writer thread.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl WriterHandle {
    /// Runs `f` in the writer's next group-commit transaction, inside its
    /// own savepoint, and returns its result once the batch has committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        self.write_atomic(false, f).await
    }

    /// Like [`write`](Self::write); with `atomic` set the operation runs
    /// exactly one statement, and when nothing else is queued it runs in
    /// autocommit mode, saving the `BEGIN` and `COMMIT` round trips (same
    /// durability: the statement's own commit syncs like any other).
    pub(crate) async fn write_atomic<T, F>(&self, atomic: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op = SqlxOp {
            f: Some(f),
            atomic,
            reply: Reply { out: None, tx },
        };
        self.send(Msg::Batched(Box::new(op)), rx).await
    }

    /// Like [`write_atomic`](Self::write_atomic) for a native operation: a
    /// synchronous closure over the writer's `rusqlite` connection.
    pub(crate) async fn write_native<T, F>(&self, atomic: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &mut OpEffects) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op = NativeOp {
            f: Some(f),
            atomic,
            reply: Reply { out: None, tx },
        };
        self.send(Msg::Batched(Box::new(op)), rx).await
    }

    /// Runs `f` on the writer's sqlx connection outside any transaction,
    /// alone.
    pub(crate) async fn alone<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op = SqlxOp {
            f: Some(f),
            atomic: false,
            reply: Reply { out: None, tx },
        };
        self.send(Msg::Alone(Box::new(op)), rx).await
    }

    async fn send<T>(&self, msg: Msg, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        self.tx.send(msg).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Nudges an idle writer to run a pending probe (never blocks; a busy
    /// writer checks the probe flag after its current batch anyway).
    pub(crate) fn nudge(&self) {
        let _ = self.tx.try_send(Msg::Probe);
    }

    /// Whether the writer thread has stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A handle whose writer thread is already gone (for tests).
#[cfg(test)]
pub(crate) fn detached() -> WriterHandle {
    let (tx, _) = mpsc::channel(1);
    WriterHandle { tx }
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
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(map_native)?;
    // Every statement shape of the hot paths stays prepared (multi-row
    // inserts of odd sizes are prepared uncached, so they never evict it).
    conn.set_prepared_statement_cache_capacity(64);
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
}

/// Starts the writer thread on `sqlx` and `native`; it stops when every
/// handle is dropped. Must be called inside a Tokio runtime, which runs
/// the sqlx operations.
pub(crate) fn spawn(
    sqlx: SqliteConnection,
    native: rusqlite::Connection,
    setup: WriterSetup,
) -> Result<WriterHandle> {
    let rt = Handle::try_current().map_err(|e| {
        DriverError::Unavailable(format!("the SQLite writer needs a Tokio runtime: {e}"))
    })?;
    let (tx, rx) = mpsc::channel(setup.queue.max(1));
    let writer = Writer {
        conns: Conns { rt, sqlx, native },
        connect: setup.connect,
        rx,
        max_batch: setup.max_batch.max(1),
        counters: setup.counters,
        wake: setup.wake,
        parked: setup.parked,
        data_version: (None, None),
        committed: (false, false),
        broken: false,
    };
    std::thread::Builder::new()
        .name("rota-sqlite-writer".to_owned())
        .spawn(move || writer.run())
        .map_err(|e| DriverError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
    Ok(WriterHandle { tx })
}

/// A failed transaction-control statement.
struct ExecError {
    err: DriverError,
    /// The sqlx connection is gone and must be reopened.
    lost: bool,
}

struct Writer {
    conns: Conns,
    connect: SqliteConnectOptions,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    counters: Arc<Counters>,
    wake: broadcast::Sender<Wakeup>,
    /// Claims parked by idle producers (see [`Writer::claim_parked`]).
    parked: Arc<ParkingLot>,
    /// The last seen `PRAGMA data_version` of the native and the sqlx
    /// connection; a connection's value changes only when *another*
    /// connection commits.
    data_version: (Option<i64>, Option<i64>),
    /// Whether the native / the sqlx connection committed since the last
    /// probe: such a commit moves the *other* connection's `data_version`.
    committed: (bool, bool),
    /// The sqlx connection was lost; reconnect before its next operation.
    broken: bool,
}

impl Writer {
    fn run(mut self) {
        self.probe();
        while let Some(first) = self.rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut alone = None;
            let mut probe = false;
            match first {
                Msg::Batched(op) => batch.push(op),
                Msg::Alone(op) => alone = Some(op),
                Msg::Probe => probe = true,
            }
            while alone.is_none() && batch.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(Msg::Batched(op)) => batch.push(op),
                    Ok(Msg::Alone(op)) => alone = Some(op),
                    Ok(Msg::Probe) => probe = true,
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                let (native, sqlx): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|op| op.on() == On::Native);
                if !native.is_empty() {
                    self.run_batch(On::Native, native);
                }
                if !sqlx.is_empty() {
                    self.reconnect_if_broken();
                    self.run_batch(On::Sqlx, sqlx);
                }
            }
            if let Some(op) = alone {
                self.reconnect_if_broken();
                self.run_alone(op);
            }
            if self.counters.probe_requested.swap(false, Ordering::SeqCst) || probe {
                self.probe();
            }
        }
    }

    /// Runs one transaction-control statement on connection `on`.
    fn exec(&mut self, on: On, sql: &'static str) -> Result<(), ExecError> {
        match on {
            On::Native => self
                .conns
                .native
                .prepare_cached(sql)
                .and_then(|mut st| st.execute([]))
                .map(|_| ())
                .map_err(|e| ExecError {
                    err: map_native(e),
                    lost: false,
                }),
            On::Sqlx => {
                let conns = &mut self.conns;
                conns
                    .rt
                    .block_on(sqlx::raw_sql(sql).execute(&mut conns.sqlx))
                    .map(|_| ())
                    .map_err(|e| ExecError {
                        lost: is_connection_lost(&e),
                        err: map_sqlx(e),
                    })
            }
        }
    }

    /// Runs `op`, turning a panic into a failure.
    fn run_op(&mut self, op: &mut Box<dyn ErasedOp>, fx: &mut OpEffects) -> bool {
        let conns = &mut self.conns;
        match std::panic::catch_unwind(AssertUnwindSafe(|| op.run(conns, fx))) {
            Ok(ok) => ok,
            Err(_) => {
                tracing::error!("a SQLite write operation panicked; its savepoint is rolled back");
                false
            }
        }
    }

    fn run_batch(&mut self, on: On, mut ops: Vec<Box<dyn ErasedOp>>) {
        // A lone one-statement operation commits by itself.
        if ops.len() == 1 && ops[0].atomic() {
            if let Some(op) = ops.pop() {
                self.run_autocommit(op);
            }
            return;
        }
        if let Err(e) = self.exec(on, "BEGIN IMMEDIATE") {
            return self.fail_all(on, ops, e);
        }
        let mut wake = BTreeSet::new();
        // A batch of one needs no savepoint: its failure rolls back the
        // whole (otherwise empty) transaction. Two statements fewer on the
        // path of every lone enqueue.
        let single = ops.len() == 1;
        for i in 0..ops.len() {
            if !single && let Err(e) = self.exec(on, "SAVEPOINT rota_op") {
                return self.fail_all(on, ops, e);
            }
            let mut fx = OpEffects::default();
            let ok = self.run_op(&mut ops[i], &mut fx);
            let end = if single {
                if !ok {
                    // The op keeps its own error for its caller.
                    if let Err(e) = self.exec(on, "ROLLBACK") {
                        tracing::debug!(error = %e.err, "rollback after a failed operation");
                    }
                    for op in ops {
                        op.complete(None);
                    }
                    return;
                }
                Ok(())
            } else if ok {
                self.exec(on, "RELEASE rota_op")
            } else {
                // An error that already ended the whole transaction (disk
                // full, I/O) makes this fail too: then the batch fails.
                match self.exec(on, "ROLLBACK TO rota_op") {
                    Ok(()) => self.exec(on, "RELEASE rota_op"),
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = end {
                return self.fail_all(on, ops, e);
            }
            if ok {
                wake.append(&mut fx.wake);
            }
        }
        let committed = {
            let counters = self.counters.clone();
            let _commit = counters.commit();
            self.exec(on, "COMMIT")
        };
        if let Err(e) = committed {
            return self.fail_all(on, ops, e);
        }
        self.mark_committed(on);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .ops
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        for op in ops {
            op.complete(None);
        }
        self.after_commit(wake);
    }

    /// Runs the claims parked on the queues a commit made work for, then
    /// wakes those queues. In this order a parked producer is woken once,
    /// by its claimed jobs; a wake-up first would wake it for nothing (or
    /// make it withdraw and claim by itself, a round trip more).
    fn after_commit(&mut self, woken: BTreeSet<String>) {
        self.claim_parked(&woken);
        for queue in &woken {
            // No receivers is fine: nobody is waiting.
            let _ = self.wake.send(Wakeup {
                queue: Some(queue.clone()),
            });
        }
    }

    /// Runs the claims parked on the queues a commit just woke, each as
    /// one autocommit statement, right after the callers of that commit
    /// were answered: the job goes to an idle producer without the wake-up
    /// → producer → writer round trip, and the enqueuer never waits for it.
    fn claim_parked(&mut self, woken: &BTreeSet<String>) {
        if woken.is_empty() || self.parked.is_empty() {
            return;
        }
        let requests: Vec<ParkedRequest> = self.parked.take(woken.iter().map(String::as_str));
        for req in requests {
            let params = (req.make)();
            let claimed = {
                let _commit = self.counters.commit();
                crate::runs::claim_native(&self.conns.native, &params)
            };
            self.committed.0 = true;
            // A producer that stopped waiting retracted first; a closed
            // reply means it is gone and the lease will expire.
            let _ = req.reply.send(claimed);
        }
    }

    fn fail_all(&mut self, on: On, ops: Vec<Box<dyn ErasedOp>>, e: ExecError) {
        tracing::warn!(error = %e.err, ops = ops.len(), "SQLite writer batch failed");
        // Rolled back even when the connection looks lost: one that is in
        // fact alive would otherwise keep the write lock, and the other
        // connection's next `BEGIN IMMEDIATE` would wait `busy_timeout`.
        if let Err(r) = self.exec(on, "ROLLBACK") {
            // "no transaction is active" is expected after a failed BEGIN or
            // an automatic rollback.
            tracing::debug!(error = %r.err, "rollback after a failed batch");
        }
        for op in ops {
            op.complete(Some(&e.err));
        }
        if e.lost {
            self.broken = true;
            self.reconnect_if_broken();
        }
    }

    /// Notes a commit on `on` for [`probe`](Self::probe).
    fn mark_committed(&mut self, on: On) {
        match on {
            On::Native => self.committed.0 = true,
            On::Sqlx => self.committed.1 = true,
        }
    }

    /// Ends a transaction a failed sqlx operation may have left open (a
    /// migration, a failed autocommit op), so it cannot hold the write lock
    /// against the native connection.
    fn ensure_no_transaction(&mut self) {
        if self.broken {
            return;
        }
        // "no transaction is active" is the usual, harmless answer.
        let _ = self.exec(On::Sqlx, "ROLLBACK");
    }

    fn run_autocommit(&mut self, mut op: Box<dyn ErasedOp>) {
        let mut fx = OpEffects::default();
        let on = op.on();
        let ok = {
            let counters = self.counters.clone();
            let _commit = counters.commit();
            self.run_op(&mut op, &mut fx)
        };
        // A failed statement rolled itself back; the op keeps its error.
        op.complete(None);
        // Even a failed statement may have committed nothing or something:
        // count it, a spare wake-up at worst.
        self.mark_committed(on);
        if on == On::Sqlx && !ok {
            self.ensure_no_transaction();
        }
        if ok {
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.ops.fetch_add(1, Ordering::Relaxed);
            self.after_commit(fx.wake);
        }
    }

    fn run_alone(&mut self, mut op: Box<dyn ErasedOp>) {
        let mut fx = OpEffects::default();
        let ok = self.run_op(&mut op, &mut fx);
        self.mark_committed(op.on());
        if !ok {
            self.ensure_no_transaction();
        }
        if ok {
            for queue in fx.wake {
                let _ = self.wake.send(Wakeup { queue: Some(queue) });
            }
        }
        op.complete(None);
    }

    fn reconnect_if_broken(&mut self) {
        if !self.broken {
            return;
        }
        match self.conns.rt.block_on(self.connect.connect()) {
            Ok(conn) => {
                let old = std::mem::replace(&mut self.conns.sqlx, conn);
                drop(old);
                self.broken = false;
                self.data_version.1 = None;
                tracing::info!("SQLite writer reconnected");
            }
            Err(e) => tracing::warn!(error = %e, "SQLite writer cannot reconnect"),
        }
    }

    /// Reads `data_version` on both writer connections. A connection's value
    /// moves when any *other* connection commits — another process, a
    /// user's transaction, or the writer's other connection. So a change on
    /// one side means a foreign commit unless the writer's other connection
    /// committed since the last probe; when both committed and both moved,
    /// it cannot tell and wakes anyway (a spare wake-up, never a missed one).
    fn probe(&mut self) {
        let native = match self
            .conns
            .native
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "data_version probe failed");
                return;
            }
        };
        let sqlx = if self.broken {
            None
        } else {
            let conns = &mut self.conns;
            conns
                .rt
                .block_on(
                    sqlx::query_scalar::<_, i64>("PRAGMA data_version").fetch_one(&mut conns.sqlx),
                )
                .inspect_err(|e| tracing::debug!(error = %e, "data_version probe failed"))
                .ok()
        };
        let (old_native, old_sqlx) = self.data_version;
        let (native_committed, sqlx_committed) = std::mem::take(&mut self.committed);
        let native_moved = old_native.is_some_and(|old| old != native);
        // Unknown on the sqlx side: assume it moved.
        let sqlx_moved = match (old_sqlx, sqlx) {
            (Some(old), Some(new)) => old != new,
            _ => true,
        };
        let foreign = (native_moved && !sqlx_committed)
            || (sqlx_moved && old_sqlx.is_some() && sqlx.is_some() && !native_committed)
            || (native_moved && sqlx_moved);
        if foreign {
            let _ = self.wake.send(Wakeup { queue: None });
        }
        self.data_version = (Some(native), sqlx);
    }
}
