//! The one writer: a task that owns the only writing connection and commits
//! concurrent callers' operations together (group commit).
//!
//! Callers send a boxed operation (an async closure over
//! `&mut SqliteConnection`) and wait on a oneshot reply. The task takes the
//! first queued operation, drains whatever else is already queued (up to
//! [`SqliteOptions::max_batch`](crate::SqliteOptions::max_batch)), and runs
//!
//! ```text
//! BEGIN IMMEDIATE
//!   SAVEPOINT rota_op  <op 1>  RELEASE rota_op          -- kept
//!   SAVEPOINT rota_op  <op 2>  ROLLBACK TO rota_op ...  -- failed: undone alone
//!   ...
//! COMMIT
//! ```
//!
//! and only then replies to every caller. An acknowledgement therefore always
//! follows its commit (a durable ack with `synchronous = FULL`), while
//! concurrent callers share one commit and one `fsync`. A failed operation
//! is returned to its own caller only; a failed `BEGIN`, savepoint or
//! `COMMIT` fails every caller of the batch. Panics inside an operation are
//! caught and reported as errors, so the task survives. When the task is
//! gone, callers get [`DriverError::Unavailable`].

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use rota_driver::{DriverError, ParkedRequest, ParkingLot, Result, Wakeup};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{duplicate, is_connection_lost, map_sqlx, writer_gone};

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
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
        fx: &'c mut OpEffects,
    ) -> BoxFut<'c, bool>;
    /// Replies to the caller: its own result, or `failure` for all.
    fn complete(self: Box<Self>, failure: Option<&DriverError>);
    /// The operation is one statement (atomic by itself): alone in a batch
    /// it may run in autocommit mode, without `BEGIN` and `COMMIT`.
    fn atomic(&self) -> bool;
}

struct TypedOp<T, F> {
    f: Option<F>,
    atomic: bool,
    out: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> ErasedOp for TypedOp<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
        + Send
        + 'static,
{
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
        fx: &'c mut OpEffects,
    ) -> BoxFut<'c, bool> {
        let f = self.f.take();
        Box::pin(async move {
            let Some(f) = f else { return false };
            let result = f(conn, fx).await;
            let ok = result.is_ok();
            self.out = Some(result);
            ok
        })
    }

    fn complete(self: Box<Self>, failure: Option<&DriverError>) {
        let this = *self;
        let result = match failure {
            Some(err) => Err(duplicate(err)),
            None => this.out.unwrap_or_else(|| {
                Err(DriverError::Database(
                    "the write operation panicked".to_owned(),
                ))
            }),
        };
        // The caller may have stopped waiting; its operation still ran.
        let _ = this.reply.send(result);
    }

    fn atomic(&self) -> bool {
        self.atomic
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

/// A cheap handle for sending operations to the writer task.
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
        self.send(f, false, false).await
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
        self.send(f, false, atomic).await
    }

    /// Runs `f` on the writer's connection outside any transaction, alone.
    pub(crate) async fn alone<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        self.send(f, true, false).await
    }

    async fn send<T, F>(&self, f: F, alone: bool, atomic: bool) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Box<dyn ErasedOp> = Box::new(TypedOp {
            f: Some(f),
            atomic,
            out: None,
            reply,
        });
        let msg = if alone {
            Msg::Alone(op)
        } else {
            Msg::Batched(op)
        };
        self.tx.send(msg).await.map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Nudges an idle writer to run a pending probe (never blocks; a busy
    /// writer checks the probe flag after its current batch anyway).
    pub(crate) fn nudge(&self) {
        let _ = self.tx.try_send(Msg::Probe);
    }

    /// Whether the writer task has stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A handle whose writer task is already gone (for tests).
#[cfg(test)]
pub(crate) fn detached() -> WriterHandle {
    let (tx, _) = mpsc::channel(1);
    WriterHandle { tx }
}

/// Starts the writer task on `conn`; it stops when every handle is dropped.
pub(crate) fn spawn(
    conn: SqliteConnection,
    connect: SqliteConnectOptions,
    max_batch: usize,
    queue: usize,
    counters: Arc<Counters>,
    wake: broadcast::Sender<Wakeup>,
    parked: Arc<ParkingLot>,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(queue.max(1));
    let writer = Writer {
        conn,
        connect,
        rx,
        max_batch: max_batch.max(1),
        counters,
        wake,
        parked,
        data_version: None,
        broken: false,
    };
    tokio::spawn(writer.run());
    WriterHandle { tx }
}

struct Writer {
    conn: SqliteConnection,
    connect: SqliteConnectOptions,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    counters: Arc<Counters>,
    wake: broadcast::Sender<Wakeup>,
    /// Claims parked by idle producers (see [`Writer::claim_parked`]).
    parked: Arc<ParkingLot>,
    /// The writer connection's last seen `PRAGMA data_version`; it changes
    /// only when *another* connection commits.
    data_version: Option<i64>,
    /// The connection was lost; reconnect before the next operation.
    broken: bool,
}

impl Writer {
    async fn run(mut self) {
        self.probe().await;
        while let Some(first) = self.rx.recv().await {
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
                self.reconnect_if_broken().await;
                self.run_batch(batch).await;
            }
            if let Some(op) = alone {
                self.reconnect_if_broken().await;
                self.run_alone(op).await;
            }
            if self.counters.probe_requested.swap(false, Ordering::SeqCst) || probe {
                self.probe().await;
            }
        }
        if let Err(e) = self.conn.close().await {
            tracing::debug!(error = %e, "closing the SQLite writer connection failed");
        }
    }

    async fn exec(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(&mut self.conn).await.map(|_| ())
    }

    async fn run_batch(&mut self, mut ops: Vec<Box<dyn ErasedOp>>) {
        // A lone one-statement operation commits by itself.
        if ops.len() == 1 && ops[0].atomic() {
            if let Some(op) = ops.pop() {
                self.run_autocommit(op).await;
            }
            return;
        }
        if let Err(e) = self.exec("BEGIN IMMEDIATE").await {
            return self.fail_all(ops, e).await;
        }
        let mut wake = BTreeSet::new();
        // A batch of one needs no savepoint: its failure rolls back the
        // whole (otherwise empty) transaction. Two statements fewer on the
        // path of every lone enqueue.
        let single = ops.len() == 1;
        for op in ops.iter_mut() {
            if !single && let Err(e) = self.exec("SAVEPOINT rota_op").await {
                return self.fail_all(ops, e).await;
            }
            let mut fx = OpEffects::default();
            let ok = matches!(CatchUnwind(op.run(&mut self.conn, &mut fx)).await, Ok(true));
            let end = if single {
                if !ok {
                    // The op keeps its own error for its caller.
                    if let Err(e) = self.exec("ROLLBACK").await {
                        tracing::debug!(error = %e, "rollback after a failed operation");
                    }
                    for op in ops {
                        op.complete(None);
                    }
                    return;
                }
                Ok(())
            } else if ok {
                self.exec("RELEASE rota_op").await
            } else {
                // An error that already ended the whole transaction (disk
                // full, I/O) makes this fail too: then the batch fails.
                match self.exec("ROLLBACK TO rota_op").await {
                    Ok(()) => self.exec("RELEASE rota_op").await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = end {
                return self.fail_all(ops, e).await;
            }
            if ok {
                wake.append(&mut fx.wake);
            }
        }
        let committed = {
            let _commit = self.counters.commit();
            sqlx::raw_sql("COMMIT")
                .execute(&mut self.conn)
                .await
                .map(|_| ())
        };
        if let Err(e) = committed {
            return self.fail_all(ops, e).await;
        }
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .ops
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        for op in ops {
            op.complete(None);
        }
        self.after_commit(wake).await;
    }

    /// Wakes the queues a commit made work for, then runs the claims
    /// parked on them.
    async fn after_commit(&mut self, woken: BTreeSet<String>) {
        for queue in &woken {
            // No receivers is fine: nobody is waiting.
            let _ = self.wake.send(Wakeup {
                queue: Some(queue.clone()),
            });
        }
        self.claim_parked(&woken).await;
    }

    /// Runs the claims parked on the queues a commit just woke, each as
    /// one autocommit statement, right after the callers of that commit
    /// were answered: the job goes to an idle producer without the wake-up
    /// → producer → writer round trip, and the enqueuer never waits for it.
    async fn claim_parked(&mut self, woken: &BTreeSet<String>) {
        if woken.is_empty() || self.parked.is_empty() || self.broken {
            return;
        }
        let requests: Vec<ParkedRequest> = self.parked.take(woken.iter().map(String::as_str));
        for req in requests {
            let params = (req.make)();
            let claimed = {
                let _commit = self.counters.commit();
                crate::runs::claim(&mut self.conn, &params).await
            };
            // A producer that stopped waiting retracted first; a closed
            // reply means it is gone and the lease will expire.
            let _ = req.reply.send(claimed);
        }
    }

    async fn fail_all(&mut self, ops: Vec<Box<dyn ErasedOp>>, err: sqlx::Error) {
        tracing::warn!(error = %err, ops = ops.len(), "SQLite writer batch failed");
        if is_connection_lost(&err) {
            self.broken = true;
        } else if let Err(e) = self.exec("ROLLBACK").await {
            // "no transaction is active" is expected after a failed BEGIN or
            // an automatic rollback.
            tracing::debug!(error = %e, "rollback after a failed batch");
        }
        let err = map_sqlx(err);
        for op in ops {
            op.complete(Some(&err));
        }
    }

    async fn run_autocommit(&mut self, mut op: Box<dyn ErasedOp>) {
        let mut fx = OpEffects::default();
        let ok = {
            let _commit = self.counters.commit();
            matches!(CatchUnwind(op.run(&mut self.conn, &mut fx)).await, Ok(true))
        };
        // A failed statement rolled itself back; the op keeps its error.
        op.complete(None);
        if ok {
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.ops.fetch_add(1, Ordering::Relaxed);
            self.after_commit(fx.wake).await;
        }
    }

    async fn run_alone(&mut self, mut op: Box<dyn ErasedOp>) {
        let mut fx = OpEffects::default();
        let ok = matches!(CatchUnwind(op.run(&mut self.conn, &mut fx)).await, Ok(true));
        if ok {
            for queue in fx.wake {
                let _ = self.wake.send(Wakeup { queue: Some(queue) });
            }
        }
        op.complete(None);
    }

    async fn reconnect_if_broken(&mut self) {
        if !self.broken {
            return;
        }
        match self.connect.connect().await {
            Ok(conn) => {
                let old = std::mem::replace(&mut self.conn, conn);
                drop(old);
                self.broken = false;
                self.data_version = None;
                tracing::info!("SQLite writer reconnected");
            }
            Err(e) => tracing::warn!(error = %e, "SQLite writer cannot reconnect"),
        }
    }

    /// Reads the writer connection's `data_version`; a change since the
    /// last read means another connection or process committed, so every
    /// queue may have new work.
    async fn probe(&mut self) {
        if self.broken {
            return;
        }
        match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(&mut self.conn)
            .await
        {
            Ok(v) => {
                if self.data_version.is_some_and(|old| old != v) {
                    let _ = self.wake.send(Wakeup { queue: None });
                }
                self.data_version = Some(v);
            }
            Err(e) => tracing::debug!(error = %e, "data_version probe failed"),
        }
    }
}

/// Turns a panic while polling the inner future into an `Err`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => {
                tracing::error!("a SQLite write operation panicked; its savepoint is rolled back");
                Poll::Ready(Err(panic))
            }
        }
    }
}
