-- One row per claimed batch: what a claim writes instead of a version of
-- each job row.
CREATE TABLE IF NOT EXISTS rota_batches (
    token      bigint PRIMARY KEY,
    queue      text NOT NULL,
    job_ids    bigint[] NOT NULL,
    expires_at timestamptz NOT NULL
);
