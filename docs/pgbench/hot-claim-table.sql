-- Prepares a second migrated database for hot-claim.sql: no index may read
-- a column the claim writes, and each page keeps room for a new version.
-- (docs/benchmarks.md, "Round 12")
DROP INDEX rota_jobs_lease_idx;
ALTER TABLE rota_jobs SET (fillfactor = 50);
