-- A job queue updates and deletes most of its rows within minutes. With the
-- default thresholds (20 % of the table changed) autovacuum falls far
-- behind a deep queue, and the claim scan on the partial `available` index
-- walks ever more entries of rows that were already claimed. Vacuum this
-- table early and without throttling.
ALTER TABLE rota_jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
