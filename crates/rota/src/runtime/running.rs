//! The jobs this process is running, by id: what heartbeats extend and what
//! cancellation reaches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::context::RunState;

/// One run held by this process.
#[derive(Debug)]
pub(crate) struct RunEntry {
    pub(crate) lease_token: i64,
    pub(crate) run: Arc<RunState>,
}

/// Running jobs by id.
#[derive(Debug, Default)]
pub(crate) struct Running {
    jobs: Mutex<HashMap<i64, Arc<RunEntry>>>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<RunEntry>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, id: i64, entry: Arc<RunEntry>) {
        self.lock().insert(id, entry);
    }

    /// Removes the entry only if it is still the given run.
    pub(crate) fn remove(&self, id: i64, lease_token: i64) {
        let mut jobs = self.lock();
        if jobs.get(&id).is_some_and(|e| e.lease_token == lease_token) {
            jobs.remove(&id);
        }
    }

    pub(crate) fn get(&self, id: i64) -> Option<Arc<RunEntry>> {
        self.lock().get(&id).cloned()
    }

    pub(crate) fn snapshot(&self) -> HashMap<i64, Arc<RunEntry>> {
        self.lock().clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
