-- No claim row version: session advisory locks claim, the finish is the only write.
-- Run by run.sh (docs/benchmarks.md, "Round 11").
SELECT string_agg(id::text, ',') AS ids FROM (SELECT id FROM (SELECT id FROM rota_jobs WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' ORDER BY priority, run_at, id LIMIT 2500) c WHERE pg_try_advisory_lock(id) LIMIT 500) d \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_token = NULL, lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'available';
SELECT pg_advisory_unlock_all();
