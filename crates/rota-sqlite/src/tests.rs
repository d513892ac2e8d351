//! Unit tests that need the crate's internals: the writer's batching and
//! failure isolation, the query plans of the hot statements, and the
//! triggers of migration 0003.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Row};
use tokio::sync::broadcast;

use crate::options::{SqliteOptions, connect_options_with};
use crate::writer::{self, Counters, WriterHandle};
use crate::{api_keys, executions, insert, jobs, migrate, nodes, runs, schedules, webhooks};

pub(crate) async fn connection(
    dir: &tempfile::TempDir,
) -> (SqliteConnection, sqlx::sqlite::SqliteConnectOptions) {
    let path = dir.path().join("unit.db");
    let opts = connect_options_with(path.to_str().unwrap(), &SqliteOptions::default()).unwrap();
    let mut conn = opts.connect().await.unwrap();
    migrate::migrate(&mut conn).await.unwrap();
    (conn, opts)
}

/// A writer-style native connection to the file of `opts`, default pragmas.
pub(crate) fn native(opts: &sqlx::sqlite::SqliteConnectOptions) -> rusqlite::Connection {
    let options = SqliteOptions::default();
    writer::open_native(opts, options.synchronous.as_str(), options.busy_timeout).unwrap()
}

async fn writer(
    dir: &tempfile::TempDir,
) -> (
    WriterHandle,
    Arc<Counters>,
    sqlx::sqlite::SqliteConnectOptions,
) {
    let (w, counters, opts, _) = writer_with_wake(dir).await;
    (w, counters, opts)
}

async fn writer_with_wake(
    dir: &tempfile::TempDir,
) -> (
    WriterHandle,
    Arc<Counters>,
    sqlx::sqlite::SqliteConnectOptions,
    broadcast::Sender<rota_driver::Wakeup>,
) {
    writer_with(dir, true).await
}

/// A writer on a migrated file with a table `t (x)`; its acks follow a
/// sync by the sync thread when `sync_off_thread` is set, as the driver's
/// (default `synchronous = FULL`) do.
pub(crate) async fn writer_with(
    dir: &tempfile::TempDir,
    sync_off_thread: bool,
) -> (
    WriterHandle,
    Arc<Counters>,
    sqlx::sqlite::SqliteConnectOptions,
    broadcast::Sender<rota_driver::Wakeup>,
) {
    let durability = if sync_off_thread {
        writer::Durability::SyncThread
    } else {
        writer::Durability::OwnCommits
    };
    writer_with_durability(dir, durability).await
}

/// A writer on a migrated file with a table `t (x)`, made durable as
/// `durability` says.
pub(crate) async fn writer_with_durability(
    dir: &tempfile::TempDir,
    durability: writer::Durability,
) -> (
    WriterHandle,
    Arc<Counters>,
    sqlx::sqlite::SqliteConnectOptions,
    broadcast::Sender<rota_driver::Wakeup>,
) {
    let (mut conn, opts) = connection(dir).await;
    sqlx::raw_sql("CREATE TABLE t (x INTEGER NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    let counters = Arc::new(Counters::default());
    let native = native(&opts);
    let wake = broadcast::channel(64).0;
    let handle = writer::spawn(
        conn,
        native,
        writer::WriterSetup {
            connect: opts.clone(),
            max_batch: 256,
            queue: 64,
            counters: counters.clone(),
            wake: wake.clone(),
            parked: Arc::default(),
            durability,
        },
    )
    .unwrap();
    (handle, counters, opts, wake)
}

/// Keeps the writer thread busy until the returned sender fires (or
/// drops), so that operations sent meanwhile queue up and share its next
/// batch.
pub(crate) async fn hold(w: &WriterHandle) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let w = w.clone();
    tokio::spawn(async move {
        w.alone(move |_, _| {
            Box::pin(async move {
                let _ = started.send(());
                // The writer thread is not a runtime worker: blocking it
                // here holds back only the writer.
                let _ = held.recv();
                Ok(())
            })
        })
        .await
    });
    running.await.unwrap();
    release
}

/// A native operation inserting `x` into `t`, failing after its write when
/// `fail` is set.
pub(crate) fn insert_native(
    w: &WriterHandle,
    x: Option<i64>,
    fail: bool,
) -> impl Future<Output = rota_driver::Result<()>> + '_ {
    w.write_native(false, move |conn, fx| {
        conn.execute("INSERT INTO t (x) VALUES (?)", [x])
            .map_err(crate::error::map_native)?;
        if fail {
            return Err(rota_driver::DriverError::Conflict("refused".to_owned()));
        }
        fx.wake("native");
        Ok(())
    })
}

pub(crate) fn insert_x(
    w: &WriterHandle,
    x: i64,
    fail: bool,
) -> impl Future<Output = rota_driver::Result<i64>> + '_ {
    w.write(move |conn, _| {
        Box::pin(async move {
            sqlx::query("INSERT INTO t (x) VALUES (?)")
                .bind(x)
                .execute(&mut *conn)
                .await
                .map_err(crate::error::map_sqlx)?;
            if fail {
                return Err(rota_driver::DriverError::Conflict(format!(
                    "op {x} refused"
                )));
            }
            Ok(x)
        })
    })
}

pub(crate) async fn stored(opts: &sqlx::sqlite::SqliteConnectOptions) -> Vec<i64> {
    let mut c = opts.connect().await.unwrap();
    sqlx::query_scalar("SELECT x FROM t ORDER BY x")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_op_rolls_back_alone_and_the_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts) = writer(&dir).await;
    let release = hold(&w).await;
    let (a, b, c, _) = tokio::join!(
        insert_x(&w, 1, false),
        insert_x(&w, 2, true),
        insert_x(&w, 3, false),
        async { release.send(()) }
    );
    assert_eq!(a.unwrap(), 1);
    assert!(matches!(b, Err(rota_driver::DriverError::Conflict(m)) if m == "op 2 refused"));
    assert_eq!(c.unwrap(), 3);
    assert_eq!(
        counters.batches.load(Ordering::SeqCst),
        1,
        "one commit for three callers"
    );
    assert_eq!(counters.ops.load(Ordering::SeqCst), 3);
    assert_eq!(
        stored(&opts).await,
        vec![1, 3],
        "only the failed op's write is undone"
    );
}

fn insert_atomic(
    w: &WriterHandle,
    x: Option<i64>,
) -> impl Future<Output = rota_driver::Result<()>> + '_ {
    w.write_atomic(true, move |conn, fx| {
        Box::pin(async move {
            sqlx::query("INSERT INTO t (x) VALUES (?)")
                .bind(x)
                .execute(&mut *conn)
                .await
                .map_err(crate::error::map_sqlx)?;
            fx.wake("q");
            Ok(())
        })
    })
}

#[tokio::test]
async fn a_lone_atomic_op_commits_by_itself_and_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts) = writer(&dir).await;
    insert_atomic(&w, Some(5)).await.unwrap();
    // NOT NULL violated: the statement undoes itself, the caller gets it.
    assert!(insert_atomic(&w, None).await.is_err());
    insert_atomic(&w, Some(6)).await.unwrap();
    assert_eq!(stored(&opts).await, vec![5, 6]);
    assert_eq!(counters.batches.load(Ordering::SeqCst), 2);
    assert_eq!(
        counters.commits_started.load(Ordering::SeqCst),
        counters.commits_finished.load(Ordering::SeqCst),
        "autocommit statements count as commits for the wake-up watcher"
    );
    // Queued together, atomic ops share one group-commit transaction.
    let release = hold(&w).await;
    let (a, b, _) = tokio::join!(
        insert_atomic(&w, Some(7)),
        insert_atomic(&w, Some(8)),
        async { release.send(()) }
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(counters.batches.load(Ordering::SeqCst), 3);
    assert_eq!(stored(&opts).await, vec![5, 6, 7, 8]);
}

#[tokio::test]
async fn native_and_sqlx_ops_of_one_batch_commit_on_their_own_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (w, counters, opts) = writer(&dir).await;
    let release = hold(&w).await;
    let (a, b, c, d, _) = tokio::join!(
        insert_native(&w, Some(1), false),
        insert_x(&w, 2, false),
        insert_native(&w, Some(3), true),
        insert_native(&w, None, false),
        async { release.send(()) }
    );
    a.unwrap();
    assert_eq!(b.unwrap(), 2);
    assert!(
        matches!(c, Err(rota_driver::DriverError::Conflict(_))),
        "{c:?}"
    );
    assert!(
        matches!(d, Err(rota_driver::DriverError::Database(_))),
        "NOT NULL violated: {d:?}"
    );
    assert_eq!(
        stored(&opts).await,
        vec![1, 2],
        "failed native ops are undone alone"
    );
    assert_eq!(
        counters.batches.load(Ordering::SeqCst),
        2,
        "one transaction per connection"
    );
    assert_eq!(counters.ops.load(Ordering::SeqCst), 4);
    // A lone native op commits by itself, and its failure is its own.
    insert_native(&w, Some(4), false).await.unwrap();
    assert!(insert_native(&w, Some(5), true).await.is_err());
    assert_eq!(stored(&opts).await, vec![1, 2, 4]);
}

#[tokio::test]
async fn a_panicking_native_op_is_an_error_and_the_writer_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, opts) = writer(&dir).await;
    let panicked: rota_driver::Result<()> = w
        .write_native(false, |conn, _| {
            conn.execute("INSERT INTO t (x) VALUES (7)", []).unwrap();
            panic!("boom");
        })
        .await;
    assert!(
        matches!(panicked, Err(rota_driver::DriverError::Database(_))),
        "{panicked:?}"
    );
    insert_native(&w, Some(8), false).await.unwrap();
    assert_eq!(
        stored(&opts).await,
        vec![8],
        "the panicking op's write is rolled back"
    );
}

#[tokio::test]
async fn a_panicking_op_is_an_error_and_the_writer_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, opts) = writer(&dir).await;
    let panicked = w
        .write(|conn, _| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (x) VALUES (7)")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                panic!("boom");
                #[allow(unreachable_code)]
                Ok(())
            })
        })
        .await;
    assert!(
        matches!(panicked, Err(rota_driver::DriverError::Database(_))),
        "{panicked:?}"
    );
    assert_eq!(
        insert_x(&w, 8, false).await.unwrap(),
        8,
        "the writer still serves"
    );
    assert_eq!(
        stored(&opts).await,
        vec![8],
        "the panicking op's write is rolled back"
    );
}

#[tokio::test]
async fn callers_get_unavailable_when_the_writer_is_gone() {
    let w = writer::detached();
    assert!(w.is_closed());
    match insert_x(&w, 1, false).await {
        Err(e @ rota_driver::DriverError::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

async fn plan(conn: &mut SqliteConnection, sql: &str) -> String {
    let rows = sqlx::raw_sql(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String, _>("detail").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that the listing for each of `listings` reads `index`.
async fn assert_listings_use(listings: Vec<rota_driver::JobListParams>, index: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    for params in listings {
        let query = jobs::list_query(&params).unwrap().unwrap();
        let sql = query.sql();
        let sql = sql.as_str();
        let plan = plan(&mut conn, sql).await;
        assert!(plan.contains(index), "{sql}\n--- plan ---\n{plan}");
    }
}

#[tokio::test]
async fn listing_failures_uses_the_failed_index() {
    let listings = [
        vec![rota_core::JobState::Failed],
        vec![rota_core::JobState::Canceled, rota_core::JobState::Failed],
    ]
    .into_iter()
    .map(|states| rota_driver::JobListParams {
        states,
        limit: 50,
        ..Default::default()
    })
    .collect();
    assert_listings_use(listings, "rota_jobs_failed_idx").await;
}

#[tokio::test]
async fn listing_running_jobs_uses_the_lease_index() {
    let listings = vec![
        rota_driver::JobListParams {
            states: vec![rota_core::JobState::Running],
            limit: 1,
            ..Default::default()
        },
        rota_driver::JobListParams {
            states: vec![rota_core::JobState::Running],
            queue: Some("q".into()),
            kind: Some("k".into()),
            before_id: Some(10),
            ids: Some(vec![1, 2]),
            limit: 50,
            ..Default::default()
        },
    ];
    assert_listings_use(listings, "rota_jobs_lease_idx").await;
}

#[tokio::test]
async fn listing_by_kind_scans_the_primary_key_backwards() {
    // Migration 0005 dropped the (kind, id) index, which cost every insert
    // an entry; a kind listing walks the newest rows instead.
    let listings = vec![rota_driver::JobListParams {
        kind: Some("email".into()),
        limit: 50,
        ..Default::default()
    }];
    assert_listings_use(listings, "SCAN rota_jobs").await;
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'rota_jobs_kind_idx'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(left, 0, "migration 0005 drops the kind index");
}

#[tokio::test]
async fn hot_statements_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    let cases: Vec<(String, &str)> = vec![
        (runs::CLAIM_SELECT_SQL.to_owned(), "rota_jobs_claim_idx"),
        (runs::CLAIM_UPDATE_SQL.to_owned(), "INTEGER PRIMARY KEY"),
        (runs::PROMOTE_PICK_SQL.to_owned(), "rota_jobs_promote_idx"),
        (runs::EXPIRED_SQL.to_owned(), "rota_jobs_lease_idx"),
        (jobs::PRUNE_AGE_SQL.to_owned(), "rota_jobs_finished_idx"),
        (jobs::PRUNE_KEEP_SQL.to_owned(), "rota_jobs_finished_idx"),
        (insert::HOLDER_SQL.to_owned(), "rota_jobs_unique_key_idx"),
        (runs::finish_sql(3), "INTEGER PRIMARY KEY"),
        (runs::succeed_sql(3), "INTEGER PRIMARY KEY"),
        (runs::heartbeat_sql(3), "INTEGER PRIMARY KEY"),
        (nodes::PRUNE_SQL.to_owned(), "rota_nodes_heartbeat_idx"),
        (api_keys::LIST_SQL.to_owned(), "rota_api_keys_created_idx"),
    ];
    for (sql, index) in cases {
        let p = plan(&mut conn, &sql).await;
        assert!(
            p.contains(index),
            "expected {index} in the plan of\n{sql}\n--- plan ---\n{p}"
        );
        assert!(
            !p.lines()
                .any(|l| l == "SCAN rota_jobs" || l == "SCAN j" || l.contains("TEMP B-TREE")),
            "full scan or sort in the plan of\n{sql}\n--- plan ---\n{p}"
        );
    }
}

#[tokio::test]
async fn execution_schedule_and_webhook_statements_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    // (statement, index, whether a sort of the selected rows is fine)
    let cases: Vec<(&str, &str, bool)> = vec![
        (
            executions::STOP_WAITING_SQL,
            "rota_jobs_execution_idx",
            false,
        ),
        (
            executions::STOP_RUNNING_SQL,
            "rota_jobs_execution_idx",
            false,
        ),
        (
            executions::RUNNING_IDS_SQL,
            "rota_jobs_execution_idx",
            false,
        ),
        (executions::PRUNE_JOBS_SQL, "rota_jobs_execution_idx", false),
        (executions::GET_SQL, "INTEGER PRIMARY KEY", false),
        (schedules::DUE_SQL, "rota_schedules_due_idx", false),
        (schedules::UNFINISHED_SQL, "rota_jobs_schedule_idx", false),
        (schedules::FIRES_SQL, "rota_jobs_schedule_fire_idx", true),
        (schedules::FIRES_SQL, "PRIMARY KEY", true),
        (schedules::ADVANCE_SQL, "INTEGER PRIMARY KEY", false),
        (webhooks::DUE_SQL, "rota_deliveries_due_idx", true),
        (
            webhooks::LIST_DELIVERIES_SQL,
            "rota_deliveries_webhook_idx",
            false,
        ),
        (webhooks::EVENTS_CONSUME_SQL, "INTEGER PRIMARY KEY", false),
        // What the job triggers run against an execution.
        (
            "UPDATE rota_executions SET running = running + 1 WHERE id = ?",
            "INTEGER PRIMARY KEY",
            false,
        ),
    ];
    for (sql, index, sort_ok) in cases {
        let p = plan(&mut conn, sql).await;
        assert!(
            p.contains(index),
            "expected {index} in the plan of\n{sql}\n--- plan ---\n{p}"
        );
        assert!(
            !p.lines().any(|l| {
                [
                    "rota_jobs",
                    "j",
                    "rota_deliveries",
                    "d",
                    "rota_schedules",
                    "rota_executions",
                ]
                .iter()
                .any(|t| l == format!("SCAN {t}") || l.starts_with(&format!("SCAN {t} ")))
            }),
            "full scan in the plan of\n{sql}\n--- plan ---\n{p}"
        );
        assert!(
            sort_ok || !p.contains("TEMP B-TREE"),
            "sort in the plan of\n{sql}\n--- plan ---\n{p}"
        );
    }
}

/// The job triggers: deletes have one, skipping jobs without an execution
/// (the hot path); inserts and updates have none (the driver writes their
/// effects, `insert_effects` and `change_effects`), and nothing else is
/// attached to the job table.
#[tokio::test]
async fn the_job_table_has_one_cheap_trigger_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    let rows = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'rota_jobs' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
    assert_eq!(names, vec!["rota_jobs_after_delete"]);
    for r in &rows {
        let sql: String = r.get("sql");
        let when = &sql[sql.find("WHEN").unwrap()..sql.find("BEGIN").unwrap()];
        assert!(
            when.contains("execution_id IS NOT NULL"),
            "{when} must skip jobs without an execution"
        );
    }
    // A plain job with no webhook: the triggers write nothing.
    sqlx::raw_sql(
        "INSERT INTO rota_jobs (kind, queue, state, max_attempts, run_at, created_at) \
         VALUES ('k', 'q', 'available', 1, 0, 0); \
         UPDATE rota_jobs SET state = 'running'; DELETE FROM rota_jobs;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let written: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM rota_events) + (SELECT COUNT(*) FROM rota_executions)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(written, 0);
}

/// A bound LIMIT makes SQLite re-prepare a statement on every new binding
/// (it plans with the value); the hot statements write `? + 0` instead. A
/// re-prepared claim cost ~0.4 ms, most of an idle worker's pick-up time.
#[tokio::test]
async fn hot_statements_are_not_re_prepared_per_binding() {
    let dir = tempfile::tempdir().unwrap();
    let (_conn, opts) = connection(&dir).await;
    let native = native(&opts);
    let cases: [(&str, &str, usize); 3] = [
        (runs::CLAIM_SELECT_SQL, "claim", 4),
        (runs::PROMOTE_PICK_SQL, "promote", 2),
        (runs::EXPIRED_SQL, "expired", 2),
    ];
    for (sql, name, params) in cases {
        let mut st = native.prepare(sql).unwrap();
        for i in 0..3_i64 {
            // Integers fit every parameter of these statements.
            let values: Vec<rusqlite::types::Value> = (0..params)
                .map(|p| rusqlite::types::Value::Integer(i * 10 + p as i64 + 1))
                .collect();
            let mut rows = st.query(rusqlite::params_from_iter(values)).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        assert_eq!(
            st.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{name} was re-prepared"
        );
    }
}

/// `job_from_row` decodes by position: statements it reads must return
/// exactly the columns of `job_columns!()`, in that order.
#[tokio::test]
async fn job_statements_return_the_decoded_columns_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_conn, opts) = connection(&dir).await;
    let native = native(&opts);
    let expected: Vec<&str> = crate::row::JOB_COLUMNS.split(", ").collect();
    assert_eq!(expected.len(), crate::row::JOB_COLUMN_COUNT);
    assert_eq!(expected[crate::row::FINISHED_AT_COLUMN], "finished_at");
    assert_eq!(expected[crate::row::EXECUTION_ID_COLUMN], "execution_id");
    for sql in [runs::CLAIM_SELECT_SQL, runs::EXPIRED_SQL] {
        let st = native.prepare(sql).unwrap();
        assert_eq!(st.column_names(), expected, "{sql}");
    }
}

/// Whether a "wake every queue" arrives within `wait`.
async fn woke_all(rx: &mut broadcast::Receiver<rota_driver::Wakeup>, wait: Duration) -> bool {
    tokio::time::timeout(wait, async {
        loop {
            match rx.recv().await {
                Ok(w) if w.queue.is_none() => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// The writer's probe: a commit by either of its own connections is not
/// taken for a foreign one (that would wake every queue), a commit by
/// another connection is.
#[tokio::test]
async fn the_probe_tells_foreign_commits_from_the_writers_own() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, opts, wake) = writer_with_wake(&dir).await;
    let mut rx = wake.subscribe();
    let quiet = Duration::from_millis(200);

    insert_native(&w, Some(1), false).await.unwrap();
    w.nudge();
    assert!(
        !woke_all(&mut rx, quiet).await,
        "native commit taken as foreign"
    );

    insert_x(&w, 2, false).await.unwrap();
    w.nudge();
    assert!(
        !woke_all(&mut rx, quiet).await,
        "sqlx commit taken as foreign"
    );

    let mut other = opts.connect().await.unwrap();
    sqlx::query("INSERT INTO t (x) VALUES (3)")
        .execute(&mut other)
        .await
        .unwrap();
    w.nudge();
    assert!(
        woke_all(&mut rx, Duration::from_secs(5)).await,
        "a foreign commit wakes every queue"
    );
}
