-- The engine's own statements: full rows in claim order, the driver's UNNEST finish.
-- Run by run.sh (docs/benchmarks.md, "Round 11").
-- The claim and the finish are copies of claim_sql and finish_sql in
-- crates/rota-postgres/src/jobs.rs as of round 12 (pgbench cannot call the
-- driver), with literal arrays for its bound ones; change them together.
\set tok random(1, 1000000000)
SELECT c.* FROM rota_claim('q', '{}'::jsonb, NULL, 500, :tok, '2030-01-01'::timestamptz + (:tok || ' seconds')::interval, now(), 'n') c, set_config('synchronous_commit', 'off', true) s ORDER BY c.priority, c.run_at, c.id;
SELECT string_agg(id::text, ',') AS ids, '{' || string_agg(id::text, ',') || '}' AS arr, '{' || string_agg(attempt::text, ',') || '}' AS att, '{' || string_agg(:tok::text, ',') || '}' AS toks, '{' || string_agg('succeeded', ',') || '}' AS st, '{' || string_agg('NULL', ',') || '}' AS nul, '{' || string_agg('"2026-12-07 00:00:00+00"', ',') || '}' AS fin FROM rota_jobs WHERE state = 'running' AND lease_expires_at = '2030-01-01'::timestamptz + (:tok || ' seconds')::interval \gset
WITH input AS (
            SELECT * FROM UNNEST(':arr'::bigint[], ':toks'::bigint[], ':nul'::timestamptz[], ':st'::text[],
                                 ':att'::integer[], ':nul'::timestamptz[], ':fin'::timestamptz[],
                                 ':nul'::jsonb[], ':nul'::text[], ':nul'::jsonb[], ':nul'::integer[])
                AS u(id, lease_token, expired_before, state, attempt, run_at, finished_at,
                     error, output, progress, exit_code)
        ), ex AS (
            SELECT execution_id FROM rota_jobs
            WHERE id = ANY(':arr'::bigint[]) AND execution_id IS NOT NULL
        ), jl AS (
            SELECT id FROM rota_jobs
            WHERE id = ANY(':arr'::bigint[]) AND EXISTS (SELECT 1 FROM ex)
            ORDER BY id
            FOR NO KEY UPDATE
        ), lk AS (SELECT e.id FROM rota_executions e WHERE e.id = ANY(ARRAY(SELECT execution_id FROM ex)) AND (SELECT count(*) FROM jl) >= 0 ORDER BY e.id FOR NO KEY UPDATE), upd AS (
            UPDATE rota_jobs j SET
                state = i.state,
                attempt = i.attempt,
                run_at = COALESCE(i.run_at, j.run_at),
                finished_at = i.finished_at,
                errors = CASE WHEN i.error IS NULL THEN j.errors
                              ELSE j.errors || jsonb_build_array(i.error) END,
                output = COALESCE(i.output, j.output),
                progress = COALESCE(i.progress, j.progress),
                exit_code = COALESCE(i.exit_code, j.exit_code),
                lease_token = NULL,
                lease_expires_at = NULL,
                revision = j.revision + 1
            FROM input i
            WHERE j.id = i.id AND j.lease_token = i.lease_token
              AND CASE j.state WHEN 'running' THEN true ELSE false END
              AND (i.expired_before IS NULL OR j.lease_expires_at < i.expired_before)
              AND (SELECT count(*) FROM lk) >= 0
            RETURNING j.id, j.state, j.queue
        ), notified AS (
            SELECT pg_notify('rota_x', q.queue)
            FROM (SELECT DISTINCT queue FROM upd WHERE state = 'available') q
        )
        SELECT id FROM upd WHERE (SELECT count(*) FROM notified) >= 0;
