//! What Rota's SQLite statements cost, in CPU instructions, on a copy of a
//! migrated database with parts of the schema taken away: a deterministic
//! measure for a machine whose timings drift by ±15 % within minutes.
//!
//! ```sh
//! rota migrate --database sqlite:///tmp/schema.db up
//! cargo build --release -p rota-bench --example sqlite_costs
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/sqlite_costs /tmp/schema.db kind_idx bulk 20000
//! ```
//!
//! Arguments: the migrated file; the parts to drop (comma-separated names
//! from [`PARTS`], or `none`); the workload (`single`: one-row inserts in
//! autocommit; `bulk`: 500-row inserts in one transaction; `load`: the same,
//! the base of `process`; `process`: load, then claims of 1,000 and
//! plain-success finishes of 512, as the writer issues them); the job
//! count. The statements are those of `rota-sqlite` (`jobs.rs`,
//! `runs.rs`). Instructions per job of `process` are its total minus that
//! of `load` with the same count, divided by the count. Single-row commit
//! times print as well, since `single` is what the disk decides.

use std::error::Error;
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

/// Parts of the schema that can be dropped, and how.
const PARTS: &[(&str, &str)] = &[
    ("insert_trigger", "DROP TRIGGER rota_jobs_after_insert"),
    ("update_trigger", "DROP TRIGGER rota_jobs_after_update"),
    ("kind_idx", "DROP INDEX IF EXISTS rota_jobs_kind_idx"),
    ("queue_idx", "DROP INDEX rota_jobs_queue_idx"),
    ("finished_idx", "DROP INDEX rota_jobs_finished_idx"),
];

const COLUMNS: &str = "kind, queue, state, priority, args, max_attempts, run_at, created_at, \
     labels, attributes, unique_key, timeout_ms, trace_context";
const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const CLAIM: &str = "UPDATE rota_jobs SET state = 'running', attempt = attempt + 1, \
     lease_token = ?1, lease_expires_at = ?2, started_at = ?3, node = ?4, revision = revision + 1 \
     WHERE id IN (SELECT j.id FROM rota_jobs j INDEXED BY rota_jobs_claim_idx \
         WHERE j.state = 'available' AND j.queue = ?5 AND j.attempt < j.max_attempts \
         AND (j.labels = '{}' OR NOT EXISTS (SELECT 1 FROM json_each(j.labels) l \
             WHERE l.value IS NOT (SELECT n.value FROM json_each(?6) n WHERE n.key = l.key))) \
         AND (?8 IS NULL OR j.kind IN (SELECT value FROM json_each(?8))) \
         ORDER BY j.priority, j.run_at, j.id LIMIT ?7 + 0) \
     AND NOT EXISTS (SELECT 1 FROM rota_queues q WHERE q.name = ?5 AND q.paused_at IS NOT NULL) \
     RETURNING *";

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

fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO rota_jobs ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING RETURNING id, unique_key",
        vec![ROW; rows].join(", ")
    )
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
    let sql = insert_sql(500);
    c.execute_batch("BEGIN IMMEDIATE")?;
    for k in 0..n / 500 {
        let params: Vec<Value> = (0..500).flat_map(|i| job(k * 500 + i)).collect();
        run(c, &sql, &params)?;
    }
    c.execute_batch("COMMIT")
}

fn process(c: &Connection, n: usize) -> rusqlite::Result<()> {
    load(c, n)?;
    let finish = format!(
        "WITH p(id, tok, attempt, finished_at) AS (VALUES {}) \
         UPDATE rota_jobs SET state = 'succeeded', attempt = p.attempt, finished_at = p.finished_at, \
         lease_token = NULL, lease_expires_at = NULL, revision = rota_jobs.revision + 1 \
         FROM p WHERE rota_jobs.id = p.id AND rota_jobs.state = 'running' \
         AND rota_jobs.lease_token = p.tok \
         RETURNING rota_jobs.id AS id, rota_jobs.queue AS queue, rota_jobs.state AS state",
        vec!["(?, ?, ?, ?)"; 512].join(", ")
    );
    let mut now = 2_000_000_i64;
    loop {
        now += 1_000;
        let claim = [
            Value::Integer(7),
            Value::Integer(now + 30_000_000),
            Value::Integer(now),
            Value::Text("node".into()),
            Value::Text("bench".into()),
            Value::Text("{}".into()),
            Value::Integer(1_000),
            Value::Null,
        ];
        let ids = run(c, CLAIM, &claim)?;
        if ids.is_empty() {
            return Ok(());
        }
        c.execute_batch("BEGIN IMMEDIATE")?;
        for chunk in ids.chunks(512) {
            let mut params = Vec::with_capacity(4 * 512);
            for &id in chunk {
                params.extend([
                    Value::Integer(id),
                    Value::Integer(7),
                    Value::Integer(1),
                    Value::Integer(now + 500),
                ]);
            }
            params.resize(4 * 512, Value::Null);
            run(c, &finish, &params)?;
        }
        c.execute_batch("COMMIT")?;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, drops, mode, n] = args.as_slice() else {
        return Err(
            "usage: sqlite_costs MIGRATED.db PART,...|none single|bulk|load|process N".into(),
        );
    };
    let n: usize = n.parse()?;
    let path = format!("{schema}.costs-{mode}.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    std::fs::copy(schema, &path)?;
    let c = Connection::open(&path)?;
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    for part in drops.split(',').filter(|p| *p != "none") {
        let (_, ddl) = PARTS
            .iter()
            .find(|(name, _)| name == &part)
            .ok_or_else(|| format!("unknown part {part:?}"))?;
        c.execute_batch(ddl)?;
    }
    let started = Instant::now();
    match mode.as_str() {
        "single" => {
            let sql = insert_sql(1);
            for i in 0..n {
                run(&c, &sql, &job(i))?;
            }
            let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{per:.1} us per single-row commit");
        }
        "bulk" | "load" => load(&c, n)?,
        "process" => process(&c, n)?,
        other => return Err(format!("unknown workload {other:?}").into()),
    }
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    Ok(())
}
