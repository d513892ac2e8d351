-- Rota's PostgreSQL schema, version 3: executions, schedules, webhooks.
--
-- Run by Rota's own migrator inside one transaction with `search_path` set to
-- the target schema, so DDL names here are unqualified. Trigger functions
-- run with the *caller's* `search_path`, so every name inside their bodies
-- (and in trigger WHEN clauses) is qualified with {{schema}}, which the
-- migrator replaces with the quoted target schema (the one `search_path`
-- points at). The functions themselves are created in the target schema,
-- so several Rota schemas in one database each have their own.

-- ------------------------------------------------------------------ jobs --

-- Constant defaults: no table rewrite.
ALTER TABLE rota_jobs
    ADD COLUMN execution_id bigint,
    ADD COLUMN schedule_id  bigint,
    ADD COLUMN fire_at      timestamptz,
    ADD COLUMN revision     integer NOT NULL DEFAULT 1;

-- Partial: jobs outside executions / schedules cost no index entry.
CREATE INDEX rota_jobs_execution_idx ON rota_jobs (execution_id, state)
    WHERE execution_id IS NOT NULL;
CREATE INDEX rota_jobs_schedule_idx ON rota_jobs (schedule_id, state)
    WHERE schedule_id IS NOT NULL;
-- The jobs of one fire (fire history outcomes).
CREATE INDEX rota_jobs_schedule_fire_idx ON rota_jobs (schedule_id, fire_at)
    WHERE schedule_id IS NOT NULL;

-- ------------------------------------------------------------ executions --

CREATE TABLE rota_executions (
    id             bigserial   PRIMARY KEY,
    owner_kind     text        NOT NULL,
    owner_id       text        NOT NULL,
    trigger        text        NOT NULL CHECK (trigger IN ('manual', 'schedule', 'event')),
    attributes     jsonb       NOT NULL DEFAULT '{}',
    status         text        NOT NULL DEFAULT 'running' CHECK (status IN
                       ('running', 'succeeded', 'failed', 'canceled', 'error')),
    status_message text,
    -- Jobs per state, kept by the rota_jobs triggers below.
    scheduled      bigint      NOT NULL DEFAULT 0,
    available      bigint      NOT NULL DEFAULT 0,
    running        bigint      NOT NULL DEFAULT 0,
    retrying       bigint      NOT NULL DEFAULT 0,
    succeeded      bigint      NOT NULL DEFAULT 0,
    failed         bigint      NOT NULL DEFAULT 0,
    canceled       bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    revision       integer     NOT NULL DEFAULT 1
);

CREATE INDEX rota_executions_owner_idx ON rota_executions (owner_kind, owner_id, id);
CREATE INDEX rota_executions_status_idx ON rota_executions (status, id);
CREATE INDEX rota_executions_attributes_idx ON rota_executions
    USING gin (attributes jsonb_path_ops) WHERE attributes <> '{}'::jsonb;

-- Keeps an execution's counters and derived status right on every path
-- (driver statements, users' own transactions, pruning). Fires only for
-- jobs that belong to an execution (see the WHEN clauses).
CREATE FUNCTION rota_jobs_execution_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ex   bigint;
    o    text;
    n    text;
    fin  timestamptz;
    pass integer := 1;
    moved boolean := TG_OP = 'UPDATE' AND OLD.execution_id IS DISTINCT FROM NEW.execution_id;
    e    record;
    st   text;
BEGIN
    LOOP
        IF TG_OP = 'INSERT' OR (moved AND pass = 2) THEN
            ex := NEW.execution_id; o := NULL; n := NEW.state; fin := NEW.finished_at;
        ELSIF TG_OP = 'DELETE' OR moved THEN
            ex := OLD.execution_id; o := OLD.state; n := NULL; fin := NULL;
        ELSE
            ex := NEW.execution_id; o := OLD.state; n := NEW.state; fin := NEW.finished_at;
        END IF;
        IF ex IS NOT NULL THEN
            UPDATE {{schema}}.rota_executions SET
                scheduled = scheduled + (n IS NOT DISTINCT FROM 'scheduled')::int
                                      - (o IS NOT DISTINCT FROM 'scheduled')::int,
                available = available + (n IS NOT DISTINCT FROM 'available')::int
                                      - (o IS NOT DISTINCT FROM 'available')::int,
                running   = running   + (n IS NOT DISTINCT FROM 'running')::int
                                      - (o IS NOT DISTINCT FROM 'running')::int,
                retrying  = retrying  + (n IS NOT DISTINCT FROM 'retrying')::int
                                      - (o IS NOT DISTINCT FROM 'retrying')::int,
                succeeded = succeeded + (n IS NOT DISTINCT FROM 'succeeded')::int
                                      - (o IS NOT DISTINCT FROM 'succeeded')::int,
                failed    = failed    + (n IS NOT DISTINCT FROM 'failed')::int
                                      - (o IS NOT DISTINCT FROM 'failed')::int,
                canceled  = canceled  + (n IS NOT DISTINCT FROM 'canceled')::int
                                      - (o IS NOT DISTINCT FROM 'canceled')::int,
                updated_at = now()
            WHERE id = ex
            RETURNING status, scheduled + available + running + retrying AS unfinished,
                      succeeded, failed, canceled
            INTO e;
            IF FOUND THEN
                -- The ExecutionStatus rule; no jobs left: keep the status.
                st := CASE
                    WHEN e.unfinished + e.succeeded + e.failed + e.canceled = 0 THEN e.status
                    WHEN e.unfinished > 0 THEN 'running'
                    WHEN e.failed > 0 THEN 'failed'
                    WHEN e.canceled > 0 THEN 'canceled'
                    ELSE 'succeeded' END;
                IF st <> e.status THEN
                    UPDATE {{schema}}.rota_executions SET
                        status = st,
                        ended_at = CASE WHEN st = 'running' THEN NULL
                                        ELSE COALESCE(ended_at, fin, now()) END,
                        revision = revision + 1
                    WHERE id = ex;
                END IF;
            END IF;
        END IF;
        EXIT WHEN NOT moved OR pass = 2;
        pass := 2;
    END LOOP;
    RETURN NULL;
END
$$;

-- Names sort after the event triggers' (triggers fire in name order), so a
-- job's event precedes the execution event it causes.
--
-- The setting rota.counted_execution lets the driver's own bulk statements
-- on one execution (creating it with many jobs, adding jobs, stopping it)
-- count that execution's jobs with one UPDATE instead of one per job: it
-- sets the execution id transaction-locally around the statement and
-- applies the summed deltas itself, in the same transaction. Nothing else
-- sets it, so every other path is counted here.
CREATE TRIGGER rota_jobs_exec_ins AFTER INSERT ON rota_jobs
    FOR EACH ROW WHEN (NEW.execution_id IS NOT NULL
                       AND pg_catalog.current_setting('rota.counted_execution', true)
                           IS DISTINCT FROM NEW.execution_id::text)
    EXECUTE FUNCTION rota_jobs_execution_counts();
CREATE TRIGGER rota_jobs_exec_upd AFTER UPDATE OF state, execution_id ON rota_jobs
    FOR EACH ROW WHEN ((OLD.execution_id IS NOT NULL OR NEW.execution_id IS NOT NULL)
                       AND (OLD.state IS DISTINCT FROM NEW.state
                            OR OLD.execution_id IS DISTINCT FROM NEW.execution_id)
                       AND (OLD.execution_id IS DISTINCT FROM NEW.execution_id
                            OR pg_catalog.current_setting('rota.counted_execution', true)
                               IS DISTINCT FROM NEW.execution_id::text))
    EXECUTE FUNCTION rota_jobs_execution_counts();
CREATE TRIGGER rota_jobs_exec_del AFTER DELETE ON rota_jobs
    FOR EACH ROW WHEN (OLD.execution_id IS NOT NULL)
    EXECUTE FUNCTION rota_jobs_execution_counts();

-- ------------------------------------------------------------- schedules --

CREATE TABLE rota_schedules (
    id           bigserial   PRIMARY KEY,
    name         text COLLATE "C" NOT NULL UNIQUE,
    spec         jsonb       NOT NULL,
    state        jsonb       NOT NULL DEFAULT '{}',
    paused_at    timestamptz,
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Due schedules.
CREATE INDEX rota_schedules_due_idx ON rota_schedules (next_fire_at)
    WHERE paused_at IS NULL AND next_fire_at IS NOT NULL;

-- Each (schedule, fire time) is recorded at most once, ever.
CREATE TABLE rota_schedule_fires (
    schedule_id  bigint      NOT NULL,
    fire_at      timestamptz NOT NULL,
    status       text        NOT NULL CHECK (status IN ('fired', 'skipped')),
    reason       text,
    node_id      text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    execution_id bigint,
    job_ids      jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (schedule_id, fire_at)
);

-- -------------------------------------------------------------- webhooks --

CREATE TABLE rota_webhooks (
    id          bigserial   PRIMARY KEY,
    url         text        NOT NULL,
    events      jsonb       NOT NULL DEFAULT '[]',
    kinds       jsonb       NOT NULL DEFAULT '[]',
    owner_kinds jsonb       NOT NULL DEFAULT '[]',
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL
);

-- The status-change outbox. `id` is the insertion order; `seq` is the id
-- published to readers, handed out (from rota_events_seq) when a committed
-- event is first listed, so published ids increase in commit order even
-- though concurrent transactions commit out of `id` order.
CREATE TABLE rota_events (
    id           bigserial   PRIMARY KEY,
    seq          bigint,
    entity       text        NOT NULL,
    entity_id    bigint      NOT NULL,
    revision     bigint      NOT NULL,
    status       text        NOT NULL,
    kind         text        NOT NULL,
    execution_id bigint,
    at           timestamptz NOT NULL
);
CREATE UNIQUE INDEX rota_events_seq_idx ON rota_events (seq) WHERE seq IS NOT NULL;
CREATE SEQUENCE rota_events_seq;

CREATE TABLE rota_deliveries (
    id               bigserial   PRIMARY KEY,
    webhook_id       bigint      NOT NULL,
    event_id         bigint      NOT NULL,
    body             jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'delivered', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz
);
CREATE INDEX rota_deliveries_due_idx ON rota_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX rota_deliveries_webhook_idx ON rota_deliveries (webhook_id, id);

-- Event triggers. A trigger's WHEN clause cannot run a query, so "while a
-- webhook exists" is tested through the view rota_webhooks_active, which
-- the driver creates with the first webhook and drops with the last (in
-- the same transactions): a catalog cache lookup per row, no query. The
-- functions re-check the table itself.

CREATE FUNCTION rota_jobs_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {{schema}}.rota_webhooks) THEN
        INSERT INTO {{schema}}.rota_events
            (entity, entity_id, revision, status, kind, execution_id, at)
        VALUES ('job', NEW.id, NEW.revision, NEW.state, NEW.kind, NEW.execution_id, now());
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rota_jobs_event_ins AFTER INSERT ON rota_jobs
    FOR EACH ROW WHEN (pg_catalog.to_regclass('{{schema}}.rota_webhooks_active') IS NOT NULL)
    EXECUTE FUNCTION rota_jobs_event();
CREATE TRIGGER rota_jobs_event_upd AFTER UPDATE OF state, cancel_requested_at ON rota_jobs
    FOR EACH ROW WHEN ((OLD.state IS DISTINCT FROM NEW.state
                        OR (OLD.cancel_requested_at IS NULL
                            AND NEW.cancel_requested_at IS NOT NULL))
                       AND pg_catalog.to_regclass('{{schema}}.rota_webhooks_active') IS NOT NULL)
    EXECUTE FUNCTION rota_jobs_event();

CREATE FUNCTION rota_executions_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {{schema}}.rota_webhooks) THEN
        INSERT INTO {{schema}}.rota_events
            (entity, entity_id, revision, status, kind, execution_id, at)
        VALUES ('execution', NEW.id, NEW.revision, NEW.status, NEW.owner_kind, NULL, now());
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rota_executions_event_ins AFTER INSERT ON rota_executions
    FOR EACH ROW WHEN (pg_catalog.to_regclass('{{schema}}.rota_webhooks_active') IS NOT NULL)
    EXECUTE FUNCTION rota_executions_event();
CREATE TRIGGER rota_executions_event_upd AFTER UPDATE OF status ON rota_executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND pg_catalog.to_regclass('{{schema}}.rota_webhooks_active') IS NOT NULL)
    EXECUTE FUNCTION rota_executions_event();
