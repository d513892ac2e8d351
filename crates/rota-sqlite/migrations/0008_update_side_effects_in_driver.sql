-- State changes no longer run a row trigger. Its two effects, the webhook
-- outbox row of every job whose state changed or that got its first
-- cancel request (while a webhook exists), and the counters of the job's
-- execution, are written by the driver in the same transaction as the
-- change (`change_effects.rs`), as migration 7 did for inserts.
--
-- The trigger's sub-program ran for every claimed and every finished row,
-- even when its WHEN clause was false: 3.95k of the 51.6k instructions a
-- claimed and finished job cost (`sqlite_costs`). Deletes keep theirs.
DROP TRIGGER IF EXISTS rota_jobs_after_update;
