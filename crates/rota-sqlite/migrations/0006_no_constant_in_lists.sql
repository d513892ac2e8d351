-- SQLite compiles `x IN (a, b, c)` with three or more constants into a
-- lookup in a temporary B-tree that every execution of a statement builds
-- afresh and searches once per row; with one or two constants it emits
-- plain comparisons. The job table's CHECK on `state` (seven constants)
-- and the predicates of the finished and unique-key indexes (three) were
-- evaluated that way on every insert, claim and finish. Measured with
-- callgrind on the bundled SQLite 3.51.3 (`sqlite_costs`, see
-- docs/benchmarks.md): 38 % of a single-row insert's instructions, 31 % of
-- a 500-row insert's per job, and 35 % of a claim plus finish. Each is
-- restated below with the same meaning and no constant list.

-- The CHECK, as a chain of comparisons, most frequent states first.
-- SQLite has no ALTER for a CHECK. Rewriting the stored CREATE TABLE text
-- is its documented way to change one that every existing row already
-- satisfies (https://sqlite.org/lang_altertable.html, "Making Other Kinds
-- Of Table Schema Changes"); an equivalent one is. RESET reloads this
-- connection's schema; the DDL below bumps the schema cookie, so every
-- other connection reloads its own before its next statement. A database
-- whose text does not match (none written by Rota) keeps its CHECK.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql,
    'CHECK (state IN (''scheduled'', ''available'', ''running'', ''retrying'', ''succeeded'', ''failed'', ''canceled''))',
    'CHECK (state = ''available'' OR state = ''running'' OR state = ''succeeded'' OR state = ''scheduled'' OR state = ''retrying'' OR state = ''failed'' OR state = ''canceled'')')
WHERE type = 'table' AND name = 'rota_jobs';
PRAGMA writable_schema = RESET;

-- Retention's index, on what a finish writes: `finished_at` is set when a
-- job reaches a final state and only then (a retry clears it), so a claim,
-- which does not write it, no longer touches this index. Jobs of
-- executions are left out, as retention leaves them to the executions'.
-- The pruning statements repeat both terms. (A binary older than this
-- migration cannot prune by count on a migrated file: its statement does
-- not imply `finished_at IS NOT NULL`, so SQLite refuses its INDEXED BY.)
DROP INDEX rota_jobs_finished_idx;
CREATE INDEX rota_jobs_finished_idx ON rota_jobs (finished_at)
    WHERE finished_at IS NOT NULL AND execution_id IS NULL;

-- At most one unfinished job per unique key: the same rows as before.
DROP INDEX rota_jobs_unique_key_idx;
CREATE UNIQUE INDEX rota_jobs_unique_key_idx ON rota_jobs (unique_key)
    WHERE unique_key IS NOT NULL
        AND state <> 'succeeded' AND state <> 'failed' AND state <> 'canceled';
