-- Prepares a second migrated database for hot-finish.sql: no index reads a
-- column the finish writes (`state`, `finished_at`, the lease), so a
-- finish can be a HOT update; the indexes of available jobs move to a
-- `stage` column that only the claim changes. Upper bound only: the
-- dropped indexes serve rescues, retention, failed listings and unique
-- keys. Round 13 ran it with fillfactor 50 and 20 (docs/benchmarks.md,
-- "Round 13").
ALTER TABLE rota_jobs ADD COLUMN stage smallint NOT NULL DEFAULT 1;
DROP INDEX rota_jobs_lease_idx, rota_jobs_finished_idx, rota_jobs_failed_idx, rota_jobs_due_id_idx,
  rota_jobs_unique_key_idx, rota_jobs_claim_idx, rota_jobs_queue_available_idx,
  rota_jobs_execution_idx, rota_jobs_schedule_idx;
CREATE INDEX rota_jobs_claim_idx ON rota_jobs (hashtextextended(queue, 0), priority, run_at, id) WHERE stage = 1;
CREATE INDEX rota_jobs_queue_available_idx ON rota_jobs (hashtextextended(queue, 0), id) WHERE stage = 1;
CREATE INDEX rota_jobs_lease_tok_idx ON rota_jobs (lease_token) WHERE stage = 2;
ALTER TABLE rota_jobs SET (fillfactor = 50);
