//! The operations callers send to the writer, and the handle they send
//! them with.

use rota_driver::{DriverError, Result};
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::{BoxFut, Conns, On, OpEffects};
use crate::error::{duplicate, writer_gone};

pub(super) trait ErasedOp: Send {
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

/// What an operation runs, and on which of the writer's connections.
trait Body<T>: Send {
    const ON: On;
    fn run(self, conns: &mut Conns, fx: &mut OpEffects) -> Result<T>;
}

/// An async closure over the writer's sqlx connection.
struct Sqlx<F>(F);

impl<T, F> Body<T> for Sqlx<F>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>> + Send,
{
    const ON: On = On::Sqlx;

    fn run(self, conns: &mut Conns, fx: &mut OpEffects) -> Result<T> {
        conns.rt.block_on((self.0)(&mut conns.sqlx, fx))
    }
}

/// A synchronous closure over the writer's native connection.
struct Native<F>(F);

impl<T, F> Body<T> for Native<F>
where
    F: FnOnce(&rusqlite::Connection, &mut OpEffects) -> Result<T> + Send,
{
    const ON: On = On::Native;

    fn run(self, conns: &mut Conns, fx: &mut OpEffects) -> Result<T> {
        (self.0)(&conns.native, fx)
    }
}

/// One queued operation: its body, until it runs, and its caller's reply.
struct Op<T, B> {
    body: Option<B>,
    atomic: bool,
    reply: Reply<T>,
}

impl<T, B> ErasedOp for Op<T, B>
where
    T: Send + 'static,
    B: Body<T> + 'static,
{
    fn run(&mut self, conns: &mut Conns, fx: &mut OpEffects) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let result = body.run(conns, fx);
        self.reply.record(result)
    }

    fn complete(self: Box<Self>, failure: Option<&DriverError>) {
        self.reply.complete(failure);
    }

    fn atomic(&self) -> bool {
        self.atomic
    }

    fn on(&self) -> On {
        B::ON
    }
}

/// An operation for `body`, and the receiver of its result.
fn op<T, B>(body: B, atomic: bool) -> (Box<dyn ErasedOp>, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    B: Body<T> + 'static,
{
    let (tx, rx) = oneshot::channel();
    let op = Op {
        body: Some(body),
        atomic,
        reply: Reply { out: None, tx },
    };
    (Box::new(op), rx)
}

pub(super) enum Msg {
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
    pub(super) fn new(tx: mpsc::Sender<Msg>) -> Self {
        WriterHandle { tx }
    }

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

    /// Like [`write`](Self::write); with `atomic` set the operation is
    /// atomic by itself (one statement, or its own transaction when the
    /// connection has none), and when nothing else is queued it runs in
    /// autocommit mode, saving the `BEGIN` and `COMMIT` round trips (same
    /// durability: its own commit syncs like any other).
    pub(crate) async fn write_atomic<T, F>(&self, atomic: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut OpEffects) -> BoxFut<'c, Result<T>>
            + Send
            + 'static,
    {
        let (op, rx) = op(Sqlx(f), atomic);
        self.send(Msg::Batched(op), rx).await
    }

    /// Like [`write_atomic`](Self::write_atomic) for a native operation: a
    /// synchronous closure over the writer's `rusqlite` connection.
    pub(crate) async fn write_native<T, F>(&self, atomic: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &mut OpEffects) -> Result<T> + Send + 'static,
    {
        let (op, rx) = op(Native(f), atomic);
        self.send(Msg::Batched(op), rx).await
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
        let (op, rx) = op(Sqlx(f), false);
        self.send(Msg::Alone(op), rx).await
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
