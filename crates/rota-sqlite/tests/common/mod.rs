//! Helpers shared by the SQLite driver's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::{JobClaimParams, JobInsertParams};
use rota_sqlite::{SqliteDriver, SqliteOptions};
use tempfile::TempDir;

/// A fixed base instant plus `secs` seconds.
pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// A claim by node `node-1` of up to `max` jobs of `queue` (any labels,
/// any kind), at `now`, leased until `expires`.
pub(crate) fn claim_at(
    queue: &str,
    max: u32,
    token: i64,
    now: Timestamp,
    expires: Timestamp,
) -> JobClaimParams {
    JobClaimParams {
        queue: queue.into(),
        max,
        node_id: "node-1".into(),
        node_labels: BTreeMap::new(),
        kinds: None,
        lease_token: token,
        lease_expires_at: expires,
        now,
    }
}

/// An available job of `kind` in `queue`, due at `at(0)`.
pub(crate) fn job(kind: &str, queue: &str) -> JobInsertParams {
    JobInsertParams {
        kind: kind.into(),
        args: serde_json::json!({"n": 1}),
        queue: queue.into(),
        priority: 0,
        state: JobState::Available,
        run_at: at(0),
        created_at: at(0),
        max_attempts: 3,
        timeout: None,
        unique_key: None,
        labels: BTreeMap::new(),
        attributes: BTreeMap::new(),
        trace_context: None,
    }
}

/// A driver on `rota.db` in `dir`, migrated.
pub(crate) async fn open_in(dir: &TempDir) -> SqliteDriver {
    let path = dir.path().join("rota.db");
    SqliteDriver::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap()
}

/// A driver on a fresh file; keep the directory alive while using it.
pub(crate) async fn fresh() -> (TempDir, SqliteDriver) {
    let dir = tempfile::tempdir().unwrap();
    let driver = open_in(&dir).await;
    (dir, driver)
}
