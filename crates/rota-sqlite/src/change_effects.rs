//! What a job's change of state writes besides the job row: an outbox row
//! per change while a webhook exists, and the counters of the job's
//! execution.
//!
//! The update trigger `rota_jobs_after_update` did this until migration 8.
//! SQLite runs a row trigger's sub-program for every updated row, even
//! when its `WHEN` clause is false: 3.95k of the 51.6k instructions a
//! claimed and finished job cost (`sqlite_costs`), and +8.6 % processing
//! throughput without it (docs/benchmarks.md, round 13). Each statement
//! that changes a job's state now writes the effects itself, in its own
//! transaction or savepoint:
//!
//! - claims and finishes (the hot path) know the old state from their
//!   fence (`available`, `running`) and the execution from the claimed row,
//!   the finish's `RETURNING` or, for the quiet success finish, the
//!   caller's [`JobFinishParams::execution_id`](rota_driver::JobFinishParams)
//!   checked by its fence;
//! - cancel and retry know the job before and after;
//! - promotion reads each job's old state when it picks the due jobs, and
//!   the rest from its `RETURNING`;
//! - an execution's stop reads the rows it changes before and after
//!   ([`Before`]).

use std::collections::BTreeMap;

use rota_core::{Job, JobState};
use rota_driver::Result;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use crate::bind::{Param, bind_all};
use crate::error::{map_native, map_sqlx};
use crate::insert_effects::{COUNTS_SQL, STATES};
use crate::row::{micros, opt_micros, parse_state, to_json};

/// Whether a webhook exists: only then are outbox rows written.
pub(crate) const WEBHOOKS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM rota_webhooks)";

/// Outbox rows for the jobs whose ids are in the JSON array `?1`, in id
/// order, as they are now (after the change).
const EVENTS_SQL: &str = "INSERT INTO rota_events \
     (entity, entity_id, revision, status, kind, execution_id, at) \
     SELECT 'job', id, revision, state, kind, execution_id, \
            CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000 \
     FROM rota_jobs WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id";

/// The jobs changed: the ids that get an outbox row (a new state, or a
/// first cancel request) and the moves of the execution counters.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    events: Vec<i64>,
    moves: BTreeMap<i64, Move>,
}

/// One execution's counter deltas, per state in [`STATES`] order, and the
/// latest time of a job that moved.
#[derive(Debug, Default)]
struct Move {
    counts: [i64; 7],
    at: i64,
}

impl Changes {
    /// Job `id` of execution `execution_id` went from state `from` to `to`
    /// (`at`: the job's finish, start or creation, whichever is set first,
    /// as the execution's `updated_at` moves). Same states: nothing.
    pub(crate) fn moved(
        &mut self,
        id: i64,
        execution_id: Option<i64>,
        from: JobState,
        to: JobState,
        at: i64,
    ) {
        if from == to {
            return;
        }
        self.events.push(id);
        let Some(execution_id) = execution_id else {
            return;
        };
        let m = self
            .moves
            .entry(execution_id)
            .or_insert(Move { counts: [0; 7], at });
        for (state, delta) in [(from, -1), (to, 1)] {
            if let Some(i) = STATES.iter().position(|s| *s == state) {
                m.counts[i] += delta;
            }
        }
        m.at = m.at.max(at);
    }

    /// Job `id` got its first cancel request (its state unchanged).
    pub(crate) fn cancel_requested(&mut self, id: i64) {
        self.events.push(id);
    }

    /// The change from `old` to `new`, the same job before and after.
    pub(crate) fn job(&mut self, old: &Job, new: &Job) {
        self.compared(&Snapshot::of(old), &Snapshot::of(new));
    }

    /// The change from `old` to `new`, the same job before and after: a
    /// move when its state changed, else an event for a first cancel
    /// request, else nothing.
    fn compared(&mut self, old: &Snapshot, new: &Snapshot) {
        if old.state != new.state {
            self.moved(new.id, new.execution_id, old.state, new.state, new.at);
        } else if !old.cancel_requested && new.cancel_requested {
            self.cancel_requested(new.id);
        }
    }

    /// Whether nothing changed.
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.moves.is_empty()
    }

    /// [`COUNTS_SQL`]'s parameters, one set per execution.
    fn counts(&self) -> impl Iterator<Item = Vec<Param>> + '_ {
        self.moves.iter().map(|(id, m)| {
            let mut p: Vec<Param> = m.counts.iter().map(|c| Param::from(*c)).collect();
            p.push(Param::from(m.at));
            p.push(Param::from(*id));
            p
        })
    }

    /// Writes the effects on the writer's native connection.
    pub(crate) fn write_native(&self, conn: &rusqlite::Connection) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if !self.events.is_empty() {
            let webhooks: bool = conn
                .prepare_cached(WEBHOOKS_SQL)
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(map_native)?;
            if webhooks {
                let ids = to_json(&self.events)?;
                conn.prepare_cached(EVENTS_SQL)
                    .and_then(|mut s| s.execute([ids]))
                    .map_err(map_native)?;
            }
        }
        for p in self.counts() {
            conn.prepare_cached(COUNTS_SQL)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(p.iter())))
                .map_err(map_native)?;
        }
        Ok(())
    }

    /// Writes the effects on a sqlx connection.
    pub(crate) async fn write(&self, conn: &mut SqliteConnection) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if !self.events.is_empty() {
            let webhooks: bool = sqlx::query_scalar(WEBHOOKS_SQL)
                .fetch_one(&mut *conn)
                .await
                .map_err(map_sqlx)?;
            if webhooks {
                sqlx::query(EVENTS_SQL)
                    .bind(to_json(&self.events)?)
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx)?;
            }
        }
        for p in self.counts() {
            bind_all(sqlx::query(COUNTS_SQL), p)
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
        }
        Ok(())
    }
}

/// What [`Before`] and its counterpart after the change read of each job.
const SNAPSHOT_COLUMNS: &str = "id, state, cancel_requested_at IS NOT NULL, execution_id, \
     COALESCE(finished_at, started_at, created_at)";

/// What a job's change is judged by, as [`SNAPSHOT_COLUMNS`] reads it.
struct Snapshot {
    id: i64,
    state: JobState,
    cancel_requested: bool,
    execution_id: Option<i64>,
    /// The time its execution's `updated_at` moves to: its finish, else
    /// its start, else its creation.
    at: i64,
}

impl Snapshot {
    fn of(job: &Job) -> Snapshot {
        Snapshot {
            id: job.id,
            state: job.state,
            cancel_requested: job.cancel_requested_at.is_some(),
            execution_id: job.execution_id,
            at: opt_micros(job.finished_at)
                .or(opt_micros(job.started_at))
                .unwrap_or(micros(job.created_at)),
        }
    }
}

/// Jobs as they were before a statement that may change any of them, for
/// statements whose rows are not all in one known state (an execution's
/// stop): read again after the change, the two tell
/// [`Changes`].
pub(crate) struct Before {
    ids: String,
    jobs: Vec<Snapshot>,
}

impl Before {
    /// Reads the jobs that `filter`, a `WHERE` clause over `rota_jobs`
    /// with one parameter (`?1`, bound to `param`), selects.
    pub(crate) async fn read_where(
        conn: &mut SqliteConnection,
        filter: &str,
        param: i64,
    ) -> Result<Before> {
        let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM rota_jobs WHERE {filter} ORDER BY id");
        let jobs = snapshot(conn, &sql, Param::from(param)).await?;
        let ids = to_json(&jobs.iter().map(|j| j.id).collect::<Vec<_>>())?;
        Ok(Before { ids, jobs })
    }

    /// Reads the jobs again and writes the effects of what changed.
    pub(crate) async fn write_changes(self, conn: &mut SqliteConnection) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM rota_jobs \
             WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
        );
        let after = snapshot(conn, &sql, Param::from(self.ids)).await?;
        let mut changes = Changes::default();
        let mut old = self.jobs.iter().peekable();
        for new in &after {
            while old.next_if(|o| o.id < new.id).is_some() {}
            if let Some(o) = old.next_if(|o| o.id == new.id) {
                changes.compared(o, new);
            }
        }
        changes.write(conn).await
    }
}

/// The jobs `sql` (selecting [`SNAPSHOT_COLUMNS`], one parameter) reads.
async fn snapshot(conn: &mut SqliteConnection, sql: &str, param: Param) -> Result<Vec<Snapshot>> {
    let query = sqlx::query_as(AssertSqlSafe(sql));
    let query = match param {
        Param::Int(v) => query.bind(v),
        Param::Text(v) => query.bind(v),
    };
    let rows: Vec<(i64, String, bool, Option<i64>, i64)> =
        query.fetch_all(&mut *conn).await.map_err(map_sqlx)?;
    rows.into_iter()
        .map(|(id, state, cancel_requested, execution_id, at)| {
            Ok(Snapshot {
                id,
                state: parse_state(&state)?,
                cancel_requested,
                execution_id,
                at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_takes_one_from_the_old_state_and_adds_one_to_the_new() {
        let mut c = Changes::default();
        c.moved(1, Some(9), JobState::Available, JobState::Running, 10);
        c.moved(2, Some(9), JobState::Running, JobState::Succeeded, 30);
        c.moved(3, Some(9), JobState::Available, JobState::Running, 20);
        c.moved(4, None, JobState::Running, JobState::Failed, 40);
        c.moved(5, Some(8), JobState::Running, JobState::Running, 50);
        assert_eq!(c.events, vec![1, 2, 3, 4]);
        let counts: Vec<Vec<Param>> = c.counts().collect();
        assert_eq!(counts.len(), 1, "one execution moved");
        let expected: Vec<Param> = [0, -2, 1, 0, 1, 0, 0, 30, 9]
            .into_iter()
            .map(Param::from)
            .collect();
        assert_eq!(counts[0], expected);
    }

    #[test]
    fn a_first_cancel_request_is_an_event_without_a_move() {
        let mut c = Changes::default();
        c.cancel_requested(7);
        assert_eq!(c.events, vec![7]);
        assert_eq!(c.counts().count(), 0);
    }
}
