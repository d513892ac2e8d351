-- A narrow table of running jobs (running-table.sql): the claim inserts
-- one row per job there instead of writing a version of the job row; its
-- primary key makes a claim exclusive, and claims of one queue take turns
-- (a transaction-level advisory lock), so no two pick the same jobs. The
-- finish deletes the run's row and writes the job row's one new version.
-- Run by run.sh (docs/benchmarks.md, "Round 14").
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('q', 0));
WITH c AS (SELECT id FROM rota_jobs j WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' AND NOT EXISTS (SELECT 1 FROM rota_running r WHERE r.job_id = j.id) ORDER BY priority, run_at, id LIMIT 500), ins AS (INSERT INTO rota_running (job_id, lease_token, lease_expires_at, node, started_at) SELECT id, 7, now() + interval '1 min', 'n', now() FROM c ON CONFLICT DO NOTHING RETURNING job_id) SELECT COALESCE(string_agg(job_id::text, ','), '0') AS ids FROM ins \gset
COMMIT;
WITH d AS (DELETE FROM rota_running WHERE job_id IN (:ids) AND lease_token = 7 RETURNING job_id) UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), attempt = j.attempt + 1, revision = j.revision + 1 FROM d WHERE j.id = d.job_id AND j.state = 'available';
