//! `kill -9` of the server while jobs are being submitted, queued and run;
//! after a restart on the same database every acknowledged job finishes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::common::{Sandbox, eventually, free_port, get_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_job_finishes_after_kill_9_and_restart() {
    let sb = Sandbox::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A short lease so jobs running at the kill are rescued soon after the
    // restart (once the dead leader's term has expired).
    let args = [
        "server",
        "--listen",
        &listen,
        "--lease",
        "2s",
        "--queues",
        "default=10",
    ];
    let server = sb.server_at(port, &args).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();

    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let submit = {
        let (acked, http, url) = (acked.clone(), http.clone(), url.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..1000)
                .map(|i| {
                    let (http, url) = (http.clone(), url.clone());
                    async move {
                        let body = json!({"kind": "shell", "args": {"command": ["sleep", "0.05"]}, "attributes": {"n": i.to_string()}});
                        let r = http.post(format!("{url}/v1/jobs")).json(&body).send().await.ok()?;
                        if r.status() != 201 {
                            return None;
                        }
                        let job: Value = r.json().await.ok()?;
                        job["id"].as_i64()
                    }
                })
                .buffer_unordered(8)
                .for_each(|id| {
                    if let Some(id) = id {
                        acked.lock().unwrap().push(id);
                    }
                    futures::future::ready(())
                })
                .await;
        })
    };

    eventually(60, "500 acknowledged jobs", || async {
        (acked.lock().unwrap().len() >= 500).then_some(())
    })
    .await;
    // Some jobs have run, some are running, most are queued.
    let q = get_json(&http, &format!("{url}/v1/queues")).await;
    let counts = &q["queues"][0]["counts"];
    let unfinished =
        counts["available"].as_i64().unwrap_or(0) + counts["running"].as_i64().unwrap_or(0);
    assert!(
        unfinished > 0,
        "jobs queued or running at the kill: {counts}"
    );
    let started = std::time::Instant::now();
    server.kill9().await;
    tokio::time::timeout(Duration::from_secs(60), submit)
        .await
        .unwrap()
        .unwrap();
    let acked: Vec<i64> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 500 && acked.len() < 1000,
        "{} acknowledged",
        acked.len()
    );

    let server = sb.server_at(port, &args).await;
    let finished = eventually(
        120,
        "every acknowledged job in a terminal state",
        || async {
            let page = get_json(&http, &format!("{}/v1/jobs?limit=10000", server.url)).await;
            let jobs = page["jobs"].as_array().unwrap().clone();
            let all_done = acked.iter().all(|id| {
                jobs.iter().any(|j| {
                    j["id"].as_i64() == Some(*id)
                        && matches!(
                            j["state"].as_str(),
                            Some("succeeded" | "failed" | "canceled")
                        )
                })
            });
            all_done.then_some(jobs)
        },
    )
    .await;
    eprintln!(
        "{} acknowledged; at the kill: {counts}; all finished {:?} after it",
        acked.len(),
        started.elapsed()
    );
    // With attempts left, even the jobs cut off by the kill succeed.
    let failed: Vec<&Value> = finished
        .iter()
        .filter(|j| {
            j["id"].as_i64().is_some_and(|id| acked.contains(&id)) && j["state"] != "succeeded"
        })
        .collect();
    assert!(failed.is_empty(), "not succeeded: {failed:#?}");
}
