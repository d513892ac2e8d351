//! When the writer checkpoints the WAL (`writer::checkpoint`): right away
//! after small writes with nothing queued, after a load once idle, and
//! within a bound during one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::tests::{native, writer_with};
use crate::writer::{BUSY_PAGES, WriterHandle};

const PAGE: u64 = 4096;

/// One write of `rows` rows of 3,000 bytes: one WAL page each.
async fn fill(w: &WriterHandle, rows: u32) {
    w.write_native(false, move |conn, _| {
        conn.execute(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?1) \
             INSERT INTO t SELECT zeroblob(3000) FROM s",
            [rows],
        )
        .map_err(crate::error::map_native)
    })
    .await
    .unwrap();
}

async fn rows(w: &WriterHandle) -> i64 {
    w.write_native(false, |conn, _| {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .map_err(crate::error::map_native)
    })
    .await
    .unwrap()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn small_writes_are_checkpointed_as_sqlite_would() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, _, _) = writer_with(&dir, true).await;
    // 1,200 pages in writes of two rows, one after the other.
    for _ in 0..600 {
        fill(&w, 2).await;
    }
    assert!(counters.checkpoints.load(Ordering::SeqCst) >= 1);
    assert_eq!(rows(&w).await, 1_200);
}

#[tokio::test]
async fn a_load_is_checkpointed_once_the_writer_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, _, _) = writer_with(&dir, true).await;
    // One big write: part of a load, so not checkpointed at once.
    fill(&w, 1_500).await;
    let counters2 = counters.clone();
    eventually("an idle writer checkpoints the load's WAL", move || {
        counters2.checkpoints.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(rows(&w).await, 1_500);
}

#[tokio::test]
async fn during_a_load_the_wal_stays_bounded_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts, _) = writer_with(&dir, true).await;
    let wal = opts.get_filename().with_extension("db-wal");
    for _ in 0..40 {
        fill(&w, 500).await;
    }
    let pages = std::fs::metadata(&wal).unwrap().len() / PAGE;
    assert!(
        pages <= BUSY_PAGES as u64 + 600,
        "a WAL of {pages} pages after 20,000"
    );
    assert!(counters.checkpoints.load(Ordering::SeqCst) >= 1);
    assert_eq!(rows(&w).await, 20_000);
    drop(w);
    // Another connection reads everything back from the file.
    let check = native(&opts);
    let n: i64 = check
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 20_000);
}
