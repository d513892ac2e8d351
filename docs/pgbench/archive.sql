-- The finish moves the job into rota_jobs_done (archive-table.sql).
-- Run by run.sh (docs/benchmarks.md, "Round 11").
SELECT string_agg(id::text, ',') AS ids FROM rota_claim('q', '{}'::jsonb, NULL, 500, 7, now()+interval '1 min', now(), 'n') \gset
WITH d AS (DELETE FROM rota_jobs j WHERE j.id IN (:ids) AND j.state = 'running' AND j.lease_token = 7 RETURNING *)
INSERT INTO rota_jobs_done SELECT id, kind, queue, 'succeeded', priority, args, attempt, max_attempts, run_at, created_at, started_at, now(), errors, progress, output, labels, attributes, unique_key, timeout_ms, node, NULL, NULL, cancel_requested_at, trace_context, exit_code, execution_id, schedule_id, fire_at, revision + 1 FROM d;
