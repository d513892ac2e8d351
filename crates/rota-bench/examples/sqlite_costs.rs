//! What Rota's SQLite statements cost, in CPU instructions, on a copy of a
//! migrated database with parts of the schema taken away or changed: a
//! deterministic measure for a machine whose timings drift by ±15 % within
//! minutes.
//!
//! ```sh
//! rota migrate --database sqlite:///tmp/schema.db up
//! cargo build --release -p rota-bench --example sqlite_costs
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/sqlite_costs /tmp/schema.db finished_idx bulk 20000
//! ```
//!
//! Arguments: the migrated file; the changes (comma-separated names from
//! [`PARTS`], or `none`); the workload (`single`: one-row inserts in
//! autocommit; `bulk`: 500-row inserts in one transaction, every column
//! bound per row; `shared`: the same as the driver runs a bulk load of one
//! kind, the columns all rows share bound once; `load`: as `bulk`, the base
//! of `process`; `process`: load, then claims of 1,000 and plain-success
//! finishes of 512, as the writer issues them; `claim`: the same without
//! the finishes); the job count. The
//! statements are the driver's own (`rota_sqlite::hot_sql`). Instructions
//! per job of `process` are its total minus that of `load` with the same
//! count, divided by the count. Single-row commit
//! times print as well, since `single` is what the disk decides.

use std::error::Error;
use std::time::Instant;

use rota_sqlite::hot_sql;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

/// Changes to the migrated schema, by name, and how.
const PARTS: &[(&str, &str)] = &[
    ("queue_idx", "DROP INDEX rota_jobs_queue_idx"),
    ("finished_idx", "DROP INDEX rota_jobs_finished_idx"),
    ("lease_idx", "DROP INDEX rota_jobs_lease_idx"),
    ("unique_idx", "DROP INDEX rota_jobs_unique_key_idx"),
    // Migration 0005's constant IN lists back, to measure what 0006 bought.
    (
        "in_lists",
        "PRAGMA writable_schema = ON; \
         UPDATE sqlite_master SET sql = replace(sql, \
             'CHECK (state = ''available'' OR state = ''running'' OR state = ''succeeded'' \
             OR state = ''scheduled'' OR state = ''retrying'' OR state = ''failed'' \
             OR state = ''canceled'')', \
             'CHECK (state IN (''scheduled'', ''available'', ''running'', ''retrying'', \
             ''succeeded'', ''failed'', ''canceled''))') \
         WHERE type = 'table' AND name = 'rota_jobs'; \
         PRAGMA writable_schema = RESET; \
         DROP INDEX rota_jobs_finished_idx; \
         CREATE INDEX rota_jobs_finished_idx ON rota_jobs (finished_at) \
             WHERE state IN ('succeeded', 'failed', 'canceled'); \
         DROP INDEX rota_jobs_unique_key_idx; \
         CREATE UNIQUE INDEX rota_jobs_unique_key_idx ON rota_jobs (unique_key) \
             WHERE unique_key IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'canceled');",
    ),
];

/// One job's insert parameters, as the driver binds them.
fn job(i: usize) -> Vec<Value> {
    let t = 1_000_000 + i as i64;
    vec![
        Value::Text("noop".into()),
        Value::Text("bench".into()),
        Value::Text("available".into()),
        Value::Integer(0),
        Value::Text(format!("{{\"i\":{i}}}")),
        Value::Integer(25),
        Value::Integer(t),
        Value::Integer(t),
        Value::Text("{}".into()),
        Value::Text("{}".into()),
        Value::Null,
        Value::Null,
        Value::Text("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    ]
}

/// Runs `sql` with `params`, stepping through every returned row.
fn run(c: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<i64>> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params_from_iter(params.iter()))?;
    let mut ids = Vec::new();
    while let Some(r) = rows.next()? {
        // Read every column, as the driver decodes every claimed one.
        for k in 0..r.as_ref().column_count() {
            r.get_ref(k)?;
        }
        ids.push(r.get(0)?);
    }
    Ok(ids)
}

fn load(c: &Connection, n: usize) -> rusqlite::Result<()> {
    let sql = hot_sql::insert(500);
    c.execute_batch("BEGIN IMMEDIATE")?;
    for k in 0..n / 500 {
        let params: Vec<Value> = (0..500).flat_map(|i| job(k * 500 + i)).collect();
        let ids = run(c, &sql, &params)?;
        outbox(c, &ids)?;
    }
    c.execute_batch("COMMIT")
}

/// The outbox statement the driver runs after each insert statement.
fn outbox(c: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    if let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) {
        c.prepare_cached(hot_sql::INSERT_EVENTS)?
            .execute([lo, hi])?;
    }
    Ok(())
}

/// `load` as the driver runs a bulk load of one kind: the columns every
/// row shares bound once per statement, no `RETURNING`.
fn load_shared(c: &Connection, n: usize) -> Result<(), Box<dyn Error>> {
    let sql = hot_sql::insert_shared(500);
    c.execute_batch("BEGIN IMMEDIATE")?;
    for k in 0..n / 500 {
        // kind, queue, state, priority, max_attempts, labels, attributes,
        // timeout; then per row args, run_at, created_at, unique_key,
        // trace context.
        let first = job(k * 500);
        let mut params: Vec<Value> = [0, 1, 2, 3, 5, 8, 9, 11]
            .iter()
            .map(|&c| first[c].clone())
            .collect();
        for i in 0..500 {
            let row = job(k * 500 + i);
            params.extend([4, 6, 7, 10, 12].iter().map(|&c| row[c].clone()));
        }
        let inserted = c
            .prepare_cached(&sql)?
            .execute(params_from_iter(params.iter()))?;
        if inserted != 500 {
            return Err(format!("{inserted} of 500 rows inserted").into());
        }
        let last = c.last_insert_rowid();
        outbox(c, &[last - 499, last])?;
    }
    c.execute_batch("COMMIT")?;
    Ok(())
}

/// The test the writer makes after each claim and finish statement before
/// writing outbox rows (there are none without a webhook).
fn webhooks(c: &Connection) -> Result<(), Box<dyn Error>> {
    let any: bool = c
        .prepare_cached(hot_sql::WEBHOOKS)?
        .query_row([], |r| r.get(0))?;
    if any {
        return Err("the costs are measured without webhooks".into());
    }
    Ok(())
}

fn process(c: &Connection, n: usize, finish_runs: bool) -> Result<(), Box<dyn Error>> {
    load(c, n)?;
    let finish = hot_sql::succeed(512);
    let mut now = 2_000_000_i64;
    loop {
        now += 1_000;
        // As the writer: the read and the update in one transaction.
        c.execute_batch("BEGIN IMMEDIATE")?;
        let choose = [
            Value::Text("bench".into()),
            Value::Text("{}".into()),
            Value::Integer(1_000),
            Value::Null,
        ];
        let ids = run(c, hot_sql::CLAIM_SELECT, &choose)?;
        if ids.is_empty() {
            c.execute_batch("COMMIT")?;
            return Ok(());
        }
        let list = format!(
            "[{}]",
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        );
        let mark = [
            Value::Integer(7),
            Value::Integer(now + 30_000_000),
            Value::Integer(now),
            Value::Text("node".into()),
            Value::Text(list),
        ];
        let marked = c
            .prepare_cached(hot_sql::CLAIM_UPDATE)?
            .execute(params_from_iter(mark.iter()))?;
        webhooks(c)?;
        if marked != ids.len() {
            return Err(format!("{marked} of {} claimed jobs marked", ids.len()).into());
        }
        c.execute_batch("COMMIT")?;
        if !finish_runs {
            continue;
        }
        c.execute_batch("BEGIN IMMEDIATE")?;
        for chunk in ids.chunks(512) {
            let mut params = Vec::with_capacity(5 * 512);
            for &id in chunk {
                params.extend([
                    Value::Integer(id),
                    Value::Integer(7),
                    Value::Integer(1),
                    Value::Integer(now + 500),
                    Value::Null,
                ]);
            }
            params.resize(5 * 512, Value::Null);
            // As the writer: in a savepoint, kept when every row changed.
            c.prepare_cached("SAVEPOINT quiet")?.execute([])?;
            let changed = c
                .prepare_cached(&finish)?
                .execute(params_from_iter(params.iter()))?;
            if changed != chunk.len() {
                return Err(format!("{changed} of {} runs finished", chunk.len()).into());
            }
            webhooks(c)?;
            c.prepare_cached("RELEASE quiet")?.execute([])?;
        }
        c.execute_batch("COMMIT")?;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, parts, mode, n] = args.as_slice() else {
        return Err(
            "usage: sqlite_costs MIGRATED.db PART,...|none single|bulk|shared|load|process|claim N"
                .into(),
        );
    };
    let n: usize = n.parse()?;
    // One copy per process, so runs can go side by side; VACUUM INTO also
    // takes what the source's WAL still holds.
    let path = format!("{schema}.costs-{}.db", std::process::id());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    Connection::open(schema)?.execute("VACUUM INTO ?1", [&path])?;
    // The changes on a connection of their own: the workload's then parses
    // the changed schema afresh.
    {
        let c = Connection::open(&path)?;
        for part in parts.split(',').filter(|p| *p != "none") {
            let (_, ddl) = PARTS
                .iter()
                .find(|(name, _)| name == &part)
                .ok_or_else(|| format!("unknown part {part:?}"))?;
            c.execute_batch(ddl)?;
        }
    }
    let c = Connection::open(&path)?;
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    let started = Instant::now();
    match mode.as_str() {
        "single" => {
            let sql = hot_sql::insert(1);
            for i in 0..n {
                let ids = run(&c, &sql, &job(i))?;
                outbox(&c, &ids)?;
            }
            let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{per:.1} us per single-row commit");
        }
        "bulk" | "load" => load(&c, n)?,
        "shared" => load_shared(&c, n)?,
        "process" => process(&c, n, true)?,
        "claim" => process(&c, n, false)?,
        other => return Err(format!("unknown workload {other:?}").into()),
    }
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    Ok(())
}
