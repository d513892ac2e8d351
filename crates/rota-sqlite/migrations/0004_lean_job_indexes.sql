-- The (state, id) index changed with every claim and every finish; the
-- queue and kind listing indexes do not (SQLite updates only indexes on
-- changed columns). Failures (failed, canceled) are listed from the small
-- index below, in id order; the driver repeats its WHERE term in the query,
-- which SQLite needs to use a partial index. Other states are listed by a
-- backward rowid scan: unfinished jobs are mostly the newest rows, and
-- succeeded ones the dense majority.
DROP INDEX IF EXISTS rota_jobs_state_idx;
CREATE INDEX rota_jobs_failed_idx ON rota_jobs (id)
    WHERE state IN ('failed', 'canceled');
