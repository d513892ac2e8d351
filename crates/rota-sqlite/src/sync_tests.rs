//! The writer with its sync thread: acknowledgements wait for an
//! `fdatasync` of the WAL made off the writer thread, and the writer's
//! connections stop syncing their own commits.

use std::sync::atomic::Ordering;

use crate::tests::{hold, insert_native, insert_x, stored, writer_with, writer_with_durability};

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

#[tokio::test]
async fn after_a_failed_sync_the_writer_answers_errors_and_writes_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    let dir = tempfile::tempdir().unwrap();
    // The first sync fails; any later one would succeed.
    let calls = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(true));
    let sync: crate::writer::SyncFn = {
        let (calls, failing) = (calls.clone(), failing.clone());
        Box::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            if failing.swap(false, Ordering::SeqCst) {
                Err(std::io::Error::other("EIO"))
            } else {
                Ok(())
            }
        })
    };
    let (w, counters, opts, _) =
        writer_with_durability(&dir, crate::writer::Durability::SyncWith(sync)).await;
    assert!(counters.sync_thread.load(Ordering::SeqCst));

    // Committed, but its sync failed: an error, and not a transient one.
    let first = insert_native(&w, Some(1), false).await.unwrap_err();
    assert!(first.to_string().contains("could not be synced"), "{first}");
    assert!(!first.is_transient());
    // From now on nothing runs: the ops are refused without writing.
    let native = insert_native(&w, Some(2), false).await.unwrap_err();
    let sqlx = insert_x(&w, 3, false).await.unwrap_err();
    for e in [&native, &sqlx] {
        assert!(e.to_string().contains("could not be synced"), "{e}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no sync after the failure");
    assert_eq!(counters.syncs.load(Ordering::SeqCst), 0);
    // The first row is there (visible, never acknowledged); no other.
    assert_eq!(stored(&opts).await, vec![1]);
}

/// A commit's callbacks run right after it, before its sync returns and
/// its callers are answered; a rolled-back operation's never run.
#[tokio::test]
async fn commit_callbacks_run_before_the_sync_and_only_for_kept_ops() {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    // Syncs wait until the gate opens.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let sync: crate::writer::SyncFn = {
        let gate = gate.clone();
        Box::new(move || {
            let (open, cv) = &*gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            Ok(())
        })
    };
    let (w, counters, opts, _) =
        writer_with_durability(&dir, crate::writer::Durability::SyncWith(sync)).await;

    // Both operations queue behind a held writer, so they share a batch
    // (checked below: a savepoint is rolled back, not the transaction).
    let release = hold(&w).await;
    let batches = counters.batches.load(Ordering::SeqCst);
    let (kept_tx, kept_rx) = tokio::sync::oneshot::channel::<()>();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
    let op = |x: i64, fail: bool, tx: tokio::sync::oneshot::Sender<()>| {
        let w = w.clone();
        tokio::spawn(async move {
            w.write_native(false, move |conn, fx| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
                    .map_err(crate::error::map_native)?;
                fx.when_committed(Box::new(move || {
                    let _ = tx.send(());
                }));
                if fail {
                    return Err(rota_driver::DriverError::Database("after its write".into()));
                }
                Ok(())
            })
            .await
        })
    };
    let kept = op(1, false, kept_tx);
    let failed = op(2, true, failed_tx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();

    tokio::time::timeout(Duration::from_secs(10), kept_rx)
        .await
        .expect("the kept operation's callback ran while its sync waited")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!kept.is_finished(), "answered before its sync");

    let (open, cv) = &*gate;
    *open.lock().unwrap() = true;
    cv.notify_all();
    kept.await.unwrap().unwrap();
    failed.await.unwrap().unwrap_err();
    assert!(
        failed_rx.await.is_err(),
        "a rolled-back operation's callback never runs"
    );
    assert_eq!(stored(&opts).await, vec![1]);
    assert_eq!(
        counters.batches.load(Ordering::SeqCst) - batches,
        1,
        "both operations ran in one batch"
    );
}

/// Without the sync thread a commit answers at once; its callbacks have
/// run by then, in autocommit and in a batch.
#[tokio::test]
async fn without_the_sync_thread_commit_callbacks_run_before_the_answer() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let dir = tempfile::tempdir().unwrap();
    let (w, counters, _, _) = writer_with(&dir, false).await;
    assert!(!counters.sync_thread.load(Ordering::SeqCst));
    for (x, atomic) in [(1, true), (2, false)] {
        let ran = Arc::new(AtomicBool::new(false));
        let seen = ran.clone();
        w.write_native(atomic, move |conn, fx| {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
                .map_err(crate::error::map_native)?;
            fx.when_committed(Box::new(move || {
                // Slow, so that an answer sent first would be seen first.
                std::thread::sleep(std::time::Duration::from_millis(20));
                seen.store(true, Ordering::SeqCst);
            }));
            Ok(())
        })
        .await
        .unwrap();
        assert!(
            ran.load(Ordering::SeqCst),
            "atomic {atomic}: ran before the answer"
        );
    }
}

/// The writer's native connection keeps temporary data, its sub-journal
/// included, in memory (`temp_store = MEMORY`, 2): on a file, every claim
/// or finish past 64 KiB of changed pages wrote them out.
#[tokio::test]
async fn the_native_writer_keeps_its_sub_journal_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _, _) = writer_with(&dir, true).await;
    let temp_store: i64 = w
        .write_native(false, |conn, _| {
            conn.query_row("PRAGMA temp_store", [], |r| r.get(0))
                .map_err(crate::error::map_native)
        })
        .await
        .unwrap();
    assert_eq!(temp_store, 2);
}
