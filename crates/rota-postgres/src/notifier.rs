//! Wake-ups for the driver's own inserts, sent after they commit.
//!
//! An insert that commits by itself (not inside a caller's transaction)
//! does not call `pg_notify`: a notifying commit holds PostgreSQL's
//! server-wide notification lock through its WAL flush, so concurrent
//! enqueues would be flushed one at a time (see [`crate::jobs::Wake`]).
//! Instead the insert hands its queues to the [`Notifier`] once committed.
//! It wakes this driver's own subscribers at once, in-process, and one
//! task sends the notification for other nodes on a connection of its own,
//! every queue pending at that moment in one statement: under load, many
//! commits share a notification. The listener skips notifications from
//! that connection (by its backend process id): they were delivered here
//! already.
//!
//! A send that fails is tried once more on a fresh connection; one that
//! fails again is logged and dropped. Nothing is lost: the jobs are
//! committed, and consumers also poll.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rota_driver::Wakeup;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

/// `application_name` of the notifier's connection.
pub const NOTIFIER_APPLICATION_NAME: &str = "rota-notifier";

/// How long connecting and sending one notification may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Wakes local subscribers and sends `pg_notify` for queues handed to it.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    options: PgConnectOptions,
    channel: String,
    wakeups: broadcast::Sender<Wakeup>,
    /// Backend process id of the task's connection (0: none yet), for the
    /// listener to skip what this driver sent.
    pid: Arc<AtomicU32>,
    /// Started by the first [`Notifier::notify`]; aborted on drop.
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What the notifier and its task share.
#[derive(Default)]
struct Shared {
    /// Queues to notify, each once however many commits asked.
    pending: Mutex<BTreeSet<String>>,
    /// Rung when `pending` gains a queue; keeps one permit when the task
    /// is busy sending, so a queue added meanwhile is sent next.
    ring: Notify,
}

impl Notifier {
    /// A notifier waking `wakeups`' subscribers and sending on `channel`
    /// over its own connection made with `options`; no task yet.
    pub(crate) fn new(
        options: PgConnectOptions,
        channel: String,
        wakeups: broadcast::Sender<Wakeup>,
    ) -> Notifier {
        Notifier {
            shared: Arc::new(Shared::default()),
            options: options.application_name(NOTIFIER_APPLICATION_NAME),
            channel,
            wakeups,
            pid: Arc::new(AtomicU32::new(0)),
            task: Mutex::new(None),
        }
    }

    /// The backend process id the notifications are sent from (0 before
    /// the first), shared for the listener.
    pub(crate) fn pid(&self) -> Arc<AtomicU32> {
        self.pid.clone()
    }

    /// Wakes local subscribers of `queues` now and other nodes soon. Call
    /// only after the jobs are committed.
    pub(crate) fn notify<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let mut added = false;
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for q in queues {
                // No receivers is fine: nobody is waiting right now.
                let _ = self.wakeups.send(Wakeup {
                    queue: Some(q.to_owned()),
                });
                if !pending.contains(q) {
                    pending.insert(q.to_owned());
                }
                added = true;
            }
        }
        if added && self.started() {
            self.shared.ring.notify_one();
        }
    }

    /// Whether the task runs, starting it if not; `false` outside a tokio
    /// runtime (the queues then wait for the next call made inside one).
    fn started(&self) -> bool {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        // A task ends only with its runtime: start it anew in this one.
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return true;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("rota-postgres: insert outside a tokio runtime; wake-up not sent");
            return false;
        };
        *task = Some(rt.spawn(run(
            self.shared.clone(),
            self.options.clone(),
            self.channel.clone(),
            self.pid.clone(),
        )));
        true
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// Sends what is pending, one statement at a time, until aborted.
async fn run(shared: Arc<Shared>, options: PgConnectOptions, channel: String, pid: Arc<AtomicU32>) {
    // The connection and its backend process id.
    let mut conn: Option<(PgConnection, u32)> = None;
    loop {
        shared.ring.notified().await;
        let queues: Vec<String> = std::mem::take(
            &mut *shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        if queues.is_empty() {
            continue;
        }
        // A connection that went stale while idle (a server restart, an
        // idle timeout) fails the first try; a fresh one gets a second.
        for retry in [false, true] {
            let sent = tokio::time::timeout(
                IO_TIMEOUT,
                send(&mut conn, &options, &channel, &queues, &pid),
            )
            .await;
            let error = match sent {
                Ok(Ok(())) => break,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            conn = None;
            pid.store(0, Ordering::Relaxed);
            if retry {
                tracing::warn!(
                    error,
                    queues = queues.len(),
                    "wake-up notification not sent; other nodes find the jobs by polling"
                );
            }
        }
    }
}

/// Sends one notification per queue, connecting first if need be.
async fn send(
    conn: &mut Option<(PgConnection, u32)>,
    options: &PgConnectOptions,
    channel: &str,
    queues: &[String],
    pid: &AtomicU32,
) -> Result<(), sqlx::Error> {
    let (c, id) = match conn {
        Some(c) => c,
        None => {
            let mut c = PgConnection::connect_with(options).await?;
            let id: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut c)
                .await?;
            conn.insert((c, u32::try_from(id).unwrap_or(0)))
        }
    };
    // Stored before every send: the listener clears it when it reconnects
    // (a server restart may give another node's notifier this number).
    pid.store(*id, Ordering::Relaxed);
    sqlx::query(crate::jobs::NOTIFY_QUEUES_SQL)
        .bind(channel)
        .bind(queues)
        .execute(c)
        .await?;
    Ok(())
}
