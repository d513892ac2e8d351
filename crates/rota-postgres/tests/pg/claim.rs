//! Claims: SKIP LOCKED under concurrency, ordering, fencing.

use std::collections::HashSet;
use std::time::Duration;

use rota_core::{AttemptError, ErrorKind, JobState};
use rota_driver::{Driver, JobFinishParams, JobHeartbeatParams};

use crate::common::{claim_params, job, now, other_node, subscribe_ready, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_concurrent_claimers_never_share_a_job() {
    with_default_driver(|driver, _| async move {
        let params: Vec<_> = (0..1_000).map(|_| job("busy")).collect();
        let inserted = driver.job_insert_many(params).await.unwrap();
        assert_eq!(inserted.len(), 1_000);

        let mut tasks = Vec::new();
        for worker in 0..4i64 {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut empty = 0;
                while empty < 3 {
                    let got = d
                        .job_claim(&claim_params("busy", 7, worker + 1))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        empty += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    for j in &got {
                        assert_eq!(j.state, JobState::Running);
                        assert_eq!(j.attempt, 1);
                        assert_eq!(j.lease_token, Some(worker + 1));
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        let mut per_worker = Vec::new();
        for t in tasks {
            let mine = t.await.unwrap();
            per_worker.push(mine.len());
            all.extend(mine);
        }
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
        assert_eq!(all.len(), 1_000, "every job claimed exactly once");
        eprintln!("claims per worker: {per_worker:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_orders_by_priority_run_at_id_and_skips_paused() {
    with_default_driver(|driver, _| async move {
        let base = now();
        let mut specs = Vec::new();
        for (priority, offset) in [(2, 0), (0, 5), (0, 1), (1, 0)] {
            let mut p = job("ord");
            p.priority = priority;
            p.run_at = base - Duration::from_secs(offset);
            specs.push(p);
        }
        let ids: Vec<i64> = driver
            .job_insert_many(specs)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.job.id)
            .collect();
        driver
            .queue_pause(&rota_driver::QueuePauseParams {
                name: "ord".into(),
                now: base,
            })
            .await
            .unwrap();
        assert!(
            driver
                .job_claim(&claim_params("ord", 10, 1))
                .await
                .unwrap()
                .is_empty()
        );
        driver
            .queue_resume(&rota_driver::QueuePauseParams {
                name: "ord".into(),
                now: base,
            })
            .await
            .unwrap();
        let got: Vec<i64> = driver
            .job_claim(&claim_params("ord", 10, 1))
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(got, vec![ids[1], ids[2], ids[3], ids[0]]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_and_heartbeat_are_fenced_by_lease_token() {
    with_default_driver(|driver, _| async move {
        driver.job_insert_many(vec![job("fence")]).await.unwrap();
        let j = driver
            .job_claim(&claim_params("fence", 1, 111))
            .await
            .unwrap()
            .remove(0);
        let t = now();
        let finish = |token: i64, expired_before| JobFinishParams {
            id: j.id,
            execution_id: j.execution_id,
            lease_token: token,
            lease_expired_before: expired_before,
            state: JobState::Retrying,
            attempt: j.attempt,
            run_at: Some(t + Duration::from_secs(60)),
            finished_at: None,
            error: Some(AttemptError {
                attempt: 1,
                at: t,
                kind: ErrorKind::Error,
                message: "boom".into(),
            }),
            output: Some("out".into()),
            progress: None,
            exit_code: None,
        };

        // Stale token: nothing changes.
        let r = driver
            .job_finish_many(vec![finish(999, None)])
            .await
            .unwrap();
        assert!(!r[0].applied);
        let hb = driver
            .job_heartbeat_many(&JobHeartbeatParams {
                jobs: vec![(j.id, 999), (j.id, 111)],
                lease_expires_at: t + Duration::from_secs(90),
                now: t,
            })
            .await
            .unwrap();
        assert!(!hb[0].held);
        assert!(hb[1].held);
        assert!(!hb[1].cancel_requested);

        // Rescue fence: the lease has not expired before `t`, so no rescue.
        let r = driver
            .job_finish_many(vec![finish(111, Some(t))])
            .await
            .unwrap();
        assert!(!r[0].applied, "a fresh lease wins over a rescue");
        assert_eq!(
            driver.job_get(j.id).await.unwrap().unwrap().state,
            JobState::Running
        );

        // Right token: applies once, then the run is over.
        let r = driver
            .job_finish_many(vec![finish(111, None), finish(111, None)])
            .await
            .unwrap();
        assert!(r[0].applied);
        assert!(!r[1].applied, "a repeated finish of the same run is stale");
        let stored = driver.job_get(j.id).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Retrying);
        assert_eq!(stored.errors.len(), 1);
        assert_eq!(stored.errors[0].message, "boom");
        assert_eq!(stored.output.as_deref(), Some("out"));
        assert_eq!(stored.lease_token, None);
        assert_eq!(stored.lease_expires_at, None);
        assert_eq!(stored.node.as_deref(), Some("node-1"), "node kept");
    })
    .await;
}

/// A statistics counter of the schema's jobs table (`column` of `view`,
/// e.g. `seq_scan` of `pg_stat_user_tables`, filtered by `filter`),
/// including everything the driver's connection did so far. Only for a
/// driver with one connection: a backend publishes its counters when it
/// goes idle, at most once a second unless told to flush, and this tells
/// it to (`pg_stat_force_next_flush`, PostgreSQL 15 and later, which CI
/// installs).
async fn jobs_stat(
    driver: &rota_postgres::PgDriver,
    view: &str,
    column: &str,
    filter: &str,
) -> i64 {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(driver.pool())
        .await
        .unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM {view} WHERE schemaname = '{}' AND {filter}",
        driver.schema().unwrap()
    )))
    .fetch_one(driver.pool())
    .await
    .unwrap()
}

/// A fresh-schema driver with a single pooled connection (see
/// [`jobs_stat`]).
async fn with_one_connection<F, Fut>(body: F)
where
    F: FnOnce(rota_postgres::PgDriver, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    crate::common::with_driver(
        |schema| rota_postgres::PgOptions {
            max_connections: 1,
            ..rota_postgres::PgOptions::with_schema(schema)
        },
        body,
    )
    .await;
}

async fn jobs_seq_scans(driver: &rota_postgres::PgDriver) -> i64 {
    jobs_stat(
        driver,
        "pg_stat_user_tables",
        "seq_scan",
        "relname = 'rota_jobs'",
    )
    .await
}

/// Index entries read from `index` so far (see [`jobs_stat`]).
async fn index_entries_read(driver: &rota_postgres::PgDriver, index: &str) -> i64 {
    let filter = format!("indexrelname = '{index}'");
    jobs_stat(driver, "pg_stat_user_indexes", "idx_tup_read", &filter).await
}

/// Puts 300,000 jobs in `state`, due at `run_at` (SQL), into a table that
/// has no statistics and gets none (autovacuum off). Without statistics the
/// ordered index walk and a bitmap scan plus sort cost nearly the same, so
/// the planner's choice turns on details: rows of this shape (the bench's)
/// gave the bitmap plan from somewhere between 150,000 and 300,000 rows on.
/// Plain SQL loads them in a second.
async fn load_without_statistics(driver: &rota_postgres::PgDriver, state: &str, run_at: &str) {
    exec_sql(
        driver,
        "ALTER TABLE {schema}.rota_jobs SET (autovacuum_enabled = false)",
    )
    .await;
    exec_sql(
        driver,
        &format!(
            "INSERT INTO {{schema}}.rota_jobs (kind, queue, state, args, max_attempts, run_at, created_at)
             SELECT 'noop', 'default', '{state}', '{{\"i\": 1}}', 25, {run_at}, now()
             FROM generate_series(1, 300000)"
        ),
    )
    .await;
}

/// Runs `sql` (with `{schema}` replaced) on the driver's pool.
async fn exec_sql(driver: &rota_postgres::PgDriver, sql: &str) {
    let sql = sql.replace("{schema}", &format!("\"{}\"", driver.schema().unwrap()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(driver.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_and_promotion_find_rows_by_index_in_a_large_table() {
    // Written as a join on the CTE of chosen ids, the UPDATE of a 1,000-job
    // claim was planned as a hash join over the whole (analyzed) table: a
    // sequential scan per claim, dead rows included.
    with_one_connection(|driver, _| async move {
        let mut specs: Vec<_> = (0..20_000).map(|_| job("big")).collect();
        for p in specs.iter_mut().skip(15_000) {
            p.state = JobState::Scheduled;
            p.run_at = now() - Duration::from_secs(1);
        }
        driver.job_insert_many(specs).await.unwrap();
        exec_sql(&driver, "ANALYZE {schema}.rota_jobs").await;
        let before = jobs_seq_scans(&driver).await;
        for token in 1..=3 {
            let got = driver
                .job_claim(&claim_params("big", 1_000, token))
                .await
                .unwrap();
            assert_eq!(got.len(), 1_000);
        }
        let promoted = driver
            .job_promote_due(&rota_driver::JobPromoteParams {
                now: now(),
                limit: 5_000,
            })
            .await
            .unwrap();
        assert_eq!(promoted.iter().map(|q| q.count).sum::<u64>(), 5_000);
        assert_eq!(
            jobs_seq_scans(&driver).await,
            before,
            "a claim or promotion scanned the jobs table"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_walks_the_claim_index_in_order_without_statistics() {
    // Without statistics (a fresh bulk load) the planner expected a few
    // rows and read every available job of the queue through a bitmap scan,
    // then sorted them: 380 ms per claim with 300,000 queued. The claim must
    // read about as many index entries as it claims, in index order.
    with_one_connection(|driver, _| async move {
        load_without_statistics(&driver, "available", "now()").await;
        let before = index_entries_read(&driver, "rota_jobs_claim_idx").await;
        let got = driver
            .job_claim(&rota_driver::JobClaimParams {
                kinds: Some(vec!["noop".to_owned()]),
                ..claim_params("default", 500, 1)
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 500);
        // Same priority and run_at: the claim takes the 500 lowest ids.
        let first: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT min(id) FROM \"{}\".rota_jobs",
            driver.schema().unwrap()
        )))
        .fetch_one(driver.pool())
        .await
        .unwrap();
        let ids: Vec<i64> = got.iter().map(|j| j.id).collect();
        assert_eq!(ids, (first..first + 500).collect::<Vec<_>>());
        let entries = index_entries_read(&driver, "rota_jobs_claim_idx").await - before;
        assert!(
            entries < 2_000,
            "a 500-job claim read {entries} claim-index entries of 300,000"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_available_jobs_are_listed_through_its_index() {
    // The index's leading key is the queue name's hash (migration 8): a
    // listing of one queue's waiting jobs must still find them through it,
    // and only that queue's jobs.
    with_one_connection(|driver, _| async move {
        exec_sql(
            &driver,
            "INSERT INTO {schema}.rota_jobs (kind, queue, state, args, max_attempts, run_at, created_at)
             SELECT 'noop', CASE WHEN g % 1000 = 0 THEN 'rare' ELSE 'busy' END, 'available',
                    '{}', 25, now(), now()
             FROM generate_series(1, 50000) g;
             ANALYZE {schema}.rota_jobs",
        )
        .await;
        let seq_before = jobs_seq_scans(&driver).await;
        let read_before = index_entries_read(&driver, "rota_jobs_queue_available_idx").await;
        let listed = driver
            .job_list(&rota_driver::JobListParams {
                queue: Some("rare".to_owned()),
                states: vec![JobState::Available],
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 20);
        assert!(listed.iter().all(|j| j.queue == "rare"));
        assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(jobs_seq_scans(&driver).await, seq_before, "the listing scanned the table");
        let read = index_entries_read(&driver, "rota_jobs_queue_available_idx").await - read_before;
        assert!(
            (20..100).contains(&read),
            "listing 20 of 50 rare jobs read {read} entries of the queue index"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_walks_the_due_index_in_order_without_statistics() {
    // Like the claim: without statistics, every due job was read through a
    // bitmap scan and sorted on each promotion call.
    with_one_connection(|driver, _| async move {
        // All due at one instant, as a bulk schedule would be.
        load_without_statistics(&driver, "scheduled", "now() - interval '1 second'").await;
        let before = index_entries_read(&driver, "rota_jobs_due_id_idx").await;
        let promoted = driver
            .job_promote_due(&rota_driver::JobPromoteParams {
                now: now(),
                limit: 500,
            })
            .await
            .unwrap();
        assert_eq!(promoted.iter().map(|q| q.count).sum::<u64>(), 500);
        let entries = index_entries_read(&driver, "rota_jobs_due_id_idx").await - before;
        assert!(
            entries < 2_000,
            "promoting 500 jobs read {entries} due-index entries of 300,000"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_commits_without_a_flush_and_leaves_the_connection_durable() {
    with_one_connection(|driver, url| async move {
        let id = driver.job_insert_many(vec![job("q")]).await.unwrap()[0]
            .job
            .id;
        let before: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(driver.pool())
            .await
            .unwrap();
        assert_ne!(before, "off", "the server's default is durable");
        let got = driver.job_claim(&claim_params("q", 1, 7)).await.unwrap();
        assert_eq!(got.len(), 1);

        // Committed: another session sees the claim at once.
        let other = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let state: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT state FROM \"{}\".rota_jobs WHERE id = $1",
            driver.schema().unwrap()
        )))
        .bind(id)
        .fetch_one(&other)
        .await
        .unwrap();
        other.close().await;
        assert_eq!(state, "running");

        // The pool's only connection ran the claim: its setting ended with
        // the claim's transaction, so the next enqueue waits for its flush.
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(driver.pool())
            .await
            .unwrap();
        assert_eq!(sync, before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pool_connections_are_readied_for_the_claim() {
    with_default_driver(|driver, url| async move {
        // A second driver on the migrated schema: its connections open
        // after migration, so readying them succeeds.
        let other = other_node(&driver, &url, 1).await;
        let prepared: i64 = sqlx::query_scalar(CLAIMS_PREPARED)
            .fetch_one(other.pool())
            .await
            .unwrap();
        assert_eq!(prepared, 1, "the claim is prepared on a new connection");
        // And the readied statement is the one claims use.
        other.job_insert_many(vec![job("w")]).await.unwrap();
        assert_eq!(
            other
                .job_claim(&claim_params("w", 5, 1))
                .await
                .unwrap()
                .len(),
            1
        );
        let prepared: i64 = sqlx::query_scalar(CLAIMS_PREPARED)
            .fetch_one(other.pool())
            .await
            .unwrap();
        assert_eq!(prepared, 1, "no second claim statement prepared");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribing_worker_opens_connections_readied_for_the_claim() {
    with_default_driver(|driver, _| async move {
        let _rx = subscribe_ready(&driver).await;
        let mut opened = false;
        for _ in 0..100 {
            if driver.pool().num_idle() >= 4 {
                opened = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(opened, "four idle connections after subscribing");
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(driver.pool().acquire().await.unwrap());
        }
        for c in &mut conns {
            let prepared: i64 = sqlx::query_scalar(CLAIMS_PREPARED)
                .fetch_one(&mut **c)
                .await
                .unwrap();
            assert_eq!(prepared, 1, "each is ready to claim");
        }
    })
    .await;
}

/// Prepared statements of this session that call the claim function (but
/// this one).
const CLAIMS_PREPARED: &str = "SELECT count(*) FROM pg_prepared_statements
    WHERE statement LIKE '%rota_claim(%' AND statement NOT LIKE '%pg_prepared_statements%'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishes_and_heartbeats_probe_their_jobs_not_every_running_job() {
    // With `state = 'running'` in their fence, finishes and heartbeats read
    // every running job through the lease index (and, planned on
    // statistics from before the claims, could rescan their input once per
    // running job). Each must reach its jobs through the primary key only.
    with_one_connection(|driver, _| async move {
        let specs: Vec<_> = (0..3_000).map(|_| job("fence")).collect();
        driver.job_insert_many(specs).await.unwrap();
        // Statistics that promise no running job, as after a bulk load.
        exec_sql(&driver, "ANALYZE {schema}.rota_jobs").await;
        let mut runs = Vec::new();
        for token in 1..=4 {
            let got = driver
                .job_claim(&claim_params("fence", 500, token))
                .await
                .unwrap();
            assert_eq!(got.len(), 500);
            runs.push(got);
        }
        let before = index_entries_read(&driver, "rota_jobs_lease_idx").await;
        let t = now();

        let beats = driver
            .job_heartbeat_many(&JobHeartbeatParams {
                jobs: runs[0].iter().map(|j| (j.id, 1)).collect(),
                lease_expires_at: t + Duration::from_secs(60),
                now: t,
            })
            .await
            .unwrap();
        assert!(beats.iter().all(|b| b.held));

        let finish = |j: &rota_core::Job, token: i64, state: JobState| JobFinishParams {
            id: j.id,
            execution_id: j.execution_id,
            lease_token: token,
            lease_expired_before: None,
            state,
            attempt: j.attempt,
            run_at: (state == JobState::Retrying).then(|| t + Duration::from_secs(60)),
            finished_at: (state == JobState::Succeeded).then_some(t),
            error: None,
            output: None,
            progress: None,
            exit_code: None,
        };
        // Each kind of finish: to a final state and back to waiting.
        let succeeded: Vec<_> = runs[1]
            .iter()
            .map(|j| finish(j, 2, JobState::Succeeded))
            .collect();
        let retried: Vec<_> = runs[2]
            .iter()
            .map(|j| finish(j, 3, JobState::Retrying))
            .collect();
        for batch in [succeeded, retried] {
            let done = driver.job_finish_many(batch).await.unwrap();
            assert_eq!(done.iter().filter(|r| r.applied).count(), 500);
        }

        assert_eq!(
            index_entries_read(&driver, "rota_jobs_lease_idx").await,
            before,
            "a finish or heartbeat read running jobs through the lease index"
        );
    })
    .await;
}
