//! WAL checkpoints run by a thread of their own (`writer::checkpoint`):
//! they happen without the writer's backstop, keep the WAL bounded, and
//! lose nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::{Driver, JobInsertParams};

use crate::{SqliteDriver, SqliteOptions};

/// SQLite's page size here (the default).
const PAGE: u64 = 4096;

/// `n` jobs whose arguments hold ~1 KiB each, so a few thousand fill
/// hundreds of WAL pages.
fn batch(from: usize, n: usize) -> Vec<JobInsertParams> {
    let pad = "x".repeat(1024);
    (from..from + n)
        .map(|i| JobInsertParams {
            kind: "pad".to_owned(),
            args: serde_json::json!({ "i": i, "pad": pad }),
            queue: "q".to_owned(),
            priority: 1,
            state: JobState::Available,
            run_at: Timestamp::now(),
            created_at: Timestamp::now(),
            max_attempts: 3,
            timeout: None,
            unique_key: None,
            labels: BTreeMap::new(),
            attributes: BTreeMap::new(),
            trace_context: None,
        })
        .collect()
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn count(driver: &SqliteDriver) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM rota_jobs")
        .fetch_one(driver.read_pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_wal_is_checkpointed_off_the_writer_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rota.db");
    let wal = dir.path().join("rota.db-wal");
    let driver = SqliteDriver::open(db.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(driver.writer_stats().checkpoints, 0);
    let info = driver.store_info().await.unwrap();
    assert!(
        info.settings["writer"].contains("WAL checkpointed by a thread of its own"),
        "{info:?}"
    );
    let db_before = len(&db);

    // ~2,000 WAL pages: two wake-ups of the checkpoint thread, far below
    // the writer's backstop, so any checkpoint is the thread's. (Without
    // the hand-over the writer's connection would checkpoint by itself
    // and count none.)
    let mut inserted = 0;
    for _ in 0..8 {
        driver
            .job_insert_many(batch(inserted, 1_000))
            .await
            .unwrap();
        inserted += 1_000;
    }
    assert!(
        len(&wal) < crate::writer::BACKSTOP_PAGES as u64 * PAGE,
        "the load stays below the backstop"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while driver.writer_stats().checkpoints == 0 {
        assert!(Instant::now() < deadline, "no background checkpoint ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while len(&db) < db_before + 1_000 * PAGE {
        assert!(
            Instant::now() < deadline,
            "the checkpoint copied pages into the database file"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // ~60 MiB more, in a steady stream: the WAL restarts rather than
    // grow with the load.
    let mut batches = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let driver = driver.clone();
        let from = inserted;
        batches.spawn(async move { driver.job_insert_many(batch(from, 1_000)).await });
        inserted += 1_000;
    }
    while let Some(done) = batches.join_next().await {
        done.unwrap().unwrap();
    }
    let bound = (crate::writer::BACKSTOP_PAGES as u64 + 4 * 1_024) * PAGE;
    assert!(
        len(&wal) <= bound,
        "WAL of {} bytes, bound {bound}",
        len(&wal)
    );
    assert_eq!(count(&driver).await, inserted as i64);

    // Everything is there after a reopen.
    drop(driver);
    let driver = SqliteDriver::open(db.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(count(&driver).await, inserted as i64);
}

#[tokio::test]
async fn past_the_backstop_the_writer_checkpoints_and_the_wal_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // The checkpoint thread works on another file, so nothing but the
    // writer's backstop checkpoints this one.
    let elsewhere = tempfile::tempdir().unwrap();
    let (_conn, elsewhere) = crate::tests::connection(&elsewhere).await;
    let (w, _, opts, _) = crate::tests::writer_with_checkpoint(
        &dir,
        crate::writer::Durability::SyncThread,
        Some(crate::tests::native(&elsewhere)),
    )
    .await;
    let wal = opts.get_filename().with_extension("db-wal");
    // Six writes of ~3,000 pages each (a 3,000-byte row fills a page).
    for _ in 0..6 {
        w.write_native(false, |conn, _| {
            conn.execute(
                "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3000) \
                 INSERT INTO t SELECT zeroblob(3000) FROM s",
                [],
            )
            .map_err(crate::error::map_native)
        })
        .await
        .unwrap();
    }
    let pages = len(&wal) / PAGE;
    assert!(
        pages < crate::writer::BACKSTOP_PAGES as u64 + 3_500,
        "the WAL restarted past the backstop: {pages} pages"
    );
    let rows: i64 = w
        .write_native(false, |conn, _| {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .map_err(crate::error::map_native)
        })
        .await
        .unwrap();
    assert_eq!(rows, 18_000);
}
