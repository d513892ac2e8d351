//! A rough timing of the hot paths (bulk insert, claim, finish), to notice
//! regressions by hand:
//! `cargo test -p rota-sqlite --test perf -- --ignored --nocapture`
//! (`ROTA_PERF_N` jobs, `ROTA_PERF_MODES=plain`, `ROTA_PERF_NO_JOB_TRIGGERS`
//! to measure without the job triggers).
//! Not a benchmark (see rota-bench); ignored by default.
//!
//! Runs the same workload three ways: plain jobs (the hot path the trigger
//! WHEN clauses keep cheap), plain jobs while a webhook exists (every state
//! change writes an outbox event), and jobs inside executions (every state
//! change moves the execution's counters).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{at, claim_at};
use rota_core::JobState;
use rota_driver::{
    Driver, ExecutionInsertParams, JobFinishParams, JobInsertParams, Trigger, WebhookInsertParams,
};
use rota_sqlite::{SqliteDriver, SqliteOptions, Synchronous};

const BATCH: u32 = 200;

/// Jobs per run (`ROTA_PERF_N`, default 40,000).
fn n() -> usize {
    std::env::var("ROTA_PERF_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

/// A perf job, numbered in its arguments.
fn job(i: usize) -> JobInsertParams {
    JobInsertParams {
        args: serde_json::json!({ "i": i }),
        ..common::job("perf", "perf")
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Webhook,
    Executions,
}

async fn run(mode: Mode) {
    let n = n();
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let driver = SqliteDriver::open(dir.path().join("perf.db").to_str().unwrap(), options)
        .await
        .unwrap();
    if std::env::var("ROTA_PERF_NO_JOB_TRIGGERS").is_ok() {
        // For comparison only: the cost of the job triggers themselves.
        use sqlx::ConnectOptions;
        let path = dir.path().join("perf.db");
        let mut c = rota_sqlite::connect_options(path.to_str().unwrap())
            .unwrap()
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql("DROP TRIGGER rota_jobs_after_delete;")
            .execute(&mut c)
            .await
            .unwrap();
    }
    if let Mode::Webhook = mode {
        driver
            .webhook_insert(&WebhookInsertParams {
                url: "https://example.test".into(),
                events: vec!["job.*".into()],
                kinds: Vec::new(),
                owner_kinds: Vec::new(),
                secret: "s".into(),
                now: at(0),
            })
            .await
            .unwrap();
    }

    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let jobs: Vec<JobInsertParams> = chunk.iter().map(|i| job(*i)).collect();
        match mode {
            Mode::Plain | Mode::Webhook => {
                driver.job_insert_many(jobs).await.unwrap();
            }
            Mode::Executions => {
                driver
                    .execution_insert(ExecutionInsertParams {
                        owner_kind: "perf".into(),
                        owner_id: chunk[0].to_string(),
                        trigger: Trigger::Manual,
                        attributes: BTreeMap::new(),
                        status_message: None,
                        jobs,
                        now: at(0),
                    })
                    .await
                    .unwrap();
            }
        }
    }
    let insert = t.elapsed();

    let t = Instant::now();
    let mut claimed = Vec::new();
    loop {
        let got = driver
            .job_claim(&claim_at("perf", BATCH, 1, at(1), at(100)))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        claimed.extend(got.into_iter().map(|j| j.id));
    }
    let claim = t.elapsed();
    assert_eq!(claimed.len(), n);

    let t = Instant::now();
    for chunk in claimed.chunks(BATCH as usize) {
        let params = chunk
            .iter()
            .map(|id| JobFinishParams {
                id: *id,
                execution_id: None,
                lease_token: 1,
                lease_expired_before: None,
                state: JobState::Succeeded,
                attempt: 1,
                run_at: None,
                finished_at: Some(at(2)),
                error: None,
                output: None,
                progress: None,
                exit_code: None,
            })
            .collect();
        let r = driver.job_finish_many(params).await.unwrap();
        assert!(r.iter().all(|r| r.applied));
    }
    let finish = t.elapsed();
    println!(
        "{mode:?}: {n} jobs: insert {:.0} ms, claim {:.0} ms (batches of {BATCH}), finish {:.0} ms",
        insert.as_secs_f64() * 1e3,
        claim.as_secs_f64() * 1e3,
        finish.as_secs_f64() * 1e3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing, run by hand"]
async fn hot_path_timing() {
    // `ROTA_PERF_MODES=plain` runs only the hot path.
    let modes = match std::env::var("ROTA_PERF_MODES").as_deref() {
        Ok("plain") => vec![Mode::Plain],
        _ => vec![Mode::Plain, Mode::Webhook, Mode::Executions],
    };
    for mode in modes {
        run(mode).await;
    }
}
