-- A finish that can be a HOT update: the claim moves `stage` 1 -> 2 (and
-- leaves the claim index), the finish writes only unindexed columns and
-- keeps the lease token. Needs hot-finish-table.sql applied; the baseline
-- is inline-claim.sql. Run by run.sh (docs/benchmarks.md, "Round 13").
WITH c AS (SELECT id FROM rota_jobs WHERE stage = 1 AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' ORDER BY priority, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED),
u AS (UPDATE rota_jobs j SET stage = 2, state = 'running', attempt = j.attempt + 1, lease_token = 7, lease_expires_at = now() + interval '1 min', started_at = now(), node = 'n', revision = j.revision + 1 FROM c WHERE j.id = c.id RETURNING j.id)
SELECT string_agg(id::text, ',') AS ids FROM u \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'running' AND j.lease_token = 7;
