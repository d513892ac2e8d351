-- Rota SQLite schema, version 3: executions, schedules, webhooks.
-- Times are INTEGER unix microseconds; JSON is TEXT.
--
-- Execution counters and status and the webhook outbox are kept by
-- triggers, so every path that changes jobs (the driver, users' own
-- transactions, pruning) keeps them right. Their WHEN clauses keep the hot
-- path cheap: a job without an execution, while no webhook exists, costs
-- one trigger call per row that does nothing. (Moving a job to another
-- execution by hand is not tracked; `execution_repair` fixes that.)

-- Jobs: the execution and the schedule fire that created them, and a
-- revision bumped by every state-changing UPDATE (in the statements
-- themselves).
ALTER TABLE rota_jobs ADD COLUMN execution_id INTEGER;
ALTER TABLE rota_jobs ADD COLUMN schedule_id INTEGER;
ALTER TABLE rota_jobs ADD COLUMN fire_at INTEGER;
ALTER TABLE rota_jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;

-- Jobs of an execution by state (stop, repair, prune, listing).
CREATE INDEX rota_jobs_execution_idx ON rota_jobs (execution_id, state)
    WHERE execution_id IS NOT NULL;

-- Unfinished jobs of a schedule (the `alone` policy).
CREATE INDEX rota_jobs_schedule_idx ON rota_jobs (schedule_id, state)
    WHERE schedule_id IS NOT NULL;

-- The jobs of one schedule fire (fire history). Neither column changes
-- after insert, so state changes never touch this index.
CREATE INDEX rota_jobs_schedule_fire_idx ON rota_jobs (schedule_id, fire_at)
    WHERE schedule_id IS NOT NULL;

CREATE TABLE rota_executions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind     TEXT    NOT NULL,
    owner_id       TEXT    NOT NULL,
    trigger        TEXT    NOT NULL CHECK (trigger IN ('manual', 'schedule', 'event')),
    attributes     TEXT    NOT NULL DEFAULT '{}',
    status         TEXT    NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'failed', 'canceled', 'error')),
    status_message TEXT,
    scheduled      INTEGER NOT NULL DEFAULT 0,
    available      INTEGER NOT NULL DEFAULT 0,
    running        INTEGER NOT NULL DEFAULT 0,
    retrying       INTEGER NOT NULL DEFAULT 0,
    succeeded      INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    canceled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    revision       INTEGER NOT NULL DEFAULT 1
);

-- Listing per owner, newest first; retention per owner.
CREATE INDEX rota_executions_owner_idx ON rota_executions (owner_kind, owner_id, id);
-- Listing by status, newest first.
CREATE INDEX rota_executions_status_idx ON rota_executions (status, id);

CREATE TABLE rota_schedules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    spec         TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT '{}',
    paused_at    INTEGER,
    next_fire_at INTEGER,
    last_fire_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Due schedules.
CREATE INDEX rota_schedules_due_idx ON rota_schedules (next_fire_at)
    WHERE paused_at IS NULL AND next_fire_at IS NOT NULL;

-- Every fire time of a schedule is recorded at most once, ever.
CREATE TABLE rota_schedule_fires (
    schedule_id  INTEGER NOT NULL,
    fire_at      INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('fired', 'skipped')),
    reason       TEXT,
    node_id      TEXT    NOT NULL,
    recorded_at  INTEGER NOT NULL,
    execution_id INTEGER,
    job_ids      TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (schedule_id, fire_at)
) WITHOUT ROWID;

CREATE TABLE rota_webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL DEFAULT '[]',
    kinds       TEXT    NOT NULL DEFAULT '[]',
    owner_kinds TEXT    NOT NULL DEFAULT '[]',
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The outbox. AUTOINCREMENT: ids are never reused after consumed events
-- are deleted, so "consumed through id N" stays meaningful.
CREATE TABLE rota_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    entity       TEXT    NOT NULL,
    entity_id    INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    execution_id INTEGER,
    at           INTEGER NOT NULL
);

CREATE TABLE rota_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL,
    event_id         INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);

-- Due deliveries.
CREATE INDEX rota_deliveries_due_idx ON rota_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- Listing per webhook, newest first; deletion with the webhook.
CREATE INDEX rota_deliveries_webhook_idx ON rota_deliveries (webhook_id, id);

-- Execution status, derived from the counters whenever they change (by
-- the triggers above or by a repair): any unfinished job → running; else
-- any failed → failed; else any canceled → canceled; else succeeded. An
-- execution without jobs keeps its (marked) status. Becoming finished sets
-- `ended_at` (to `updated_at`, the finishing job's time; kept when it was
-- already finished); going back to running clears it.
CREATE TRIGGER rota_executions_derive_status
AFTER UPDATE OF scheduled, available, running, retrying, succeeded, failed, canceled ON rota_executions
WHEN NEW.scheduled + NEW.available + NEW.running + NEW.retrying + NEW.succeeded + NEW.failed + NEW.canceled > 0
    AND NEW.status IS NOT (CASE
        WHEN NEW.scheduled + NEW.available + NEW.running + NEW.retrying > 0 THEN 'running'
        WHEN NEW.failed > 0 THEN 'failed'
        WHEN NEW.canceled > 0 THEN 'canceled'
        ELSE 'succeeded' END)
BEGIN
    UPDATE rota_executions SET
        status = CASE
            WHEN scheduled + available + running + retrying > 0 THEN 'running'
            WHEN failed > 0 THEN 'failed'
            WHEN canceled > 0 THEN 'canceled'
            ELSE 'succeeded' END,
        ended_at = CASE
            WHEN scheduled + available + running + retrying > 0 THEN NULL
            ELSE COALESCE(ended_at, updated_at) END,
        revision = revision + 1
    WHERE id = NEW.id;
END;

-- Execution events, written only while a webhook exists.

CREATE TRIGGER rota_executions_event_insert AFTER INSERT ON rota_executions
WHEN EXISTS (SELECT 1 FROM rota_webhooks)
BEGIN
    INSERT INTO rota_events (entity, entity_id, revision, status, kind, execution_id, at)
    VALUES ('execution', NEW.id, NEW.revision, NEW.status, NEW.owner_kind, NEW.id,
            CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000);
END;

CREATE TRIGGER rota_executions_event_update AFTER UPDATE OF status ON rota_executions
WHEN NEW.status IS NOT OLD.status AND EXISTS (SELECT 1 FROM rota_webhooks)
BEGIN
    INSERT INTO rota_events (entity, entity_id, revision, status, kind, execution_id, at)
    VALUES ('execution', NEW.id, NEW.revision, NEW.status, NEW.owner_kind, NEW.id,
            CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000);
END;

-- Triggers on rota_jobs: one per statement kind, so that a job without an
-- execution in a store without webhooks costs one trigger call whose WHEN
-- clause is false (SQLite evaluates WHEN inside the trigger program; two
-- triggers would cost two calls per row). The job's event is written
-- before the execution update, so it precedes the execution event the
-- change may cause. `updated_at` of the execution moves to the job's
-- latest own time (finish, start, insert), never backwards; a delete has
-- none and uses the clock.

CREATE TRIGGER rota_jobs_after_insert AFTER INSERT ON rota_jobs
WHEN NEW.execution_id IS NOT NULL OR EXISTS (SELECT 1 FROM rota_webhooks)
BEGIN
    INSERT INTO rota_events (entity, entity_id, revision, status, kind, execution_id, at)
    SELECT 'job', NEW.id, NEW.revision, NEW.state, NEW.kind, NEW.execution_id,
           CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000
    WHERE EXISTS (SELECT 1 FROM rota_webhooks);
    UPDATE rota_executions SET
        scheduled = scheduled + (NEW.state = 'scheduled'),
        available = available + (NEW.state = 'available'),
        running   = running   + (NEW.state = 'running'),
        retrying  = retrying  + (NEW.state = 'retrying'),
        succeeded = succeeded + (NEW.state = 'succeeded'),
        failed    = failed    + (NEW.state = 'failed'),
        canceled  = canceled  + (NEW.state = 'canceled'),
        updated_at = max(updated_at, COALESCE(NEW.finished_at, NEW.started_at, NEW.created_at))
    WHERE id = NEW.execution_id;
END;

-- State changes, and a cancel request on a running job (an event only).
CREATE TRIGGER rota_jobs_after_update AFTER UPDATE OF state, cancel_requested_at ON rota_jobs
WHEN (NEW.execution_id IS NOT NULL AND NEW.state IS NOT OLD.state)
    OR EXISTS (SELECT 1 FROM rota_webhooks)
BEGIN
    INSERT INTO rota_events (entity, entity_id, revision, status, kind, execution_id, at)
    SELECT 'job', NEW.id, NEW.revision, NEW.state, NEW.kind, NEW.execution_id,
           CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000
    WHERE (NEW.state IS NOT OLD.state
            OR (NEW.cancel_requested_at IS NOT NULL AND OLD.cancel_requested_at IS NULL))
        AND EXISTS (SELECT 1 FROM rota_webhooks);
    UPDATE rota_executions SET
        scheduled = scheduled + (NEW.state = 'scheduled') - (OLD.state = 'scheduled'),
        available = available + (NEW.state = 'available') - (OLD.state = 'available'),
        running   = running   + (NEW.state = 'running')   - (OLD.state = 'running'),
        retrying  = retrying  + (NEW.state = 'retrying')  - (OLD.state = 'retrying'),
        succeeded = succeeded + (NEW.state = 'succeeded') - (OLD.state = 'succeeded'),
        failed    = failed    + (NEW.state = 'failed')    - (OLD.state = 'failed'),
        canceled  = canceled  + (NEW.state = 'canceled')  - (OLD.state = 'canceled'),
        updated_at = max(updated_at, COALESCE(NEW.finished_at, NEW.started_at, NEW.created_at))
    WHERE id = NEW.execution_id AND NEW.state IS NOT OLD.state;
END;

CREATE TRIGGER rota_jobs_after_delete AFTER DELETE ON rota_jobs
WHEN OLD.execution_id IS NOT NULL
BEGIN
    UPDATE rota_executions SET
        scheduled = scheduled - (OLD.state = 'scheduled'),
        available = available - (OLD.state = 'available'),
        running   = running   - (OLD.state = 'running'),
        retrying  = retrying  - (OLD.state = 'retrying'),
        succeeded = succeeded - (OLD.state = 'succeeded'),
        failed    = failed    - (OLD.state = 'failed'),
        canceled  = canceled  - (OLD.state = 'canceled'),
        updated_at = max(updated_at, CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000)
    WHERE id = OLD.execution_id;
END;
