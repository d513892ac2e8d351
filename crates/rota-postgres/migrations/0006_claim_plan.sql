-- The claim's choice of candidates, with a plan that does not depend on
-- the table's statistics.
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
-- choosing, whatever it believes about the rows. Row locks taken inside
-- last for the calling statement's transaction. PL/pgSQL rather than SQL:
-- it keeps the body's plan for the session, where a SQL function with SET
-- clauses is planned afresh on every call (+0.4 ms per claim, measured as
-- enqueue -> start latency).
CREATE FUNCTION rota_claim_candidates(p_queue text, p_labels jsonb, p_kinds text[], p_max bigint)
RETURNS TABLE (id bigint, execution_id bigint)
LANGUAGE plpgsql VOLATILE
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_sort = off
AS $$
BEGIN
    RETURN QUERY
    SELECT j.id, j.execution_id FROM {{schema}}.rota_jobs j
    WHERE j.state = 'available' AND j.queue = p_queue AND j.labels <@ p_labels
      AND (p_kinds IS NULL OR j.kind = ANY(p_kinds))
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.rota_queues q
                      WHERE q.name = p_queue AND q.paused_at IS NOT NULL)
    ORDER BY j.priority, j.run_at, j.id
    LIMIT p_max
    FOR UPDATE OF j SKIP LOCKED;
END
$$;

-- The promotion's candidates, for the same reason: due scheduled and
-- retrying jobs in `run_at` order, an ordered walk of `rota_jobs_due_idx`.
-- Without statistics, 300,000 due jobs were read through a bitmap scan and
-- sorted for every call. Ties in `run_at` (a bulk schedule for one
-- instant) come in index order: ordering them by id too would need a sort
-- of every job due at that instant.
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
    ORDER BY j.run_at
    LIMIT p_max
    FOR UPDATE OF j SKIP LOCKED;
END
$$;
