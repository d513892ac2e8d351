//! Unique keys: 100 concurrent enqueues with one key yield exactly one job,
//! and every caller gets that job back.

use std::collections::HashSet;

use rota::{Config, EnqueueOpts, JobArgs, JobListParams};
use serde::{Deserialize, Serialize};

use crate::common::{Db, fast_config};

#[derive(Serialize, Deserialize)]
struct Report {
    day: String,
}
impl JobArgs for Report {
    const KIND: &'static str = "report";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_enqueues_one_job() {
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.enqueue(
                &Report {
                    day: "2026-11-25".into(),
                },
                EnqueueOpts::default().unique_key("report:2026-11-25"),
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut inserted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        ids.insert(r.job.id);
        inserted += usize::from(r.inserted);
    }
    assert_eq!(ids.len(), 1, "every caller sees the same job");
    assert_eq!(inserted, 1, "exactly one insert");
    let all = client
        .list(JobListParams {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.jobs.len(), 1);
}
