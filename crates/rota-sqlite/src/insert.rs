//! Inserting jobs: the multi-row `INSERT`s, planned on the caller's task
//! and run by the writer's native connection or on a sqlx connection (a
//! user's own transaction, executions, schedule fires).
//!
//! Two things keep the statements cheap per row (`sqlite_costs`, in CPU
//! instructions):
//!
//! - **Shared values are bound once.** A chunk whose jobs agree on every
//!   column but the args, times, unique key and trace context (a bulk load
//!   of one kind, as usual) binds kind, queue, labels and the rest once,
//!   and each row refers to them by number. SQLite copies every bound text, so 13
//!   parameters per row cost more to bind than to insert some columns.
//! - **No `RETURNING` without unique keys.** Without a unique key no row
//!   can be skipped, and the ids of one multi-row `INSERT` into an
//!   `AUTOINCREMENT` table are consecutive: the last id and the row count
//!   give them all. `RETURNING` passes every row through a temporary table.

use std::collections::HashMap;

use rota_core::{Job, JobState};
use rota_driver::{DriverError, InsertedJob, JobInsertParams, Result};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use crate::bind::{Param, bind_all};
use crate::error::{map_native, map_sqlx};
use crate::insert_effects;
use crate::row::{Columns, duration_millis, job_columns, job_from_row, micros, to_json};
use crate::savepoint;

/// Rows per multi-row `INSERT` (at most 16 parameters each, far below
/// SQLite's variable limit).
pub(crate) const INSERT_CHUNK: usize = 500;

const INSERT_COLUMNS: &str = "kind, queue, state, priority, args, max_attempts, run_at, created_at, labels, \
     attributes, unique_key, timeout_ms, trace_context";
const ORIGIN_COLUMNS: &str = ", execution_id, schedule_id, fire_at";

/// Where inserted jobs come from: an execution and/or a schedule fire. Set
/// by the store, never by the job spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct JobOrigin {
    /// The execution the jobs belong to.
    pub(crate) execution_id: Option<i64>,
    /// The schedule that created them.
    pub(crate) schedule_id: Option<i64>,
    /// The schedule fire (rule time) that created them.
    pub(crate) fire_at: Option<i64>,
}

impl JobOrigin {
    fn is_none(&self) -> bool {
        *self == JobOrigin::default()
    }
}

/// How a statement's rows get their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Every row binds every column.
    General,
    /// The chunk's common columns (see [`shares_columns`]) are bound once,
    /// as `?1`…; each row binds its args, `run_at`, `created_at`, unique
    /// key and trace context (a fresh trace per job by default).
    Shared,
}

/// Parameters bound once by a [`Shape::Shared`] statement: kind, queue,
/// state, priority, max attempts, labels, attributes, timeout, then the
/// origin's three when it has one.
fn shared_count(origin: JobOrigin) -> usize {
    if origin.is_none() { 8 } else { 11 }
}

/// Parameters each row of a [`Shape::Shared`] statement binds: args,
/// `run_at`, `created_at`, unique key, trace context.
const OWN_COUNT: usize = 5;

/// The multi-row insert of `n` jobs of `shape`. With `returning` it
/// returns `(id, unique_key)` of the inserted rows and skips those whose
/// unique key is held; without, it is for chunks without unique keys.
pub(crate) fn insert_sql(n: usize, origin: JobOrigin, shape: Shape, returning: bool) -> String {
    use std::fmt::Write;
    let with_origin = !origin.is_none();
    let mut sql = String::with_capacity(200 + n * 80);
    sql.push_str("INSERT INTO rota_jobs (");
    sql.push_str(INSERT_COLUMNS);
    if with_origin {
        sql.push_str(ORIGIN_COLUMNS);
    }
    sql.push_str(") VALUES ");
    let shared = shared_count(origin);
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        match shape {
            Shape::General if with_origin => {
                sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            }
            Shape::General => sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            Shape::Shared => {
                // Row i's own: args, run_at, created_at, unique_key,
                // trace_context.
                let b = shared + 1 + OWN_COUNT * i;
                // Writing to a String cannot fail.
                let _ = write!(
                    sql,
                    "(?1, ?2, ?3, ?4, ?{}, ?5, ?{}, ?{}, ?6, ?7, ?{}, ?8, ?{}",
                    b,
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4
                );
                if with_origin {
                    sql.push_str(", ?9, ?10, ?11");
                }
                sql.push(')');
            }
        }
    }
    if returning {
        sql.push_str(" ON CONFLICT DO NOTHING RETURNING id, unique_key");
    }
    sql
}

/// Whether `chunk`'s jobs agree on every column a [`Shape::Shared`]
/// statement binds once. One job gains nothing from sharing.
fn shares_columns(chunk: &[JobInsertParams]) -> bool {
    let Some((first, rest)) = chunk.split_first() else {
        return false;
    };
    !rest.is_empty()
        && rest.iter().all(|p| {
            p.kind == first.kind
                && p.queue == first.queue
                && p.state == first.state
                && p.priority == first.priority
                && p.max_attempts == first.max_attempts
                && p.timeout == first.timeout
                && p.labels == first.labels
                && p.attributes == first.attributes
        })
}

/// The parameters of [`insert_sql`] for `chunk` in `shape`.
fn insert_params(chunk: &[JobInsertParams], origin: JobOrigin, shape: Shape) -> Result<Vec<Param>> {
    let shared = |p: &JobInsertParams| -> Result<[Param; 8]> {
        Ok([
            Param::from(p.kind.as_str()),
            Param::from(p.queue.as_str()),
            Param::from(p.state.as_str()),
            Param::from(i64::from(p.priority)),
            Param::from(i64::from(p.max_attempts)),
            Param::from(to_json(&p.labels)?),
            Param::from(to_json(&p.attributes)?),
            Param::from(p.timeout.map(duration_millis)),
        ])
    };
    let origin_params = [
        Param::from(origin.execution_id),
        Param::from(origin.schedule_id),
        Param::from(origin.fire_at),
    ];
    let mut out = Vec::new();
    match shape {
        Shape::Shared => {
            let Some(first) = chunk.first() else {
                return Ok(out);
            };
            out.reserve(shared_count(origin) + OWN_COUNT * chunk.len());
            out.extend(shared(first)?);
            if !origin.is_none() {
                out.extend(origin_params);
            }
            for p in chunk {
                out.extend([
                    Param::from(to_json(&p.args)?),
                    Param::from(micros(p.run_at)),
                    Param::from(micros(p.created_at)),
                    Param::from(p.unique_key.as_deref()),
                    Param::from(p.trace_context.as_deref()),
                ]);
            }
        }
        Shape::General => {
            out.reserve(chunk.len() * 16);
            for p in chunk {
                let [
                    kind,
                    queue,
                    state,
                    priority,
                    max_attempts,
                    labels,
                    attributes,
                    timeout,
                ] = shared(p)?;
                out.extend([
                    kind,
                    queue,
                    state,
                    priority,
                    Param::from(to_json(&p.args)?),
                    max_attempts,
                    Param::from(micros(p.run_at)),
                    Param::from(micros(p.created_at)),
                    labels,
                    attributes,
                    Param::from(p.unique_key.as_deref()),
                    timeout,
                    Param::from(p.trace_context.as_deref()),
                ]);
                if !origin.is_none() {
                    out.extend(origin_params.clone());
                }
            }
        }
    }
    Ok(out)
}

/// Pairs a chunk's specs with the `(id, unique_key)` rows its insert
/// returned, pushing per spec the new id, or `None` for a unique duplicate.
fn match_returned(
    chunk: &[JobInsertParams],
    mut returned: Vec<(i64, Option<String>)>,
    ids: &mut Vec<Option<i64>>,
) -> Result<()> {
    // Ids grow in VALUES order; rows skipped as unique duplicates are
    // missing. A spec with key K was inserted iff the next returned row
    // carries K (a second spec with K in the same chunk conflicts).
    returned.sort_unstable_by_key(|(id, _)| *id);
    let mut returned = returned.into_iter().peekable();
    for p in chunk {
        let inserted = match &p.unique_key {
            None => true,
            Some(key) => returned
                .peek()
                .is_some_and(|(_, k)| k.as_ref() == Some(key)),
        };
        if inserted {
            let (id, _) = returned.next().ok_or_else(|| {
                DriverError::Database("insert returned fewer rows than expected".to_owned())
            })?;
            ids.push(Some(id));
        } else {
            ids.push(None);
        }
    }
    Ok(())
}

/// The ids of a chunk inserted without `RETURNING`: `changed` rows ending
/// at `last` (the connection's last insert rowid), one per spec.
fn consecutive_ids(
    chunk: &[JobInsertParams],
    changed: u64,
    last: i64,
    ids: &mut Vec<Option<i64>>,
) -> Result<()> {
    let n = chunk.len() as i64;
    if changed != chunk.len() as u64 || last < n {
        return Err(DriverError::Database(format!(
            "inserted {changed} of {n} jobs (last id {last})"
        )));
    }
    ids.extend((last - n + 1..=last).map(Some));
    Ok(())
}

/// The unfinished job holding a unique key.
pub(crate) const HOLDER_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM rota_jobs WHERE unique_key = ? \
     AND state <> 'succeeded' AND state <> 'failed' AND state <> 'canceled'"
);

fn no_holder(key: &str) -> DriverError {
    DriverError::Conflict(format!("unique key {key:?} conflicted but no holder found"))
}

/// One planned multi-row `INSERT`.
struct Statement {
    sql: String,
    values: Vec<Param>,
    /// Returns `(id, unique_key)` rows (its chunk has unique keys).
    returning: bool,
}

/// An insert of many jobs, prepared before it reaches a connection: the
/// statements and their parameters (JSON encoding included). The driver's
/// enqueue builds it on the caller's task, so the single writer only
/// executes it.
pub(crate) struct InsertPlan {
    params: Vec<JobInsertParams>,
    origin: JobOrigin,
    /// One multi-row `INSERT` per chunk of [`INSERT_CHUNK`] jobs.
    statements: Vec<Statement>,
}

impl InsertPlan {
    /// Plans the insert of `params` with `origin`.
    pub(crate) fn new(params: Vec<JobInsertParams>, origin: JobOrigin) -> Result<InsertPlan> {
        let statements = params
            .chunks(INSERT_CHUNK)
            .map(|chunk| {
                let shape = if shares_columns(chunk) {
                    Shape::Shared
                } else {
                    Shape::General
                };
                let returning = chunk.iter().any(|p| p.unique_key.is_some());
                Ok(Statement {
                    sql: insert_sql(chunk.len(), origin, shape, returning),
                    values: insert_params(chunk, origin, shape)?,
                    returning,
                })
            })
            .collect::<Result<_>>()?;
        Ok(InsertPlan {
            params,
            origin,
            statements,
        })
    }

    /// Builds the results from the new ids (`None` for a unique duplicate,
    /// whose holder `holder` fetches).
    fn finish(
        self,
        ids: Vec<Option<i64>>,
        mut holder: impl FnMut(&str) -> Result<Job>,
    ) -> Result<Vec<InsertedJob>> {
        let origin = self.origin;
        self.params
            .into_iter()
            .zip(ids)
            .map(|(p, id)| match id {
                Some(id) => Ok(InsertedJob {
                    job: p.into_stored_job(id, origin.execution_id, origin.schedule_id),
                    inserted: true,
                }),
                None => Ok(InsertedJob {
                    job: holder(p.unique_key.as_deref().unwrap_or_default())?,
                    inserted: false,
                }),
            })
            .collect()
    }
}

/// Inserts jobs on `conn` — typically inside your own transaction, so the
/// jobs exist if and only if your data commits (transactional enqueue).
///
/// Outside a transaction it is atomic by itself: the jobs, their outbox
/// rows and execution counts commit together (a savepoint).
///
/// A spec whose `unique_key` is held by an unfinished job is not inserted;
/// the existing job is returned with `inserted = false`. Results keep input
/// order. This is the same SQL the driver's writer runs.
///
/// Open your pool with [`connect_options`](crate::connect_options) so
/// `busy_timeout` is set, and start transactions that read before they
/// write with `BEGIN IMMEDIATE` (`conn.begin_with("BEGIN IMMEDIATE")`):
/// a deferred transaction that has read cannot later take the write lock
/// while Rota's writer commits, and fails with "database is locked". Idle
/// Rota workers notice your commit within the driver's watch interval.
pub async fn job_insert_many_in(
    conn: &mut SqliteConnection,
    params: Vec<JobInsertParams>,
) -> Result<Vec<InsertedJob>> {
    insert_many(conn, params, JobOrigin::default()).await
}

/// [`job_insert_many_in`] with the jobs' origin columns set.
///
/// The inserts and their outbox and counter statements run inside a
/// savepoint: on a connection outside a transaction that is a transaction
/// of its own, so they commit together or not at all (each would commit
/// alone), and no other writer can take ids inside a statement's range
/// before its outbox rows are written.
pub(crate) async fn insert_many(
    conn: &mut SqliteConnection,
    params: Vec<JobInsertParams>,
    origin: JobOrigin,
) -> Result<Vec<InsertedJob>> {
    let plan = InsertPlan::new(params, origin)?;
    savepoint::begin(conn).await?;
    let inserted = insert_plan(conn, plan).await;
    savepoint::end(conn, inserted).await
}

async fn insert_plan(
    conn: &mut SqliteConnection,
    mut plan: InsertPlan,
) -> Result<Vec<InsertedJob>> {
    // Per input: the new id, or None for a unique duplicate.
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(plan.params.len());
    for (st, chunk) in std::mem::take(&mut plan.statements)
        .into_iter()
        .zip(plan.params.chunks(INSERT_CHUNK))
    {
        let start = ids.len();
        let query = bind_all(sqlx::query(AssertSqlSafe(st.sql)), st.values);
        if st.returning {
            let rows = query.fetch_all(&mut *conn).await.map_err(map_sqlx)?;
            let returned = rows
                .iter()
                .map(|r| Ok((r.req_int(0, "id")?, r.opt_text(1, "unique_key")?)))
                .collect::<Result<Vec<_>>>()?;
            match_returned(chunk, returned, &mut ids)?;
        } else {
            let done = query.execute(&mut *conn).await.map_err(map_sqlx)?;
            consecutive_ids(
                chunk,
                done.rows_affected(),
                done.last_insert_rowid(),
                &mut ids,
            )?;
        }
        if let Some(range) = insert_effects::events_params(&ids[start..]) {
            bind_all(sqlx::query(insert_effects::EVENTS_SQL), range.to_vec())
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
        }
    }
    if let Some(counts) = insert_effects::counts_params(&plan.params, &ids, plan.origin) {
        bind_all(sqlx::query(insert_effects::COUNTS_SQL), counts)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    }
    // Holders of conflicting keys, read before building the results (the
    // read is async, the build is not).
    let mut holders = std::collections::HashMap::new();
    for (p, id) in plan.params.iter().zip(&ids) {
        if id.is_none() {
            let key = p.unique_key.clone().unwrap_or_default();
            let row = sqlx::query(HOLDER_SQL)
                .bind(key.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_sqlx)?
                .ok_or_else(|| no_holder(&key))?;
            holders.insert(key, job_from_row(&row)?);
        }
    }
    plan.finish(ids, |key| {
        holders.get(key).cloned().ok_or_else(|| no_holder(key))
    })
}

/// An insert the writer ran: the new ids and the holders of conflicting
/// unique keys, from which [`Ran::results`] builds the answer on the
/// caller's task. Building it moves every spec into a job; with the
/// per-row wake-up bookkeeping it replaced, that was 1.0k of 12.8k writer
/// instructions per bulk-loaded row, which need not hold up the single
/// writer.
pub(crate) struct Ran {
    plan: InsertPlan,
    ids: Vec<Option<i64>>,
    holders: HashMap<String, Job>,
}

impl Ran {
    /// The queues that got an available job (a queue repeated in a row of
    /// jobs is given once).
    pub(crate) fn woken_queues(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (p, id) in self.plan.params.iter().zip(&self.ids) {
            if id.is_some()
                && p.state == JobState::Available
                && out.last() != Some(&p.queue.as_str())
            {
                out.push(&p.queue);
            }
        }
        out
    }

    /// The results, in input order.
    pub(crate) fn results(self) -> Result<Vec<InsertedJob>> {
        let holders = self.holders;
        self.plan.finish(self.ids, |key| {
            holders.get(key).cloned().ok_or_else(|| no_holder(key))
        })
    }
}

/// Runs an [`InsertPlan`] on the writer's native connection: the same
/// statements, without sqlx's per-value copies and thread hand-offs.
pub(crate) fn insert_many_native(conn: &rusqlite::Connection, plan: InsertPlan) -> Result<Ran> {
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(plan.params.len());
    // By reference: the statements' texts and values are freed with the
    // plan on the caller's task (freeing them here, memory allocated on
    // another thread, cost 0.3k of 11.8k instructions per row).
    for (st, chunk) in plan.statements.iter().zip(plan.params.chunks(INSERT_CHUNK)) {
        let start = ids.len();
        // Only the two common row counts stay prepared: statements of every
        // other count would evict the claim and finish statements from the
        // connection's cache (and re-preparing those costs more).
        let (mut cached, mut plain);
        let stmt: &mut rusqlite::Statement<'_> = if chunk.len() == 1 || chunk.len() == INSERT_CHUNK
        {
            cached = conn.prepare_cached(&st.sql).map_err(map_native)?;
            &mut cached
        } else {
            plain = conn.prepare(&st.sql).map_err(map_native)?;
            &mut plain
        };
        let values = rusqlite::params_from_iter(st.values.iter());
        if st.returning {
            let mut rows = stmt.query(values).map_err(map_native)?;
            let mut returned = Vec::with_capacity(chunk.len());
            while let Some(r) = rows.next().map_err(map_native)? {
                returned.push((r.req_int(0, "id")?, r.opt_text(1, "unique_key")?));
            }
            match_returned(chunk, returned, &mut ids)?;
        } else {
            let changed = stmt.execute(values).map_err(map_native)?;
            consecutive_ids(chunk, changed as u64, conn.last_insert_rowid(), &mut ids)?;
        }
        if let Some(range) = insert_effects::events_params(&ids[start..]) {
            conn.prepare_cached(insert_effects::EVENTS_SQL)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(range.iter())))
                .map_err(map_native)?;
        }
    }
    if let Some(counts) = insert_effects::counts_params(&plan.params, &ids, plan.origin) {
        conn.prepare_cached(insert_effects::COUNTS_SQL)
            .and_then(|mut st| st.execute(rusqlite::params_from_iter(counts.iter())))
            .map_err(map_native)?;
    }
    // Holders of conflicting keys, read in the insert's transaction.
    let mut holders = HashMap::new();
    for (p, id) in plan.params.iter().zip(&ids) {
        let Some(key) = p.unique_key.as_deref().filter(|_| id.is_none()) else {
            continue;
        };
        if holders.contains_key(key) {
            continue;
        }
        let mut st = conn.prepare_cached(HOLDER_SQL).map_err(map_native)?;
        let mut rows = st.query([key]).map_err(map_native)?;
        let row = rows
            .next()
            .map_err(map_native)?
            .ok_or_else(|| no_holder(key))?;
        holders.insert(key.to_owned(), job_from_row(row)?);
    }
    Ok(Ran { plan, ids, holders })
}

#[cfg(test)]
#[path = "insert_tests.rs"]
pub(crate) mod tests;
