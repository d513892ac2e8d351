//! Happy paths: enqueue, unique, batch, list, control, queues, output, SSE.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{Method, header};
use jiff::Timestamp;
use rota_server::ServerOptions;
use serde_json::{Value, json};

use crate::common::{Harness, eventually, request};

const JOB_FIELDS: [&str; 22] = [
    "id",
    "kind",
    "queue",
    "state",
    "attempt",
    "max_attempts",
    "args",
    "priority",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "errors",
    "progress",
    "labels",
    "attributes",
    "node",
    "exit_code",
    "unique_key",
    "timeout",
    "execution_id",
    "schedule_id",
];

fn rfc3339_utc(v: &Value) -> Timestamp {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(s.ends_with('Z'), "{s} is not UTC");
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_returns_the_job() {
    let h = Harness::new(ServerOptions::default()).await;
    let r = h
        .post(
            "/v1/jobs",
            r#"{"kind":"echo","args":{"n":1},"queue":"reports","priority":3,"delay":"10m",
                "max_attempts":5,"timeout":"1h30m","labels":{"region":"eu"},"attributes":{"team":"billing"}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.content_type(), "application/json");
    let j = r.json();
    for f in JOB_FIELDS {
        assert!(j.get(f).is_some(), "missing {f}: {j}");
    }
    assert!(
        j.get("lease_token").is_none() && j.get("output").is_none(),
        "{j}"
    );
    let id = j["id"].as_i64().unwrap();
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/jobs/{id}").as_str()
    );
    assert_eq!(j["kind"], "echo");
    assert_eq!(j["queue"], "reports");
    assert_eq!(j["state"], "scheduled");
    assert_eq!(j["priority"], 3);
    assert_eq!(j["attempt"], 0);
    assert_eq!(j["max_attempts"], 5);
    assert_eq!(j["args"], json!({"n": 1}));
    assert_eq!(j["timeout"], 5400.0);
    assert_eq!(j["labels"], json!({"region": "eu"}));
    assert_eq!(j["attributes"], json!({"team": "billing"}));
    assert_eq!(j["errors"], json!([]));
    assert_eq!(j["started_at"], Value::Null);
    let created = rfc3339_utc(&j["created_at"]);
    let run_at = rfc3339_utc(&j["run_at"]);
    let d = run_at.duration_since(created).as_secs();
    assert!((599..=601).contains(&d), "{d}");

    // GET returns the same representation.
    let g = h.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.json(), j);

    // Defaults; integer-second durations; explicit run_at with an offset.
    let j = h
        .post("/v1/jobs", r#"{"kind":"echo","args":null,"timeout":30}"#)
        .await
        .json();
    assert_eq!(
        (
            j["queue"].as_str(),
            j["state"].as_str(),
            j["priority"].as_i64()
        ),
        (Some("default"), Some("available"), Some(0))
    );
    assert_eq!(j["timeout"], 30.0);
    let j = h
        .post(
            "/v1/jobs",
            r#"{"kind":"echo","args":{},"run_at":"2099-01-01T02:00:00+02:00"}"#,
        )
        .await
        .json();
    assert_eq!(j["run_at"], "2099-01-01T00:00:00Z");
    assert_eq!(j["state"], "scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_duplicate_returns_200_with_the_same_job() {
    let h = Harness::new(ServerOptions::default()).await;
    let body = r#"{"kind":"echo","args":{},"unique_key":"nightly"}"#;
    let first = h.post("/v1/jobs", body).await;
    assert_eq!(first.status, 201);
    let second = h.post("/v1/jobs", body).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(h.job_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_is_all_or_nothing() {
    let h = Harness::new(ServerOptions::default()).await;
    let r = h
        .post(
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"echo","args":{"i":0}},{"kind":"echo","args":{"i":1},"unique_key":"k"},{"kind":"echo","args":{"i":2},"queue":"q2"}]}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    assert_eq!(b["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(b["inserted"], json!([true, true, true]));
    for (i, j) in b["jobs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(j["args"]["i"], i);
    }
    let unique_id = b["jobs"][1]["id"].clone();
    // A duplicate in a batch comes back as the existing job.
    let r = h
        .post(
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"echo","args":{},"unique_key":"k"},{"kind":"echo","args":{}}]}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    let b = r.json();
    assert_eq!(b["inserted"], json!([false, true]));
    assert_eq!(b["jobs"][0]["id"], unique_id);
    assert_eq!(h.job_count().await, 4);
    // Only duplicates: 200.
    let r = h
        .post(
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"echo","args":{},"unique_key":"k"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    // One bad job rejects the whole batch.
    let r = h
        .post(
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{},"max_attempts":0}]}"#,
        )
        .await;
    assert_eq!(
        r.problem(422, "invalid_value")["field"],
        "jobs[1].max_attempts"
    );
    assert_eq!(h.job_count().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paginates_newest_first_and_filters() {
    let h = Harness::new(ServerOptions::default()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let team = if i % 2 == 0 { "even" } else { "odd" };
        let queue = if i < 3 { "a" } else { "b" };
        ids.push(
            h.enqueue(&format!(
                r#"{{"kind":"echo","args":{{}},"queue":"{queue}","attributes":{{"team":"{team}"}}}}"#
            ))
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/jobs?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = h.get(&uri).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let p = page.json();
        pages += 1;
        seen.extend(
            p["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_i64().unwrap()),
        );
        match p["next"].as_str() {
            Some(next) => uri = format!("/v1/jobs?limit=2&after={next}"),
            None => break,
        }
        assert!(pages < 10);
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let ids_of = |v: Value| -> Vec<i64> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids_of(h.get("/v1/jobs?queue=b").await.json()),
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        ids_of(h.get("/v1/jobs?attribute.team=odd").await.json()),
        vec![ids[3], ids[1]]
    );
    assert_eq!(
        ids_of(h.get("/v1/jobs?attribute.team=even&queue=a").await.json()),
        vec![ids[2], ids[0]]
    );
    assert_eq!(
        ids_of(h.get("/v1/jobs?kind=echo&state=available").await.json()).len(),
        5
    );
    assert_eq!(
        ids_of(h.get("/v1/jobs?state=failed,canceled").await.json()),
        Vec::<i64>::new()
    );
    let all = h.get("/v1/jobs").await.json();
    assert_eq!(all["next"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_retry_delete() {
    let h = Harness::new(ServerOptions::default()).await;
    let id = h.enqueue(r#"{"kind":"echo","args":{}}"#).await;
    let r = h.post_empty(&format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "canceled");
    rfc3339_utc(&r.json()["finished_at"]);
    let r = h.post_empty(&format!("/v1/jobs/{id}/retry")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "available");
    h.post_empty(&format!("/v1/jobs/{id}/cancel")).await;
    let r = h.delete(&format!("/v1/jobs/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], id);
    h.get(&format!("/v1/jobs/{id}"))
        .await
        .problem(404, "job_not_found");
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_pause_and_resume() {
    let h = Harness::new(ServerOptions::default()).await;
    h.enqueue(r#"{"kind":"echo","args":{},"queue":"mail"}"#)
        .await;
    let r = h.post_empty("/v1/queues/mail/pause").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let q = r.json();
    assert_eq!(
        (q["name"].as_str(), q["paused"].as_bool()),
        (Some("mail"), Some(true))
    );
    rfc3339_utc(&q["paused_at"]);
    let list = h.get("/v1/queues").await.json();
    let mail = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mail")
        .unwrap()
        .clone();
    assert_eq!(mail["paused"], true);
    assert_eq!(mail["counts"]["available"], 1);
    let r = h.post_empty("/v1/queues/mail/resume").await.json();
    assert_eq!(r["paused"], false);
    assert_eq!(r["paused_at"], Value::Null);
    // Pausing an unknown (empty) queue is allowed and idempotent.
    assert_eq!(h.post_empty("/v1/queues/later/pause").await.status, 200);
    assert_eq!(
        h.post_empty("/v1/queues/later/pause").await.json()["paused"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_and_follow() {
    let h = Harness::started(ServerOptions::default()).await;
    // Stored output of a finished job.
    let id = h
        .enqueue(r#"{"kind":"echo","args":{"output":"hello","exit_code":3}}"#)
        .await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            h.get(&format!("/v1/jobs/{id}")).await.json()["state"] == "succeeded"
        })
        .await
    );
    let o = h.get(&format!("/v1/jobs/{id}/output")).await;
    assert_eq!(o.status, 200);
    assert_eq!(
        o.json(),
        json!({"output": "hello\n", "exit_code": 3, "state": "succeeded"})
    );
    let j = h.get(&format!("/v1/jobs/{id}")).await.json();
    assert_eq!(j["exit_code"], 3);
    rfc3339_utc(&j["started_at"]);
    rfc3339_utc(&j["finished_at"]);
    assert!(j["node"].is_string());

    // Follow a running job: output events, then an end event.
    let id = h
        .enqueue(r#"{"kind":"echo","args":{"output":"first","sleep_ms":1200,"then":"second"}}"#)
        .await;
    let r = h.get(&format!("/v1/jobs/{id}/output?follow=true")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/event-stream"),
        "{}",
        r.content_type()
    );
    let text = r.text();
    let mut events: Vec<(String, Value)> = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str::<Value>(d).unwrap());
            }
        }
        if let (Some(n), Some(d)) = (name, data) {
            events.push((n, d));
        }
    }
    let output: String = events
        .iter()
        .filter(|(n, _)| n == "output")
        .map(|(_, d)| d["chunk"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(output, "first\nsecond\n", "{text}");
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "end", "{text}");
    assert_eq!(data["state"], "succeeded");
    // Following a finished job ends at once.
    let r = h.get(&format!("/v1/jobs/{id}/output?follow=1")).await;
    assert!(r.text().contains("event: end"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_ui_request_ids() {
    let h = Harness::new(ServerOptions {
        metrics: Some(std::sync::Arc::new(|| "rota_up 1\n".to_owned())),
        ..ServerOptions::default()
    })
    .await;
    let r = h.get("/healthz").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["status"].clone()),
        (200, json!("ok"))
    );
    let r = h.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["store"], "sqlite");
    let r = h.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/plain"));
    assert_eq!(r.text(), "rota_up 1\n");
    assert!(r.headers.contains_key("x-request-id"));
    let mut req = request(Method::GET, "/healthz", None);
    req.headers_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    assert_eq!(h.send(req).await.headers["x-request-id"], "abc-123");

    h.enqueue(r#"{"kind":"echo","args":{},"queue":"mail"}"#)
        .await;
    h.post_empty("/v1/queues/mail/pause").await;
    let r = h.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/html"));
    let html = r.text();
    assert!(
        html.contains("mail (paused)") && html.contains("available"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
}

/// Every route the issue lists, as (method, OpenAPI path).
pub(crate) const ROUTES: [(&str, &str); 41] = [
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("post", "/v1/jobs/batch"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/output"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("post", "/v1/jobs/{id}/retry"),
    ("post", "/v1/executions"),
    ("get", "/v1/executions"),
    ("get", "/v1/executions/{id}"),
    ("get", "/v1/executions/{id}/jobs"),
    ("post", "/v1/executions/{id}/jobs"),
    ("post", "/v1/executions/{id}/stop"),
    ("post", "/v1/executions/{id}/mark"),
    ("post", "/v1/schedules"),
    ("get", "/v1/schedules"),
    ("get", "/v1/schedules/{id}"),
    ("patch", "/v1/schedules/{id}"),
    ("delete", "/v1/schedules/{id}"),
    ("post", "/v1/schedules/{id}/pause"),
    ("post", "/v1/schedules/{id}/resume"),
    ("post", "/v1/schedules/{id}/trigger"),
    ("get", "/v1/schedules/{id}/runs"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("delete", "/v1/webhooks/{id}"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("get", "/v1/queues"),
    ("post", "/v1/queues/{name}/pause"),
    ("post", "/v1/queues/{name}/resume"),
    ("get", "/v1/nodes"),
    ("post", "/v1/nodes/{id}/drain"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("delete", "/v1/keys/{id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let h = Harness::new(ServerOptions::default()).await;
    let r = h.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc, serde_json::to_value(rota_server::openapi()).unwrap());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            listed.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            let p500 = &responses["500"]["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(p500, "#/components/schemas/Problem", "{method} {path}");
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "JobView",
        "Problem",
        "EnqueueRequest",
        "BatchRequest",
        "JobList",
        "OutputView",
        "QueueView",
        "NodeView",
        "ApiKeyView",
        "CreatedKey",
        "JobStateName",
        "DurationInput",
        "CreateExecutionRequest",
        "CreatedExecution",
        "ExecutionView",
        "ExecutionList",
        "MarkExecutionRequest",
        "ExecutionStatusName",
        "ScheduleRequest",
        "SchedulePatch",
        "ScheduleView",
        "ScheduleList",
        "RunView",
        "RunList",
        "CatchUpPolicy",
        "PolicyName",
        "CreateWebhookRequest",
        "WebhookView",
        "WebhookList",
        "DeliveryView",
        "DeliveryList",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    let job_props = schemas["JobView"]["properties"].as_object().unwrap();
    for f in JOB_FIELDS {
        assert!(job_props.contains_key(f), "JobView.{f}");
    }
    assert!(!job_props.contains_key("lease_token"));
    assert_eq!(
        doc["paths"]["/v1/jobs"]["post"]["responses"]["422"]["content"]["application/problem+json"]
            ["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Webhook views never carry the secret.
    assert!(
        !schemas["WebhookView"]["properties"]
            .as_object()
            .unwrap()
            .contains_key("secret")
    );
    for path in [
        "/v1/executions/{id}",
        "/v1/schedules/{id}",
        "/v1/webhooks/{id}",
    ] {
        let item = doc["paths"][path].as_object().unwrap();
        let (_, op) = item.iter().next().unwrap();
        assert!(op["responses"]["404"].is_object(), "{path}");
    }
}
