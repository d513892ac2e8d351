//! The writer with its sync thread: acknowledgements wait for an
//! `fdatasync` of the WAL made off the writer thread, and the writer's
//! connections stop syncing their own commits.

use std::sync::atomic::Ordering;

use crate::tests::{hold, insert_native, insert_x, stored, writer_with};

/// `PRAGMA synchronous` of the writer's native and sqlx connections.
async fn synchronous(w: &crate::writer::WriterHandle) -> (i64, i64) {
    let native = w
        .write_native(false, |conn, _| {
            conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                .map_err(crate::error::map_native)
        })
        .await
        .unwrap();
    let sqlx = w
        .write(|conn, _| {
            Box::pin(async move {
                sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(crate::error::map_sqlx)
            })
        })
        .await
        .unwrap();
    (native, sqlx)
}

#[tokio::test]
async fn acks_follow_a_sync_made_off_the_writer_and_commits_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts, _) = writer_with(&dir, true).await;
    assert!(counters.sync_thread.load(Ordering::SeqCst));
    // NORMAL (1) on both: the commits leave the sync to the sync thread.
    assert_eq!(synchronous(&w).await, (1, 1));

    insert_native(&w, Some(1), false).await.unwrap();
    let syncs = counters.syncs.load(Ordering::SeqCst);
    assert!(syncs >= 1, "an acknowledged write was synced");

    // Forty writers queued behind a held writer commit in one batch or
    // two, and their acks share the syncs that follow.
    let release = hold(&w).await;
    let mut writes = tokio::task::JoinSet::new();
    for x in 10..50 {
        let w = w.clone();
        writes.spawn(async move {
            if x < 30 {
                insert_native(&w, Some(x), false).await
            } else {
                insert_x(&w, x, false).await.map(|_| ())
            }
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    release.send(()).unwrap();
    while let Some(write) = writes.join_next().await {
        write.unwrap().unwrap();
    }
    let after = counters.syncs.load(Ordering::SeqCst);
    assert!(after > syncs);
    assert!(
        after - syncs <= 4,
        "{} syncs for 40 queued writes",
        after - syncs
    );
    let mut expected = vec![1];
    expected.extend(10..50);
    assert_eq!(stored(&opts).await, expected);
}

#[tokio::test]
async fn a_failed_op_is_answered_and_the_others_still_wait_for_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts, _) = writer_with(&dir, true).await;
    let release = hold(&w).await;
    let spawn_native = |x: i64, fail: bool| {
        let w = w.clone();
        tokio::spawn(async move { insert_native(&w, Some(x), fail).await })
    };
    let (a, b) = (spawn_native(1, false), spawn_native(2, true));
    let c = {
        let w = w.clone();
        tokio::spawn(async move { insert_x(&w, 3, false).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    release.send(()).unwrap();
    let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
    assert!(a.is_ok() && c.is_ok());
    assert!(
        matches!(b, Err(rota_driver::DriverError::Conflict(_))),
        "{b:?}"
    );
    assert!(counters.syncs.load(Ordering::SeqCst) >= 1);
    assert_eq!(stored(&opts).await, vec![1, 3]);
}

#[tokio::test]
async fn without_the_sync_thread_the_commits_sync_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, _, _) = writer_with(&dir, false).await;
    assert!(!counters.sync_thread.load(Ordering::SeqCst));
    // FULL (2), as the options say.
    assert_eq!(synchronous(&w).await, (2, 2));
    insert_native(&w, Some(1), false).await.unwrap();
    assert_eq!(counters.syncs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_driver_syncs_off_the_writer_only_when_the_setting_asks_for_syncs() {
    use crate::{SqliteDriver, SqliteOptions, Synchronous};
    for (synchronous, off_thread) in [
        (Synchronous::Full, true),
        (Synchronous::Extra, true),
        (Synchronous::Normal, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rota.db");
        let options = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        let driver = SqliteDriver::open(path.to_str().unwrap(), options)
            .await
            .unwrap();
        let info = rota_driver::Driver::store_info(&driver).await.unwrap();
        let writer = info.settings.get("writer").cloned().unwrap_or_default();
        assert_eq!(
            writer.contains("WAL synced by a thread of its own"),
            off_thread,
            "{synchronous:?}: {writer}"
        );
    }
}
