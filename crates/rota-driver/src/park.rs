//! Parked claims: an idle producer leaves its next claim with the store,
//! which runs it right after committing a write that makes jobs of that
//! queue available.
//!
//! Without parking, the path from an enqueue's commit to a handler is a
//! wake-up message, the producer's task, and a claim sent back to the
//! store. A store that writes through one task (SQLite) runs the parked
//! claim itself right after answering the enqueuer, skipping those hops;
//! the enqueuer never waits for the claim.

use std::fmt;
use std::sync::{Arc, Mutex};

use rota_core::Job;
use tokio::sync::oneshot;

use crate::{JobClaimParams, Result};

/// Builds the claim's parameters when the store runs it, so `now` and the
/// lease expiry come from the caller's clock at that moment, not at parking.
pub type ClaimParamsFn = Box<dyn FnOnce() -> JobClaimParams + Send + Sync>;

/// The store's side of a parked claim.
pub struct ParkedRequest {
    /// Makes the claim parameters, when the claim runs.
    pub make: ClaimParamsFn,
    /// Where the claimed jobs (or the claim's error) go after the commit.
    pub reply: oneshot::Sender<Result<Vec<Job>>>,
}

impl fmt::Debug for ParkedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkedRequest").finish_non_exhaustive()
    }
}

/// Parked claims of one store, by queue.
#[derive(Debug, Default)]
pub struct ParkingLot {
    slots: Mutex<Vec<(u64, String, ParkedRequest)>>,
    next: std::sync::atomic::AtomicU64,
}

impl ParkingLot {
    /// Parks a claim for `queue`; the returned handle waits for it.
    pub fn park(self: &Arc<Self>, queue: &str, make: ClaimParamsFn) -> ParkedClaim {
        let (reply, rx) = oneshot::channel();
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut slots) = self.slots.lock() {
            slots.push((id, queue.to_owned(), ParkedRequest { make, reply }));
        }
        ParkedClaim {
            id,
            lot: Arc::clone(self),
            rx: Some(rx),
        }
    }

    /// Takes every claim parked on one of `queues` (the store runs them).
    pub fn take<'q>(&self, queues: impl IntoIterator<Item = &'q str>) -> Vec<ParkedRequest> {
        let Ok(mut slots) = self.slots.lock() else {
            return Vec::new();
        };
        if slots.is_empty() {
            return Vec::new();
        }
        let queues: Vec<&str> = queues.into_iter().collect();
        slots
            .extract_if(.., |(_, queue, _)| queues.contains(&queue.as_str()))
            .map(|(_, _, request)| request)
            .collect()
    }

    /// Whether no claim is parked.
    pub fn is_empty(&self) -> bool {
        self.slots.lock().map(|s| s.is_empty()).unwrap_or(true)
    }

    fn remove(&self, id: u64) -> bool {
        let Ok(mut slots) = self.slots.lock() else {
            return false;
        };
        match slots.iter().position(|(i, _, _)| *i == id) {
            Some(pos) => {
                slots.swap_remove(pos);
                true
            }
            None => false,
        }
    }
}

/// The producer's side of a parked claim. Dropping it withdraws the claim
/// (the request holds the producer's closure, which may hold the engine:
/// left behind, it would keep both alive).
#[derive(Debug)]
pub struct ParkedClaim {
    id: u64,
    lot: Arc<ParkingLot>,
    rx: Option<oneshot::Receiver<Result<Vec<Job>>>>,
}

impl Drop for ParkedClaim {
    fn drop(&mut self) {
        self.lot.remove(self.id);
    }
}

/// What [`ParkedClaim::retract`] found.
#[derive(Debug)]
pub enum Retracted {
    /// The claim was still parked and is gone now: nothing was claimed.
    Withdrawn,
    /// The store had already taken the claim: its result follows on this
    /// receiver and must be handled (the jobs may be claimed).
    Taken(oneshot::Receiver<Result<Vec<Job>>>),
}

impl ParkedClaim {
    /// Waits until the store ran the claim. An error means the store
    /// dropped the request (for example on shutdown): nothing was claimed.
    pub async fn wait(&mut self) -> Result<Vec<Job>> {
        let dropped = || {
            Err(crate::DriverError::Unavailable(
                "the store dropped a parked claim".to_owned(),
            ))
        };
        let Some(rx) = self.rx.as_mut() else {
            return dropped();
        };
        match rx.await {
            Ok(result) => {
                self.rx = None;
                result
            }
            Err(_) => dropped(),
        }
    }

    /// Withdraws the claim, unless the store has already taken it.
    pub fn retract(mut self) -> Retracted {
        match self.rx.take() {
            Some(rx) if !self.lot.remove(self.id) => Retracted::Taken(rx),
            _ => Retracted::Withdrawn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> JobClaimParams {
        JobClaimParams {
            queue: "q".into(),
            max: 1,
            node_id: "n".into(),
            node_labels: Default::default(),
            kinds: None,
            lease_token: 1,
            lease_expires_at: jiff::Timestamp::UNIX_EPOCH,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn dropping_the_handle_withdraws_the_claim() {
        let lot = Arc::new(ParkingLot::default());
        drop(lot.park("q", Box::new(params)));
        assert!(lot.is_empty());
        assert!(lot.take(["q"]).is_empty());
    }

    #[test]
    fn retract_before_take_withdraws() {
        let lot = Arc::new(ParkingLot::default());
        let parked = lot.park("q", Box::new(params));
        assert!(matches!(parked.retract(), Retracted::Withdrawn));
        assert!(lot.take(["q"]).is_empty());
    }

    #[tokio::test]
    async fn taken_claim_delivers_after_retract() {
        let lot = Arc::new(ParkingLot::default());
        let parked = lot.park("q", Box::new(params));
        let other = lot.park("other", Box::new(params));
        let taken = lot.take(["q"]);
        assert_eq!(taken.len(), 1);
        for req in taken {
            assert_eq!((req.make)().queue, "q");
            let _ = req.reply.send(Ok(Vec::new()));
        }
        match parked.retract() {
            Retracted::Taken(rx) => assert!(rx.await.unwrap().unwrap().is_empty()),
            Retracted::Withdrawn => panic!("the claim was taken"),
        }
        assert!(matches!(other.retract(), Retracted::Withdrawn));
    }
}
