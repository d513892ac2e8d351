//! Inserts: bulk speed, input order, unique keys.

use std::time::Instant;

use rota_core::JobState;
use rota_driver::{Driver, JobFinishParams};

use crate::common::{claim_params, job, now, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_insert_100k() {
    with_default_driver(|driver, _| async move {
        const N: usize = 100_000;
        let params: Vec<_> = (0..N)
            .map(|i| {
                let mut p = job(if i % 2 == 0 { "bulk-a" } else { "bulk-b" });
                p.args = serde_json::json!({ "i": i });
                p
            })
            .collect();
        let started = Instant::now();
        let out = driver.job_insert_many(params).await.unwrap();
        let elapsed = started.elapsed();
        eprintln!(
            "bulk insert: {N} jobs in {elapsed:?} ({:.0} jobs/s)",
            N as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(out.len(), N);
        assert!(out.iter().all(|j| j.inserted));
        for (i, j) in out.iter().enumerate().step_by(997) {
            assert_eq!(j.job.args["i"], i, "results keep input order");
        }
        assert!(
            out.windows(2).all(|w| w[0].job.id < w[1].job.id),
            "ids follow input order"
        );
        let counts = driver.job_count().await.unwrap();
        let total: i64 = counts.iter().map(|c| c.count).sum();
        assert_eq!(total, N as i64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_keys_return_the_existing_job() {
    with_default_driver(|driver, _| async move {
        let keyed = |k: &str| {
            let mut p = job("uniq");
            p.unique_key = Some(k.to_owned());
            p
        };
        let first = driver.job_insert_many(vec![keyed("a")]).await.unwrap();
        assert!(first[0].inserted);
        let a = first[0].job.clone();

        // Against an existing job, and twice within one batch.
        let out = driver
            .job_insert_many(vec![
                keyed("b"),
                keyed("a"),
                job("uniq"),
                keyed("b"),
                keyed("c"),
            ])
            .await
            .unwrap();
        let flags: Vec<bool> = out.iter().map(|j| j.inserted).collect();
        assert_eq!(flags, vec![true, false, true, false, true]);
        assert_eq!(out[1].job, a, "the existing job comes back unchanged");
        assert_eq!(
            out[3].job.id, out[0].job.id,
            "the in-batch duplicate maps to the first"
        );

        // Once the holder finishes, the key is free again.
        let claimed = driver.job_claim(&claim_params("uniq", 1, 5)).await.unwrap();
        assert_eq!(claimed[0].id, a.id);
        let t = now();
        let r = driver
            .job_finish_many(vec![JobFinishParams {
                id: a.id,
                execution_id: a.execution_id,
                lease_token: 5,
                lease_expired_before: None,
                state: JobState::Succeeded,
                attempt: 1,
                run_at: None,
                finished_at: Some(t),
                error: None,
                output: None,
                progress: None,
                exit_code: None,
            }])
            .await
            .unwrap();
        assert!(r[0].applied);
        let again = driver.job_insert_many(vec![keyed("a")]).await.unwrap();
        assert!(again[0].inserted);
        assert_ne!(again[0].job.id, a.id);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_unique_inserts_yield_one_job() {
    with_default_driver(|driver, _| async move {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                let mut p = job("race");
                p.unique_key = Some("only-one".into());
                d.job_insert_many(vec![p]).await.unwrap().remove(0)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|r| r.inserted).count(), 1);
        let id = results[0].job.id;
        assert!(results.iter().all(|r| r.job.id == id));
    })
    .await;
}
