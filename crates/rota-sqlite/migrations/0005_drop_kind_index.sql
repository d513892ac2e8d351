-- The (kind, id) listing index took an entry on every insert: measured
-- with SQLite's own instruction counts (callgrind, the bundled library),
-- it was 4 % of a 500-row insert's cost per job and 6 % of a single-row
-- insert's, for a listing that is rarely asked for. Listings by kind now
-- scan the primary key backwards with a filter, as on PostgreSQL since its
-- migration 0005: quick while that kind has recent jobs, a walk of the
-- history for a kind that has none.
DROP INDEX IF EXISTS rota_jobs_kind_idx;
