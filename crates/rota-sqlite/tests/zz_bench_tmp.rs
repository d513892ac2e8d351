#![allow(clippy::unwrap_used, missing_docs)]
use jiff::Timestamp;
use rota_core::JobState;
use rota_driver::*;
use rota_sqlite::*;
use std::collections::BTreeMap;
use std::time::Instant;

fn job() -> JobInsertParams {
    JobInsertParams {
        kind: "noop".into(),
        args: serde_json::json!({"n": 1}),
        queue: "q".into(),
        priority: 0,
        state: JobState::Available,
        run_at: Timestamp::now(),
        created_at: Timestamp::now(),
        max_attempts: 3,
        timeout: None,
        unique_key: None,
        labels: BTreeMap::new(),
        attributes: BTreeMap::new(),
        trace_context: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let d = SqliteDriver::open(
        dir.path().join("b.db").to_str().unwrap(),
        SqliteOptions::default(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    for _ in 0..100 {
        d.job_insert_many((0..1000).map(|_| job()).collect())
            .await
            .unwrap();
    }
    eprintln!(
        "bulk 100k: {:.0} jobs/s",
        100_000.0 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for _ in 0..500 {
        d.job_insert_many(vec![job()]).await.unwrap();
    }
    eprintln!(
        "sequential single: {:.0} jobs/s",
        500.0 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    d.job_insert_many(vec![job()]).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!(
        "64 concurrent single: {:.0} jobs/s  stats {:?}",
        3200.0 / t.elapsed().as_secs_f64(),
        d.writer_stats()
    );
    let t = Instant::now();
    let mut n = 0;
    let mut tok = 0;
    loop {
        tok += 1;
        let c = d
            .job_claim(&JobClaimParams {
                queue: "q".into(),
                max: 200,
                node_id: "n".into(),
                node_labels: BTreeMap::new(),
                lease_token: tok,
                lease_expires_at: Timestamp::now(),
                now: Timestamp::now(),
            })
            .await
            .unwrap();
        if c.is_empty() {
            break;
        }
        n += c.len();
        let f = c
            .iter()
            .map(|j| JobFinishParams {
                id: j.id,
                lease_token: tok,
                lease_expired_before: None,
                state: JobState::Succeeded,
                attempt: j.attempt,
                run_at: None,
                finished_at: Some(Timestamp::now()),
                error: None,
                output: None,
                progress: None,
                exit_code: None,
            })
            .collect();
        d.job_finish_many(f).await.unwrap();
    }
    eprintln!(
        "process {n}: {:.0} jobs/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
}
