-- The claim and the promotion, with plans that do not depend on the
-- table's statistics.
--
-- The claim must walk `rota_jobs_claim_idx` in order and stop after `max`
-- rows. Right after a bulk load (no statistics yet), or once a backlog has
-- built up since the last ANALYZE (which saw almost no available jobs), the
-- planner expects a handful of matching rows and prefers a bitmap scan of
-- every available job of the queue plus a sort. With 300,000 queued jobs
-- that took 380 ms per 1,000-job claim instead of 10 ms, and since the plan
-- only changes after autovacuum's next ANALYZE, a backlog made claims slow
-- exactly when it needed them fast.
--
-- A function's SET clauses hold while its body is planned and run, so the
-- planner here has neither bitmap nor sequential scans nor sorts worth
-- choosing, whatever it believes about the rows. PL/pgSQL rather than SQL:
-- it keeps the body's plan for the session, where a SQL function with SET
-- clauses is planned afresh on every call (+0.4 ms per claim, measured as
-- enqueue -> start latency). The whole claim is one statement in here, so
-- choosing, locking and updating the rows share one snapshot (a candidate
-- query of its own, in a volatile function, would take a newer snapshot
-- than the caller's UPDATE and could lock a row that UPDATE cannot see).
--
-- The lock order is the driver's (`lock_executions_cte` in jobs.rs): the
-- job rows, then their executions by id, before any row changes.
CREATE FUNCTION rota_claim(p_queue text, p_labels jsonb, p_kinds text[], p_max bigint,
                           p_token bigint, p_expires timestamptz, p_now timestamptz,
                           p_node text)
RETURNS SETOF {{schema}}.rota_jobs
LANGUAGE plpgsql VOLATILE
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
AS $$
BEGIN
    RETURN QUERY
    WITH c AS MATERIALIZED (
        SELECT j.id, j.execution_id FROM {{schema}}.rota_jobs j
        WHERE j.state = 'available' AND j.queue = p_queue AND j.labels <@ p_labels
          AND (p_kinds IS NULL OR j.kind = ANY(p_kinds))
          AND NOT EXISTS (SELECT 1 FROM {{schema}}.rota_queues q
                          WHERE q.name = p_queue AND q.paused_at IS NOT NULL)
        ORDER BY j.priority, j.run_at, j.id
        LIMIT p_max
        FOR UPDATE OF j SKIP LOCKED
    ), lk AS (
        SELECT e.id FROM {{schema}}.rota_executions e
        WHERE e.id = ANY(ARRAY(SELECT c.execution_id FROM c WHERE c.execution_id IS NOT NULL))
        ORDER BY e.id
        FOR NO KEY UPDATE
    ), u AS (
        UPDATE {{schema}}.rota_jobs j
        SET state = 'running', attempt = j.attempt + 1, lease_token = p_token,
            lease_expires_at = p_expires, started_at = p_now, node = p_node,
            revision = j.revision + 1
        WHERE j.id = ANY(ARRAY(SELECT c.id FROM c)) AND (SELECT count(*) FROM lk) >= 0
        RETURNING j.*
    )
    SELECT * FROM u;
END
$$;

-- Promotion's index in its full order: with `(run_at)` alone, ordering
-- due jobs by (run_at, id) sorted every job due at one instant (a bulk
-- schedule) on each call. Built before the old one is dropped, so the
-- table is locked exclusively only for the drop.
CREATE INDEX rota_jobs_due_id_idx ON rota_jobs (run_at, id)
    WHERE state IN ('scheduled', 'retrying');
DROP INDEX rota_jobs_due_idx;

-- The promotion's candidates, for the same reason as the claim's: due
-- scheduled and retrying jobs in (run_at, id) order, an ordered walk of
-- `rota_jobs_due_id_idx`. Without statistics, 300,000 due jobs were read
-- through a bitmap scan and sorted on every call. Unlike the claim, the
-- promotion statement stays in the driver (it counts and notifies per
-- queue); a row committed between the caller's snapshot and this
-- function's is locked but left for the next pass.
CREATE FUNCTION rota_due_candidates(p_now timestamptz, p_max bigint)
RETURNS TABLE (id bigint, execution_id bigint)
LANGUAGE plpgsql VOLATILE
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
AS $$
BEGIN
    RETURN QUERY
    SELECT j.id, j.execution_id FROM {{schema}}.rota_jobs j
    WHERE j.state IN ('scheduled', 'retrying') AND j.run_at <= p_now
    ORDER BY j.run_at, j.id
    LIMIT p_max
    FOR UPDATE OF j SKIP LOCKED;
END
$$;
