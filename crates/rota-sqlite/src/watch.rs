//! Wake-ups for commits made outside the driver's writer: a user's own
//! transaction (transactional enqueue) or another process.
//!
//! A watcher task polls `PRAGMA data_version` on its own read-only
//! connection every [`watch_interval`](crate::SqliteOptions::watch_interval).
//! The value changes whenever any *other* connection commits — including
//! this driver's writer, whose commits must not wake every queue (a claim
//! would wake workers who claim again: a busy loop). So each change is
//! attributed using the writer's commit counters:
//!
//! - no writer `COMMIT` was in flight at the previous sample and none began
//!   since: the change is foreign, so `Wakeup { queue: None }` is sent;
//! - otherwise it is ambiguous, and the watcher asks the writer to *probe*:
//!   the writer reads `data_version` on its two connections, knowing which
//!   of them committed since its previous probe (each one's commits show
//!   only on the other), and sends the wake-up if someone else may have
//!   committed.
//!
//! The watcher starts on the first `subscribe()` and stops within one
//! interval of the driver being dropped (it holds only a `Weak`; the
//! driver also aborts it on drop).

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rota_driver::Wakeup;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::time::MissedTickBehavior;

use crate::Inner;

#[derive(Debug, Clone, Copy)]
struct Sample {
    data_version: i64,
    started: u64,
    finished: u64,
}

/// Polls until the driver is gone.
pub(crate) async fn run(alive: Weak<Inner>, connect: SqliteConnectOptions, every: Duration) {
    let mut conn: Option<SqliteConnection> = None;
    let mut prev: Option<Sample> = None;
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = alive.upgrade() else { break };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect.connect().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "wake-up watcher cannot open its SQLite connection");
                    drop(inner);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let counters = &inner.counters;
        let finished = counters.commits_finished.load(Ordering::SeqCst);
        let started = counters.commits_started.load(Ordering::SeqCst);
        let data_version = match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(&mut *c)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "data_version poll failed; reconnecting");
                conn = None;
                prev = None;
                continue;
            }
        };
        let started_after = counters.commits_started.load(Ordering::SeqCst);
        if let Some(p) = prev
            && p.data_version != data_version
        {
            let maybe_ours = started_after != p.started || p.finished != p.started;
            if maybe_ours {
                counters.probe_requested.store(true, Ordering::SeqCst);
                inner.writer.nudge();
            } else {
                let _ = inner.wake.send(Wakeup { queue: None });
            }
        }
        prev = Some(Sample {
            data_version,
            started,
            finished,
        });
    }
}
