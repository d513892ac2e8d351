-- Rota SQLite schema, version 1.
-- Times are INTEGER unix microseconds; JSON is TEXT.

CREATE TABLE rota_jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT    NOT NULL,
    queue               TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'canceled')),
    priority            INTEGER NOT NULL DEFAULT 0,
    args                TEXT    NOT NULL DEFAULT 'null',
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    run_at              INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    errors              TEXT    NOT NULL DEFAULT '[]',
    progress            TEXT,
    output              TEXT,
    labels              TEXT    NOT NULL DEFAULT '{}',
    attributes          TEXT    NOT NULL DEFAULT '{}',
    unique_key          TEXT,
    timeout_ms          INTEGER,
    node                TEXT,
    lease_token         INTEGER,
    lease_expires_at    INTEGER,
    cancel_requested_at INTEGER,
    trace_context       TEXT,
    exit_code           INTEGER
);

-- Claim: available jobs of one queue in priority, run_at, id order.
CREATE INDEX rota_jobs_claim_idx ON rota_jobs (queue, priority, run_at, id)
    WHERE state = 'available';

-- Promotion of due scheduled and retrying jobs.
CREATE INDEX rota_jobs_promote_idx ON rota_jobs (run_at)
    WHERE state IN ('scheduled', 'retrying');

-- Rescue of running jobs whose lease expired.
CREATE INDEX rota_jobs_lease_idx ON rota_jobs (lease_expires_at)
    WHERE state = 'running';

-- At most one unfinished job per unique key.
CREATE UNIQUE INDEX rota_jobs_unique_key_idx ON rota_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'canceled');

-- Pruning of finished jobs by age and count.
CREATE INDEX rota_jobs_finished_idx ON rota_jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'canceled');

-- Listing, newest first, by state, queue or kind.
CREATE INDEX rota_jobs_state_idx ON rota_jobs (state, id);
CREATE INDEX rota_jobs_queue_idx ON rota_jobs (queue, id);
CREATE INDEX rota_jobs_kind_idx ON rota_jobs (kind, id);

CREATE TABLE rota_queues (
    name       TEXT PRIMARY KEY NOT NULL,
    paused_at  INTEGER,
    updated_at INTEGER NOT NULL
);

-- The current leader: one row, name 'default'.
CREATE TABLE rota_leader (
    name       TEXT PRIMARY KEY NOT NULL,
    node_id    TEXT    NOT NULL,
    term       INTEGER NOT NULL,
    elected_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Every leadership term: inserted on election, expiry kept up to date on
-- re-election and set to the resignation time on resignation.
CREATE TABLE rota_leader_terms (
    term       INTEGER PRIMARY KEY NOT NULL,
    node_id    TEXT    NOT NULL,
    elected_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
