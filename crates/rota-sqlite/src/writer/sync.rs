//! Durability off the writer thread: the writer commits with
//! `synchronous = NORMAL` (SQLite writes the WAL frames but does not sync
//! them) and hands each committed batch's acknowledgements to this thread,
//! which `fdatasync`s the WAL file and only then answers the callers.
//!
//! An acknowledgement still follows a sync of every WAL frame its commit
//! wrote, as with `synchronous = FULL`: the WAL is written in commit
//! order, and one `fdatasync` of the file covers every frame written
//! before it began. What changes is who waits: the writer goes on with the
//! next batch while the disk syncs the last one, and one sync covers every
//! commit made while the previous one ran (the classic group commit of
//! PostgreSQL's WAL writer). The frames SQLite writes with `NORMAL` are
//! the ones it writes with `FULL` (padding to a sector happens only
//! without power-safe overwrite, which is on by default); a WAL restart
//! syncs its header and a checkpoint syncs the WAL before copying it
//! either way.
//!
//! The one visible difference: another connection can read a commit
//! before it is durable (as with PostgreSQL's `synchronous_commit = off`,
//! but nobody is answered before the sync). A power loss in that window
//! loses only writes nobody was told had happened.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rota_driver::DriverError;

use super::Counters;

/// Answers a caller once its commit is durable, or with the sync's error.
pub(super) type Ack = Box<dyn FnOnce(Option<&DriverError>) + Send>;

/// Acknowledgements waiting for the next sync.
#[derive(Default)]
struct Waiting {
    acks: Vec<Ack>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<Waiting>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // An ack that panicked cannot leave `Waiting` half-changed.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sync thread; dropping it syncs and answers what is still waiting.
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The WAL, for the writer's own syncs.
    wal: File,
    counters: Arc<Counters>,
}

impl Syncer {
    /// Starts the thread that syncs `wal`, the database's WAL file, opened
    /// while the writer's connection is open (so it is the file SQLite
    /// writes: a WAL is deleted only when its last connection closes).
    pub(super) fn start(wal: File, counters: Arc<Counters>) -> io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        let own = wal.try_clone()?;
        let thread = std::thread::Builder::new()
            .name("rota-sqlite-sync".to_owned())
            .spawn({
                let (shared, counters) = (shared.clone(), counters.clone());
                move || run(&shared, &wal, &counters)
            })?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
            wal: own,
            counters,
        })
    }

    /// Syncs the WAL on the calling thread, then answers `acks`.
    pub(super) fn sync_here(&self, acks: Vec<Ack>) {
        sync_then_answer(&self.wal, &self.counters, acks);
    }

    /// Answers `acks` after the next sync of the WAL, which begins after
    /// this call: call it once their commits have returned.
    pub(super) fn after_sync(&self, acks: Vec<Ack>) {
        self.shared.lock().acks.extend(acks);
        self.shared.ready.notify_one();
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the SQLite sync thread panicked");
        }
    }
}

fn run(shared: &Shared, wal: &File, counters: &Counters) {
    loop {
        let acks = {
            let mut waiting = shared.lock();
            while waiting.acks.is_empty() && !waiting.closed {
                waiting = shared
                    .ready
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if waiting.acks.is_empty() {
                return;
            }
            std::mem::take(&mut waiting.acks)
        };
        sync_then_answer(wal, counters, acks);
    }
}

/// Syncs `wal`, then answers `acks` (with the error, if the sync failed).
/// The writer calls it itself when nothing else waits for it: a hand-over
/// to the sync thread costs a thread wake-up per commit.
pub(super) fn sync_then_answer(wal: &File, counters: &Counters, acks: Vec<Ack>) {
    let failure = wal.sync_data().err().map(|e| {
        tracing::error!(error = %e, "cannot sync the SQLite WAL");
        DriverError::Unavailable(format!(
            "committed, but the write-ahead log could not be synced to disk: {e}"
        ))
    });
    if failure.is_none() {
        counters.syncs.fetch_add(1, Ordering::Relaxed);
    }
    for ack in acks {
        ack(failure.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn wal_file(dir: &tempfile::TempDir) -> File {
        let path = dir.path().join("x.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn every_ack_follows_a_sync_that_began_after_it_was_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Arc::new(Counters::default());
        let syncer = Syncer::start(wal_file(&dir), counters.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let before = counters.syncs.load(Ordering::SeqCst);
            let (tx, counters) = (tx.clone(), counters.clone());
            syncer.after_sync(vec![Box::new(move |failure| {
                let after = counters.syncs.load(Ordering::SeqCst);
                tx.send((i, failure.is_none(), before, after)).unwrap();
            })]);
        }
        let mut seen = Vec::new();
        for _ in 0..100 {
            let (i, ok, before, after) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(ok);
            assert!(after > before, "ack {i} answered without a sync after it");
            seen.push(i);
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>(), "answered in order");
        // Acks handed over together share syncs.
        assert!(counters.syncs.load(Ordering::SeqCst) <= 100);
    }

    #[test]
    fn dropping_the_syncer_syncs_and_answers_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Arc::new(Counters::default());
        let syncer = Syncer::start(wal_file(&dir), counters.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..10 {
            let tx = tx.clone();
            syncer.after_sync(vec![Box::new(move |failure| {
                tx.send(failure.is_none()).unwrap();
            })]);
        }
        drop(syncer);
        let answered: Vec<bool> = rx.try_iter().collect();
        assert_eq!(answered, vec![true; 10]);
        assert!(counters.syncs.load(Ordering::SeqCst) >= 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_failed_sync_answers_every_waiting_caller_with_an_error() {
        // A pipe cannot be synced (EINVAL): a stand-in for a failing disk.
        let (reader, _writer) = std::io::pipe().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(reader));
        let counters = Arc::new(Counters::default());
        let syncer = Syncer::start(file, counters.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            syncer.after_sync(vec![Box::new(move |failure| {
                tx.send(failure.map(ToString::to_string)).unwrap();
            })]);
        }
        for _ in 0..3 {
            let failure = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let message = failure.expect("a failed sync is an error");
            assert!(message.contains("could not be synced"), "{message}");
        }
        assert_eq!(counters.syncs.load(Ordering::SeqCst), 0);
    }
}
