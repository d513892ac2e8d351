//! WAL checkpoints off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL
//! past 1,000 pages, on the committing connection: it syncs the WAL, copies
//! its pages into the database file and syncs that, ~4 MiB and two syncs
//! each time. On the writer thread that stalled every other writer of the
//! process; a 100,000-job bulk load spent ~15 % of its time there
//! (docs/benchmarks.md, round 9).
//!
//! So the writer's native connection does not checkpoint by itself: a
//! WAL hook notes the WAL's size after each of its commits, and once
//! [`CHECKPOINT_PAGES`] more pages were written the writer wakes this
//! thread, which runs a `PASSIVE` checkpoint on a connection of its own
//! while the writer goes on. A passive checkpoint never blocks the writer
//! or a reader; it copies what no reader still needs, with the same syncs
//! as the automatic one (the checkpoint connection has the driver's
//! `synchronous` setting), so a crash at any point leaves the database as
//! SQLite's own checkpoints would.
//!
//! The WAL restarts from its beginning only when a write transaction
//! begins with every frame copied, which a checkpoint racing a steady
//! stream of commits rarely leaves. Past [`BACKSTOP_PAGES`] the writer
//! therefore checkpoints itself, as SQLite would, once: little is left to
//! copy by then, and the next transaction restarts the WAL, which so stays
//! bounded.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::Counters;

/// WAL pages written between two background checkpoints: SQLite's own
/// automatic-checkpoint threshold.
pub(crate) const CHECKPOINT_PAGES: i32 = 1_000;

/// WAL size in pages (32 MiB at 4 KiB pages) past which the writer
/// checkpoints itself, so that the WAL restarts.
pub(crate) const BACKSTOP_PAGES: i32 = 8_192;

thread_local! {
    /// The WAL's size in pages after the last commit of a native writer
    /// connection on this thread. A thread-local because rusqlite's WAL
    /// hook is a plain `fn`; a writer's native connection commits only on
    /// its own thread, so per thread is per writer.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Replaces `native`'s automatic checkpoint (itself a WAL hook) with a hook
/// that only notes the WAL's size, read by [`Checkpoints::after_commits`].
pub(super) fn take_over(native: &rusqlite::Connection) {
    native.wal_hook(Some(note_wal_pages));
}

/// What the writer knows of the WAL, and the thread it wakes.
pub(super) struct Checkpoints {
    thread: Checkpointer,
    /// The WAL's size when the thread was last woken.
    woken_at: i32,
}

impl Checkpoints {
    pub(super) fn new(thread: Checkpointer) -> Checkpoints {
        Checkpoints {
            thread,
            woken_at: 0,
        }
    }

    /// Called by the writer after its commits: wakes the thread once
    /// [`CHECKPOINT_PAGES`] were written since it last did, and past
    /// [`BACKSTOP_PAGES`] checkpoints on `native` itself.
    pub(super) fn after_commits(&mut self, native: &rusqlite::Connection) {
        let pages = WAL_PAGES.get();
        if pages < self.woken_at {
            // The WAL restarted.
            self.woken_at = 0;
        }
        if pages >= BACKSTOP_PAGES {
            match checkpoint(native) {
                Ok(()) => {
                    self.thread
                        .shared
                        .counters
                        .checkpoints
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, "SQLite writer: checkpoint"),
            }
            // Whatever happened, not again before the next commit.
            WAL_PAGES.set(0);
            self.woken_at = 0;
        } else if pages - self.woken_at >= CHECKPOINT_PAGES {
            self.woken_at = pages;
            self.thread.wake();
        }
    }
}

/// One passive checkpoint of the main database.
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // Answers (busy, WAL pages, pages copied); busy only means another
    // checkpoint ran at the same time.
    conn.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// The thread's wake-ups.
#[derive(Default)]
struct Waiting {
    due: bool,
    closed: bool,
}

struct Shared {
    waiting: Mutex<Waiting>,
    ready: Condvar,
    counters: Arc<Counters>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The checkpoint thread; dropping it stops it.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, which checkpoints through `conn`.
    pub(super) fn start(
        conn: rusqlite::Connection,
        counters: Arc<Counters>,
    ) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared {
            waiting: Mutex::default(),
            ready: Condvar::new(),
            counters,
        });
        let thread = std::thread::Builder::new()
            .name("rota-sqlite-checkpoint".to_owned())
            .spawn({
                let shared = shared.clone();
                move || run(&shared, &conn)
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    fn wake(&self) {
        self.shared.lock().due = true;
        self.shared.ready.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the SQLite checkpoint thread panicked");
        }
    }
}

fn run(shared: &Shared, conn: &rusqlite::Connection) {
    loop {
        {
            let mut waiting = shared.lock();
            while !waiting.due && !waiting.closed {
                waiting = shared
                    .ready
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if waiting.closed {
                return;
            }
            waiting.due = false;
        }
        match checkpoint(conn) {
            Ok(()) => {
                shared.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            // The writer's backstop still bounds the WAL.
            Err(e) => tracing::warn!(error = %e, "SQLite background checkpoint failed"),
        }
    }
}
