//! WAL checkpoints run by a thread of their own (`writer::checkpoint`):
//! they happen without the writer's backstop, keep the WAL bounded, and
//! lose nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
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

async fn open(db: &Path) -> SqliteDriver {
    SqliteDriver::open(db.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn under_a_steady_load_the_wal_stays_bounded_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rota.db");
    let wal = dir.path().join("rota.db-wal");
    let driver = open(&db).await;
    let info = driver.store_info().await.unwrap();
    assert!(
        info.settings["writer"].contains("WAL checkpointed by a thread of its own"),
        "{info:?}"
    );
    let db_before = len(&db);

    // ~60 MiB with two batches in flight, the second sent while the
    // writer works on the first (as `enqueue_all` does): the WAL restarts
    // rather than grow with the load.
    let mut in_flight = std::collections::VecDeque::new();
    let mut inserted = 0;
    for _ in 0..60 {
        if in_flight.len() == 2
            && let Some(done) = in_flight.pop_front()
        {
            let done: tokio::task::JoinHandle<rota_driver::Result<_>> = done;
            done.await.unwrap().unwrap();
        }
        let driver = driver.clone();
        let from = inserted;
        in_flight.push_back(tokio::spawn(async move {
            driver.job_insert_many(batch(from, 1_000)).await
        }));
        inserted += 1_000;
        // Sent after the writer took the batch before it.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for done in in_flight {
        done.await.unwrap().unwrap();
    }
    let stats = driver.writer_stats();
    assert!(
        stats.checkpoints + stats.writer_checkpoints > 0,
        "{stats:?}"
    );
    assert!(
        len(&db) > db_before + 1_000 * PAGE,
        "the checkpoints copied pages into the database file"
    );
    let bound = (crate::writer::BACKSTOP_PAGES as u64 + 4 * 1_024) * PAGE;
    assert!(
        len(&wal) <= bound,
        "WAL of {} bytes, bound {bound}",
        len(&wal)
    );
    assert_eq!(count(&driver).await, inserted as i64);

    // Everything is there after a reopen.
    drop(driver);
    let driver = open(&db).await;
    assert_eq!(count(&driver).await, inserted as i64);
}

/// One write on `w` of `pages` WAL pages (a 3,000-byte row fills a page).
async fn fill(w: &crate::writer::WriterHandle, pages: u32, then_sleep: Duration) {
    w.write_native(false, move |conn, _| {
        let n = conn
            .execute(
                "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?1) \
                 INSERT INTO t SELECT zeroblob(3000) FROM s",
                [pages],
            )
            .map_err(crate::error::map_native)?;
        // Keeps the writer in this round while the test queues more.
        std::thread::sleep(then_sleep);
        Ok(n)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_busy_writer_hands_the_checkpoint_to_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (_, opts) = crate::tests::connection(&dir).await;
    let (w, counters, _, _) = crate::tests::writer_with_checkpoint(
        &dir,
        crate::writer::Durability::SyncThread,
        Some(crate::tests::native(&opts)),
    )
    .await;
    // 1,500 pages, with a second write queued before the round ends.
    let first = tokio::spawn({
        let w = w.clone();
        async move { fill(&w, 1_500, Duration::from_millis(300)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    fill(&w, 1, Duration::ZERO).await;
    first.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.checkpoints.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the thread did not checkpoint");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counters.writer_checkpoints.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_idle_writer_checkpoints_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rota.db");
    let driver = open(&db).await;
    // One write at a time, each answered before the next is sent (a
    // sequential caller): nothing is ever queued when a round ends, so
    // the writer checkpoints itself and no commit races the checkpoint.
    let mut inserted = 0;
    for _ in 0..8 {
        driver
            .job_insert_many(batch(inserted, 1_000))
            .await
            .unwrap();
        inserted += 1_000;
    }
    let stats = driver.writer_stats();
    assert!(stats.writer_checkpoints >= 1, "{stats:?}");
    assert_eq!(stats.checkpoints, 0, "{stats:?}");
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
