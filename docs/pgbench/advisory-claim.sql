-- The claim skips candidates through transaction advisory locks, not row locks.
-- Run by run.sh (docs/benchmarks.md, "Round 11").
WITH c AS MATERIALIZED (SELECT id FROM (SELECT id FROM rota_jobs WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' ORDER BY priority, run_at, id LIMIT 2500) c WHERE pg_try_advisory_xact_lock(id) LIMIT 500),
u AS (UPDATE rota_jobs j SET state = 'running', attempt = j.attempt + 1, lease_token = 7, lease_expires_at = now() + interval '1 min', started_at = now(), node = 'n', revision = j.revision + 1 WHERE j.id = ANY(ARRAY(SELECT id FROM c)) AND j.state = 'available' RETURNING j.id)
SELECT coalesce(string_agg(id::text, ','), '0') AS ids FROM u \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_token = NULL, lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'running' AND j.lease_token = 7;
