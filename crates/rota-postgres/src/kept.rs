//! One pool connection kept out of the pool for lone inserts.
//!
//! sqlx's pool tests every connection handed back to it: a task spawned per
//! release sends `Sync` and waits for the server's answer. A statement run
//! through the pool therefore costs a second round trip, off the caller's
//! path but not off the two cores it shares with the server: a caller
//! enqueueing one job at a time made about 10 % more enqueues a second
//! without it (docs/benchmarks.md, round 16). So lone inserts reuse one
//! connection kept here; callers that find it in use go through the pool.

use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::SqlxResultExt;
use rota_driver::Result;

/// Pools smaller than this keep nothing: one connection held aside would
/// be a large share of them.
const MIN_POOL: u32 = 4;

/// A kept connection unused for this long goes back to the pool (which
/// tests it) and a pooled one is taken instead. A stream of inserts keeps
/// it; after a pause, inserts are back on the pool's connections, which
/// its other users cycle: a connection the server closed meanwhile (a
/// restart, an idle timeout) is found by the pool's test, not by the
/// first insert after the pause.
const MAX_IDLE: Duration = Duration::from_millis(100);

/// The kept connection, if the pool is large enough to spare one.
#[derive(Debug)]
pub(crate) struct Kept {
    slot: Option<Mutex<Slot>>,
}

type Slot = Option<(PoolConnection<Postgres>, Instant)>;

impl Kept {
    /// Keeps a connection only for pools of at least [`MIN_POOL`].
    pub(crate) fn new(max_connections: u32) -> Self {
        Self {
            slot: (max_connections >= MIN_POOL).then(|| Mutex::new(None)),
        }
    }

    /// The kept connection when it is free, else a pooled one.
    pub(crate) async fn acquire(&self, pool: &PgPool) -> Result<Lease<'_>> {
        let Some(mut slot) = self.slot.as_ref().and_then(|m| m.try_lock().ok()) else {
            return Ok(Lease {
                conn: pool.acquire().await.db()?,
                slot: None,
            });
        };
        let conn = match slot.take() {
            Some((conn, used)) if used.elapsed() < MAX_IDLE => conn,
            // A stale one is dropped here: back to the pool, tested there.
            _ => pool.acquire().await.db()?,
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
pub(crate) struct Lease<'a> {
    conn: PoolConnection<Postgres>,
    slot: Option<MutexGuard<'a, Slot>>,
}

impl Lease<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The statements succeeded: keep the connection for the next insert
    /// (a pooled one goes back to the pool).
    pub(crate) fn done(self) {
        if let Some(mut slot) = self.slot {
            *slot = Some((self.conn, Instant::now()));
        }
    }
}
