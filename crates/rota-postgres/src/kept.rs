//! One pool connection kept out of the pool while inserts keep coming.
//!
//! sqlx's pool tests every connection handed back to it: a task spawned per
//! release sends `Sync` and waits for the server's answer. A statement run
//! through the pool therefore costs a second round trip, off the caller's
//! path but not off the two cores it shares with the server: a caller
//! enqueueing one job at a time made about 10 % more enqueues a second
//! without it (docs/benchmarks.md, round 16). So inserts reuse one
//! connection kept here; callers that find it in use go through the pool.
//! Once inserts pause, a reaper task hands it back, so the pool's own
//! rules (lifetimes, its release test, `close`) apply to it again.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::SqlxResultExt;
use rota_driver::Result;

/// Pools smaller than this keep nothing. A worker readies
/// [`READY_CONNECTIONS`](crate::READY_CONNECTIONS) connections at once when
/// it starts, holding them all until the last is open; with one kept
/// besides, a pool of exactly that many would make the readying wait out
/// the acquire timeout.
const MIN_POOL: u32 = crate::READY_CONNECTIONS + 1;

/// A kept connection unused for this long goes back to the pool: at most
/// twice this after the last insert of a stream.
const MAX_IDLE: Duration = Duration::from_millis(250);

/// The kept connection, if the pool is large enough to spare one.
#[derive(Debug)]
pub(crate) struct Kept {
    slot: Option<Arc<Mutex<Slot>>>,
}

/// The connection and when it was last used; whether a reaper runs. Both
/// change only under the mutex, so a connection is never kept without a
/// reaper to hand it back.
#[derive(Debug, Default)]
struct Slot {
    conn: Option<(PoolConnection<Postgres>, Instant)>,
    reaping: bool,
}

impl Kept {
    /// Keeps a connection only for pools of at least [`MIN_POOL`].
    pub(crate) fn new(max_connections: u32) -> Self {
        Self {
            slot: (max_connections >= MIN_POOL).then(Arc::default),
        }
    }

    /// The kept connection when it is free, else a pooled one.
    pub(crate) async fn acquire(&self, pool: &PgPool) -> Result<Lease> {
        let Some(mut slot) = self
            .slot
            .as_ref()
            .and_then(|m| m.clone().try_lock_owned().ok())
        else {
            return Ok(Lease {
                conn: pool.acquire().await.db()?,
                slot: None,
            });
        };
        let conn = match slot.conn.take() {
            Some((conn, used)) if used.elapsed() < MAX_IDLE => conn,
            stale => {
                // Back to the pool (tested there) before taking another,
                // so a small pool has it to give.
                drop(stale);
                pool.acquire().await.db()?
            }
        };
        Ok(Lease {
            conn,
            slot: Some(slot),
        })
    }
}

/// A connection from [`Kept::acquire`]. Dropped without [`Lease::done`]
/// (after an error, or with its future cancelled mid-statement), it goes
/// back to the pool, whose test closes it if it is broken, and nothing is
/// kept until the next success.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: PoolConnection<Postgres>,
    slot: Option<OwnedMutexGuard<Slot>>,
}

impl Lease {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The statements succeeded: keep the connection for the next insert
    /// (a pooled one goes back to the pool).
    pub(crate) fn done(self) {
        let Some(mut slot) = self.slot else { return };
        if !slot.reaping {
            // Outside a runtime nothing could hand it back: not kept.
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            rt.spawn(reap(Arc::downgrade(OwnedMutexGuard::mutex(&slot))));
            slot.reaping = true;
        }
        slot.conn = Some((self.conn, Instant::now()));
    }
}

/// Hands the kept connection back once it has been unused for
/// [`MAX_IDLE`]; ends when nothing is kept (the next keep starts another)
/// or the driver is gone.
async fn reap(slot: Weak<Mutex<Slot>>) {
    loop {
        tokio::time::sleep(MAX_IDLE).await;
        let Some(slot) = slot.upgrade() else { return };
        // In use by an insert: look again later.
        let Ok(mut s) = slot.try_lock() else { continue };
        if s.conn
            .as_ref()
            .is_some_and(|(_, used)| used.elapsed() >= MAX_IDLE)
        {
            s.conn = None;
        }
        if s.conn.is_none() {
            s.reaping = false;
            return;
        }
    }
}
