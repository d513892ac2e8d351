//! `/v1/executions`: create with jobs, counts, list filters, jobs, stop,
//! mark; bad inputs; scopes.

use std::time::Duration;

use axum::http::{Method, header};
use rota::ApiKeyScope;
use rota_server::ServerOptions;
use serde_json::{Value, json};

use crate::common::{Harness, bad, eventually};

fn ids(v: &Value, key: &str) -> Vec<i64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {v}"))
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_jobs_stop_mark() {
    let h = Harness::new(ServerOptions::default()).await;
    let r = h
        .post(
            "/v1/executions",
            r#"{"owner_kind":"replication","owner_id":42,"attributes":{"env":"prod"},
                "status_message":"copying","jobs":[
                  {"kind":"echo","args":{"i":0}},
                  {"kind":"echo","args":{"i":1},"priority":2},
                  {"kind":"echo","args":{"i":2},"queue":"other"}]}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    let ex = &b["execution"];
    let id = ex["id"].as_i64().unwrap();
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/executions/{id}").as_str()
    );
    assert_eq!(ex["owner_kind"], "replication");
    assert_eq!(ex["owner_id"], "42");
    assert_eq!(ex["trigger"], "manual");
    assert_eq!(ex["status"], "running");
    assert_eq!(ex["status_message"], "copying");
    assert_eq!(ex["attributes"], json!({"env": "prod"}));
    assert_eq!(ex["counts"], json!({"available": 3}));
    assert_eq!(ex["total_jobs"], 3);
    assert_eq!(ex["ended_at"], Value::Null);
    assert_eq!(b["inserted"], json!([true, true, true]));
    let jobs = b["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["execution_id"], id, "{j}");
        assert_eq!(j["args"]["i"], i);
    }
    let job_ids: Vec<i64> = jobs.iter().map(|j| j["id"].as_i64().unwrap()).collect();

    // GET shows the counts (the execution's metrics).
    let g = h.get(&format!("/v1/executions/{id}")).await;
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(&g.json(), ex);

    // Its jobs, newest first, paginated.
    let page = h.get(&format!("/v1/executions/{id}/jobs?limit=2")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let p = page.json();
    assert_eq!(ids(&p, "jobs"), vec![job_ids[2], job_ids[1]]);
    let next = p["next"].as_str().unwrap().to_owned();
    let p = h
        .get(&format!("/v1/executions/{id}/jobs?limit=2&after={next}"))
        .await
        .json();
    assert_eq!(ids(&p, "jobs"), vec![job_ids[0]]);
    assert_eq!(p["next"], Value::Null);

    // Two more executions: one without jobs, one of another owner kind.
    let bare = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"replication","owner_id":"db-7","trigger":"event"}"#,
        )
        .await;
    let bare_id = bare["execution"]["id"].as_i64().unwrap();
    assert_eq!(bare["execution"]["trigger"], "event");
    assert_eq!(bare["execution"]["total_jobs"], 0);
    assert_eq!(bare["execution"]["counts"], json!({}));
    assert_eq!(bare["jobs"], json!([]));
    let backup = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"backup","owner_id":"1","attributes":{"env":"dev"}}"#,
        )
        .await;
    let backup_id = backup["execution"]["id"].as_i64().unwrap();

    // List filters.
    let list = |q: &'static str| {
        let h = &h;
        async move {
            let r = h.get(&format!("/v1/executions{q}")).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text());
            ids(&r.json(), "executions")
        }
    };
    assert_eq!(list("").await, vec![backup_id, bare_id, id]);
    assert_eq!(list("?owner_kind=replication").await, vec![bare_id, id]);
    assert_eq!(list("?owner_kind=replication&owner_id=42").await, vec![id]);
    assert_eq!(list("?attribute.env=prod").await, vec![id]);
    assert_eq!(
        list("?attribute.env=dev&owner_kind=backup").await,
        vec![backup_id]
    );
    assert_eq!(list("?status=running").await.len(), 3);
    assert_eq!(list("?status=failed,canceled").await, Vec::<i64>::new());
    // Keyset pagination.
    let p = h.get("/v1/executions?limit=2").await.json();
    assert_eq!(ids(&p, "executions"), vec![backup_id, bare_id]);
    let next = p["next"].as_str().unwrap();
    let p = h
        .get(&format!("/v1/executions?limit=2&after={next}"))
        .await
        .json();
    assert_eq!(ids(&p, "executions"), vec![id]);
    assert_eq!(p["next"], Value::Null);

    // More jobs can be added later.
    let r = h
        .post(
            &format!("/v1/executions/{backup_id}/jobs"),
            r#"{"jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{}}]}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["inserted"], json!([true, true]));
    let g = h.get(&format!("/v1/executions/{backup_id}")).await.json();
    assert_eq!(g["total_jobs"], 2);

    // Stop cancels every job.
    let r = h.post_empty(&format!("/v1/executions/{id}/stop")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["status"], "canceled");
    assert_eq!(s["counts"], json!({"canceled": 3}));
    assert!(s["ended_at"].is_string(), "{s}");
    let jobs = h.get(&format!("/v1/executions/{id}/jobs")).await.json();
    for j in jobs["jobs"].as_array().unwrap() {
        assert_eq!(j["state"], "canceled", "{j}");
    }
    assert_eq!(list("?status=canceled").await, vec![id]);
    // Stopping again is harmless.
    let r = h
        .post_empty(&format!("/v1/executions/{id}/stop?wait=1s"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "canceled");

    // Mark: only without jobs.
    let r = h
        .post(
            &format!("/v1/executions/{bare_id}/mark"),
            r#"{"status":"error","message":"source unreachable"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(m["status"], "error");
    assert_eq!(m["status_message"], "source unreachable");
    assert!(m["ended_at"].is_string());
    let before = h.snapshot().await;
    h.post(
        &format!("/v1/executions/{backup_id}/mark"),
        r#"{"status":"succeeded"}"#,
    )
    .await
    .problem(409, "conflict");
    assert_eq!(h.snapshot().await, before);
    // A jobless execution can also be marked done.
    let done = h
        .created("/v1/executions", r#"{"owner_kind":"noop","owner_id":"1"}"#)
        .await;
    let r = h
        .post(
            &format!("/v1/executions/{}/mark", done["execution"]["id"]),
            r#"{"status":"succeeded"}"#,
        )
        .await;
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_jobs_and_stop_waits() {
    let h = Harness::started(ServerOptions::default()).await;
    let get = |id: i64| {
        let h = &h;
        async move { h.get(&format!("/v1/executions/{id}")).await.json() }
    };
    // All succeed → succeeded; one fails → failed.
    let ok = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"t","owner_id":"ok","jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{}},{"kind":"echo","args":{}}]}"#,
        )
        .await["execution"]["id"]
        .as_i64()
        .unwrap();
    let bad = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"t","owner_id":"bad","jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{"fail":true},"max_attempts":1},{"kind":"echo","args":{}}]}"#,
        )
        .await["execution"]["id"]
        .as_i64()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            get(ok).await["status"] == "succeeded" && get(bad).await["status"] == "failed"
        })
        .await,
        "{} {}",
        get(ok).await,
        get(bad).await
    );
    assert_eq!(get(ok).await["counts"], json!({"succeeded": 3}));
    assert_eq!(
        get(bad).await["counts"],
        json!({"succeeded": 2, "failed": 1})
    );

    // Stop with wait: running jobs are told to stop; the answer comes
    // once the execution is over.
    let slow = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"t","owner_id":"slow","jobs":[{"kind":"echo","args":{"sleep_ms":30000}},{"kind":"echo","args":{"sleep_ms":30000}}]}"#,
        )
        .await["execution"]["id"]
        .as_i64()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            get(slow).await["counts"]["running"] == 2
        })
        .await,
        "{}",
        get(slow).await
    );
    let r = h
        .post_empty(&format!("/v1/executions/{slow}/stop?wait=20s"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["status"], "canceled", "{s}");
    assert_eq!(s["counts"], json!({"canceled": 2}));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_execution_requests() {
    let h = Harness::new(ServerOptions::default()).await;
    let ex = h
        .created(
            "/v1/executions",
            r#"{"owner_kind":"k","owner_id":"1","jobs":[{"kind":"echo","args":{}}]}"#,
        )
        .await;
    let id = ex["execution"]["id"].as_i64().unwrap();
    use Method as M;
    let post = |name, body: &str, code, field| {
        bad(
            name,
            M::POST,
            "/v1/executions",
            Some(body),
            422,
            code,
            field,
        )
    };
    let cases = vec![
        post(
            "missing owner_kind",
            r#"{"owner_id":"1"}"#,
            "missing_field",
            Some("owner_kind"),
        ),
        post(
            "missing owner_id",
            r#"{"owner_kind":"k"}"#,
            "missing_field",
            Some("owner_id"),
        ),
        post(
            "owner_id wrong type",
            r#"{"owner_kind":"k","owner_id":true}"#,
            "invalid_type",
            Some("owner_id"),
        ),
        post(
            "empty owner_kind",
            r#"{"owner_kind":"","owner_id":"1"}"#,
            "invalid_value",
            Some("owner_kind"),
        ),
        post(
            "NUL in owner_id",
            r#"{"owner_kind":"k","owner_id":"a\u0000"}"#,
            "invalid_value",
            Some("owner_id"),
        ),
        post(
            "bad trigger",
            r#"{"owner_kind":"k","owner_id":"1","trigger":"cron"}"#,
            "invalid_value",
            Some("trigger"),
        ),
        post(
            "NUL in status message",
            r#"{"owner_kind":"k","owner_id":"1","status_message":"a\u0000"}"#,
            "invalid_value",
            Some("status_message"),
        ),
        post(
            "empty attribute name",
            r#"{"owner_kind":"k","owner_id":"1","attributes":{"":"x"}}"#,
            "invalid_value",
            Some("attributes"),
        ),
        post(
            "unknown field",
            r#"{"owner_kind":"k","owner_id":"1","owner":"x"}"#,
            "unknown_field",
            Some("owner"),
        ),
        post(
            "unknown kind in second job",
            r#"{"owner_kind":"k","owner_id":"1","jobs":[{"kind":"echo","args":{}},{"kind":"nope","args":{}}]}"#,
            "unknown_kind",
            Some("jobs[1].kind"),
        ),
        post(
            "bad queue in only job (engine check)",
            r#"{"owner_kind":"k","owner_id":"1","jobs":[{"kind":"echo","args":{},"queue":"a b"}]}"#,
            "invalid_value",
            Some("jobs[0].queue"),
        ),
        post(
            "bad queue in third job (engine check)",
            r#"{"owner_kind":"k","owner_id":"1","jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{}},{"kind":"echo","args":{},"queue":"a b"}]}"#,
            "invalid_value",
            Some("jobs[2].queue"),
        ),
        post(
            "bad delay in job",
            r#"{"owner_kind":"k","owner_id":"1","jobs":[{"kind":"echo","args":{},"delay":"soon"}]}"#,
            "invalid_duration",
            Some("jobs[0].delay"),
        ),
        bad(
            "bad status filter",
            M::GET,
            "/v1/executions?status=bogus",
            None,
            422,
            "invalid_parameter",
            Some("status"),
        ),
        bad(
            "limit 0",
            M::GET,
            "/v1/executions?limit=0",
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        bad(
            "bad cursor",
            M::GET,
            "/v1/executions?after=x",
            None,
            422,
            "invalid_parameter",
            Some("after"),
        ),
        bad(
            "unknown parameter",
            M::GET,
            "/v1/executions?owner=x",
            None,
            422,
            "invalid_parameter",
            Some("owner"),
        ),
        bad(
            "non-numeric id",
            M::GET,
            "/v1/executions/abc",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        bad(
            "unknown id",
            M::GET,
            "/v1/executions/999999",
            None,
            404,
            "execution_not_found",
            Some("id"),
        ),
        bad(
            "jobs of unknown id",
            M::GET,
            "/v1/executions/999999/jobs",
            None,
            404,
            "execution_not_found",
            Some("id"),
        ),
        bad(
            "jobs bad limit",
            M::GET,
            format!("/v1/executions/{id}/jobs?limit=-1"),
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        bad(
            "add jobs to unknown id",
            M::POST,
            "/v1/executions/999999/jobs",
            Some(r#"{"jobs":[{"kind":"echo","args":{}}]}"#),
            404,
            "execution_not_found",
            Some("id"),
        ),
        bad(
            "add no jobs",
            M::POST,
            format!("/v1/executions/{id}/jobs"),
            Some(r#"{"jobs":[]}"#),
            422,
            "invalid_value",
            Some("jobs"),
        ),
        bad(
            "add job of unknown kind",
            M::POST,
            format!("/v1/executions/{id}/jobs"),
            Some(r#"{"jobs":[{"kind":"zzz","args":{}}]}"#),
            422,
            "unknown_kind",
            Some("jobs[0].kind"),
        ),
        bad(
            "stop unknown id",
            M::POST,
            "/v1/executions/999999/stop",
            None,
            404,
            "execution_not_found",
            Some("id"),
        ),
        bad(
            "stop bad wait",
            M::POST,
            format!("/v1/executions/{id}/stop?wait=soon"),
            None,
            422,
            "invalid_duration",
            Some("wait"),
        ),
        bad(
            "stop wait too long",
            M::POST,
            format!("/v1/executions/{id}/stop?wait=1h"),
            None,
            422,
            "invalid_duration",
            Some("wait"),
        ),
        bad(
            "stop unknown parameter",
            M::POST,
            format!("/v1/executions/{id}/stop?force=1"),
            None,
            422,
            "invalid_parameter",
            Some("force"),
        ),
        bad(
            "mark unknown id",
            M::POST,
            "/v1/executions/999999/mark",
            Some(r#"{"status":"succeeded"}"#),
            404,
            "execution_not_found",
            Some("id"),
        ),
        bad(
            "mark bad status",
            M::POST,
            format!("/v1/executions/{id}/mark"),
            Some(r#"{"status":"done"}"#),
            422,
            "invalid_value",
            Some("status"),
        ),
        bad(
            "mark running",
            M::POST,
            format!("/v1/executions/{id}/mark"),
            Some(r#"{"status":"running"}"#),
            422,
            "invalid_value",
            Some("status"),
        ),
        bad(
            "mark unknown field",
            M::POST,
            format!("/v1/executions/{id}/mark"),
            Some(r#"{"status":"error","why":"x"}"#),
            422,
            "unknown_field",
            Some("why"),
        ),
        bad(
            "mark with jobs",
            M::POST,
            format!("/v1/executions/{id}/mark"),
            Some(r#"{"status":"error"}"#),
            409,
            "conflict",
            None,
        ),
        bad(
            "PUT not allowed",
            M::PUT,
            "/v1/executions",
            None,
            405,
            "method_not_allowed",
            None,
        ),
    ];
    h.expect_problems(&cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_key_cannot_mutate_executions() {
    let mut h = Harness::new(ServerOptions {
        require_auth: true,
        ..ServerOptions::default()
    })
    .await;
    let read = h
        .client
        .create_api_key("r", ApiKeyScope::Read)
        .await
        .unwrap();
    let write = h
        .client
        .create_api_key("w", ApiKeyScope::Write)
        .await
        .unwrap();
    h.token = Some(write.token);
    let id = h
        .created("/v1/executions", r#"{"owner_kind":"k","owner_id":"1"}"#)
        .await["execution"]["id"]
        .as_i64()
        .unwrap();
    h.token = Some(read.token);
    assert_eq!(h.get("/v1/executions").await.status, 200);
    assert_eq!(h.get(&format!("/v1/executions/{id}")).await.status, 200);
    assert_eq!(
        h.get(&format!("/v1/executions/{id}/jobs")).await.status,
        200
    );
    let before = h.snapshot().await;
    for (uri, body) in [
        (
            "/v1/executions".to_owned(),
            Some(r#"{"owner_kind":"k","owner_id":"2"}"#),
        ),
        (format!("/v1/executions/{id}/stop"), None),
        (
            format!("/v1/executions/{id}/mark"),
            Some(r#"{"status":"succeeded"}"#),
        ),
        (
            format!("/v1/executions/{id}/jobs"),
            Some(r#"{"jobs":[{"kind":"echo","args":{}}]}"#),
        ),
    ] {
        h.call(Method::POST, &uri, body)
            .await
            .problem(403, "insufficient_scope");
    }
    assert_eq!(h.snapshot().await, before);
}
