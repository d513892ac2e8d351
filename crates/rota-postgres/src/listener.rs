//! The background LISTEN task that turns NOTIFYs into [`Wakeup`]s.
//!
//! Started lazily by the first `subscribe()`, stopped (aborted) when the
//! driver is dropped. It holds its own connection, outside the driver's pool.
//! Whenever it (re)connects and whenever it loses its connection it sends
//! `Wakeup { queue: None }`, because notifications sent while it was not
//! listening are gone and consumers should poll every queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand::Rng;
use rota_driver::Wakeup;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// `application_name` of the listener's connection.
pub const LISTENER_APPLICATION_NAME: &str = "rota-listener";

/// First reconnect delay; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Silence after which the connection is checked with a query, so a dead
/// peer that never closed the socket is noticed.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(30);
/// How long connecting or a health check may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The running listener; aborts the task when dropped.
#[derive(Debug)]
pub(crate) struct ListenerTask {
    handle: JoinHandle<()>,
}

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts the listener on the current tokio runtime; `None` outside one.
/// Notifications sent from backend `skip_pid` (the driver's own notifier,
/// which woke local subscribers itself) are dropped.
pub(crate) fn spawn(
    options: PgConnectOptions,
    channel: String,
    wakeups: broadcast::Sender<Wakeup>,
    skip_pid: Arc<AtomicU32>,
) -> Option<ListenerTask> {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "rota-postgres: subscribe() called outside a tokio runtime; no LISTEN wake-ups"
        );
        return None;
    };
    let options = options.application_name(LISTENER_APPLICATION_NAME);
    let handle = rt.spawn(run(options, channel, wakeups, skip_pid));
    Some(ListenerTask { handle })
}

async fn connect(options: &PgConnectOptions, channel: &str) -> Result<PgListener, sqlx::Error> {
    // A private one-connection pool: PgListener takes its connection from a
    // pool, and the driver's pool must not lose a connection to it.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(IO_TIMEOUT)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.ignore_pool_close_event(true);
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
}

/// Why a listening session ended.
enum Lost {
    Closed,
    Error(sqlx::Error),
    HealthCheck(String),
}

async fn listen_until_lost(
    listener: &mut PgListener,
    channel: &str,
    wakeups: &broadcast::Sender<Wakeup>,
    skip_pid: &AtomicU32,
) -> Lost {
    loop {
        let next = tokio::time::timeout(HEALTH_CHECK_EVERY, listener.try_recv()).await;
        match next {
            Ok(Ok(Some(n))) if n.process_id() == skip_pid.load(Ordering::Relaxed) => {}
            Ok(Ok(Some(n))) => {
                // No receivers is fine: nobody is waiting right now.
                let _ = wakeups.send(Wakeup {
                    queue: Some(n.payload().to_owned()),
                });
            }
            Ok(Ok(None)) => return Lost::Closed,
            Ok(Err(e)) => return Lost::Error(e),
            Err(_silence) => {
                let check = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(IO_TIMEOUT, check).await {
                    Ok(Ok(_)) => tracing::trace!(channel, "rota listener health check ok"),
                    Ok(Err(e)) => return Lost::HealthCheck(e.to_string()),
                    Err(_) => return Lost::HealthCheck("timed out".to_owned()),
                }
            }
        }
    }
}

async fn run(
    options: PgConnectOptions,
    channel: String,
    wakeups: broadcast::Sender<Wakeup>,
    skip_pid: Arc<AtomicU32>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut was_connected = false;
    loop {
        match tokio::time::timeout(IO_TIMEOUT, connect(&options, &channel)).await {
            Ok(Ok(mut listener)) => {
                if was_connected {
                    tracing::info!(channel, "rota listener reconnected; LISTEN restored");
                } else {
                    tracing::debug!(channel, "rota listener started");
                }
                was_connected = true;
                // After a reconnect the server may have restarted, and the
                // notifier's backend number may be another's now; the
                // notifier stores its own again before its next send.
                skip_pid.store(0, Ordering::Relaxed);
                backoff = MIN_BACKOFF;
                // Anything notified before LISTEN took effect was missed.
                let _ = wakeups.send(Wakeup { queue: None });
                let why = listen_until_lost(&mut listener, &channel, &wakeups, &skip_pid).await;
                match why {
                    Lost::Closed => {
                        tracing::warn!(channel, "rota listener lost its connection; reconnecting")
                    }
                    Lost::Error(e) => {
                        tracing::warn!(channel, error = %e, "rota listener failed; reconnecting")
                    }
                    Lost::HealthCheck(e) => tracing::warn!(
                        channel,
                        error = %e,
                        "rota listener health check failed; reconnecting"
                    ),
                }
                drop(listener);
                let _ = wakeups.send(Wakeup { queue: None });
            }
            Ok(Err(e)) => {
                tracing::warn!(channel, error = %e, retry_in = ?backoff, "rota listener cannot connect");
            }
            Err(_) => {
                tracing::warn!(channel, retry_in = ?backoff, "rota listener connect timed out");
            }
        }
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
