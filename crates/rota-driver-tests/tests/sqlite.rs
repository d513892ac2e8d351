//! Runs the conformance suite against SQLite: one fresh database file in its
//! own temporary directory per case, opened by two driver instances (the
//! second one is the peer that stands for another process).

use std::sync::Arc;

use rota_driver_tests::Harness;

async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("rota.db");
    let path = path.to_str().expect("temporary path is UTF-8").to_owned();
    let driver = rota_sqlite::SqliteDriver::open(&path, rota_sqlite::SqliteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("open SQLite store at {path}: {e}"));
    // A second instance on the same file stands for another process.
    let peer = rota_sqlite::SqliteDriver::open(&path, rota_sqlite::SqliteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("open a second SQLite driver on {path}: {e}"));
    // The directory (and the database file in it) lives until the case and
    // its teardown are done.
    Some(
        Harness::new(Arc::new(driver))
            .with_peer(Arc::new(peer))
            .keep_alive(dir),
    )
}

rota_driver_tests::conformance_suite!(sqlite);
