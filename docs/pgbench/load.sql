-- 200,000 available no-op jobs in queue q, as run.sh loads them.
INSERT INTO rota_jobs (id, kind, queue, state, priority, args, run_at, created_at, max_attempts)
SELECT nextval('rota_jobs_id_seq'), 'noop', 'q', 'available', 0, jsonb_build_object('n', g), now(), now(), 25 FROM generate_series(1, 200000) g;
