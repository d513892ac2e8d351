-- Today's lifecycle with the claim written inline (no rota_claim function),
-- the baseline of hot-claim.sql. Run by run.sh (docs/benchmarks.md, "Round 12").
WITH c AS (SELECT id FROM rota_jobs WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' ORDER BY priority, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED),
u AS (UPDATE rota_jobs j SET state = 'running', attempt = j.attempt + 1, lease_token = 7, lease_expires_at = now() + interval '1 min', started_at = now(), node = 'n', revision = j.revision + 1 FROM c WHERE j.id = c.id RETURNING j.id)
SELECT string_agg(id::text, ',') AS ids FROM u \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_token = NULL, lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'running' AND j.lease_token = 7;
