//! Job statements: insert, claim, finish, heartbeat, cancel, retry, list, ...
//!
//! Every statement is built from [`Tables`] so the same SQL serves the pooled
//! driver and the transactional `*_in` functions on a caller's connection.

use std::collections::{BTreeMap, HashMap, HashSet};

use rota_core::{Job, JobState};
use rota_driver::{
    DriverError, FinishResult, HeartbeatResult, InsertedJob, JobCancelParams, JobClaimParams,
    JobCount, JobExpiredParams, JobFinishParams, JobHeartbeatParams, JobInsertParams,
    JobListParams, JobPromoteParams, JobPruneParams, JobRetryParams, QueueCount, Result,
};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::types::Json;
use sqlx::{Acquire, AssertSqlSafe, Row};

use crate::error::{SqlxResultExt, retry_deadlocks};
use crate::options::Tables;
use crate::row::{PgTs, int, job_from_row, jobs_from_rows, millis, state_from_str, ts, ts_opt};

/// Rows per `INSERT ... SELECT FROM UNNEST(...)` statement.
pub(crate) const INSERT_CHUNK: usize = 5_000;
/// Largest page [`list`] returns.
pub(crate) const MAX_LIST_LIMIT: u32 = 10_000;
/// SQL list of the terminal states.
const FINISHED: &str = "('succeeded', 'failed', 'canceled')";
/// How often an insert retries specs whose unique key was held by a job that
/// finished before it could be read back.
const UNIQUE_ROUNDS: usize = 5;

/// From this many jobs (without unique keys) an insert goes through
/// binary `COPY`; below it the one-statement `UNNEST` insert is quicker
/// (COPY costs two extra round trips).
const COPY_MIN_ROWS: usize = 64;

/// A CTE body locking, in id order, the executions named by `ids_sql` (a
/// query returning execution ids, NULLs allowed), once the pseudo-constant
/// condition `after` (e.g. a count over another CTE, to run that first) has
/// been evaluated.
///
/// Changing a job's state updates its execution's row (counter trigger), in
/// the order the statement happens to change the jobs. Two statements
/// changing jobs of the same executions in different orders would deadlock.
/// So statements changing jobs of several executions take their locks in
/// one global order: first the job rows, then the executions, ascending by
/// id, through this CTE, gated into the changing statement with
/// `(SELECT count(*) FROM lk) >= 0` (a one-time filter that runs before any
/// row changes); no statement waits for a job row while holding an
/// execution row. Jobs outside executions make it an empty index probe.
pub(crate) fn lock_executions_cte(t: &Tables, ids_sql: &str, after: &str) -> String {
    format!(
        "SELECT e.id FROM {executions} e
         WHERE e.id = ANY(ARRAY(SELECT x.execution_id FROM ({ids_sql}) x(execution_id)
                                WHERE x.execution_id IS NOT NULL))
           AND {after}
         ORDER BY e.id
         FOR NO KEY UPDATE",
        executions = t.executions,
    )
}

// ---------------------------------------------------------------- insert --

/// The `UNNEST` insert of a chunk; with [`Wake::InTransaction`] its queues
/// are notified in the same statement (channel `$17`).
fn insert_sql(t: &Tables, wake: Wake) -> String {
    let (notified, filter) = match wake {
        Wake::InTransaction => (
            ", notified AS (
            SELECT pg_notify($17, q.queue)
            FROM (SELECT DISTINCT queue FROM ins WHERE state = 'available') q
        )",
            " WHERE (SELECT count(*) FROM notified) >= 0",
        ),
        Wake::AfterCommit => ("", ""),
    };
    format!(
        "WITH input AS MATERIALIZED (
            SELECT nextval('{seq}') AS id, u.*
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::smallint[], $5::jsonb[],
                        $6::timestamptz[], $7::timestamptz[], $8::integer[], $9::bigint[],
                        $10::text[], $11::jsonb[], $12::jsonb[], $13::text[])
                 WITH ORDINALITY AS u(kind, queue, state, priority, args, run_at, created_at,
                                      max_attempts, timeout_ms, unique_key, labels, attributes,
                                      trace_context, ord)
        ), ins AS (
            INSERT INTO {jobs} (id, kind, queue, state, priority, args, run_at, created_at,
                                max_attempts, timeout_ms, unique_key, labels, attributes,
                                trace_context, execution_id, schedule_id, fire_at)
            SELECT id, kind, queue, state, priority, args, run_at, created_at, max_attempts,
                   timeout_ms, unique_key, labels, attributes, trace_context,
                   $14::bigint, $15::bigint, $16::timestamptz
            FROM input ORDER BY ord
            ON CONFLICT (unique_key)
                WHERE unique_key IS NOT NULL AND state NOT IN {FINISHED}
                DO NOTHING
            RETURNING *
        ){notified}
        SELECT input.ord, ins.* FROM ins JOIN input ON input.id = ins.id{filter}",
        seq = t.jobs_seq,
        jobs = t.jobs,
    )
}

/// The single-row insert; with [`Wake::InTransaction`] its queue is
/// notified in the same statement (channel `$16`).
fn insert_one_sql(t: &Tables, wake: Wake) -> String {
    let values = format!(
        "INSERT INTO {jobs} (id, kind, queue, state, priority, args, run_at, created_at,
                             max_attempts, timeout_ms, labels, attributes, trace_context,
                             execution_id, schedule_id, fire_at)
         VALUES (nextval('{seq}'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 $13, $14, $15)
         RETURNING id",
        seq = t.jobs_seq,
        jobs = t.jobs,
    );
    match wake {
        Wake::InTransaction => format!(
            "WITH ins AS ({values}), notified AS (
                SELECT pg_notify($16, $2) WHERE $3 = 'available'
            )
            SELECT id FROM ins WHERE (SELECT count(*) FROM notified) >= 0"
        ),
        Wake::AfterCommit => values,
    }
}

/// One job without a unique key: a single-row `INSERT` returning only the
/// id (the rest of the row is the input), plus its queue's notification.
/// The common enqueue, so it skips the `UNNEST` machinery.
async fn insert_one(
    conn: &mut PgConnection,
    t: &Tables,
    p: &JobInsertParams,
    origin: Origin,
    wake: Wake,
) -> Result<Vec<InsertedJob>> {
    let q = sqlx::query_scalar(AssertSqlSafe(insert_one_sql(t, wake)))
        .bind(p.kind.as_str())
        .bind(p.queue.as_str())
        .bind(p.state.as_str())
        .bind(p.priority)
        .bind(Json(&p.args))
        .bind(ts(p.run_at))
        .bind(ts(p.created_at))
        .bind(int(p.max_attempts))
        .bind(p.timeout.map(millis))
        .bind(Json(&p.labels))
        .bind(Json(&p.attributes))
        .bind(p.trace_context.as_deref())
        .bind(origin.execution_id)
        .bind(origin.schedule_id)
        .bind(ts_opt(origin.fire_at));
    let q = match wake {
        Wake::InTransaction => q.bind(&t.channel),
        Wake::AfterCommit => q,
    };
    let id: i64 = q.fetch_one(&mut *conn).await.db()?;
    Ok(vec![InsertedJob {
        job: p
            .clone()
            .into_stored_job(id, origin.execution_id, origin.schedule_id),
        inserted: true,
    }])
}

/// Where inserted jobs come from: set on every job of one insert call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Origin {
    /// The execution the jobs belong to.
    pub(crate) execution_id: Option<i64>,
    /// The schedule that created them.
    pub(crate) schedule_id: Option<i64>,
    /// The schedule fire that created them.
    pub(crate) fire_at: Option<jiff::Timestamp>,
}

/// Runs one insert statement for `idx` (indices into `params`), filling
/// `out` for the rows inserted.
async fn insert_chunk(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[JobInsertParams],
    origin: Origin,
    wake: Wake,
    idx: &[usize],
    out: &mut [Option<InsertedJob>],
) -> Result<()> {
    let n = idx.len();
    let mut kind = Vec::with_capacity(n);
    let mut queue = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut priority = Vec::with_capacity(n);
    let mut args = Vec::with_capacity(n);
    let mut run_at = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut max_attempts = Vec::with_capacity(n);
    let mut timeout_ms = Vec::with_capacity(n);
    let mut unique_key = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    let mut attributes = Vec::with_capacity(n);
    let mut trace_context = Vec::with_capacity(n);
    for &i in idx {
        let p = &params[i];
        kind.push(p.kind.as_str());
        queue.push(p.queue.as_str());
        state.push(p.state.as_str());
        priority.push(p.priority);
        args.push(Json(&p.args));
        run_at.push(ts(p.run_at));
        created_at.push(ts(p.created_at));
        max_attempts.push(int(p.max_attempts));
        timeout_ms.push(p.timeout.map(millis));
        unique_key.push(p.unique_key.as_deref());
        labels.push(Json(&p.labels));
        attributes.push(Json(&p.attributes));
        trace_context.push(p.trace_context.as_deref());
    }
    let q = sqlx::query(AssertSqlSafe(insert_sql(t, wake)))
        .bind(kind)
        .bind(queue)
        .bind(state)
        .bind(priority)
        .bind(args)
        .bind(run_at)
        .bind(created_at)
        .bind(max_attempts)
        .bind(timeout_ms)
        .bind(unique_key)
        .bind(labels)
        .bind(attributes)
        .bind(trace_context)
        .bind(origin.execution_id)
        .bind(origin.schedule_id)
        .bind(ts_opt(origin.fire_at));
    let q = match wake {
        Wake::InTransaction => q.bind(&t.channel),
        Wake::AfterCommit => q,
    };
    let rows = q.fetch_all(&mut *conn).await.db()?;
    for row in &rows {
        let ord: i64 = row.try_get("ord").db()?;
        let pos = usize::try_from(ord - 1)
            .ok()
            .and_then(|o| idx.get(o).copied())
            .ok_or_else(|| DriverError::Corrupt(format!("insert returned ordinal {ord}")))?;
        out[pos] = Some(InsertedJob {
            job: job_from_row(row)?,
            inserted: true,
        });
    }
    Ok(())
}

/// The unfinished jobs holding `keys`.
async fn jobs_by_unique_key(
    conn: &mut PgConnection,
    t: &Tables,
    keys: &[&str],
) -> Result<HashMap<String, Job>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE unique_key = ANY($1::text[]) AND unique_key IS NOT NULL
           AND state NOT IN {FINISHED}",
        t.jobs
    )))
    .bind(keys)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut map = HashMap::with_capacity(rows.len());
    for row in &rows {
        let job = job_from_row(row)?;
        if let Some(k) = job.unique_key.clone() {
            map.insert(k, job);
        }
    }
    Ok(map)
}

/// Inserts on `conn` without opening a transaction of its own.
async fn insert_on(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[JobInsertParams],
    origin: Origin,
    wake: Wake,
) -> Result<Vec<InsertedJob>> {
    let mut out: Vec<Option<InsertedJob>> = vec![None; params.len()];
    let mut pending: Vec<usize> = (0..params.len()).collect();
    for _ in 0..UNIQUE_ROUNDS {
        for chunk in pending.chunks(INSERT_CHUNK) {
            insert_chunk(conn, t, params, origin, wake, chunk, &mut out).await?;
        }
        pending.retain(|&i| out[i].is_none());
        if pending.is_empty() {
            break;
        }
        // Everything left lost a unique-key conflict: read the holders.
        let mut keys: Vec<&str> = pending
            .iter()
            .filter_map(|&i| params[i].unique_key.as_deref())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let holders = jobs_by_unique_key(conn, t, &keys).await?;
        for &i in &pending {
            if let Some(job) = params[i].unique_key.as_ref().and_then(|k| holders.get(k)) {
                out[i] = Some(InsertedJob {
                    job: job.clone(),
                    inserted: false,
                });
            }
        }
        // A holder that finished in between frees its key: insert again.
        pending.retain(|&i| out[i].is_none());
        if pending.is_empty() {
            break;
        }
    }
    out.into_iter()
        .map(|o| {
            o.ok_or_else(|| {
                DriverError::Conflict("unique key kept changing hands during insert".to_owned())
            })
        })
        .collect()
}

/// Who notifies the queues an insert made jobs available in.
///
/// A `pg_notify` inside a transaction makes its commit take PostgreSQL's
/// notification lock, one for the whole server, and hold it through the
/// commit's WAL flush: concurrent committers that notify are flushed one
/// at a time instead of together. `pgbench`, 16 clients inserting one row
/// per transaction: 7.2k tx/s without the notification, 2.3k with it,
/// 8.0k with it sent after the commit in a transaction of its own (which
/// writes no WAL, so has no flush to wait for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The insert's own statements notify: the notification is delivered
    /// exactly when the enclosing transaction commits, and not at all on
    /// rollback. For inserts inside a caller's or a larger transaction.
    InTransaction,
    /// The insert does not notify; its caller does after the commit
    /// ([`crate::notifier::Notifier`]). For the driver's own inserts that
    /// commit by themselves.
    AfterCommit,
}

/// Inserts jobs on `conn` in one transaction (a savepoint when `conn` is
/// already in one), notifying each queue that got available jobs.
pub(crate) async fn insert_many(
    conn: &mut PgConnection,
    t: &Tables,
    params: Vec<JobInsertParams>,
) -> Result<Vec<InsertedJob>> {
    insert_many_from(conn, t, &params, Origin::default(), Wake::InTransaction).await
}

/// Inserts jobs on `conn` in one transaction (a savepoint when `conn` is
/// already in one), with the jobs' execution / schedule set from `origin`;
/// `wake` says whether the statements notify the queues that got available
/// jobs.
pub(crate) async fn insert_many_from(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[JobInsertParams],
    origin: Origin,
    wake: Wake,
) -> Result<Vec<InsertedJob>> {
    if params.is_empty() {
        return Ok(Vec::new());
    }
    let no_keys = params.iter().all(|p| p.unique_key.is_none());
    if let [one] = params
        && no_keys
    {
        return insert_one(conn, t, one, origin, wake).await;
    }
    if no_keys && params.len() >= COPY_MIN_ROWS {
        // Ids, COPY and NOTIFY are up to three statements: one transaction
        // (a savepoint when `conn` is already inside one).
        let mut tx = conn.begin().await.db()?;
        let out = crate::copy::insert(&mut tx, t, params, origin, wake).await?;
        tx.commit().await.db()?;
        return Ok(out);
    }
    let single_statement = params.len() <= INSERT_CHUNK && no_keys;
    if single_statement {
        // One statement is atomic by itself: no BEGIN/COMMIT round trips.
        return insert_on(conn, t, params, origin, wake).await;
    }
    let mut tx = conn.begin().await.db()?;
    let out = insert_on(&mut tx, t, params, origin, wake).await?;
    tx.commit().await.db()?;
    Ok(out)
}

/// Notifies each queue of the text array `$2` on channel `$1`.
pub(crate) const NOTIFY_QUEUES_SQL: &str = "SELECT pg_notify($1, q) FROM unnest($2::text[]) q";

/// The queues in which `inserted` made jobs available, each once.
pub(crate) fn available_queues(inserted: &[InsertedJob]) -> Vec<&str> {
    let mut queues: Vec<&str> = inserted
        .iter()
        .filter(|i| i.inserted && i.job.state == JobState::Available)
        .map(|i| i.job.queue.as_str())
        .collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

// ------------------------------------------------------------------ read --

/// One job by id.
pub(crate) async fn get(pool: &PgPool, t: &Tables, id: i64) -> Result<Option<Job>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE id = $1",
        t.jobs
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .db()?;
    row.as_ref().map(job_from_row).transpose()
}

/// Lists jobs on `conn`, newest first.
pub(crate) async fn list(
    conn: &mut PgConnection,
    t: &Tables,
    p: &JobListParams,
) -> Result<Vec<Job>> {
    if p.ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let limit = if p.limit == 0 || p.limit > MAX_LIST_LIMIT {
        MAX_LIST_LIMIT
    } else {
        p.limit
    };
    let mut sql = format!("SELECT * FROM {} WHERE true", t.jobs);
    if !p.states.is_empty() {
        // States are inlined as literals (an enum's names, never user
        // text), so the planner can match the per-state partial indexes
        // even when it reuses a generic plan.
        let states: Vec<String> = p
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        sql.push_str(&format!(" AND state IN ({})", states.join(", ")));
    }
    let mut n = 0;
    let mut param = |clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    // The hash is the leading key of the index of a queue's available
    // jobs (migration 8), the only index by queue; other listings would
    // only hash every row they read. The name itself decides.
    let by_hash = p.queue.is_some() && p.states.as_slice() == [JobState::Available];
    if by_hash {
        param(" AND hashtextextended(queue, 0) = hashtextextended(?, 0)");
    }
    if p.queue.is_some() {
        param(" AND queue = ?");
    }
    if p.kind.is_some() {
        param(" AND kind = ?");
    }
    if !p.attributes.is_empty() {
        // The second condition lets the partial GIN index apply.
        param(" AND attributes @> ?::jsonb AND attributes <> '{}'::jsonb");
    }
    if p.ids.is_some() {
        param(" AND id = ANY(?::bigint[])");
    }
    if p.execution_id.is_some() {
        param(" AND execution_id = ?");
    }
    if p.schedule_id.is_some() {
        param(" AND schedule_id = ?");
    }
    if p.before_id.is_some() {
        param(" AND id < ?");
    }
    param(" ORDER BY id DESC LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(queue) = &p.queue {
        if by_hash {
            q = q.bind(queue.as_str());
        }
        q = q.bind(queue.as_str());
    }
    if let Some(kind) = &p.kind {
        q = q.bind(kind.as_str());
    }
    if !p.attributes.is_empty() {
        q = q.bind(Json(&p.attributes));
    }
    if let Some(ids) = &p.ids {
        q = q.bind(ids.as_slice());
    }
    if let Some(execution_id) = p.execution_id {
        q = q.bind(execution_id);
    }
    if let Some(schedule_id) = p.schedule_id {
        q = q.bind(schedule_id);
    }
    if let Some(before) = p.before_id {
        q = q.bind(before);
    }
    let rows = q.bind(i64::from(limit)).fetch_all(&mut *conn).await.db()?;
    jobs_from_rows(&rows)
}

/// Jobs per queue and state.
pub(crate) async fn count(pool: &PgPool, t: &Tables) -> Result<Vec<JobCount>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT queue, state, count(*) AS n FROM {} GROUP BY queue, state ORDER BY queue, state",
        t.jobs
    )))
    .fetch_all(pool)
    .await
    .db()?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state").db()?;
            Ok(JobCount {
                queue: r.try_get("queue").db()?,
                state: state_from_str(&state)?,
                count: r.try_get("n").db()?,
            })
        })
        .collect()
}

/// Running jobs whose lease expired before `now`.
pub(crate) async fn list_expired(
    pool: &PgPool,
    t: &Tables,
    p: &JobExpiredParams,
) -> Result<Vec<Job>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM {} WHERE state = 'running' AND lease_expires_at < $1
         ORDER BY lease_expires_at, id LIMIT $2",
        t.jobs
    )))
    .bind(ts(p.now))
    .bind(i64::from(p.limit))
    .fetch_all(pool)
    .await
    .db()?;
    jobs_from_rows(&rows)
}

// ----------------------------------------------------------------- claim --

/// The claim statement: [`claim`]'s parameters in order `queue, labels,
/// max, token, expires, now, node, kinds`.
fn claim_sql(t: &Tables) -> String {
    // Rows come back in update order; the caller gets claim order.
    //
    // The claim commits without waiting for its WAL flush (the setting is
    // local to the statement's own transaction, and read at its commit).
    // It is visible to every session at once, and the next durable commit
    // on the server (any enqueue or finish) flushes it too. Only a crash
    // of the server within three WAL writer delays (600 ms by default),
    // or a failover to an asynchronous standby, can undo it: the job is
    // then available again at its old attempt, the run's finish is
    // refused by its lease token, and the job runs again, as after any
    // lost lease. Waiting for the flush cost every pick-up
    // one `fdatasync`, the longest part of enqueue -> start latency.
    format!(
        "SELECT c.* FROM {claim}($1, $2::jsonb, $8::text[], $3, $4, $5, $6, $7) c,
                         set_config('synchronous_commit', 'off', true) s
         ORDER BY c.priority, c.run_at, c.id",
        claim = t.claim,
    )
}

/// Readies a new pool connection for the hot statements: runs a claim of
/// no jobs, bound as [`claim`] binds (`claim_query`), which prepares the
/// statement, loads the server's catalog caches for the job table and its
/// indexes, and compiles the claim function. Measured: a fresh
/// connection's first claim took 4-12 ms instead of ~0.5, and a pool opens
/// several connections in a worker's first seconds, which set the
/// latency's p99.
///
/// Call only once the schema is migrated: a statement prepared before a
/// migration changes the job row fails afterwards ("cached plan must not
/// change result type"). The claim gives up after 200 ms waiting for a
/// lock (another node's migration may hold one), and its failure is only
/// logged: the connection works without. An error is returned only when
/// the connection's own lock timeout cannot be set or restored.
pub(crate) async fn warm(
    conn: &mut PgConnection,
    t: &Tables,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SET lock_timeout = '200ms'")
        .execute(&mut *conn)
        .await?;
    let none = JobClaimParams {
        queue: String::new(),
        max: 0,
        node_id: String::new(),
        node_labels: BTreeMap::new(),
        kinds: None,
        lease_token: 0,
        lease_expires_at: jiff::Timestamp::UNIX_EPOCH,
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    let sql = claim_sql(t);
    let claimed = claim_query(&sql, &none).execute(&mut *conn).await;
    sqlx::query("RESET lock_timeout")
        .execute(&mut *conn)
        .await?;
    if let Err(e) = claimed {
        tracing::debug!(error = %e, "new connection not readied for claims");
    }
    Ok(())
}

/// Claims up to `max` available jobs of one queue with `FOR UPDATE SKIP
/// LOCKED`.
///
/// The statement is the PL/pgSQL function `rota_claim` (migration 6), so
/// that its plan cannot depend on the table's statistics, which are stale
/// right after a bulk load or once a backlog builds up: its planner
/// settings leave an ordered walk of the claim index as the only plan
/// (stale statistics had made it a bitmap scan of the whole queue plus a
/// sort), and the UPDATE finds its rows by `id = ANY(ARRAY(...))`, an index
/// probe per id. Written as a join on the candidates, the UPDATE was
/// planned as a hash join over the whole table (a sequential scan, dead
/// rows included): 38 ms instead of 11 ms per 1,000-job claim on a
/// 100,000-job queue.
pub(crate) async fn claim(pool: &PgPool, t: &Tables, p: &JobClaimParams) -> Result<Vec<Job>> {
    if p.max == 0 {
        return Ok(Vec::new());
    }
    let sql = claim_sql(t);
    let rows =
        retry_deadlocks(|| async { claim_query(&sql, p).fetch_all(pool).await.db() }).await?;
    jobs_from_rows(&rows)
}

/// [`claim_sql`] with `p` bound: one binding for the claim and [`warm`],
/// so the statement `warm` prepares is the one claims reuse.
fn claim_query<'q>(
    sql: &'q str,
    p: &'q JobClaimParams,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(p.queue.as_str())
        .bind(Json(&p.node_labels))
        .bind(i64::from(p.max))
        .bind(p.lease_token)
        .bind(ts(p.lease_expires_at))
        .bind(ts(p.now))
        .bind(p.node_id.as_str())
        .bind(p.kinds.as_deref())
}

// ---------------------------------------------------------------- finish --

/// The `WHERE` test of finishes and heartbeats, on the job row `j`: the
/// job is still `running` in the run the input row `i` names.
///
/// `state` is tested through `CASE` on purpose. A plain `state = 'running'`
/// makes the partial index of leases (`rota_jobs_lease_idx`) a candidate,
/// and the planner used it: every finish read every running job and hashed
/// them; a leaner variant of the finish, planned after autovacuum's ANALYZE
/// (whose statistics promised few running jobs), rescanned the input array
/// once per running job and cost a quarter of PostgreSQL's processing
/// throughput (docs/benchmarks.md, round 12). Without it the only cheap
/// plan is a primary-key probe per input row, whatever the statistics say.
const RUN_FENCE: &str = "j.id = i.id AND j.lease_token = i.lease_token
              AND CASE j.state WHEN 'running' THEN true ELSE false END";

fn finish_sql(t: &Tables) -> String {
    format!(
        "WITH input AS (
            SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[],
                                 $5::integer[], $6::timestamptz[], $7::timestamptz[],
                                 $8::jsonb[], $9::text[], $10::jsonb[], $11::integer[])
                AS u(id, lease_token, expired_before, state, attempt, run_at, finished_at,
                     error, output, progress, exit_code)
        ), ex AS (
            SELECT execution_id FROM {jobs}
            WHERE id = ANY($1::bigint[]) AND execution_id IS NOT NULL
        ), jl AS (
            -- Jobs before executions (see lock_executions_cte); only when
            -- some job has an execution, else no lock is taken but the
            -- UPDATE's own.
            SELECT id FROM {jobs}
            WHERE id = ANY($1::bigint[]) AND EXISTS (SELECT 1 FROM ex)
            ORDER BY id
            FOR NO KEY UPDATE
        ), lk AS ({lock}), upd AS (
            UPDATE {jobs} j SET
                state = i.state,
                attempt = i.attempt,
                run_at = COALESCE(i.run_at, j.run_at),
                finished_at = i.finished_at,
                errors = CASE WHEN i.error IS NULL THEN j.errors
                              ELSE j.errors || jsonb_build_array(i.error) END,
                output = COALESCE(i.output, j.output),
                progress = COALESCE(i.progress, j.progress),
                exit_code = COALESCE(i.exit_code, j.exit_code),
                lease_token = NULL,
                lease_expires_at = NULL,
                revision = j.revision + 1
            FROM input i
            WHERE {RUN_FENCE}
              AND (i.expired_before IS NULL OR j.lease_expires_at < i.expired_before)
              AND (SELECT count(*) FROM lk) >= 0
            RETURNING j.id, j.state, j.queue
        ), notified AS (
            SELECT pg_notify($12, q.queue)
            FROM (SELECT DISTINCT queue FROM upd WHERE state = 'available') q
        )
        SELECT id FROM upd WHERE (SELECT count(*) FROM notified) >= 0",
        jobs = t.jobs,
        lock = lock_executions_cte(
            t,
            "SELECT execution_id FROM ex",
            "(SELECT count(*) FROM jl) >= 0"
        ),
    )
}

/// Applies one statement's worth of finishes (ids distinct); returns the ids
/// that applied.
async fn finish_round(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[&JobFinishParams],
) -> Result<HashSet<i64>> {
    let n = params.len();
    let mut id = Vec::with_capacity(n);
    let mut token = Vec::with_capacity(n);
    let mut expired_before = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut run_at = Vec::with_capacity(n);
    let mut finished_at = Vec::with_capacity(n);
    let mut error = Vec::with_capacity(n);
    let mut output = Vec::with_capacity(n);
    let mut progress = Vec::with_capacity(n);
    let mut exit_code = Vec::with_capacity(n);
    for p in params {
        id.push(p.id);
        token.push(p.lease_token);
        expired_before.push(ts_opt(p.lease_expired_before));
        state.push(p.state.as_str());
        attempt.push(int(p.attempt));
        run_at.push(ts_opt(p.run_at));
        finished_at.push(ts_opt(p.finished_at));
        error.push(p.error.as_ref().map(Json));
        output.push(p.output.as_deref());
        progress.push(p.progress.as_ref().map(Json));
        exit_code.push(p.exit_code);
    }
    let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(finish_sql(t)))
        .bind(id)
        .bind(token)
        .bind(expired_before)
        .bind(state)
        .bind(attempt)
        .bind(run_at)
        .bind(finished_at)
        .bind(error)
        .bind(output)
        .bind(progress)
        .bind(exit_code)
        .bind(&t.channel)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    Ok(ids.into_iter().collect())
}

/// Applies fenced finishes on `conn`; returns per input whether it applied.
/// Inputs repeating an id run in later statements, in input order.
pub(crate) async fn finish_on(
    conn: &mut PgConnection,
    t: &Tables,
    params: &[JobFinishParams],
) -> Result<Vec<FinishResult>> {
    let mut applied = vec![false; params.len()];
    let mut remaining: Vec<usize> = (0..params.len()).collect();
    while !remaining.is_empty() {
        let mut seen = HashSet::new();
        let (mut round, later): (Vec<usize>, Vec<usize>) =
            remaining.iter().partition(|&&i| seen.insert(params[i].id));
        // Rows locked in id order, as heartbeats lock them: the two never
        // wait on each other in opposite orders (a deadlock, which costs
        // `deadlock_timeout`).
        round.sort_unstable_by_key(|&i| params[i].id);
        let batch: Vec<&JobFinishParams> = round.iter().map(|&i| &params[i]).collect();
        let done = finish_round(conn, t, &batch).await?;
        for &i in &round {
            applied[i] = done.contains(&params[i].id);
        }
        remaining = later;
    }
    Ok(params
        .iter()
        .zip(applied)
        .map(|(p, applied)| FinishResult { id: p.id, applied })
        .collect())
}

/// Finishes in one transaction on a pooled connection.
pub(crate) async fn finish_many(
    pool: &PgPool,
    t: &Tables,
    params: Vec<JobFinishParams>,
) -> Result<Vec<FinishResult>> {
    if params.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = HashSet::new();
    let distinct = params.iter().all(|p| seen.insert(p.id));
    retry_deadlocks(|| async {
        if distinct {
            // Distinct ids: one statement, atomic without BEGIN/COMMIT.
            let mut conn = pool.acquire().await.db()?;
            return finish_on(&mut conn, t, &params).await;
        }
        let mut tx = pool.begin().await.db()?;
        let out = finish_on(&mut tx, t, &params).await?;
        tx.commit().await.db()?;
        Ok(out)
    })
    .await
}

// ------------------------------------------------------------- heartbeat --

/// Extends held leases; reports held / cancel-requested per input pair.
pub(crate) async fn heartbeat(
    pool: &PgPool,
    t: &Tables,
    p: &JobHeartbeatParams,
) -> Result<Vec<HeartbeatResult>> {
    if p.jobs.is_empty() {
        return Ok(Vec::new());
    }
    // Sorted by id, so two heartbeats never lock shared rows in opposite
    // orders. One that deadlocks against a finish or a rescue (seen in the
    // chaos test's server log) runs again rather than costing its leases.
    let mut pairs = p.jobs.clone();
    pairs.sort_unstable();
    let ids: Vec<i64> = pairs.iter().map(|(id, _)| *id).collect();
    let tokens: Vec<i64> = pairs.iter().map(|(_, tok)| *tok).collect();
    let sql = format!(
        "UPDATE {jobs} j SET lease_expires_at = $3
         FROM UNNEST($1::bigint[], $2::bigint[]) AS i(id, lease_token)
         WHERE {RUN_FENCE}
         RETURNING j.id, j.lease_token, j.cancel_requested_at IS NOT NULL AS cancel_requested",
        jobs = t.jobs
    );
    let rows = retry_deadlocks(|| async {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(&ids)
            .bind(&tokens)
            .bind(ts(p.lease_expires_at))
            .fetch_all(pool)
            .await
            .db()
    })
    .await?;
    let mut held: HashMap<(i64, i64), bool> = HashMap::with_capacity(rows.len());
    for r in &rows {
        held.insert(
            (r.try_get("id").db()?, r.try_get("lease_token").db()?),
            r.try_get("cancel_requested").db()?,
        );
    }
    Ok(p.jobs
        .iter()
        .map(|key| HeartbeatResult {
            id: key.0,
            held: held.contains_key(key),
            cancel_requested: held.get(key).copied().unwrap_or(false),
        })
        .collect())
}

/// Stores progress / output of a running job, fenced by lease token.
pub(crate) async fn checkin(
    pool: &PgPool,
    t: &Tables,
    p: &rota_driver::JobCheckinParams,
) -> Result<bool> {
    let res = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET progress = COALESCE($3, progress), output = COALESCE($4, output)
         WHERE id = $1 AND state = 'running' AND lease_token = $2",
        t.jobs
    )))
    .bind(p.id)
    .bind(p.lease_token)
    .bind(p.progress.as_ref().map(Json))
    .bind(p.output.as_deref())
    .execute(pool)
    .await
    .db()?;
    Ok(res.rows_affected() == 1)
}

// --------------------------------------------------- cancel/retry/delete --

/// The state of job `id`, or `NotFound`.
async fn current_state(pool: &PgPool, t: &Tables, id: i64) -> Result<JobState> {
    let state: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT state FROM {} WHERE id = $1",
        t.jobs
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .db()?;
    match state {
        Some(s) => state_from_str(&s),
        None => Err(DriverError::NotFound {
            entity: "job",
            id: id.to_string(),
        }),
    }
}

/// After a guarded single-row statement matched nothing: `NotFound`, or
/// `InvalidState` when the job's current state refuses `action`. `Ok` means
/// the state changed in between to one that allows it (try again).
async fn refusal(
    pool: &PgPool,
    t: &Tables,
    id: i64,
    action: &'static str,
    allowed: fn(JobState) -> bool,
) -> Result<()> {
    let state = current_state(pool, t, id).await?;
    if allowed(state) {
        Ok(())
    } else {
        Err(DriverError::InvalidState { id, state, action })
    }
}

/// Runs a guarded statement returning the changed job (if it matched).
async fn run_guarded(
    pool: &PgPool,
    sql: &str,
    id: i64,
    now: Option<PgTs>,
    channel: Option<&str>,
) -> Result<Option<Job>> {
    let row = retry_deadlocks(|| async {
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(id);
        if let Some(now) = now {
            q = q.bind(now);
        }
        if let Some(channel) = channel {
            q = q.bind(channel);
        }
        q.fetch_optional(pool).await.db()
    })
    .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// How often a guarded action is tried when the job's state keeps changing.
const GUARD_TRIES: usize = 3;

fn cancelable(s: JobState) -> bool {
    !s.is_finished()
}

fn retryable(s: JobState) -> bool {
    matches!(s, JobState::Scheduled | JobState::Retrying) || s.is_finished()
}

/// Cancel: waiting jobs end at once, running ones get `cancel_requested_at`.
pub(crate) async fn cancel(pool: &PgPool, t: &Tables, p: &JobCancelParams) -> Result<Job> {
    let sql = format!(
        "UPDATE {} SET
            state = CASE WHEN state = 'running' THEN state ELSE 'canceled' END,
            finished_at = CASE WHEN state = 'running' THEN finished_at ELSE $2 END,
            cancel_requested_at = CASE WHEN state = 'running'
                                       THEN COALESCE(cancel_requested_at, $2)
                                       ELSE cancel_requested_at END,
            revision = CASE WHEN state = 'running' AND cancel_requested_at IS NOT NULL
                            THEN revision ELSE revision + 1 END
         WHERE id = $1 AND state IN ('scheduled', 'available', 'retrying', 'running')
         RETURNING *",
        t.jobs
    );
    for _ in 0..GUARD_TRIES {
        if let Some(job) = run_guarded(pool, &sql, p.id, Some(ts(p.now)), None).await? {
            return Ok(job);
        }
        refusal(pool, t, p.id, "cancel", cancelable).await?;
    }
    Err(DriverError::Conflict(format!(
        "job {} kept changing state during cancel",
        p.id
    )))
}

/// Operator retry: scheduled / retrying / finished jobs become available now.
pub(crate) async fn retry(pool: &PgPool, t: &Tables, p: &JobRetryParams) -> Result<Job> {
    let sql = format!(
        "WITH u AS (
            UPDATE {jobs} SET
                state = 'available',
                run_at = $2,
                attempt = CASE WHEN state IN {FINISHED} THEN 0 ELSE attempt END,
                finished_at = NULL,
                cancel_requested_at = CASE WHEN state IN {FINISHED} THEN NULL
                                           ELSE cancel_requested_at END,
                lease_token = NULL,
                lease_expires_at = NULL,
                revision = revision + 1
            WHERE id = $1 AND state IN ('scheduled', 'retrying', 'succeeded', 'failed', 'canceled')
            RETURNING *
        ), notified AS (SELECT pg_notify($3, queue) FROM u)
        SELECT * FROM u WHERE (SELECT count(*) FROM notified) >= 0",
        jobs = t.jobs
    );
    for _ in 0..GUARD_TRIES {
        let res = run_guarded(pool, &sql, p.id, Some(ts(p.now)), Some(&t.channel)).await;
        match res {
            Ok(Some(job)) => return Ok(job),
            Ok(None) => refusal(pool, t, p.id, "retry", retryable).await?,
            Err(DriverError::Conflict(_)) => {
                return Err(DriverError::Conflict(format!(
                    "cannot retry job {}: its unique key is held by another unfinished job",
                    p.id
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Err(DriverError::Conflict(format!(
        "job {} kept changing state during retry",
        p.id
    )))
}

/// Deletes a finished job.
pub(crate) async fn delete(pool: &PgPool, t: &Tables, id: i64) -> Result<Job> {
    let sql = format!(
        "DELETE FROM {} WHERE id = $1 AND state IN {FINISHED} RETURNING *",
        t.jobs
    );
    for _ in 0..GUARD_TRIES {
        if let Some(job) = run_guarded(pool, &sql, id, None, None).await? {
            return Ok(job);
        }
        refusal(pool, t, id, "delete", JobState::is_finished).await?;
    }
    Err(DriverError::Conflict(format!(
        "job {id} kept changing state during delete"
    )))
}

// ------------------------------------------------------ promote / prune --

/// Makes due scheduled / retrying jobs available; counts per queue. The
/// candidates come from `rota_due_candidates` (migration 6), in
/// `(run_at, id)` order, planned without the table's statistics like the
/// claim.
pub(crate) async fn promote_due(
    pool: &PgPool,
    t: &Tables,
    p: &JobPromoteParams,
) -> Result<Vec<QueueCount>> {
    if p.limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH due AS MATERIALIZED (
            SELECT id, execution_id FROM {due}($1, $2)
        ), lk AS ({lock}), u AS (
            UPDATE {jobs} j SET state = 'available', revision = j.revision + 1
            WHERE j.id = ANY(ARRAY(SELECT id FROM due)) AND (SELECT count(*) FROM lk) >= 0
            RETURNING j.queue
        ), c AS (
            SELECT queue, count(*) AS n FROM u GROUP BY queue
        ), notified AS (SELECT pg_notify($3, queue) FROM c)
        SELECT queue, n FROM c WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY queue",
        jobs = t.jobs,
        due = t.due_candidates,
        lock = lock_executions_cte(t, "SELECT execution_id FROM due", "true"),
    );
    let rows = retry_deadlocks(|| async {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(ts(p.now))
            .bind(i64::from(p.limit))
            .bind(&t.channel)
            .fetch_all(pool)
            .await
            .db()
    })
    .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("n").db()?;
            Ok(QueueCount {
                queue: r.try_get("queue").db()?,
                count: u64::try_from(n).unwrap_or(0),
            })
        })
        .collect()
}

/// Deletes finished jobs older than a cut-off and/or beyond the newest N.
pub(crate) async fn prune(pool: &PgPool, t: &Tables, p: &JobPruneParams) -> Result<u64> {
    if p.limit == 0 || (p.finished_before.is_none() && p.keep_last.is_none()) {
        return Ok(0);
    }
    // Jobs of executions are left to execution retention (`execution_prune`)
    // so a finished execution's figures never change under job pruning;
    // `keep_last` counts the other finished jobs.
    let sql = format!(
        "WITH victims AS (
            SELECT j.id FROM {jobs} j
            WHERE j.state IN {FINISHED} AND j.execution_id IS NULL
              AND (($1::timestamptz IS NOT NULL AND j.finished_at < $1)
                OR ($2::bigint IS NOT NULL AND (j.finished_at, j.id) <= (
                      SELECT k.finished_at, k.id FROM {jobs} k
                      WHERE k.state IN {FINISHED} AND k.execution_id IS NULL
                      ORDER BY k.finished_at DESC, k.id DESC OFFSET $2 LIMIT 1)))
            ORDER BY j.finished_at, j.id
            LIMIT $3
        )
        DELETE FROM {jobs} WHERE id IN (SELECT id FROM victims)",
        jobs = t.jobs,
    );
    let keep = p.keep_last.map(|k| i64::try_from(k).unwrap_or(i64::MAX));
    let res = sqlx::query(AssertSqlSafe(sql))
        .bind(ts_opt(p.finished_before))
        .bind(keep)
        .bind(i64::from(p.limit))
        .execute(pool)
        .await
        .db()?;
    Ok(res.rows_affected())
}
