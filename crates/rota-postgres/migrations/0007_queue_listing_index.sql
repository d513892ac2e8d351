-- The full (queue, id) listing index got a new entry on every claim and
-- every finish (both are non-HOT updates). Measured with a serial
-- claim + finish of 1,000 jobs on a 200k-deep queue: 24.5 ms with it,
-- 20.1 ms without.
--
-- Waiting work is what people list by queue and what can be deep, so
-- available jobs keep a (queue, id) index of their own, which claims and
-- finishes never touch (their new row versions are not available). Other
-- states of a queue are listed through their partial indexes (running:
-- lease; scheduled/retrying: due; failed/canceled: failed) or, for
-- succeeded jobs and listings without a state, a backward primary-key
-- scan filtered by queue, as listings by kind already are: instant for a
-- busy queue, a scan of the history for a rare one (237 ms for a rare
-- queue's succeeded jobs among 1.1M rows). A (queue, id) index on finished
-- jobs would take that back, but costs an entry per finish: with it the
-- bench's processing gain shrank from 33.5k–40k to 31k–32.5k jobs/s
-- (30k–31k before this migration).
--
-- The new index is built before the old one is dropped: the build lets
-- reads go on, while the drop locks the table exclusively until the
-- migration commits.
CREATE INDEX rota_jobs_queue_available_idx ON rota_jobs (queue, id)
    WHERE state = 'available';
DROP INDEX IF EXISTS rota_jobs_queue_id_idx;
