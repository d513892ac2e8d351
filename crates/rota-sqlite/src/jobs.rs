//! Job SQL outside a run and an insert (see [`crate::insert`]): list, get,
//! count, cancel, retry, delete, prune. Every function works on a plain
//! `&mut SqliteConnection`, so the writer's sqlx operations, the read pool
//! and users' own transactions share one SQL.

use std::collections::BTreeMap;

use rota_core::{Job, JobState};
use rota_driver::{
    DriverError, JobCancelParams, JobCount, JobListParams, JobPruneParams, JobRetryParams, Result,
};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{QueryBuilder, Row};

use crate::change_effects::Changes;
use crate::error::map_sqlx;
use crate::row::{
    JOB_COLUMNS, job_columns, job_from_row, jobs_from_rows, micros, opt_micros, parse_state,
    to_json,
};

/// The states of the partial index `rota_jobs_failed_idx` (migration 0004).
const FAILED_IDX_STATES: [JobState; 2] = [JobState::Failed, JobState::Canceled];

/// Most rows one [`job_list_in`] call returns.
pub const MAX_LIST_LIMIT: u32 = 10_000;

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

/// Runs an `UPDATE ... SET <time> = ? WHERE id = ? RETURNING <job>` on
/// `old`, and writes the change's effects (the caller's transaction holds
/// both).
async fn returning_one(
    conn: &mut SqliteConnection,
    sql: &'static str,
    time: i64,
    old: &Job,
) -> Result<Job> {
    let row = sqlx::query(sql)
        .bind(time)
        .bind(old.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    let new = job_from_row(&row)?;
    let mut changes = Changes::default();
    changes.job(old, &new);
    changes.write(conn).await?;
    Ok(new)
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
            &job,
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
                &job,
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
    match returning_one(conn, sql, micros(p.now), &job).await {
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
