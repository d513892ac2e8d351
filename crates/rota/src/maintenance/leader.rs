//! Leader election through the store's lease row.
//!
//! ```text
//!   follower ──elect ok──► leader ──reelect ok──► leader
//!      ▲                      │
//!      └── reelect refused, ──┘
//!          store error past the safe deadline, or shutdown (resign)
//! ```
//!
//! A leader trusts its term only until `renewed_at + ttl - margin` by the
//! local monotonic clock, so a paused or partitioned leader stops acting
//! before anyone else can be elected (the store lets others in only after
//! the full ttl).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota_driver::{Driver, LeaderElectParams, LeaderReelectParams};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Whether this node currently leads; cheap to clone and query.
#[derive(Debug, Clone, Default)]
pub struct LeaderState {
    inner: Arc<Mutex<Option<(i64, Instant)>>>,
}

impl LeaderState {
    /// Whether this node holds a term it may still act on.
    pub fn is_leader(&self) -> bool {
        self.lock().is_some_and(|(_, until)| Instant::now() < until)
    }

    /// The held term, if leading.
    pub fn term(&self) -> Option<i64> {
        self.lock()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(i64, Instant)>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, v: Option<(i64, Instant)>) {
        *self.lock() = v;
    }
}

/// Campaigns for and renews leadership until `stop`, then resigns.
pub(crate) async fn run(
    driver: Arc<dyn Driver>,
    config: Config,
    state: LeaderState,
    stop: CancellationToken,
) {
    let ttl = config.leader_ttl;
    // Act only within 80% of the ttl from the start of the renewal call.
    let margin = ttl / 5;
    let renew_every = ttl / 3;
    loop {
        let started = Instant::now();
        let now = config.clock.now();
        let held = state.lock().map(|(t, _)| t);
        let result = match held {
            Some(term) => {
                driver
                    .leader_attempt_reelect(&LeaderReelectParams {
                        node_id: config.node_id.clone(),
                        term,
                        ttl,
                        now,
                    })
                    .await
            }
            None => {
                driver
                    .leader_attempt_elect(&LeaderElectParams {
                        node_id: config.node_id.clone(),
                        ttl,
                        now,
                    })
                    .await
            }
        };
        match result {
            Ok(Some(term)) => {
                if held.is_none() {
                    tracing::info!(term = term.term, node = %config.node_id, "became leader");
                    metrics::counter!("rota_leader_elected_total").increment(1);
                }
                state.set(Some((term.term, started + ttl.saturating_sub(margin))));
            }
            Ok(None) => {
                if held.is_some() {
                    tracing::warn!(node = %config.node_id, "lost leadership");
                }
                state.set(None);
            }
            Err(e) => {
                // Keep the term until its safe deadline passes; is_leader()
                // turns false by itself then.
                tracing::warn!(error = %e, "leader election call failed");
            }
        }
        let wait = if state.is_leader() {
            renew_every
        } else {
            // Jittered (0.5x-1.5x): followers that retry in lock step
            // phase-lock onto any outside rhythm near the ttl, and the same
            // node wins every election. Seen in the SIGKILL chaos test: with
            // a kill every ~2 s and a 2 s ttl, 19 of 19 leaders were the
            // next node to be killed, elected 50-200 ms before it, so rescue
            // passes almost never ran.
            renew_every
                .max(Duration::from_millis(200))
                .mul_f64(0.5 + rand::random::<f64>())
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
    }
    if let Some(term) = state.term() {
        state.set(None);
        let r = driver
            .leader_resign(&LeaderReelectParams {
                node_id: config.node_id.clone(),
                term,
                ttl,
                now: config.clock.now(),
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "resigning leadership failed; it expires by itself");
        }
    }
}
