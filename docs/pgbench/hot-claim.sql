-- A claim that can be a HOT update: it writes only columns no index reads
-- (state stays 'available'; running = available with a lease token).
-- Needs hot-claim-table.sql applied. Run by run.sh (docs/benchmarks.md, "Round 12").
WITH c AS (SELECT id FROM rota_jobs WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' AND lease_token IS NULL ORDER BY priority, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED),
u AS (UPDATE rota_jobs j SET attempt = j.attempt + 1, lease_token = 7, lease_expires_at = now() + interval '1 min', started_at = now(), node = 'n', revision = j.revision + 1 FROM c WHERE j.id = c.id RETURNING j.id)
SELECT string_agg(id::text, ',') AS ids FROM u \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_token = NULL, lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'available' AND j.lease_token = 7;
