//! Job SQL outside a run: insert, list, get, count, cancel, retry, delete,
//! prune. Every function works on a plain `&mut SqliteConnection`, so the
//! writer's sqlx operations, the read pool and users' own transactions
//! share one SQL; the writer's native enqueue runs the same statements.

use std::collections::BTreeMap;

use rota_core::{Job, JobState};
use rota_driver::{
    DriverError, InsertedJob, JobCancelParams, JobCount, JobInsertParams, JobListParams,
    JobPruneParams, JobRetryParams, Result,
};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{AssertSqlSafe, QueryBuilder, Row};

use crate::bind::{Param, bind_all};
use crate::error::{map_native, map_sqlx};
use crate::row::{
    Columns, JOB_COLUMNS, duration_millis, job_columns, job_from_row, jobs_from_rows, micros,
    opt_micros, parse_state, to_json,
};

/// The states of the partial index `rota_jobs_failed_idx` (migration 0004).
const FAILED_IDX_STATES: [JobState; 2] = [JobState::Failed, JobState::Canceled];

/// Most rows one [`job_list_in`] call returns.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Rows per multi-row `INSERT` (13 or 16 parameters each, far below
/// SQLite's variable limit).
const INSERT_CHUNK: usize = 500;

const INSERT_COLUMNS: &str = "kind, queue, state, priority, args, max_attempts, run_at, created_at, labels, \
     attributes, unique_key, timeout_ms, trace_context";
const INSERT_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_COLUMNS_WITH_ORIGIN: &str = "kind, queue, state, priority, args, max_attempts, run_at, created_at, \
     labels, attributes, unique_key, timeout_ms, trace_context, execution_id, schedule_id, fire_at";
const INSERT_ROW_WITH_ORIGIN: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Inserts jobs on `conn` — typically inside your own transaction, so the
/// jobs exist if and only if your data commits (transactional enqueue).
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

/// The multi-row insert of `n` jobs. Returns only what
/// [`match_returned`] needs: decoding whole rows would halve bulk-insert
/// throughput, and every other column is known from the input.
pub(crate) fn insert_sql(n: usize, origin: JobOrigin) -> String {
    // Plain inserts (the hot path) keep the short statement.
    let (columns, row) = if origin.is_none() {
        (INSERT_COLUMNS, INSERT_ROW)
    } else {
        (INSERT_COLUMNS_WITH_ORIGIN, INSERT_ROW_WITH_ORIGIN)
    };
    let mut sql = String::with_capacity(160 + n * (row.len() + 2));
    sql.push_str("INSERT INTO rota_jobs (");
    sql.push_str(columns);
    sql.push_str(") VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING id, unique_key");
    sql
}

/// The parameters of [`insert_sql`] for `chunk`.
fn insert_params(chunk: &[JobInsertParams], origin: JobOrigin) -> Result<Vec<Param>> {
    let width = if origin.is_none() { 13 } else { 16 };
    let mut out = Vec::with_capacity(chunk.len() * width);
    for p in chunk {
        out.extend([
            Param::from(p.kind.as_str()),
            Param::from(p.queue.as_str()),
            Param::from(p.state.as_str()),
            Param::from(i64::from(p.priority)),
            Param::from(to_json(&p.args)?),
            Param::from(i64::from(p.max_attempts)),
            Param::from(micros(p.run_at)),
            Param::from(micros(p.created_at)),
            Param::from(to_json(&p.labels)?),
            Param::from(to_json(&p.attributes)?),
            Param::from(p.unique_key.as_deref()),
            Param::from(p.timeout.map(duration_millis)),
            Param::from(p.trace_context.as_deref()),
        ]);
        if !origin.is_none() {
            out.extend([
                Param::from(origin.execution_id),
                Param::from(origin.schedule_id),
                Param::from(origin.fire_at),
            ]);
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

/// An insert of many jobs, prepared before it reaches a connection: the
/// statements and their parameters (JSON encoding included). The driver's
/// enqueue builds it on the caller's task, so the single writer only
/// executes it.
pub(crate) struct InsertPlan {
    params: Vec<JobInsertParams>,
    origin: JobOrigin,
    /// One multi-row `INSERT` per chunk of [`INSERT_CHUNK`] jobs.
    statements: Vec<(String, Vec<Param>)>,
}

impl InsertPlan {
    /// Plans the insert of `params` with `origin`.
    pub(crate) fn new(params: Vec<JobInsertParams>, origin: JobOrigin) -> Result<InsertPlan> {
        let statements = params
            .chunks(INSERT_CHUNK)
            .map(|chunk| {
                Ok((
                    insert_sql(chunk.len(), origin),
                    insert_params(chunk, origin)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(InsertPlan {
            params,
            origin,
            statements,
        })
    }

    /// Whether the plan is one statement (atomic by itself): one chunk with
    /// no unique key, whose conflict would need a second, reading one.
    pub(crate) fn is_one_statement(&self) -> bool {
        self.statements.len() == 1 && self.params.iter().all(|p| p.unique_key.is_none())
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

/// [`job_insert_many_in`] with the jobs' origin columns set.
pub(crate) async fn insert_many(
    conn: &mut SqliteConnection,
    params: Vec<JobInsertParams>,
    origin: JobOrigin,
) -> Result<Vec<InsertedJob>> {
    let mut plan = InsertPlan::new(params, origin)?;
    // Per input: the new id, or None for a unique duplicate.
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(plan.params.len());
    for ((sql, values), chunk) in std::mem::take(&mut plan.statements)
        .into_iter()
        .zip(plan.params.chunks(INSERT_CHUNK))
    {
        let query = bind_all(sqlx::query(AssertSqlSafe(sql)), values);
        let rows = query.fetch_all(&mut *conn).await.map_err(map_sqlx)?;
        let returned = rows
            .iter()
            .map(|r| Ok((r.req_int(0, "id")?, r.opt_text(1, "unique_key")?)))
            .collect::<Result<Vec<_>>>()?;
        match_returned(chunk, returned, &mut ids)?;
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

/// Runs an [`InsertPlan`] on the writer's native connection: the same
/// statements, without sqlx's per-value copies and thread hand-offs.
pub(crate) fn insert_many_native(
    conn: &rusqlite::Connection,
    mut plan: InsertPlan,
) -> Result<Vec<InsertedJob>> {
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(plan.params.len());
    for ((sql, values), chunk) in std::mem::take(&mut plan.statements)
        .into_iter()
        .zip(plan.params.chunks(INSERT_CHUNK))
    {
        // Only the two common shapes stay prepared: statements of every
        // other row count would evict the claim and finish statements
        // from the connection's cache (and re-preparing those costs more).
        let (mut cached, mut plain);
        let st: &mut rusqlite::Statement<'_> = if chunk.len() == 1 || chunk.len() == INSERT_CHUNK {
            cached = conn.prepare_cached(&sql).map_err(map_native)?;
            &mut cached
        } else {
            plain = conn.prepare(&sql).map_err(map_native)?;
            &mut plain
        };
        let mut rows = st
            .query(rusqlite::params_from_iter(values.iter()))
            .map_err(map_native)?;
        let mut returned = Vec::with_capacity(chunk.len());
        while let Some(r) = rows.next().map_err(map_native)? {
            returned.push((r.req_int(0, "id")?, r.opt_text(1, "unique_key")?));
        }
        match_returned(chunk, returned, &mut ids)?;
    }
    plan.finish(ids, |key| {
        let mut st = conn.prepare_cached(HOLDER_SQL).map_err(map_native)?;
        let mut rows = st.query([key]).map_err(map_native)?;
        let row = rows
            .next()
            .map_err(map_native)?
            .ok_or_else(|| no_holder(key))?;
        job_from_row(row)
    })
}

/// Lists jobs on `conn` matching `params`, newest first (by id), for use
/// inside your own transaction. `limit` is capped at [`MAX_LIST_LIMIT`];
/// `0` means the cap.
pub async fn job_list_in(conn: &mut SqliteConnection, params: &JobListParams) -> Result<Vec<Job>> {
    let Some(mut qb) = list_query(params)? else {
        return Ok(Vec::new());
    };
    let rows = qb.build().fetch_all(&mut *conn).await.map_err(map_sqlx)?;
    jobs_from_rows(&rows)
}

/// The listing statement for `params`; `None` when it cannot match (an
/// empty id list).
pub(crate) fn list_query(params: &JobListParams) -> Result<Option<QueryBuilder<Sqlite>>> {
    // Running jobs are few (bounded by the workers' concurrency) and live
    // in the lease index; without a hint SQLite walks the whole table
    // backwards in id order to find them (~110 ms per million finished
    // jobs when none is left), so such a listing reads that index and
    // sorts what it finds. The WHERE term below is the index's own.
    let running_only =
        !params.states.is_empty() && params.states.iter().all(|s| *s == JobState::Running);
    let from = if running_only {
        "rota_jobs INDEXED BY rota_jobs_lease_idx"
    } else {
        "rota_jobs"
    };
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM {from} WHERE 1 = 1"));
    if running_only {
        qb.push(" AND state = 'running'");
    }
    if !params.states.is_empty() {
        // Literals (an enum's names, never user text): SQLite uses a partial
        // index only when the query states its predicate in constants.
        let states: Vec<String> = params
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        qb.push(format!(" AND state IN ({})", states.join(", ")));
        // ... and only when the query repeats the index's WHERE term word
        // for word (`state IN ('failed')` does not imply `state IN
        // ('failed', 'canceled')` to SQLite). So a filter within the failure
        // states also states that term, and failures are listed from their
        // small index, in id order, however much history succeeded.
        if params.states.iter().all(|s| FAILED_IDX_STATES.contains(s)) {
            qb.push(" AND state IN ('failed', 'canceled')");
        }
    }
    if let Some(queue) = &params.queue {
        qb.push(" AND queue = ").push_bind(queue.clone());
    }
    if let Some(kind) = &params.kind {
        qb.push(" AND kind = ").push_bind(kind.clone());
    }
    for (key, value) in &params.attributes {
        qb.push(" AND json_extract(attributes, ")
            .push_bind(attribute_path(key))
            .push(") = ")
            .push_bind(value.clone());
    }
    if let Some(ids) = &params.ids {
        if ids.is_empty() {
            return Ok(None);
        }
        qb.push(" AND id IN (SELECT value FROM json_each(")
            .push_bind(to_json(ids)?)
            .push("))");
    }
    if let Some(execution_id) = params.execution_id {
        qb.push(" AND execution_id = ").push_bind(execution_id);
    }
    if let Some(schedule_id) = params.schedule_id {
        qb.push(" AND schedule_id = ").push_bind(schedule_id);
    }
    if let Some(before) = params.before_id {
        qb.push(" AND id < ").push_bind(before);
    }
    let limit = if params.limit == 0 {
        MAX_LIST_LIMIT
    } else {
        params.limit.min(MAX_LIST_LIMIT)
    };
    qb.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit));
    Ok(Some(qb))
}

/// The JSON path `$."key"` selecting one attribute, with `"` and `\`
/// escaped; bound as a parameter, never spliced into SQL.
pub(crate) fn attribute_path(key: &str) -> String {
    let mut path = String::with_capacity(key.len() + 4);
    path.push_str("$.\"");
    for c in key.chars() {
        if c == '"' || c == '\\' {
            path.push('\\');
        }
        path.push(c);
    }
    path.push('"');
    path
}

/// One job by id.
pub(crate) async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Option<Job>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM rota_jobs WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    row.as_ref().map(job_from_row).transpose()
}

async fn get_existing(conn: &mut SqliteConnection, id: i64) -> Result<Job> {
    get(conn, id).await?.ok_or_else(|| DriverError::NotFound {
        entity: "job",
        id: id.to_string(),
    })
}

/// Jobs per queue and state.
pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<Vec<JobCount>> {
    let rows = sqlx::query("SELECT queue, state, COUNT(*) AS n FROM rota_jobs GROUP BY queue, state ORDER BY queue, state")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state").map_err(map_sqlx)?;
            Ok(JobCount {
                queue: r.try_get("queue").map_err(map_sqlx)?,
                state: parse_state(&state)?,
                count: r.try_get("n").map_err(map_sqlx)?,
            })
        })
        .collect()
}

/// Counts per state of every queue that has jobs.
pub(crate) async fn counts_by_queue(
    conn: &mut SqliteConnection,
) -> Result<BTreeMap<String, BTreeMap<JobState, i64>>> {
    let mut out: BTreeMap<String, BTreeMap<JobState, i64>> = BTreeMap::new();
    for c in count(conn).await? {
        out.entry(c.queue).or_default().insert(c.state, c.count);
    }
    Ok(out)
}

/// Runs an `UPDATE ... SET <time> = ? WHERE id = ? RETURNING <job>`.
async fn returning_one(
    conn: &mut SqliteConnection,
    sql: &'static str,
    time: i64,
    id: i64,
) -> Result<Job> {
    let row = sqlx::query(sql)
        .bind(time)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    job_from_row(&row)
}

/// Cancel: waiting jobs end `canceled`; a running job gets
/// `cancel_requested_at` (kept if already set); finished is refused.
pub(crate) async fn cancel(conn: &mut SqliteConnection, p: &JobCancelParams) -> Result<Job> {
    let job = get_existing(conn, p.id).await?;
    let now = micros(p.now);
    match job.state {
        JobState::Scheduled | JobState::Available | JobState::Retrying => returning_one(
            conn,
            concat!(
                "UPDATE rota_jobs SET state = 'canceled', finished_at = ?, revision = revision + 1 \
                 WHERE id = ? RETURNING ",
                job_columns!()
            ),
            now,
            p.id,
        )
        .await,
        JobState::Running => {
            returning_one(
                conn,
                concat!(
                    "UPDATE rota_jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?), \
                 revision = revision + (cancel_requested_at IS NULL) WHERE id = ? RETURNING ",
                    job_columns!()
                ),
                now,
                p.id,
            )
            .await
        }
        state => Err(DriverError::InvalidState {
            id: p.id,
            state,
            action: "cancel",
        }),
    }
}

/// Operator retry: scheduled/retrying become available now; finished jobs
/// become available now with `attempt = 0`; running (and available) are
/// refused. A unique key now held by another unfinished job is a conflict.
pub(crate) async fn retry(conn: &mut SqliteConnection, p: &JobRetryParams) -> Result<Job> {
    let job = get_existing(conn, p.id).await?;
    let sql: &'static str = match job.state {
        JobState::Scheduled | JobState::Retrying => {
            concat!(
                "UPDATE rota_jobs SET state = 'available', run_at = ?, revision = revision + 1 WHERE id = ? \
             RETURNING ",
                job_columns!()
            )
        }
        JobState::Succeeded | JobState::Failed | JobState::Canceled => {
            concat!(
                "UPDATE rota_jobs SET state = 'available', run_at = ?, attempt = 0, finished_at = NULL, \
             cancel_requested_at = NULL, lease_token = NULL, lease_expires_at = NULL, revision = revision + 1 \
             WHERE id = ? RETURNING ",
                job_columns!()
            )
        }
        state => {
            return Err(DriverError::InvalidState {
                id: p.id,
                state,
                action: "retry",
            });
        }
    };
    match returning_one(conn, sql, micros(p.now), p.id).await {
        Err(DriverError::Conflict(_)) => Err(DriverError::Conflict(format!(
            "cannot retry job {}: its unique key {:?} is held by another unfinished job",
            p.id,
            job.unique_key.unwrap_or_default()
        ))),
        other => other,
    }
}

/// Deletes a finished job.
pub(crate) async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<Job> {
    let job = get_existing(conn, id).await?;
    if !job.state.is_finished() {
        return Err(DriverError::InvalidState {
            id,
            state: job.state,
            action: "delete",
        });
    }
    sqlx::query("DELETE FROM rota_jobs WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(job)
}

/// The rows retention prunes, as `rota_jobs_finished_idx` (migration 0006)
/// holds them; SQLite uses a partial index only when the query repeats its
/// terms.
macro_rules! prunable {
    () => {
        "finished_at IS NOT NULL AND execution_id IS NULL \
         AND state IN ('succeeded', 'failed', 'canceled')"
    };
}

/// Deletes the oldest finished jobs that finished before a time.
pub(crate) const PRUNE_AGE_SQL: &str = concat!(
    "DELETE FROM rota_jobs WHERE id IN (SELECT id FROM rota_jobs \
     INDEXED BY rota_jobs_finished_idx WHERE ",
    prunable!(),
    " AND finished_at < ? ORDER BY finished_at, id LIMIT ?)"
);

/// Deletes the oldest finished jobs beyond the newest N (N ≥ 1): finds the
/// N-th newest `(finished_at, id)` by a short descending index walk, then
/// deletes upwards from the oldest, both in index order.
pub(crate) const PRUNE_KEEP_SQL: &str = concat!(
    "DELETE FROM rota_jobs WHERE id IN (SELECT id FROM rota_jobs \
     INDEXED BY rota_jobs_finished_idx WHERE ",
    prunable!(),
    " AND (finished_at, id) < (SELECT finished_at, id FROM rota_jobs \
     INDEXED BY rota_jobs_finished_idx WHERE ",
    prunable!(),
    " ORDER BY finished_at DESC, id DESC LIMIT 1 OFFSET ?) \
     ORDER BY finished_at, id LIMIT ?)"
);

/// Deletes finished jobs that finished before `finished_before` and those
/// beyond the newest `keep_last` (by `finished_at`, id), at most `limit`.
/// Jobs of executions are left to execution retention, so pruning never
/// rewrites a finished execution's figures.
pub(crate) async fn prune(conn: &mut SqliteConnection, p: &JobPruneParams) -> Result<u64> {
    let mut left = i64::from(p.limit);
    let mut deleted = 0u64;
    if let Some(before) = opt_micros(p.finished_before)
        && left > 0
    {
        let n = sqlx::query(PRUNE_AGE_SQL)
            .bind(before)
            .bind(left)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        deleted += n;
        left -= i64::try_from(n).unwrap_or(left);
    }
    if let Some(keep) = p.keep_last
        && left > 0
    {
        let query = if keep == 0 {
            // Keep none: everything finished goes, oldest first.
            sqlx::query(PRUNE_AGE_SQL).bind(i64::MAX)
        } else {
            sqlx::query(PRUNE_KEEP_SQL).bind(i64::try_from(keep - 1).unwrap_or(i64::MAX))
        };
        let n = query
            .bind(left)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        deleted += n;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_paths_quote_the_key() {
        assert_eq!(attribute_path("team"), r#"$."team""#);
        assert_eq!(attribute_path(r#"a"b\c"#), r#"$."a\"b\\c""#);
        assert_eq!(attribute_path("a.b[0]"), r#"$."a.b[0]""#);
    }
}
