//! What inserting jobs writes besides `rota_jobs`: an outbox row per job
//! while a webhook exists, and the counters of the jobs' execution.
//!
//! A row trigger did this until migration 7. SQLite calls a trigger's
//! sub-program for every row, even when its `WHEN` clause is false, which
//! made a bulk insert 35 % more expensive (`sqlite_costs shared`: 19.5k
//! instructions per row with the trigger, 14.4k without). Here it is one
//! statement per insert statement and one per insert: the ids of one
//! statement's new rows form a range no other writer can enter (a writer
//! holds SQLite's write lock), and the outbox statement tests for webhooks
//! once, before reading any row.

use rota_core::JobState;
use rota_driver::JobInsertParams;

use crate::bind::Param;
use crate::insert::JobOrigin;
use crate::row::micros;

/// Outbox rows for the jobs with ids `?1..=?2`, in id order, when a
/// webhook exists; as `change_effects` writes them for state changes.
pub(crate) const EVENTS_SQL: &str = "INSERT INTO rota_events \
     (entity, entity_id, revision, status, kind, execution_id, at) \
     SELECT 'job', id, revision, state, kind, execution_id, \
            CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000 \
     FROM rota_jobs WHERE id BETWEEN ?1 AND ?2 AND EXISTS (SELECT 1 FROM rota_webhooks) \
     ORDER BY id";

/// Adds inserted jobs to execution `?9`'s counters, per state in
/// [`STATES`] order (`?1`…`?7`), and moves its `updated_at` to `?8` if
/// later. The executions table's own trigger derives its status.
pub(crate) const COUNTS_SQL: &str = "UPDATE rota_executions SET \
     scheduled = scheduled + ?1, available = available + ?2, running = running + ?3, \
     retrying = retrying + ?4, succeeded = succeeded + ?5, failed = failed + ?6, \
     canceled = canceled + ?7, updated_at = max(updated_at, ?8) \
     WHERE id = ?9";

/// The states in [`COUNTS_SQL`]'s parameter order.
pub(crate) const STATES: [JobState; 7] = [
    JobState::Scheduled,
    JobState::Available,
    JobState::Running,
    JobState::Retrying,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Canceled,
];

/// The ids one insert statement gave its new rows (`ids` holds one entry
/// per spec of the statement, `None` for a unique duplicate), as
/// [`EVENTS_SQL`]'s two parameters; `None` when it inserted nothing.
pub(crate) fn events_params(ids: &[Option<i64>]) -> Option<[Param; 2]> {
    let mut new = ids.iter().flatten();
    let first = *new.next()?;
    let (lo, hi) = new.fold((first, first), |(lo, hi), &id| (lo.min(id), hi.max(id)));
    Some([Param::from(lo), Param::from(hi)])
}

/// [`COUNTS_SQL`]'s parameters for an insert of `params` (`ids` one per
/// spec, as for [`events_params`]) with `origin`; `None` without an
/// execution or without a new row.
pub(crate) fn counts_params(
    params: &[JobInsertParams],
    ids: &[Option<i64>],
    origin: JobOrigin,
) -> Option<Vec<Param>> {
    let execution_id = origin.execution_id?;
    let mut counts = [0i64; 7];
    let mut updated_at: Option<i64> = None;
    for (p, id) in params.iter().zip(ids) {
        if id.is_none() {
            continue;
        }
        if let Some(i) = STATES.iter().position(|s| *s == p.state) {
            counts[i] += 1;
        }
        let at = micros(p.created_at);
        updated_at = Some(updated_at.map_or(at, |u| u.max(at)));
    }
    let updated_at = updated_at?;
    let mut out: Vec<Param> = counts.into_iter().map(Param::from).collect();
    out.push(Param::from(updated_at));
    out.push(Param::from(execution_id));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cover_the_new_rows_only() {
        assert!(events_params(&[]).is_none());
        assert!(events_params(&[None, None]).is_none());
        let [lo, hi] = events_params(&[None, Some(7), Some(9), None, Some(8)]).unwrap();
        assert_eq!((lo, hi), (Param::from(7), Param::from(9)));
    }

    #[test]
    fn every_state_has_a_counter_column() {
        for s in STATES {
            let column = match s {
                JobState::Scheduled => "scheduled",
                JobState::Available => "available",
                JobState::Running => "running",
                JobState::Retrying => "retrying",
                JobState::Succeeded => "succeeded",
                JobState::Failed => "failed",
                JobState::Canceled => "canceled",
            };
            let at = STATES.iter().position(|x| *x == s).unwrap() + 1;
            assert!(
                COUNTS_SQL.contains(&format!("{column} = {column} + ?{at}")),
                "{column} is parameter {at}"
            );
        }
    }
}
