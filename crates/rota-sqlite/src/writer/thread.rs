//! The writer thread: batching, transactions per connection, commits,
//! wake-ups, parked claims and the `data_version` probe.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rota_driver::{DriverError, OnCommitted, ParkedRequest, ParkingLot, Wakeup};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::{broadcast, mpsc};

use super::checkpoint;
use super::op::{ErasedOp, Msg};
use super::sync::{Ack, Syncer};
use super::{Conns, Counters, On, OpEffects, WriterSetup};
use crate::error::{duplicate, is_connection_lost, map_native, map_sqlx};

/// A failed transaction-control statement.
struct ExecError {
    err: DriverError,
    /// The sqlx connection is gone and must be reopened.
    lost: bool,
}

pub(super) struct Writer {
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
    /// Syncs the WAL and answers callers after commits (`None`: the
    /// commits sync themselves).
    syncer: Option<Syncer>,
    /// Answers of this round's commits, waiting for a sync.
    acks: Vec<Ack>,
}

impl Writer {
    pub(super) fn new(
        conns: Conns,
        setup: WriterSetup,
        syncer: Option<Syncer>,
        rx: mpsc::Receiver<Msg>,
    ) -> Writer {
        Writer {
            conns,
            connect: setup.connect,
            rx,
            max_batch: setup.max_batch.max(1),
            counters: setup.counters,
            wake: setup.wake,
            parked: setup.parked,
            data_version: (None, None),
            committed: (false, false),
            broken: false,
            syncer,
            acks: Vec::new(),
        }
    }

    pub(super) fn run(mut self) {
        self.bound_sqlx_checkpoints();
        self.lower_sqlx_synchronous();
        self.probe();
        loop {
            self.checkpoint_when_idle();
            let Some(first) = self.rx.blocking_recv() else {
                break;
            };
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
            if let Some(failure) = self.syncer.as_ref().and_then(Syncer::failure) {
                // A sync failed: nothing written from now on could be
                // acknowledged as durable, so nothing is written.
                for op in batch.into_iter().chain(alone) {
                    op.complete(Some(&failure));
                }
                continue;
            }
            if !batch.is_empty() {
                let (native, sqlx): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|op| op.on() == On::Native);
                if !native.is_empty() {
                    self.run_batch(On::Native, native);
                }
                if !sqlx.is_empty() {
                    // The sqlx batch may wait (`busy_timeout`) for another
                    // process's lock: answer the native callers first.
                    self.sync_acks();
                    self.reconnect_if_broken();
                    self.run_batch(On::Sqlx, sqlx);
                }
            }
            if let Some(op) = alone {
                self.sync_acks();
                self.reconnect_if_broken();
                self.run_alone(op);
            }
            if self.counters.probe_requested.swap(false, Ordering::SeqCst) || probe {
                self.probe();
            }
            // Checked before this round's callers are answered: a
            // sequential caller's next operation cannot be queued yet.
            let busy = !self.rx.is_empty();
            self.sync_acks();
            if checkpoint::due_after_round(busy) {
                self.checkpoint();
            }
        }
    }

    /// Hands this round's answers to the sync thread when more work is
    /// queued, so the writer goes on while the disk syncs; syncs here when
    /// nothing is, which saves the sequential caller a thread wake-up and
    /// still covers the round's parked claims with the same sync.
    fn sync_acks(&mut self) {
        let Some(syncer) = &self.syncer else {
            return;
        };
        if self.acks.is_empty() {
            return;
        }
        let acks = std::mem::take(&mut self.acks);
        if self.rx.is_empty() {
            syncer.sync_here(acks);
        } else {
            syncer.after_sync(acks);
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

    /// Checkpoints the WAL a load left behind once no work has arrived for
    /// [`checkpoint::IDLE_WAIT`] (polled: the channel has no blocking
    /// receive with a timeout outside the runtime).
    fn checkpoint_when_idle(&mut self) {
        if !self.rx.is_empty() || !checkpoint::pending() {
            return;
        }
        let deadline = std::time::Instant::now() + checkpoint::IDLE_WAIT;
        while self.rx.is_empty() {
            if std::time::Instant::now() >= deadline {
                return self.checkpoint();
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    }

    /// Checkpoints the WAL on the native connection, counted.
    fn checkpoint(&mut self) {
        if checkpoint::checkpoint(&self.conns.native) {
            self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sqlx connection checkpoints by itself (SQLite's automatic
    /// checkpoint) only past the bound a busy writer keeps to, so that its
    /// rare commits do not checkpoint in the middle of a load.
    fn bound_sqlx_checkpoints(&mut self) {
        if self.broken {
            return;
        }
        if let Err(e) = self.exec(On::Sqlx, checkpoint::SQLX_AUTOCHECKPOINT) {
            tracing::debug!(error = %e.err, "SQLite writer: wal_autocheckpoint");
        }
    }

    /// With a sync thread, the sqlx connection commits without syncing too
    /// (the native one was lowered when the thread started).
    fn lower_sqlx_synchronous(&mut self) {
        if self.syncer.is_none() || self.broken {
            return;
        }
        if let Err(e) = self.exec(On::Sqlx, "PRAGMA synchronous = NORMAL") {
            // Its commits then sync themselves: slower, as durable.
            tracing::warn!(error = %e.err, "SQLite writer: the sqlx connection keeps its synchronous setting");
        }
    }

    /// Answers `op` once what it committed is durable: after the sync
    /// thread's next `fdatasync`, or now when commits sync themselves. A
    /// failed op waits too: its error may tell of an earlier commit (a
    /// cancel refused because the job just succeeded) not yet synced.
    fn ack(&mut self, op: Box<dyn ErasedOp>) {
        self.answer(Box::new(move |failure| op.complete(failure)));
    }

    /// Answers `op` with `err` (nothing of its own was committed), after
    /// the next sync like every other answer.
    fn fail(&mut self, op: Box<dyn ErasedOp>, err: &DriverError) {
        let err = duplicate(err);
        self.answer(Box::new(move |failure| {
            op.complete(Some(failure.unwrap_or(&err)))
        }));
    }

    /// Runs `answer` after the next sync of this round's commits, or now
    /// (as synced) when commits sync themselves.
    fn answer(&mut self, answer: Ack) {
        if self.syncer.is_some() {
            self.acks.push(answer);
        } else {
            answer(None);
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
        let mut done = OpEffects::default();
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
                        self.ack(op);
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
                done.absorb(fx);
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
        // Before the answers: without the sync thread an answer is sent at
        // once, and a caller must find its callback already run.
        run_committed(std::mem::take(&mut done.committed));
        for op in ops {
            self.ack(op);
        }
        self.after_commit(done.wake);
    }

    /// Runs the claims parked on the queues a commit made work for, then
    /// wakes those queues. In this order a wake-up cannot make a parked
    /// producer withdraw its claim and claim by itself (a round trip more)
    /// before the writer ran it.
    fn after_commit(&mut self, woken: BTreeSet<String>) {
        self.claim_parked(&woken);
        for queue in &woken {
            // No receivers is fine: nobody is waiting.
            let _ = self.wake.send(Wakeup {
                queue: Some(queue.clone()),
            });
        }
    }

    /// Runs the claims parked on the queues a commit just woke, each in a
    /// transaction of its own, right after the callers of that commit
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
            let reply = req.reply;
            self.answer(Box::new(move |failure| {
                let _ = reply.send(match failure {
                    Some(e) => Err(duplicate(e)),
                    None => claimed,
                });
            }));
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
            self.fail(op, &e.err);
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
        if ok {
            run_committed(std::mem::take(&mut fx.committed));
        }
        // A failed statement rolled itself back; the op keeps its error.
        self.ack(op);
        // A failed op may still have committed its statement (an error
        // raised after it): count it; at worst a spare wake-up.
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
            run_committed(fx.committed);
            for queue in fx.wake {
                let _ = self.wake.send(Wakeup { queue: Some(queue) });
            }
        }
        self.ack(op);
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
                self.bound_sqlx_checkpoints();
                self.lower_sqlx_synchronous();
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

/// Runs the callbacks of a commit; the writer thread outlives a panicking
/// one.
fn run_committed(callbacks: Vec<OnCommitted>) {
    for f in callbacks {
        if std::panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
            tracing::error!("a SQLite commit callback panicked");
        }
    }
}
