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
//! The one visible difference: another connection (the read pool, a
//! user's transaction) can read a commit before it is durable, as with
//! PostgreSQL's `synchronous_commit = off`; but no caller of the writer is
//! answered before the sync, failed operations included (a failure can
//! reveal what an earlier commit did). A power loss in that window loses
//! only writes nobody was told had happened.
//!
//! A failed sync is final: every answer from then on is an error, and the
//! writer refuses new operations, until the database is reopened.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

use rota_driver::DriverError;

use super::Counters;

/// Answers a caller once its commit is durable, or with the sync's error.
pub(super) type Ack = Box<dyn FnOnce(Option<&DriverError>) + Send>;

/// Makes every WAL frame written so far durable (`fdatasync` of the file).
pub(crate) type SyncFn = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// A sync of `wal`.
pub(super) fn wal_sync(wal: File) -> SyncFn {
    Box::new(move || wal.sync_data())
}

/// Acknowledgements waiting for the next sync.
#[derive(Default)]
struct Waiting {
    acks: Vec<Ack>,
    closed: bool,
}

struct Shared {
    waiting: Mutex<Waiting>,
    ready: Condvar,
    sync: SyncFn,
    counters: Arc<Counters>,
    /// Set by the first failed sync, for good. Linux reports a failed
    /// writeback once per open file and then marks the pages clean, so a
    /// later sync may "succeed" with frames missing from the WAL; and
    /// recovery stops at the first bad frame, dropping every commit after
    /// it. From then on nothing is acknowledged as durable.
    failed: OnceLock<String>,
    /// Held through each sync and the recording of its failure: the
    /// writer's own syncs ([`Syncer::sync_here`]) and the thread's take
    /// turns. Two at once on one file could split a writeback error
    /// between them, Linux reporting it to one only, and the other would
    /// answer as durable commits that come after the lost frames.
    syncing: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // An ack that panicked cannot leave `Waiting` half-changed.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Syncs (unless a sync failed before), then answers `acks`.
    fn sync_then_answer(&self, acks: Vec<Ack>) {
        let failure = {
            // A sync that panicked leaves nothing half-done behind the lock.
            let _turn = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
            if self.failed.get().is_none() {
                match (self.sync)() {
                    Ok(()) => {
                        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot sync the SQLite WAL; no write is acknowledged from now on");
                        let _ = self.failed.set(e.to_string());
                    }
                }
            }
            self.failure()
        };
        for ack in acks {
            ack(failure.as_ref());
        }
    }

    fn failure(&self) -> Option<DriverError> {
        self.failed.get().map(|e| {
            DriverError::Database(format!(
                "the write-ahead log could not be synced to disk ({e}); writes may be lost, \
                 so none is acknowledged until the database is reopened"
            ))
        })
    }
}

/// The sync thread; dropping it syncs and answers what is still waiting.
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread that makes commits durable with `sync` (for the
    /// driver, [`wal_sync`] of the WAL file, opened while the writer's
    /// connection is open: a WAL is deleted only when its last connection
    /// closes, so it is the file SQLite writes).
    pub(super) fn start(sync: SyncFn, counters: Arc<Counters>) -> io::Result<Syncer> {
        let shared = Arc::new(Shared {
            waiting: Mutex::default(),
            ready: Condvar::new(),
            sync,
            counters,
            failed: OnceLock::new(),
            syncing: Mutex::new(()),
        });
        let thread = std::thread::Builder::new()
            .name("rota-sqlite-sync".to_owned())
            .spawn({
                let shared = shared.clone();
                move || run(&shared)
            })?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Answers `acks` after the next sync, which begins after this call:
    /// call it once their commits have returned.
    pub(super) fn after_sync(&self, acks: Vec<Ack>) {
        self.shared.lock().acks.extend(acks);
        self.shared.ready.notify_one();
    }

    /// Syncs on the calling thread, then answers `acks`. The writer does
    /// this when nothing else waits for it: a hand-over to the sync thread
    /// costs a thread wake-up per commit.
    pub(super) fn sync_here(&self, acks: Vec<Ack>) {
        self.shared.sync_then_answer(acks);
    }

    /// Why writes are refused: a sync failed (see [`Shared::failed`]).
    pub(super) fn failure(&self) -> Option<DriverError> {
        self.shared.failure()
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

fn run(shared: &Shared) {
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
        shared.sync_then_answer(acks);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A sync that waits for `release` (one message per sync) and reports
    /// each start on `started`.
    fn held_sync(started: mpsc::Sender<()>, release: mpsc::Receiver<io::Result<()>>) -> SyncFn {
        let release = Mutex::new(release);
        Box::new(move || {
            let _ = started.send(());
            release.lock().unwrap().recv().unwrap_or(Ok(()))
        })
    }

    /// A syncer whose syncs are held (see [`held_sync`]).
    struct Held {
        syncer: Syncer,
        counters: Arc<Counters>,
        /// One message per sync begun.
        started: mpsc::Receiver<()>,
        /// Ends the held sync with this result.
        release: mpsc::Sender<io::Result<()>>,
    }

    fn held() -> Held {
        let counters = Arc::new(Counters::default());
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let syncer = Syncer::start(held_sync(started_tx, release_rx), counters.clone()).unwrap();
        Held {
            syncer,
            counters,
            started,
            release,
        }
    }

    fn answer_to(tx: &mpsc::Sender<Option<String>>) -> Ack {
        let tx = tx.clone();
        Box::new(move |failure| {
            let _ = tx.send(failure.map(ToString::to_string));
        })
    }

    #[test]
    fn an_ack_waits_for_a_sync_that_begins_after_it_was_handed_over() {
        let Held {
            syncer,
            counters,
            started,
            release,
        } = held();
        let (tx, answers) = mpsc::channel();
        // A first ack starts a sync, which is held.
        syncer.after_sync(vec![answer_to(&tx)]);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // A second ack handed over while that sync runs must not ride on
        // it: its commit may have written frames after the sync began.
        syncer.after_sync(vec![answer_to(&tx)]);
        assert!(answers.recv_timeout(Duration::from_millis(100)).is_err());
        release.send(Ok(())).unwrap();
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)).unwrap(), None);
        assert!(
            answers.recv_timeout(Duration::from_millis(100)).is_err(),
            "the second ack waits for a second sync"
        );
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        release.send(Ok(())).unwrap();
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)).unwrap(), None);
        assert_eq!(counters.syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn acks_handed_over_while_a_sync_runs_share_the_next_one_and_keep_their_order() {
        let Held {
            syncer,
            counters,
            started,
            release,
        } = held();
        let (tx, answers) = mpsc::channel();
        syncer.after_sync(vec![answer_to(&tx)]);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let (order_tx, order) = mpsc::channel();
        for i in 0..50 {
            let order_tx = order_tx.clone();
            syncer.after_sync(vec![Box::new(move |_| order_tx.send(i).unwrap())]);
        }
        release.send(Ok(())).unwrap();
        release.send(Ok(())).unwrap();
        answers.recv_timeout(Duration::from_secs(10)).unwrap();
        let got: Vec<i32> = (0..50)
            .map(|_| order.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(
            counters.syncs.load(Ordering::SeqCst),
            2,
            "50 acks, one sync"
        );
    }

    #[test]
    fn dropping_the_syncer_syncs_and_answers_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        let counters = Arc::new(Counters::default());
        let syncer = Syncer::start(wal_sync(File::open(path).unwrap()), counters.clone()).unwrap();
        let (tx, answers) = mpsc::channel();
        for _ in 0..10 {
            syncer.after_sync(vec![answer_to(&tx)]);
        }
        drop(syncer);
        let answered: Vec<Option<String>> = answers.try_iter().collect();
        assert_eq!(answered, vec![None; 10]);
        assert!(counters.syncs.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn a_failed_sync_fails_every_later_ack_even_when_a_later_sync_succeeds() {
        let Held {
            syncer,
            counters,
            started,
            release,
        } = held();
        let (tx, answers) = mpsc::channel();
        syncer.after_sync(vec![answer_to(&tx), answer_to(&tx)]);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        release.send(Err(io::Error::other("EIO"))).unwrap();
        for _ in 0..2 {
            let failure = answers.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(failure.unwrap().contains("could not be synced"));
        }
        // The disk would now say yes; nothing is acknowledged anyway.
        release.send(Ok(())).unwrap();
        syncer.sync_here(vec![answer_to(&tx)]);
        syncer.after_sync(vec![answer_to(&tx)]);
        for _ in 0..2 {
            let failure = answers.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(failure.is_some());
        }
        assert!(syncer.failure().is_some());
        assert!(
            !syncer.failure().unwrap().is_transient(),
            "retrying cannot help"
        );
        assert_eq!(counters.syncs.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_writers_sync_waits_for_the_threads_and_sees_its_failure() {
        let Held {
            syncer,
            counters,
            started,
            release,
        } = held();
        let syncer = Arc::new(syncer);
        let (tx, answers) = mpsc::channel();
        // The thread's sync begins and is held...
        syncer.after_sync(vec![answer_to(&tx)]);
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        // ... while the writer syncs on its own, which would succeed.
        let (here_tx, here) = mpsc::channel();
        let writer = std::thread::spawn({
            let syncer = syncer.clone();
            move || syncer.sync_here(vec![answer_to(&here_tx)])
        });
        assert!(
            started.recv_timeout(Duration::from_millis(200)).is_err(),
            "the writer's sync waits for its turn"
        );
        release.send(Err(io::Error::other("EIO"))).unwrap();
        release.send(Ok(())).unwrap();
        writer.join().unwrap();
        assert!(
            answers
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .is_some()
        );
        assert!(
            here.recv_timeout(Duration::from_secs(10))
                .unwrap()
                .is_some(),
            "commits after the lost frames are not acknowledged"
        );
        assert_eq!(counters.syncs.load(Ordering::SeqCst), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_that_cannot_be_synced_is_a_failed_sync() {
        // A pipe cannot be synced (EINVAL): a stand-in for a failing disk.
        let (reader, _writer) = std::io::pipe().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(reader));
        let counters = Arc::new(Counters::default());
        let syncer = Syncer::start(wal_sync(file), counters).unwrap();
        let (tx, answers) = mpsc::channel();
        syncer.after_sync(vec![answer_to(&tx)]);
        let failure = answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(failure.unwrap().contains("could not be synced"));
    }
}
