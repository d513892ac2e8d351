//! An insert and its outbox row commit together, on the writer (a lone
//! enqueue) and on a user's connection outside a transaction.

use rota_driver::{Driver, JobInsertParams};
use sqlx::{ConnectOptions, SqliteConnection};

use crate::{SqliteDriver, SqliteOptions};

/// Any valid job (the insert tests' own).
fn job() -> JobInsertParams {
    crate::insert::tests::spec(0)
}

/// A driver on a fresh file with one webhook (so every insert writes an
/// outbox row), and a connection of the user's own to it.
async fn setup(dir: &tempfile::TempDir) -> (SqliteDriver, SqliteConnection) {
    let path = dir.path().join("rota.db");
    let driver = SqliteDriver::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    let mut conn = crate::connect_options(path.to_str().unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO rota_webhooks (url, secret, created_at) VALUES ('http://127.0.0.1:9/', 's', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    (driver, conn)
}

/// Makes every outbox insert fail, standing in for any failure of the
/// statement that follows the job's insert.
async fn fail_outbox(conn: &mut SqliteConnection) {
    sqlx::raw_sql(
        "CREATE TRIGGER fail_outbox BEFORE INSERT ON rota_events \
         BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
}

async fn counts(conn: &mut SqliteConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM rota_jobs), \
                (SELECT count(*) FROM rota_events WHERE entity = 'job')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_lone_enqueue_whose_outbox_row_fails_leaves_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let (driver, mut conn) = setup(&dir).await;
    driver.job_insert_many(vec![job()]).await.unwrap();
    assert_eq!(counts(&mut conn).await, (1, 1));
    fail_outbox(&mut conn).await;
    let err = driver.job_insert_many(vec![job()]).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(counts(&mut conn).await, (1, 1), "nothing of it committed");
}

#[tokio::test]
async fn an_insert_on_a_connection_outside_a_transaction_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (_driver, mut conn) = setup(&dir).await;
    crate::job_insert_many_in(&mut conn, vec![job(), job()])
        .await
        .unwrap();
    assert_eq!(counts(&mut conn).await, (2, 2));
    fail_outbox(&mut conn).await;
    let err = crate::job_insert_many_in(&mut conn, vec![job()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(counts(&mut conn).await, (2, 2), "nothing of it committed");
    // The connection is usable, outside any transaction, afterwards.
    sqlx::raw_sql("DROP TRIGGER fail_outbox")
        .execute(&mut conn)
        .await
        .unwrap();
    crate::job_insert_many_in(&mut conn, vec![job()])
        .await
        .unwrap();
    assert_eq!(counts(&mut conn).await, (3, 3));
}
