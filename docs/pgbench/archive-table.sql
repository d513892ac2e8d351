-- The archive table that archive.sql moves finished jobs into.
CREATE TABLE rota_jobs_done (LIKE rota_jobs INCLUDING DEFAULTS);
ALTER TABLE rota_jobs_done ADD PRIMARY KEY (id);
CREATE INDEX ON rota_jobs_done (finished_at);
CREATE INDEX ON rota_jobs_done (id) WHERE state IN ('failed', 'canceled');
