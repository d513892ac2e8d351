-- The (state, id) index changed with every claim and every finish; the
-- queue and kind listing indexes do not (SQLite updates only indexes on
-- changed columns). Listings by state use the partial indexes instead:
-- available (claim), running (lease), scheduled/retrying (promote), and for
-- the rare end states failed and canceled the small index below; succeeded
-- jobs are the dense majority and a backward rowid scan finds them at once.
DROP INDEX IF EXISTS rota_jobs_state_idx;
CREATE INDEX rota_jobs_failed_idx ON rota_jobs (id)
    WHERE state IN ('failed', 'canceled');
