//! The SQL of the writer's hot statements, for measuring them outside the
//! engine (`rota-bench`'s `sqlite_costs` example runs them under
//! callgrind). Not a stable API: the text changes with the driver.

use crate::insert::{self, JobOrigin, Shape};
use crate::runs;

/// The claim's read: whole rows of up to `?3` available jobs of queue
/// `?1`, in claim order; `?2` is the node's labels (JSON), `?4` the kinds it
/// runs (JSON array or NULL).
pub const CLAIM_SELECT: &str = runs::CLAIM_SELECT_SQL;

/// The claim's write, in the read's transaction: the jobs whose ids are
/// in the JSON array `?5` become `running` with lease token `?1`, expiry
/// `?2`, start `?3` and node `?4`.
pub const CLAIM_UPDATE: &str = runs::CLAIM_UPDATE_SQL;

/// The multi-row insert of `n` jobs without an execution or schedule, as
/// the driver runs it for jobs that differ in every column: 13 parameters
/// per row, in the order `kind, queue, state, priority, args,
/// max_attempts, run_at, created_at, labels, attributes, unique_key,
/// timeout_ms, trace_context`; it returns `(id, unique_key)` of the rows
/// it inserted.
pub fn insert(n: usize) -> String {
    insert::insert_sql(n, JobOrigin::default(), Shape::General, true)
}

/// The multi-row insert of `n` jobs without unique keys that agree on
/// every column but their args, times and trace context (a bulk load of
/// one kind): the shared `kind, queue, state, priority, max_attempts,
/// labels, attributes, timeout_ms` as `?1`–`?8`, then `args, run_at,
/// created_at, unique_key, trace_context` per row. Returns nothing.
pub fn insert_shared(n: usize) -> String {
    insert::insert_sql(n, JobOrigin::default(), Shape::Shared, false)
}

/// The outbox rows of the jobs with ids `?1..=?2`, written after every
/// insert statement (nothing while no webhook exists).
pub const INSERT_EVENTS: &str = crate::insert_effects::EVENTS_SQL;

/// The plain-success finish of `n` runs: `(id, lease_token, attempt,
/// finished_at, execution_id)` per row, padded with all-NULL rows. The writer runs it
/// in a savepoint (or a transaction of its own) and keeps it when it
/// changed one row per real (unpadded) run (else it rolls back and runs
/// the form that returns which runs applied).
pub fn succeed(n: usize) -> String {
    runs::succeed_quiet_sql(n)
}

/// Whether a webhook exists, tested after each claim and finish statement
/// before it writes the changed jobs' outbox rows.
pub const WEBHOOKS: &str = crate::change_effects::WEBHOOKS_SQL;
