//! The insert statements' two shapes and their ids: a shared-columns
//! statement stores exactly what the general one does, and ids taken from
//! the last insert rowid are the rows' own.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::JobInsertParams;
use rusqlite::types::Value;

use super::*;
use crate::tests::{connection, native};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

pub(crate) fn spec(i: usize) -> JobInsertParams {
    JobInsertParams {
        kind: "mail".to_owned(),
        args: serde_json::json!({ "i": i }),
        queue: "q".to_owned(),
        priority: 2,
        state: JobState::Available,
        run_at: at(i as i64),
        created_at: at(0),
        max_attempts: 7,
        timeout: Some(Duration::from_millis(1500)),
        unique_key: None,
        labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
        attributes: BTreeMap::from([("team".to_owned(), "x".to_owned())]),
        trace_context: Some(format!("00-{i:032x}-{i:016x}-01")),
    }
}

#[test]
fn a_chunk_shares_columns_only_when_its_jobs_agree_on_them() {
    type Change = fn(&mut JobInsertParams);
    let shared: &[(&str, Change)] = &[
        ("args", |p| p.args = serde_json::json!("other")),
        ("run_at", |p| p.run_at = at(99)),
        ("created_at", |p| p.created_at = at(98)),
        ("unique_key", |p| p.unique_key = Some("k".to_owned())),
        ("trace_context", |p| p.trace_context = None),
    ];
    let general: &[(&str, Change)] = &[
        ("kind", |p| p.kind = "other".to_owned()),
        ("queue", |p| p.queue = "other".to_owned()),
        ("state", |p| p.state = JobState::Scheduled),
        ("priority", |p| p.priority = 3),
        ("max_attempts", |p| p.max_attempts = 1),
        ("timeout", |p| p.timeout = None),
        ("labels", |p| p.labels.clear()),
        ("attributes", |p| {
            p.attributes.insert("more".to_owned(), "y".to_owned());
        }),
    ];
    for (expected, cases) in [(true, shared), (false, general)] {
        for (field, change) in cases {
            let mut chunk = vec![spec(0), spec(1), spec(2)];
            change(&mut chunk[1]);
            assert_eq!(shares_columns(&chunk), expected, "{field}");
        }
    }
    assert!(!shares_columns(&[spec(0)]), "one job shares nothing");
    assert!(!shares_columns(&[]));
}

/// Every stored column of every job, in id order.
fn rows(conn: &rusqlite::Connection) -> Vec<Vec<Value>> {
    let mut st = conn.prepare("SELECT * FROM rota_jobs ORDER BY id").unwrap();
    let n = st.column_count();
    st.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn both_shapes_store_the_same_rows_with_and_without_an_origin() {
    let chunk = [spec(0), spec(1), spec(2)];
    for origin in [
        JobOrigin::default(),
        JobOrigin {
            execution_id: Some(5),
            schedule_id: Some(7),
            fire_at: Some(9),
        },
    ] {
        let mut stored = Vec::new();
        for (shape, returning) in [(Shape::General, true), (Shape::Shared, false)] {
            let dir = tempfile::tempdir().unwrap();
            let (_, opts) = connection(&dir).await;
            let conn = native(&opts);
            let sql = insert_sql(chunk.len(), origin, shape, returning);
            let values = insert_params(&chunk, origin, shape).unwrap();
            let mut st = conn.prepare(&sql).unwrap();
            let mut out = st.query(rusqlite::params_from_iter(values.iter())).unwrap();
            while out.next().unwrap().is_some() {}
            drop(out);
            drop(st);
            stored.push(rows(&conn));
        }
        assert_eq!(stored[0].len(), 3);
        assert_eq!(stored[0], stored[1], "{origin:?}");
    }
}

/// `(id, args.i)` of every stored job.
fn stored_ids(conn: &rusqlite::Connection) -> Vec<(i64, i64)> {
    let mut st = conn
        .prepare("SELECT id, args ->> 'i' FROM rota_jobs ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn ids_without_returning_are_the_inserted_rows_also_after_a_gap() {
    for on_sqlx in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (mut sqlx_conn, opts) = connection(&dir).await;
        let conn = native(&opts);
        // A deleted last row: AUTOINCREMENT does not hand its id out again.
        let first = InsertPlan::new(vec![spec(1000), spec(1001)], JobOrigin::default()).unwrap();
        insert_many_native(&conn, first).unwrap();
        conn.execute("DELETE FROM rota_jobs WHERE id = 2", [])
            .unwrap();
        // Two chunks, both shared and without unique keys.
        let specs: Vec<_> = (0..INSERT_CHUNK + 37).map(spec).collect();
        let inserted = if on_sqlx {
            insert_many(&mut sqlx_conn, specs, JobOrigin::default())
                .await
                .unwrap()
        } else {
            let plan = InsertPlan::new(specs, JobOrigin::default()).unwrap();
            assert!(plan.statements.iter().all(|s| !s.returning));
            insert_many_native(&conn, plan).unwrap().results().unwrap()
        };
        let answered: Vec<(i64, i64)> = inserted
            .iter()
            .map(|j| (j.job.id, j.job.args["i"].as_i64().unwrap()))
            .collect();
        let stored: Vec<(i64, i64)> = stored_ids(&conn).into_iter().skip(1).collect();
        assert_eq!(answered, stored, "sqlx: {on_sqlx}");
        assert_eq!(answered[0].0, 3, "after the deleted id 2");
    }
}

#[tokio::test]
async fn a_chunk_with_a_unique_key_returns_which_jobs_were_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let (_, opts) = connection(&dir).await;
    let conn = native(&opts);
    let keyed = |i: usize| JobInsertParams {
        unique_key: Some("k".to_owned()),
        ..spec(i)
    };
    let plan = InsertPlan::new(
        vec![spec(0), keyed(1), spec(2), keyed(3)],
        JobOrigin::default(),
    )
    .unwrap();
    assert!(plan.statements.iter().all(|s| s.returning));
    let out = insert_many_native(&conn, plan).unwrap().results().unwrap();
    let inserted: Vec<bool> = out.iter().map(|j| j.inserted).collect();
    assert_eq!(inserted, [true, true, true, false]);
    // The duplicate answers with the holder.
    assert_eq!(out[3].job.id, out[1].job.id);
    let stored: Vec<i64> = stored_ids(&conn).iter().map(|(_, i)| *i).collect();
    assert_eq!(stored, [0, 1, 2]);
}

#[tokio::test]
async fn ids_without_returning_stay_right_while_triggers_insert_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (_, opts) = connection(&dir).await;
    let conn = native(&opts);
    // A webhook makes the insert write an event per job, and an execution
    // makes it count the jobs: both into AUTOINCREMENT tables.
    conn.execute_batch(
        "INSERT INTO rota_webhooks (url, secret, created_at) VALUES ('http://127.0.0.1:9/', 's', 0);
         INSERT INTO rota_executions (owner_kind, owner_id, trigger, created_at, updated_at)
             VALUES ('k', 'o', 'manual', 0, 0);",
    )
    .unwrap();
    let origin = JobOrigin {
        execution_id: Some(1),
        ..JobOrigin::default()
    };
    let specs: Vec<_> = (0..INSERT_CHUNK + 3).map(spec).collect();
    let plan = InsertPlan::new(specs, origin).unwrap();
    assert!(plan.statements.iter().all(|s| !s.returning));
    let inserted = insert_many_native(&conn, plan).unwrap().results().unwrap();
    let answered: Vec<(i64, i64)> = inserted
        .iter()
        .map(|j| (j.job.id, j.job.args["i"].as_i64().unwrap()))
        .collect();
    assert_eq!(answered, stored_ids(&conn));
    let (events, available): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM rota_events WHERE entity = 'job'), \
                    (SELECT available FROM rota_executions WHERE id = 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((events, available), (503, 503));
}
