-- Rota's PostgreSQL schema, version 1.
--
-- Run by Rota's own migrator inside one transaction with `search_path` set to
-- the target schema, so names here are unqualified.

CREATE TABLE rota_jobs (
    id                  bigserial   PRIMARY KEY,
    kind                text        NOT NULL,
    queue               text        NOT NULL,
    state               text        NOT NULL CHECK (state IN
                            ('scheduled', 'available', 'running', 'retrying',
                             'succeeded', 'failed', 'canceled')),
    priority            smallint    NOT NULL DEFAULT 0,
    args                jsonb       NOT NULL DEFAULT '{}',
    attempt             integer     NOT NULL DEFAULT 0,
    max_attempts        integer     NOT NULL,
    run_at              timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    errors              jsonb       NOT NULL DEFAULT '[]',
    progress            jsonb,
    output              text,
    labels              jsonb       NOT NULL DEFAULT '{}',
    attributes          jsonb       NOT NULL DEFAULT '{}',
    unique_key          text,
    timeout_ms          bigint,
    node                text,
    lease_token         bigint,
    lease_expires_at    timestamptz,
    cancel_requested_at timestamptz,
    trace_context       text,
    exit_code           integer
) WITH (fillfactor = 80);

-- Claim: the next available jobs of one queue. Partial, so it only holds
-- waiting work however large the finished history grows.
CREATE INDEX rota_jobs_claim_idx ON rota_jobs (queue, priority, run_at, id)
    WHERE state = 'available';

-- Promotion of due scheduled / retrying jobs.
CREATE INDEX rota_jobs_due_idx ON rota_jobs (run_at)
    WHERE state IN ('scheduled', 'retrying');

-- Rescue of expired leases.
CREATE INDEX rota_jobs_lease_idx ON rota_jobs (lease_expires_at)
    WHERE state = 'running';

-- At most one unfinished job per unique key.
CREATE UNIQUE INDEX rota_jobs_unique_key_idx ON rota_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'canceled');

-- Retention (prune by age / count).
CREATE INDEX rota_jobs_finished_idx ON rota_jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'canceled');

-- Listing, newest first, by state / queue / kind.
CREATE INDEX rota_jobs_state_id_idx ON rota_jobs (state, id);
CREATE INDEX rota_jobs_queue_id_idx ON rota_jobs (queue, id);
CREATE INDEX rota_jobs_kind_id_idx ON rota_jobs (kind, id);

-- `attribute.k=v` filters (`attributes @> '{"k":"v"}' AND attributes <> '{}'`).
-- Partial: jobs without attributes (most bulk inserts) cost no GIN entry.
CREATE INDEX rota_jobs_attributes_idx ON rota_jobs USING gin (attributes jsonb_path_ops)
    WHERE attributes <> '{}'::jsonb;

CREATE TABLE rota_queues (
    name       text        PRIMARY KEY,
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL
);

-- The current leader (one row per leadership group).
CREATE TABLE rota_leader (
    name       text        PRIMARY KEY,
    node_id    text        NOT NULL,
    term       bigint      NOT NULL,
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Every term ever granted, for audits and fencing checks.
CREATE TABLE rota_leader_terms (
    term       bigint      PRIMARY KEY,
    node_id    text        NOT NULL,
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
