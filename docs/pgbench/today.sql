-- Today's lifecycle: claim through rota_claim, finish by one UPDATE.
-- Run by run.sh (docs/benchmarks.md, "Round 11").
SELECT string_agg(id::text, ',') AS ids FROM rota_claim('q', '{}'::jsonb, NULL, 500, 7, now()+interval '1 min', now(), 'n') \gset
UPDATE rota_jobs j SET state = 'succeeded', finished_at = now(), lease_token = NULL, lease_expires_at = NULL, revision = j.revision + 1 WHERE j.id IN (:ids) AND j.state = 'running' AND j.lease_token = 7;
