#!/bin/sh
# Round 11's bare-SQL lifecycle comparison (docs/benchmarks.md, "Round 11").
# usage: run.sh <script.sql>... against $PGDATABASE (default lc), which
# must be migrated by `rota migrate` first (and have archive-table.sql
# applied for archive.sql, running-table.sql for running-serial.sql,
# batch-table.sql for batch*.sql). Each script is run on 200,000 fresh jobs.
set -e
db=${PGDATABASE:-lc}
dir=$(dirname "$0")
for s in "$@"; do
    psql -q -d "$db" -c "TRUNCATE rota_jobs" -f "$dir/load.sql" \
        -c "VACUUM ANALYZE rota_jobs" -c CHECKPOINT
    psql -q -d "$db" -c "TRUNCATE rota_jobs_done" 2>/dev/null || true
    psql -q -d "$db" -c "TRUNCATE rota_running" 2>/dev/null || true
    psql -q -d "$db" -c "TRUNCATE rota_batches" 2>/dev/null || true
    printf '%s ' "$s"
    pgbench -n -M simple -c4 -j2 -t95 -f "$s" "$db" | grep '^tps'
    # jobs/s = tps x the jobs each transaction finished
    psql -At -d "$db" -c "SELECT state, count(*) FROM rota_jobs GROUP BY 1"
done
