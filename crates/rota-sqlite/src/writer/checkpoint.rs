//! When the writer checkpoints the WAL: between loads, not during them.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL
//! past 1,000 pages: it syncs the WAL, copies its pages into the database
//! file and syncs that. In a bulk load that was one 5,000-row chunk in
//! four taking 22–36 ms instead of 7–14 ms on the one writer
//! (docs/benchmarks.md, round 9), and a thread of its own for them did not
//! help: its copying competes for the same two cores.
//!
//! So the writer's native connection replaces it (itself a WAL hook) with
//! a hook that only notes the WAL's size, and the writer decides after
//! each round of commits:
//!
//! - after a small round with nothing queued (a sequential caller), it
//!   checkpoints once the WAL holds [`IDLE_PAGES`], as SQLite would; the
//!   checkpoint ends before the next commit, which so restarts the WAL
//!   from its start instead of growing the file (a growing WAL makes every
//!   commit's sync also write the file's size);
//! - during a load (work queued, or a round of 64 pages or more), it goes
//!   on until the WAL holds [`BUSY_PAGES`], and checkpoints once no work
//!   has come for [`IDLE_WAIT`].
//!
//! The WAL therefore never exceeds [`BUSY_PAGES`] and one round's pages.
//! A 100,000-job bulk load (~5,000 pages) is checkpointed after it is
//! acknowledged, not during it: +13 % on this VM (round 9).
//!
//! The checkpoint is SQLite's own (`PASSIVE`, with the connection's
//! `synchronous` deciding its syncs), at another moment: crash safety is
//! unchanged, and a WAL of up to 32 MiB costs readers nothing measurable
//! (its index is hashed).

use std::cell::Cell;
use std::ffi::c_int;

/// WAL pages past which an idle writer checkpoints: SQLite's default.
pub(crate) const IDLE_PAGES: c_int = 1_000;

/// WAL pages (32 MiB at 4 KiB pages) past which a busy writer
/// checkpoints; a 100,000-job bulk load writes ~5,000.
pub(crate) const BUSY_PAGES: c_int = 8_192;

/// For the writer's sqlx connection, which keeps SQLite's automatic
/// checkpoint: at [`BUSY_PAGES`], so that its rare commits do not
/// checkpoint in the middle of a load either.
pub(super) const SQLX_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 8192";

/// WAL pages one round of commits writes, from which the writer counts
/// as busy whatever is queued: a 5,000-job bulk chunk writes ~300, a
/// single enqueue 3–4.
const LOAD_ROUND_PAGES: c_int = 64;

thread_local! {
    /// The WAL's size in pages after the last commit on this thread of a
    /// connection whose hook is [`note_wal_pages`]. A thread-local
    /// because rusqlite's WAL hook is a plain `fn`; the writer's native
    /// connection commits only on the writer's own thread, so per thread
    /// is per writer.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
    /// [`WAL_PAGES`] at the writer's previous round.
    static LAST_PAGES: Cell<c_int> = const { Cell::new(0) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Replaces `native`'s automatic checkpoint with the writer's decisions
/// ([`due_after_round`], [`pending`]); call it on the writer's native
/// connection only.
pub(super) fn take_over(native: &rusqlite::Connection) {
    native.wal_hook(Some(note_wal_pages));
}

/// Whether to checkpoint after a round of commits, with `busy` telling
/// whether more work was queued when the round's commits ended (checked
/// before the round's callers are answered, so a sequential caller's next
/// operation cannot be queued yet).
pub(super) fn due_after_round(busy: bool) -> bool {
    let pages = WAL_PAGES.get();
    let last = LAST_PAGES.replace(pages);
    // A round that wrote many pages is part of a load even when the
    // loader's next chunk is a moment late.
    let written = if pages >= last { pages - last } else { pages };
    let busy = busy || written >= LOAD_ROUND_PAGES;
    pages >= if busy { BUSY_PAGES } else { IDLE_PAGES }
}

/// Whether a load left the WAL past [`IDLE_PAGES`] unchecked: the writer
/// then checkpoints once it has stayed idle for [`IDLE_WAIT`].
pub(super) fn pending() -> bool {
    WAL_PAGES.get() >= IDLE_PAGES
}

/// How long the writer waits for more work, after a load, before it
/// checkpoints: longer than a loader takes to send its next chunk.
pub(super) const IDLE_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// One `PASSIVE` checkpoint on `native`; whether it ran.
pub(super) fn checkpoint(native: &rusqlite::Connection) -> bool {
    // Not again before the next commit says how big the WAL is.
    WAL_PAGES.set(0);
    LAST_PAGES.set(0);
    // Answers (busy, WAL pages, pages copied); busy means another
    // process's checkpoint was running, and a later round tries again.
    match native.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "SQLite writer: checkpoint");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sqlx_connection_checkpoints_at_the_busy_bound() {
        assert_eq!(
            super::SQLX_AUTOCHECKPOINT,
            format!("PRAGMA wal_autocheckpoint = {}", super::BUSY_PAGES)
        );
    }
}
