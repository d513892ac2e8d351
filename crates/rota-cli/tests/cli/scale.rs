//! 10,000 shell jobs in batches of 1,000 over HTTP: all succeed, none lost.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{Sandbox, eventually, get_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_shell_jobs_all_succeed() {
    let sb = Sandbox::new();
    let server = sb.server(&["--queues", "default=32"]).await;
    let http = reqwest::Client::new();
    let mut submitted = BTreeSet::new();
    for _ in 0..10 {
        let jobs: Vec<Value> = (0..1000)
            .map(|_| json!({"kind": "shell", "args": {"command": ["true"]}}))
            .collect();
        let r = http
            .post(format!("{}/v1/jobs/batch", server.url))
            .json(&json!({ "jobs": jobs }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        for j in body["jobs"].as_array().unwrap() {
            assert!(submitted.insert(j["id"].as_i64().unwrap()));
        }
    }
    assert_eq!(submitted.len(), 10_000);

    eventually(180, "10,000 succeeded jobs", || async {
        let q = get_json(&http, &format!("{}/v1/queues", server.url)).await;
        let n = q["queues"][0]["counts"]["succeeded"].as_i64().unwrap_or(0);
        (n == 10_000).then_some(())
    })
    .await;

    // Count them one by one through the paginated list: the same ids.
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/jobs?state=succeeded&limit=1000", server.url);
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page = get_json(&http, &url).await;
        for j in page["jobs"].as_array().unwrap() {
            assert_eq!(j["exit_code"], 0);
            seen.insert(j["id"].as_i64().unwrap());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, submitted, "lost or extra jobs");
    let q = get_json(&http, &format!("{}/v1/queues", server.url)).await;
    let counts = q["queues"][0]["counts"].as_object().unwrap();
    assert_eq!(counts.len(), 1, "only succeeded jobs: {counts:?}");
}
