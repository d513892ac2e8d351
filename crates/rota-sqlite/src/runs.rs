//! Job SQL of runs: claim, finish, heartbeat, check-in, expired leases and
//! promotion of due jobs. Writes are fenced by the run's lease token.

use std::collections::{BTreeMap, HashMap};

use rota_core::{Job, JobState};
use rota_driver::{
    DriverError, FinishResult, HeartbeatResult, JobCheckinParams, JobClaimParams, JobExpiredParams,
    JobFinishParams, JobHeartbeatParams, JobPromoteParams, QueueCount, Result,
};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use crate::bind::{Param, bind_all};
use crate::change_effects::Changes;
use crate::error::{map_native, map_sqlx};
use crate::raw_rows::RawRows;
use crate::row::{
    Columns, EXECUTION_ID_COLUMN, FINISHED_AT_COLUMN, JOB_COLUMN_COUNT, job_columns, job_from_row,
    jobs_from_rows, micros, opt_micros, parse_state, timestamp, to_json,
};
use crate::savepoint;

/// Rows per batched `UPDATE ... FROM (VALUES ...)` statement.
pub(crate) const CHUNK: usize = 512;

/// The row count a batch of `n` is padded to (with all-NULL rows, which
/// match no job): a power of two, so at most ten statement shapes exist and
/// all stay in the connection's prepared-statement cache. Unpadded, every
/// distinct batch size was a fresh prepare of a statement with thousands
/// of parameters.
fn padded(n: usize) -> usize {
    n.next_power_of_two().min(CHUNK)
}

/// The claim's choice: up to `?3` available jobs of queue `?1` that a node
/// with labels `?2` (JSON object) running kinds `?4` (JSON array, or NULL
/// for all) may take, in claim order, unless the queue is paused. The limit
/// is `?3 + 0`, not a bare `?3`: SQLite plans with a bare bound LIMIT's
/// value, so every new binding re-prepared the whole statement (~0.4 ms,
/// most of an idle worker's pick-up time); an expression is not looked
/// into.
pub(crate) const CLAIM_SELECT_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM rota_jobs j INDEXED BY rota_jobs_claim_idx \
     WHERE j.state = 'available' AND j.queue = ?1 AND j.attempt < j.max_attempts \
     AND (j.labels = '{}' OR NOT EXISTS (SELECT 1 FROM json_each(j.labels) l \
         WHERE l.value IS NOT (SELECT n.value FROM json_each(?2) n WHERE n.key = l.key))) \
     AND (?4 IS NULL OR j.kind IN (SELECT value FROM json_each(?4))) \
     AND NOT EXISTS (SELECT 1 FROM rota_queues q WHERE q.name = ?1 AND q.paused_at IS NOT NULL) \
     ORDER BY j.priority, j.run_at, j.id LIMIT ?3 + 0"
);

/// The claim's write: the chosen jobs (ids in the JSON array `?5`) start a
/// run with lease token `?1`, expiry `?2`, start `?3` on node `?4`. What it
/// sets, [`claimed`] sets on the chosen rows as read.
pub(crate) const CLAIM_UPDATE_SQL: &str = "UPDATE rota_jobs SET state = 'running', \
     attempt = attempt + 1, lease_token = ?1, lease_expires_at = ?2, started_at = ?3, node = ?4, \
     revision = revision + 1 WHERE id IN (SELECT value FROM json_each(?5)) AND state = 'available'";

/// Claims up to `max` available jobs of one queue on the writer's native
/// connection; returns them in claim order (priority, `run_at`, id).
pub(crate) fn claim_native(conn: &rusqlite::Connection, p: &JobClaimParams) -> Result<Vec<Job>> {
    decode_claimed(&claim_rows_native(conn, p)?, p)
}

/// The writer's part of a claim: marks up to `max` available jobs of one
/// queue running and returns their rows, as read, in claim order, for
/// [`decode_claimed`] on the caller's thread.
///
/// Two statements, a read and an update, in one transaction: one `UPDATE
/// ... RETURNING` passes every returned row through a temporary table
/// before handing it out, which cost 7.1k of 63.7k instructions per job,
/// claim plus finish (`sqlite_costs`). The claim's effects (outbox rows,
/// execution counters: [`Changes`]) are written in the same transaction.
pub(crate) fn claim_rows_native(
    conn: &rusqlite::Connection,
    p: &JobClaimParams,
) -> Result<RawRows> {
    let mut rows = RawRows::with_capacity(JOB_COLUMN_COUNT, (p.max as usize).min(1024));
    if p.max == 0 {
        return Ok(rows);
    }
    let now = micros(p.now);
    atomically(conn, || {
        let mut ids = Vec::with_capacity((p.max as usize).min(1024));
        let mut changes = Changes::default();
        {
            let mut st = conn.prepare_cached(CLAIM_SELECT_SQL).map_err(map_native)?;
            let mut read = st
                .query(rusqlite::params![
                    p.queue,
                    to_json(&p.node_labels)?,
                    i64::from(p.max),
                    p.kinds.as_ref().map(to_json).transpose()?,
                ])
                .map_err(map_native)?;
            while let Some(r) = read.next().map_err(map_native)? {
                let id = r.req_int(0, "id")?;
                ids.push(id);
                rows.push(r)?;
                // What the execution's `updated_at` moves to: the job's
                // finish if it has one, else the run's start.
                let at = r.int(FINISHED_AT_COLUMN, "finished_at")?.unwrap_or(now);
                let execution = r.int(EXECUTION_ID_COLUMN, "execution_id")?;
                changes.moved(id, execution, JobState::Available, JobState::Running, at);
            }
        }
        if ids.is_empty() {
            return Ok(Some(()));
        }
        let ids_json = to_json(&ids)?;
        let changed = conn
            .prepare_cached(CLAIM_UPDATE_SQL)
            .and_then(|mut st| {
                st.execute(rusqlite::params![
                    p.lease_token,
                    micros(p.lease_expires_at),
                    now,
                    p.node_id,
                    ids_json
                ])
            })
            .map_err(map_native)?;
        if changed != ids.len() {
            // Cannot happen inside the write transaction; never hand out a
            // job that is not marked running.
            return Err(DriverError::Database(format!(
                "claimed {} jobs but marked {changed} running",
                ids.len()
            )));
        }
        changes.write_native(conn)?;
        Ok(Some(()))
    })?;
    Ok(rows)
}

/// Decodes the rows of [`claim_rows_native`] into the jobs as the claim
/// left them.
pub(crate) fn decode_claimed(rows: &RawRows, p: &JobClaimParams) -> Result<Vec<Job>> {
    let (expires, now) = (micros(p.lease_expires_at), micros(p.now));
    rota_driver::try_collect_exact((0..rows.len()).map(|k| {
        let mut job = job_from_row(&rows.row(k))?;
        claimed(&mut job, p, expires, now)?;
        Ok(job)
    }))
}

/// Sets on a chosen job, as read, what [`CLAIM_UPDATE_SQL`] wrote: the
/// times as stored (whole microseconds).
fn claimed(job: &mut Job, p: &JobClaimParams, expires: i64, now: i64) -> Result<()> {
    job.state = JobState::Running;
    job.attempt += 1;
    job.lease_token = Some(p.lease_token);
    job.lease_expires_at = Some(timestamp("lease_expires_at", expires)?);
    job.started_at = Some(timestamp("started_at", now)?);
    job.node = Some(p.node_id.clone());
    job.revision += 1;
    Ok(())
}

/// Runs `f` atomically on `conn`: in a transaction of its own when `conn`
/// has none, begun `IMMEDIATE` (`f` may read before it writes, and a
/// deferred transaction cannot take the write lock after a foreign
/// commit); else in a savepoint of the caller's transaction. Keeps what `f`
/// did when it returns `Some`; rolls it back when it returns `None` or
/// fails, leaving no transaction or savepoint of its own open.
fn atomically<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(map_native)
    };
    let own = conn.is_autocommit();
    let (begin, end) = if own {
        ("BEGIN IMMEDIATE", "COMMIT")
    } else {
        ("SAVEPOINT rota_atomically", "RELEASE rota_atomically")
    };
    exec(begin)?;
    let kept = match f() {
        Ok(Some(v)) => exec(end).map(|_| Some(v)),
        other => other,
    };
    if !matches!(kept, Ok(Some(_))) {
        let undone = if own {
            exec("ROLLBACK")
        } else {
            exec("ROLLBACK TO rota_atomically").and_then(|_| exec("RELEASE rota_atomically"))
        };
        // An error of `f` (or of the commit) is the one returned; an undo
        // that failed after a clean `None` is reported itself.
        if let (Ok(None), Err(e)) = (&kept, undone) {
            return Err(e);
        }
    }
    kept
}

/// `n` rows of `(?, ?, ...)` with `width` parameters each.
fn values_rows(n: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; n].join(", ")
}

/// The batched finish of `n` runs: a `VALUES` table joined by id and lease
/// token (and optional expiry fence), appending the error to the JSON array.
pub(crate) fn finish_sql(n: usize) -> String {
    format!(
        "WITH p(id, tok, expired_before, state, attempt, run_at, finished_at, err, output, progress, exit_code) \
         AS (VALUES {}) \
         UPDATE rota_jobs SET state = p.state, attempt = p.attempt, \
         run_at = COALESCE(p.run_at, rota_jobs.run_at), \
         finished_at = COALESCE(p.finished_at, rota_jobs.finished_at), \
         errors = CASE WHEN p.err IS NULL THEN rota_jobs.errors \
             ELSE json_insert(rota_jobs.errors, '$[#]', json(p.err)) END, \
         output = COALESCE(p.output, rota_jobs.output), progress = COALESCE(p.progress, rota_jobs.progress), \
         exit_code = COALESCE(p.exit_code, rota_jobs.exit_code), lease_token = NULL, lease_expires_at = NULL, \
         revision = rota_jobs.revision + 1 \
         FROM p WHERE rota_jobs.id = p.id AND rota_jobs.state = 'running' AND rota_jobs.lease_token = p.tok \
         AND (p.expired_before IS NULL OR rota_jobs.lease_expires_at < p.expired_before) \
         {RETURNING}",
        values_rows(n, 11)
    )
}

/// The batched finish of `n` plain successes (no error, output, progress,
/// exit code, new run time or expiry fence): half the work of
/// [`finish_sql`] per row, and the common case. Same result columns.
pub(crate) fn succeed_sql(n: usize) -> String {
    format!("{} {RETURNING}", succeed_body(n, ""))
}

/// What the finishes that return rows return of each job that applied:
/// read by [`Finished::row`] in this order.
const RETURNING: &str = "RETURNING rota_jobs.id AS id, rota_jobs.queue AS queue, \
     rota_jobs.state AS state, rota_jobs.execution_id AS execution_id, \
     COALESCE(rota_jobs.finished_at, rota_jobs.started_at, rota_jobs.created_at) AS at";

/// [`succeed_sql`] without its `RETURNING` clause. When every run applies,
/// as nearly always, the count of changed rows says all that the returned
/// rows would, and SQLite does not pass each row through a temporary
/// table to return it: 4.9k of 63.7k instructions per job, claim plus
/// finish (`sqlite_costs`, see docs/benchmarks.md).
///
/// It also tests each job's execution against the caller's (`exec`), which
/// the finish's effects are then written for: a wrong one makes it change
/// fewer rows than it carries, and [`succeed_sql`] runs instead. The
/// `RETURNING` forms test no execution; they return it.
pub(crate) fn succeed_quiet_sql(n: usize) -> String {
    succeed_body(n, " AND rota_jobs.execution_id IS p.exec")
}

/// The plain-success finish of `n` runs, five parameters per row, with
/// `fence` added to its `WHERE`.
fn succeed_body(n: usize, fence: &str) -> String {
    format!(
        "WITH p(id, tok, attempt, finished_at, exec) AS (VALUES {}) \
         UPDATE rota_jobs SET state = 'succeeded', attempt = p.attempt, finished_at = p.finished_at, \
         lease_token = NULL, lease_expires_at = NULL, revision = rota_jobs.revision + 1 \
         FROM p WHERE rota_jobs.id = p.id AND rota_jobs.state = 'running' AND rota_jobs.lease_token = p.tok{fence}",
        values_rows(n, 5)
    )
}

/// Whether `f` can take [`succeed_sql`].
fn is_plain_success(f: &JobFinishParams) -> bool {
    f.state == JobState::Succeeded
        && f.lease_expired_before.is_none()
        && f.run_at.is_none()
        && f.finished_at.is_some()
        && f.error.is_none()
        && f.output.is_none()
        && f.progress.is_none()
        && f.exit_code.is_none()
}

/// The batched lease extension of `n` `(id, token)` pairs; the new expiry
/// is the last parameter.
pub(crate) fn heartbeat_sql(n: usize) -> String {
    format!(
        "WITH p(id, tok) AS (VALUES {}) UPDATE rota_jobs SET lease_expires_at = ? FROM p \
         WHERE rota_jobs.id = p.id AND rota_jobs.lease_token = p.tok AND rota_jobs.state = 'running' \
         RETURNING rota_jobs.id AS id, rota_jobs.cancel_requested_at IS NOT NULL AS cancel",
        values_rows(n, 2)
    )
}

/// A batch of finishes, prepared before it reaches a connection: plain
/// successes take [`succeed_sql`], the rest [`finish_sql`], in chunks of
/// [`CHUNK`] rows padded to a power of two. Built by the caller's task, so
/// the single writer only executes it.
pub(crate) struct FinishPlan {
    statements: Vec<FinishStatement>,
}

/// One statement of a [`FinishPlan`].
struct FinishStatement {
    sql: String,
    /// The same statement without `RETURNING`, tried first on the native
    /// connection (see [`finish_quietly`]).
    quiet: Option<String>,
    values: Vec<Param>,
    /// The `(job id, position in the caller's input)` of the finishes it
    /// carries, sorted, no id twice: a returned row is credited to the
    /// input that applied it (found by binary search), whatever order the
    /// two statement kinds run in.
    inputs: Vec<(i64, usize)>,
}

/// One statement per [`CHUNK`] of `rows` (input position, finish), each
/// `sql(width)` with the chunk padded to a power-of-two `width` by
/// all-NULL rows (which match no job); `encode` gives a finish's `W`
/// parameters.
fn chunk_statements<const W: usize>(
    rows: &[(usize, &JobFinishParams)],
    sql: fn(usize) -> String,
    quiet: Option<fn(usize) -> String>,
    encode: impl Fn(&JobFinishParams) -> Result<[Param; W]>,
) -> Result<Vec<FinishStatement>> {
    rows.chunks(CHUNK)
        .map(|chunk| {
            let width = padded(chunk.len());
            let mut values = Vec::with_capacity(width * W);
            for (_, f) in chunk {
                values.extend(encode(f)?);
            }
            values.resize(width * W, Param::Int(None));
            let mut inputs: Vec<(i64, usize)> = chunk.iter().map(|(i, f)| (f.id, *i)).collect();
            inputs.sort_unstable();
            Ok(FinishStatement {
                sql: sql(width),
                quiet: quiet.map(|q| q(width)),
                values,
                inputs,
            })
        })
        .collect()
}

impl FinishPlan {
    /// Plans `params`; refuses finishes to `running` (a finish ends a run).
    pub(crate) fn new(params: &[JobFinishParams]) -> Result<FinishPlan> {
        if let Some(bad) = params.iter().find(|p| p.state == JobState::Running) {
            return Err(DriverError::InvalidState {
                id: bad.id,
                state: JobState::Running,
                action: "finish to running",
            });
        }
        let mut statements = Vec::new();
        for round in rounds(params) {
            statements.extend(round_statements(&round)?);
        }
        Ok(FinishPlan { statements })
    }

    /// Whether the plan is one finish statement: then it is atomic by
    /// itself, its effects written in the same transaction (see
    /// [`finish_many_native`]).
    pub(crate) fn is_one_statement(&self) -> bool {
        self.statements.len() == 1
    }
}

/// `params` (with their input positions) in rounds in which no id
/// repeats: an id's first finish in the first round, its second in the
/// second, and so on. An `UPDATE ... FROM` applies one of several rows of
/// one id and does not say which, so each runs in a later statement, in
/// input order, and the first that finds the run still running applies.
fn rounds(params: &[JobFinishParams]) -> Vec<Vec<(usize, &JobFinishParams)>> {
    let mut seen: HashMap<i64, usize> = HashMap::with_capacity(params.len());
    let mut rounds: Vec<Vec<(usize, &JobFinishParams)>> = Vec::new();
    for (i, f) in params.iter().enumerate() {
        let round = seen.entry(f.id).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        if let Some(r) = rounds.get_mut(*round) {
            r.push((i, f));
        }
        *round += 1;
    }
    rounds
}

/// The statements of one round of [`rounds`]: plain successes, then the
/// rest.
fn round_statements(rows: &[(usize, &JobFinishParams)]) -> Result<Vec<FinishStatement>> {
    let (plain, full): (Vec<(usize, &JobFinishParams)>, Vec<_>) =
        rows.iter().partition(|(_, f)| is_plain_success(f));
    let mut statements = chunk_statements(&plain, succeed_sql, Some(succeed_quiet_sql), |f| {
        Ok([
            Param::from(f.id),
            Param::from(f.lease_token),
            Param::from(i64::from(f.attempt)),
            Param::from(opt_micros(f.finished_at)),
            Param::from(f.execution_id),
        ])
    })?;
    statements.extend(chunk_statements(&full, finish_sql, None, |f| {
        Ok([
            Param::from(f.id),
            Param::from(f.lease_token),
            Param::from(opt_micros(f.lease_expired_before)),
            Param::from(f.state.as_str()),
            Param::from(i64::from(f.attempt)),
            Param::from(opt_micros(f.run_at)),
            Param::from(opt_micros(f.finished_at)),
            Param::from(f.error.as_ref().map(to_json).transpose()?),
            Param::from(f.output.as_deref()),
            Param::from(f.progress.as_ref().map(to_json).transpose()?),
            Param::from(f.exit_code.map(i64::from)),
        ])
    })?);
    Ok(statements)
}

/// What finishing a batch did: per input whether it applied (a repeated id
/// applies once), and the queues that got an `available` job back.
struct Finished<'p> {
    params: &'p [JobFinishParams],
    applied: Vec<bool>,
    woken: Vec<String>,
}

impl<'p> Finished<'p> {
    fn new(params: &'p [JobFinishParams]) -> Self {
        Finished {
            params,
            applied: vec![false; params.len()],
            woken: Vec::new(),
        }
    }

    /// One row ([`RETURNING`]) returned by the statement carrying
    /// `inputs`; credited to its first input with that id, its change
    /// added to `changes`.
    fn row(
        &mut self,
        row: &impl Columns,
        inputs: &[(i64, usize)],
        changes: &mut Changes,
    ) -> Result<()> {
        let id = row.req_int(0, "id")?;
        let state = row.state(2, "state")?;
        if state == JobState::Available {
            self.woken.push(row.req_text(1, "queue")?);
        }
        let execution = row.int(3, "execution_id")?;
        changes.moved(
            id,
            execution,
            JobState::Running,
            state,
            row.req_int(4, "at")?,
        );
        let from = inputs.partition_point(|(i, _)| *i < id);
        if let Some((_, pos)) = inputs[from..]
            .iter()
            .take_while(|(i, _)| *i == id)
            .find(|(_, pos)| !self.applied[*pos])
        {
            self.applied[*pos] = true;
        }
        Ok(())
    }

    fn results(self) -> (Vec<FinishResult>, Vec<String>) {
        let results = self
            .params
            .iter()
            .zip(self.applied)
            .map(|(f, applied)| FinishResult { id: f.id, applied })
            .collect();
        (results, self.woken)
    }
}

/// Applies finishes fenced by lease token (and optionally lease expiry).
/// Returns per input whether it applied, plus the queues that got an
/// `available` job (hand-backs) for wake-ups.
///
/// The finishes and their effects commit together: in a savepoint, which
/// is a transaction of its own when `conn` is in none.
pub(crate) async fn finish_many(
    conn: &mut SqliteConnection,
    params: &[JobFinishParams],
) -> Result<(Vec<FinishResult>, Vec<String>)> {
    let plan = FinishPlan::new(params)?;
    savepoint::begin(conn).await?;
    let mut done = Finished::new(params);
    let ran = finish_statements(conn, plan, &mut done).await;
    savepoint::end(conn, ran).await?;
    Ok(done.results())
}

/// [`finish_many`]'s statements and their effects.
async fn finish_statements(
    conn: &mut SqliteConnection,
    plan: FinishPlan,
    done: &mut Finished<'_>,
) -> Result<()> {
    let mut changes = Changes::default();
    for st in plan.statements {
        let q = bind_all(sqlx::query(AssertSqlSafe(st.sql)), st.values);
        for r in &q.fetch_all(&mut *conn).await.map_err(map_sqlx)? {
            done.row(r, &st.inputs, &mut changes)?;
        }
    }
    changes.write(conn).await
}

/// Runs a [`FinishPlan`] of `params` on the writer's native connection.
pub(crate) fn finish_many_native(
    conn: &rusqlite::Connection,
    plan: FinishPlan,
    params: &[JobFinishParams],
) -> Result<(Vec<FinishResult>, Vec<String>)> {
    let mut done = Finished::new(params);
    for st in plan.statements {
        if let Some(quiet) = &st.quiet
            && finish_quietly(conn, quiet, &st, params)?
        {
            // Every run of the statement applied (none goes back to
            // `available`, so no queue to wake).
            for &(_, pos) in &st.inputs {
                done.applied[pos] = true;
            }
            continue;
        }
        let mut run = || {
            let mut changes = Changes::default();
            let mut prepared = conn.prepare_cached(&st.sql).map_err(map_native)?;
            let mut rows = prepared
                .query(rusqlite::params_from_iter(st.values.iter()))
                .map_err(map_native)?;
            while let Some(r) = rows.next().map_err(map_native)? {
                done.row(r, &st.inputs, &mut changes)?;
            }
            changes.write_native(conn)
        };
        // The statement and its effects, together: in the writer's
        // transaction when there is one (its failure undoes the whole
        // operation), else in one of their own.
        if conn.is_autocommit() {
            atomically(conn, || run().map(Some))?;
        } else {
            run()?;
        }
    }
    Ok(done.results())
}

/// Runs `quiet`, the `RETURNING`-less form of `st`, [`atomically`] and
/// keeps it, with its effects, if it changed one row per job of `st`: then
/// every run applied, each in the execution its input names. Otherwise (a
/// stale lease, another execution) rolls it back and returns false, for
/// `st` itself to tell which applied.
fn finish_quietly(
    conn: &rusqlite::Connection,
    quiet: &str,
    st: &FinishStatement,
    params: &[JobFinishParams],
) -> Result<bool> {
    let kept = atomically(conn, || {
        let changed = conn
            .prepare_cached(quiet)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(st.values.iter())))
            .map_err(map_native)?;
        if changed != st.inputs.len() {
            return Ok(None);
        }
        let mut changes = Changes::default();
        for &(id, pos) in &st.inputs {
            let f = params
                .get(pos)
                .ok_or_else(|| DriverError::Database(format!("finish input {pos} out of range")))?;
            // A plain success always has a finish time.
            let at = opt_micros(f.finished_at).unwrap_or(i64::MIN);
            changes.moved(
                id,
                f.execution_id,
                JobState::Running,
                JobState::Succeeded,
                at,
            );
        }
        changes.write_native(conn)?;
        Ok(Some(()))
    })?;
    Ok(kept.is_some())
}

/// Extends the leases still held, on the writer's native connection;
/// reports cancellation requests.
pub(crate) fn heartbeat_many_native(
    conn: &rusqlite::Connection,
    p: &JobHeartbeatParams,
) -> Result<Vec<HeartbeatResult>> {
    let mut held: HashMap<i64, bool> = HashMap::new();
    for chunk in p.jobs.chunks(CHUNK) {
        let width = padded(chunk.len());
        let mut values = Vec::with_capacity(width * 2 + 1);
        for (id, token) in chunk {
            values.extend([Param::from(*id), Param::from(*token)]);
        }
        values.resize(width * 2, Param::Int(None));
        values.push(Param::from(micros(p.lease_expires_at)));
        let mut st = conn
            .prepare_cached(&heartbeat_sql(width))
            .map_err(map_native)?;
        let mut rows = st
            .query(rusqlite::params_from_iter(values.iter()))
            .map_err(map_native)?;
        while let Some(r) = rows.next().map_err(map_native)? {
            held.insert(r.req_int(0, "id")?, r.req_int(1, "cancel")? != 0);
        }
    }
    Ok(p.jobs
        .iter()
        .map(|(id, _)| match held.get(id) {
            Some(cancel) => HeartbeatResult {
                id: *id,
                held: true,
                cancel_requested: *cancel,
            },
            None => HeartbeatResult {
                id: *id,
                held: false,
                cancel_requested: false,
            },
        })
        .collect())
}

/// Stores progress and/or output of a running job, fenced by lease token.
pub(crate) async fn checkin(conn: &mut SqliteConnection, p: &JobCheckinParams) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE rota_jobs SET progress = COALESCE(?, progress), output = COALESCE(?, output) \
         WHERE id = ? AND state = 'running' AND lease_token = ?",
    )
    .bind(p.progress.as_ref().map(to_json).transpose()?)
    .bind(p.output.as_deref())
    .bind(p.id)
    .bind(p.lease_token)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?
    .rows_affected();
    Ok(n > 0)
}

/// Running jobs with an expired lease, by the rescue index.
pub(crate) const EXPIRED_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM rota_jobs INDEXED BY rota_jobs_lease_idx WHERE state = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at, id LIMIT ? + 0"
);

/// Running jobs whose lease expired before `now`, oldest expiry first.
pub(crate) async fn list_expired(
    conn: &mut SqliteConnection,
    p: &JobExpiredParams,
) -> Result<Vec<Job>> {
    let rows = sqlx::query(EXPIRED_SQL)
        .bind(micros(p.now))
        .bind(i64::from(p.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    jobs_from_rows(&rows)
}

/// The due jobs promotion takes, by the promotion index.
pub(crate) const PROMOTE_PICK_SQL: &str = "SELECT id, state FROM rota_jobs INDEXED BY rota_jobs_promote_idx \
     WHERE state IN ('scheduled', 'retrying') AND run_at <= ? ORDER BY run_at, id LIMIT ? + 0";

/// Promotion of the picked jobs (ids in a JSON array); returns what their
/// effects need.
const PROMOTE_SQL: &str = "UPDATE rota_jobs SET state = 'available', revision = revision + 1 \
     WHERE id IN (SELECT value FROM json_each(?)) AND state IN ('scheduled', 'retrying') \
     RETURNING id, queue, execution_id, COALESCE(finished_at, started_at, created_at) AS at";

/// Makes due scheduled and retrying jobs available, with the change's
/// effects (the writer's transaction holds them all); counts per queue.
pub(crate) async fn promote_due(
    conn: &mut SqliteConnection,
    p: &JobPromoteParams,
) -> Result<Vec<QueueCount>> {
    let picked: Vec<(i64, String)> = sqlx::query_as(PROMOTE_PICK_SQL)
        .bind(micros(p.now))
        .bind(i64::from(p.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let mut was: HashMap<i64, JobState> = HashMap::with_capacity(picked.len());
    for (id, state) in &picked {
        was.insert(*id, parse_state(state)?);
    }
    let ids: Vec<i64> = picked.iter().map(|(id, _)| *id).collect();
    let rows = sqlx::query(PROMOTE_SQL)
        .bind(to_json(&ids)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    let mut changes = Changes::default();
    for r in &rows {
        let id = r.req_int(0, "id")?;
        if let Some(from) = was.get(&id) {
            let execution = r.int(2, "execution_id")?;
            changes.moved(
                id,
                execution,
                *from,
                JobState::Available,
                r.req_int(3, "at")?,
            );
        }
    }
    changes.write(conn).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.req_text(1, "queue")?).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|(queue, count)| QueueCount { queue, count })
        .collect())
}

/// Finishes one run on the caller's connection, fenced by its lease token:
/// inside the caller's transaction, the handler's own writes and the job's
/// new state commit together (transactional completion). `applied = false`
/// means the lease was lost — roll back. Idle workers of other connections
/// notice the commit through the driver's `data_version` watch.
pub async fn job_finish_in(
    conn: &mut SqliteConnection,
    params: JobFinishParams,
) -> Result<FinishResult> {
    let id = params.id;
    let (results, _woken) = finish_many(conn, std::slice::from_ref(&params)).await?;
    Ok(results
        .into_iter()
        .next()
        .unwrap_or(FinishResult { id, applied: false }))
}
