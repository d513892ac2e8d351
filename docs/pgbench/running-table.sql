-- A narrow table of running jobs: the claim inserts one row per job
-- there instead of writing a new version of the job row.
CREATE TABLE IF NOT EXISTS rota_running (
    job_id           bigint PRIMARY KEY,
    lease_token      bigint NOT NULL,
    lease_expires_at timestamptz NOT NULL,
    node             text NOT NULL,
    started_at       timestamptz NOT NULL
);
