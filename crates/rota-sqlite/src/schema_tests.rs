//! Unit tests of the job table's schema as migration 0006 left it: no
//! constant `IN` list that SQLite would evaluate through a temporary B-tree
//! on every insert, claim or finish, with the same meaning as before.

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Row};

use crate::migrate::{self, MIGRATIONS};
use crate::options::{SqliteOptions, connect_options_with};
use crate::tests::connection;

/// A connection to a new, unmigrated database in `dir`.
async fn open(dir: &tempfile::TempDir) -> SqliteConnection {
    let path = dir.path().join("schema.db");
    let opts = connect_options_with(path.to_str().unwrap(), &SqliteOptions::default()).unwrap();
    opts.connect().await.unwrap()
}

/// The `IN (...)` lists of `sql` with three or more items.
fn long_in_lists(sql: &str) -> Vec<String> {
    let upper = sql.to_ascii_uppercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find(" IN (") {
        let start = from + at;
        let end = upper[start..].find(')').map_or(upper.len(), |e| start + e);
        let list = &sql[start..end];
        if list.matches(',').count() >= 2 {
            found.push(list.to_owned());
        }
        from = end;
    }
    found
}

#[test]
fn long_in_lists_finds_lists_of_three_or_more() {
    assert!(long_in_lists("state IN ('a', 'b')").is_empty());
    assert_eq!(long_in_lists("x AND state IN ('a', 'b', 'c')").len(), 1);
    assert!(long_in_lists("kind IN (SELECT value FROM json_each(?))").is_empty());
}

/// Everything SQLite evaluates per row of the job table: its CHECK, the
/// predicates of its partial indexes and its triggers.
#[tokio::test]
async fn the_job_table_evaluates_no_constant_list_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, _) = connection(&dir).await;
    let rows = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'rota_jobs' AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(rows.len() > 5, "the table, its indexes and triggers");
    for r in &rows {
        let (name, sql): (String, String) = (r.get("name"), r.get("sql"));
        assert!(
            long_in_lists(&sql).is_empty(),
            "{name} evaluates a constant list per row: {:?}",
            long_in_lists(&sql)
        );
    }
}

/// The rewritten CHECK still admits exactly the seven states, on the
/// connection that migrated (its schema reloaded) and on a fresh one.
#[tokio::test]
async fn the_state_check_still_admits_exactly_the_job_states() {
    let dir = tempfile::tempdir().unwrap();
    let (mut migrating, opts) = connection(&dir).await;
    let mut fresh = opts.connect().await.unwrap();
    for conn in [&mut migrating, &mut fresh] {
        for state in [
            "scheduled",
            "available",
            "running",
            "retrying",
            "succeeded",
            "failed",
            "canceled",
        ] {
            sqlx::query(
                "INSERT INTO rota_jobs (kind, queue, state, max_attempts, run_at, created_at) \
                 VALUES ('k', 'q', ?, 1, 0, 0)",
            )
            .bind(state)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        let bad_insert = sqlx::query(
            "INSERT INTO rota_jobs (kind, queue, state, max_attempts, run_at, created_at) \
             VALUES ('k', 'q', 'Available', 1, 0, 0)",
        )
        .execute(&mut *conn)
        .await
        .unwrap_err();
        assert!(bad_insert.to_string().contains("CHECK"), "{bad_insert}");
        let bad_update = sqlx::query("UPDATE rota_jobs SET state = 'done'")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert!(bad_update.to_string().contains("CHECK"), "{bad_update}");
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM rota_jobs")
        .fetch_one(&mut fresh)
        .await
        .unwrap();
    assert_eq!(kept, 14);
}

/// A database of migration 0005 with jobs in it: after 0006 the finished
/// index holds exactly the prunable rows, and a unique key is still held
/// by its unfinished job only.
#[tokio::test]
async fn migration_6_keeps_the_rows_and_what_the_indexes_mean() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open(&dir).await;
    sqlx::raw_sql(
        "CREATE TABLE rota_migrations (version INTEGER PRIMARY KEY NOT NULL, \
         name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version <= 5) {
        sqlx::raw_sql(AssertSqlSafe(m.sql))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO rota_migrations VALUES (?, ?, 0)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO rota_executions (owner_kind, owner_id, trigger, created_at, updated_at) \
             VALUES ('o', '1', 'manual', 0, 0); \
         INSERT INTO rota_jobs (kind, queue, state, max_attempts, run_at, created_at, finished_at, \
             unique_key, execution_id) VALUES \
             ('k', 'q', 'succeeded', 1, 0, 0, 10, 'done', NULL), \
             ('k', 'q', 'failed', 1, 0, 0, 11, NULL, NULL), \
             ('k', 'q', 'canceled', 1, 0, 0, 12, NULL, 1), \
             ('k', 'q', 'available', 1, 0, 0, NULL, 'held', NULL), \
             ('k', 'q', 'running', 1, 0, 0, NULL, NULL, NULL);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    migrate::migrate(&mut conn).await.unwrap();

    let table: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'rota_jobs'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        table.contains("CHECK (state = 'available' OR state = 'running'"),
        "{table}"
    );
    let pruned: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM rota_jobs INDEXED BY rota_jobs_finished_idx \
         WHERE finished_at IS NOT NULL AND execution_id IS NULL ORDER BY finished_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(pruned, vec![1, 2], "finished jobs outside executions");
    let insert = "INSERT INTO rota_jobs (kind, queue, state, max_attempts, run_at, created_at, \
                  unique_key) VALUES ('k', 'q', 'available', 1, 0, 0, ?)";
    let held = sqlx::query(insert)
        .bind("held")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(held.to_string().contains("UNIQUE"), "{held}");
    sqlx::query(insert)
        .bind("done")
        .execute(&mut conn)
        .await
        .unwrap();
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(check, "ok");
}
