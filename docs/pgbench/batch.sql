-- Claim: one row per batch (claims of one queue take turns); running jobs
-- stay `available` in the claim index and are skipped through the live
-- batches' ids. Finish: the batch's row goes, each job gets its one version.
-- Run by run.sh (docs/benchmarks.md, "Round 14").
\set token random(1, 4000000000000)
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('q', 0));
WITH live AS (SELECT unnest(job_ids) AS id FROM rota_batches WHERE queue = 'q'), c AS (SELECT id FROM rota_jobs j WHERE state = 'available' AND hashtextextended(queue, 0) = hashtextextended('q', 0) AND queue = 'q' AND j.id NOT IN (SELECT id FROM live) ORDER BY priority, run_at, id LIMIT 500), ins AS (INSERT INTO rota_batches (token, queue, job_ids, expires_at) SELECT :token, 'q', array_agg(id), now() + interval '1 min' FROM c RETURNING job_ids) SELECT cardinality(job_ids) AS n FROM ins \gset
COMMIT;
WITH b AS (DELETE FROM rota_batches WHERE token = :token RETURNING job_ids) UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), attempt = j.attempt + 1, revision = j.revision + 1 FROM b WHERE j.id = ANY (b.job_ids) AND j.state = 'available';
