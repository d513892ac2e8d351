//! The table of bad requests: each gets the right 4xx problem+json and
//! writes nothing.

use axum::body::Body;
use axum::http::{Method, Request, header};
use rota_server::ServerOptions;

use crate::common::{Harness, request};

struct Case {
    name: &'static str,
    method: Method,
    uri: String,
    body: Option<String>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: Method,
    uri: impl Into<String>,
    body: Option<&str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        uri: uri.into(),
        body: body.map(str::to_owned),
        status,
        code,
        field,
    }
}

fn job(extra: &str) -> String {
    format!(r#"{{"kind":"echo","args":{{}}{extra}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_problems_and_write_nothing() {
    let h = Harness::new(ServerOptions::default()).await;
    // Fixtures: an available job, a canceled one, a unique one.
    let available = h.enqueue(&job("")).await;
    let canceled = h.enqueue(&job("")).await;
    assert_eq!(
        h.post_empty(&format!("/v1/jobs/{canceled}/cancel"))
            .await
            .status,
        200
    );
    h.enqueue(&job(r#","unique_key":"u1""#)).await;
    let before = h.job_count().await;
    assert_eq!(before, 3);

    use Method as M;
    let deep = format!(
        r#"{{"kind":"echo","args":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let post = |name, body: &str, status, code, field| {
        case(name, M::POST, "/v1/jobs", Some(body), status, code, field)
    };
    let cases = vec![
        post("truncated JSON", "{", 400, "invalid_json", None),
        post("not JSON", "kind=echo", 400, "invalid_json", None),
        post("empty body", "", 400, "invalid_json", None),
        post(
            "trailing garbage",
            &format!("{} x", job("")),
            400,
            "invalid_json",
            None,
        ),
        post("deep nesting", &deep, 400, "invalid_json", None),
        post("array instead of object", "[]", 422, "invalid_type", None),
        post(
            "kind wrong type",
            r#"{"kind":1,"args":{}}"#,
            422,
            "invalid_type",
            Some("kind"),
        ),
        post(
            "missing kind",
            r#"{"args":{}}"#,
            422,
            "missing_field",
            Some("kind"),
        ),
        post(
            "missing args",
            r#"{"kind":"echo"}"#,
            422,
            "missing_field",
            Some("args"),
        ),
        post(
            "unknown field",
            &job(r#","bogus":1"#),
            422,
            "unknown_field",
            Some("bogus"),
        ),
        post(
            "unknown kind",
            r#"{"kind":"nope","args":{}}"#,
            422,
            "unknown_kind",
            Some("kind"),
        ),
        post(
            "empty kind",
            r#"{"kind":"","args":{}}"#,
            422,
            "invalid_value",
            Some("kind"),
        ),
        post(
            "NUL in kind",
            r#"{"kind":"ec\u0000ho","args":{}}"#,
            422,
            "invalid_value",
            Some("kind"),
        ),
        post(
            "NUL in args",
            r#"{"kind":"echo","args":{"a":["x\u0000y"]}}"#,
            422,
            "invalid_value",
            Some("args"),
        ),
        post(
            "NUL in args key",
            r#"{"kind":"echo","args":{"a\u0000":1}}"#,
            422,
            "invalid_value",
            Some("args"),
        ),
        post(
            "priority wrong type",
            &job(r#","priority":"high""#),
            422,
            "invalid_type",
            Some("priority"),
        ),
        post(
            "priority too big",
            &job(r#","priority":10"#),
            422,
            "invalid_value",
            Some("priority"),
        ),
        post(
            "priority negative",
            &job(r#","priority":-1"#),
            422,
            "invalid_value",
            Some("priority"),
        ),
        post(
            "priority huge",
            &job(r#","priority":1e40"#),
            422,
            "invalid_type",
            Some("priority"),
        ),
        post(
            "zero attempts",
            &job(r#","max_attempts":0"#),
            422,
            "invalid_value",
            Some("max_attempts"),
        ),
        post(
            "negative attempts",
            &job(r#","max_attempts":-3"#),
            422,
            "invalid_value",
            Some("max_attempts"),
        ),
        post(
            "attempts over u32",
            &job(r#","max_attempts":5000000000"#),
            422,
            "invalid_value",
            Some("max_attempts"),
        ),
        post(
            "unparseable delay",
            &job(r#","delay":"soon""#),
            422,
            "invalid_duration",
            Some("delay"),
        ),
        post(
            "negative delay",
            &job(r#","delay":"-10m""#),
            422,
            "invalid_duration",
            Some("delay"),
        ),
        post(
            "delay wrong type",
            &job(r#","delay":{"m":1}"#),
            422,
            "invalid_duration",
            Some("delay"),
        ),
        post(
            "negative timeout",
            &job(r#","timeout":-5"#),
            422,
            "invalid_duration",
            Some("timeout"),
        ),
        post(
            "zero timeout",
            &job(r#","timeout":0"#),
            422,
            "invalid_duration",
            Some("timeout"),
        ),
        post(
            "zero timeout text",
            &job(r#","timeout":"0s""#),
            422,
            "invalid_duration",
            Some("timeout"),
        ),
        post(
            "month timeout",
            &job(r#","timeout":"1 month""#),
            422,
            "invalid_duration",
            Some("timeout"),
        ),
        post(
            "bad run_at",
            &job(r#","run_at":"tomorrow""#),
            422,
            "invalid_time",
            Some("run_at"),
        ),
        post(
            "run_at without offset",
            &job(r#","run_at":"2030-01-01T00:00:00""#),
            422,
            "invalid_time",
            Some("run_at"),
        ),
        post(
            "run_at NUL",
            &job(r#","run_at":"2030-01-01T00:00:00Z\u0000""#),
            422,
            "invalid_time",
            Some("run_at"),
        ),
        post(
            "run_at and delay",
            &job(r#","run_at":"2030-01-01T00:00:00Z","delay":"1m""#),
            422,
            "invalid_value",
            Some("delay"),
        ),
        post(
            "bad queue",
            &job(r#","queue":"bad queue""#),
            422,
            "invalid_value",
            Some("queue"),
        ),
        post(
            "SQL in queue",
            &job(r#","queue":"'; DROP TABLE rota_jobs;--""#),
            422,
            "invalid_value",
            Some("queue"),
        ),
        post(
            "NUL in unique key",
            &job(r#","unique_key":"a\u0000""#),
            422,
            "invalid_value",
            Some("unique_key"),
        ),
        post(
            "empty unique key",
            &job(r#","unique_key":"""#),
            422,
            "invalid_value",
            Some("unique_key"),
        ),
        post(
            "empty label name",
            &job(r#","labels":{"":"x"}"#),
            422,
            "invalid_value",
            Some("labels"),
        ),
        post(
            "NUL in label value",
            &job(r#","labels":{"k":"\u0000"}"#),
            422,
            "invalid_value",
            Some("labels.k"),
        ),
        post(
            "label value wrong type",
            &job(r#","labels":{"k":1}"#),
            422,
            "invalid_type",
            Some("labels.k"),
        ),
        post(
            "attributes wrong type",
            &job(r#","attributes":[]"#),
            422,
            "invalid_type",
            Some("attributes"),
        ),
        case(
            "batch empty",
            M::POST,
            "/v1/jobs/batch",
            Some(r#"{"jobs":[]}"#),
            422,
            "invalid_value",
            Some("jobs"),
        ),
        case(
            "batch not a list",
            M::POST,
            "/v1/jobs/batch",
            Some(r#"{"jobs":{}}"#),
            422,
            "invalid_type",
            Some("jobs"),
        ),
        case(
            "batch unknown field",
            M::POST,
            "/v1/jobs/batch",
            Some(r#"{"jobs":[],"x":1}"#),
            422,
            "unknown_field",
            Some("x"),
        ),
        case(
            "batch second job bad delay",
            M::POST,
            "/v1/jobs/batch",
            Some(&format!(
                r#"{{"jobs":[{},{}]}}"#,
                job(""),
                job(r#","delay":"x""#)
            )),
            422,
            "invalid_duration",
            Some("jobs[1].delay"),
        ),
        case(
            "batch second job unknown field",
            M::POST,
            "/v1/jobs/batch",
            Some(&format!(
                r#"{{"jobs":[{},{}]}}"#,
                job(""),
                job(r#","nope":1"#)
            )),
            422,
            "unknown_field",
            Some("jobs[1].nope"),
        ),
        case(
            "batch third job bad queue (engine check)",
            M::POST,
            "/v1/jobs/batch",
            Some(&format!(
                r#"{{"jobs":[{},{},{}]}}"#,
                job(""),
                job(""),
                job(r#","queue":"a b""#)
            )),
            422,
            "invalid_value",
            Some("jobs[2].queue"),
        ),
        case(
            "batch single job bad queue",
            M::POST,
            "/v1/jobs/batch",
            Some(&format!(r#"{{"jobs":[{}]}}"#, job(r#","queue":"a b""#))),
            422,
            "invalid_value",
            Some("jobs[0].queue"),
        ),
        case(
            "batch unknown kind",
            M::POST,
            "/v1/jobs/batch",
            Some(&format!(
                r#"{{"jobs":[{},{{"kind":"zzz","args":1}}]}}"#,
                job("")
            )),
            422,
            "unknown_kind",
            Some("jobs[1].kind"),
        ),
        case(
            "bad state filter",
            M::GET,
            "/v1/jobs?state=bogus",
            None,
            422,
            "invalid_parameter",
            Some("state"),
        ),
        case(
            "SQL in queue filter",
            M::GET,
            "/v1/jobs?queue=%27%3B%20DROP%20TABLE%20rota_jobs%3B--",
            None,
            422,
            "invalid_parameter",
            Some("queue"),
        ),
        case(
            "NUL in kind filter",
            M::GET,
            "/v1/jobs?kind=a%00b",
            None,
            422,
            "invalid_parameter",
            Some("kind"),
        ),
        case(
            "NUL in attribute filter",
            M::GET,
            "/v1/jobs?attribute.k=a%00",
            None,
            422,
            "invalid_parameter",
            Some("attribute.k"),
        ),
        case(
            "empty attribute name",
            M::GET,
            "/v1/jobs?attribute.=a",
            None,
            422,
            "invalid_parameter",
            Some("attribute."),
        ),
        case(
            "limit 0",
            M::GET,
            "/v1/jobs?limit=0",
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        case(
            "limit 100000",
            M::GET,
            "/v1/jobs?limit=100000",
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        case(
            "limit negative",
            M::GET,
            "/v1/jobs?limit=-1",
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        case(
            "non-numeric cursor",
            M::GET,
            "/v1/jobs?after=abc",
            None,
            422,
            "invalid_parameter",
            Some("after"),
        ),
        case(
            "unknown query parameter",
            M::GET,
            "/v1/jobs?sort=id",
            None,
            422,
            "invalid_parameter",
            Some("sort"),
        ),
        case(
            "unknown id",
            M::GET,
            "/v1/jobs/999999",
            None,
            404,
            "job_not_found",
            Some("id"),
        ),
        case(
            "non-numeric id",
            M::GET,
            "/v1/jobs/abc",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        case(
            "overflowing id",
            M::GET,
            "/v1/jobs/99999999999999999999999",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        case(
            "SQL in id",
            M::GET,
            "/v1/jobs/1%20OR%201=1",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        case(
            "cancel unknown id",
            M::POST,
            "/v1/jobs/999999/cancel",
            None,
            404,
            "job_not_found",
            Some("id"),
        ),
        case(
            "retry unknown id",
            M::POST,
            "/v1/jobs/999999/retry",
            None,
            404,
            "job_not_found",
            Some("id"),
        ),
        case(
            "delete unknown id",
            M::DELETE,
            "/v1/jobs/999999",
            None,
            404,
            "job_not_found",
            Some("id"),
        ),
        case(
            "output of unknown id",
            M::GET,
            "/v1/jobs/999999/output",
            None,
            404,
            "job_not_found",
            Some("id"),
        ),
        case(
            "delete unfinished job",
            M::DELETE,
            format!("/v1/jobs/{available}"),
            None,
            409,
            "invalid_state",
            None,
        ),
        case(
            "cancel finished job",
            M::POST,
            format!("/v1/jobs/{canceled}/cancel"),
            None,
            409,
            "invalid_state",
            None,
        ),
        case(
            "retry available job",
            M::POST,
            format!("/v1/jobs/{available}/retry"),
            None,
            409,
            "invalid_state",
            None,
        ),
        case(
            "bad follow flag",
            M::GET,
            format!("/v1/jobs/{available}/output?follow=maybe"),
            None,
            422,
            "invalid_parameter",
            Some("follow"),
        ),
        case(
            "bad queue name in path",
            M::POST,
            "/v1/queues/a%20b/pause",
            None,
            422,
            "invalid_parameter",
            Some("name"),
        ),
        case(
            "SQL in queue path",
            M::POST,
            "/v1/queues/x'%3B--/resume",
            None,
            422,
            "invalid_parameter",
            Some("name"),
        ),
        case(
            "NUL in node id",
            M::POST,
            "/v1/nodes/a%00b/drain",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        case(
            "bad key scope",
            M::POST,
            "/v1/keys",
            Some(r#"{"name":"k","scope":"root"}"#),
            422,
            "invalid_value",
            Some("scope"),
        ),
        case(
            "key unknown field",
            M::POST,
            "/v1/keys",
            Some(r#"{"name":"k","scope":"read","x":1}"#),
            422,
            "unknown_field",
            Some("x"),
        ),
        case(
            "unknown route",
            M::GET,
            "/v1/nope",
            None,
            404,
            "route_not_found",
            None,
        ),
        case(
            "method not allowed",
            M::PUT,
            "/v1/jobs",
            None,
            405,
            "method_not_allowed",
            None,
        ),
        case(
            "GET on batch",
            M::GET,
            "/v1/jobs/batch",
            None,
            405,
            "method_not_allowed",
            None,
        ),
        case(
            "metrics disabled",
            M::GET,
            "/metrics",
            None,
            404,
            "route_not_found",
            None,
        ),
    ];
    assert!(cases.len() >= 30);
    for c in &cases {
        let r = h.call(c.method.clone(), &c.uri, c.body.as_deref()).await;
        assert_eq!(r.status.as_u16(), c.status, "{}: {}", c.name, r.text());
        let p = r.problem(c.status, c.code);
        assert_eq!(p["field"].as_str(), c.field, "{}: {p}", c.name);
        assert_eq!(h.job_count().await, before, "{} wrote something", c.name);
    }
    let r = h.call(Method::PUT, "/v1/jobs", None).await;
    let allow = r.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");

    // Filters that are merely odd never fail: 200 with no jobs.
    for uri in [
        "/v1/jobs?kind=%27%3B%20DROP%20TABLE%20rota_jobs%3B--",
        "/v1/jobs?attribute.k=%22%27%3B%20--",
        "/v1/jobs?attribute.a%22b%5C=%27x%27",
        "/v1/jobs?attribute.%24.x%5B0%5D=1",
        "/v1/jobs?queue=a.b:c-d_e",
        "/v1/jobs?after=-5",
        "/v1/jobs/-1/output",
    ] {
        let r = h.get(uri).await;
        assert!(
            r.status.as_u16() == 200 || r.status.as_u16() == 404,
            "{uri}: {}",
            r.text()
        );
        if r.status == 200 {
            assert_eq!(r.json()["jobs"], serde_json::json!([]), "{uri}");
        }
    }
    assert_eq!(h.job_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413_without_buffering() {
    let h = Harness::new(ServerOptions {
        body_limit: 64 * 1024,
        ..ServerOptions::default()
    })
    .await;
    let big = format!(
        r#"{{"kind":"echo","args":{{"x":"{}"}}}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    // With a Content-Length: refused before reading.
    let r = h.post("/v1/jobs", &big).await;
    r.problem(413, "payload_too_large");
    // Streamed without a length: refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/jobs/batch")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    h.send(req).await.problem(413, "payload_too_large");
    // Just under the limit is fine.
    let ok = format!(
        r#"{{"kind":"echo","args":{{"x":"{}"}}}}"#,
        "a".repeat(60 * 1024)
    );
    assert_eq!(h.post("/v1/jobs", &ok).await.status, 201);
    assert_eq!(h.job_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_415() {
    let h = Harness::new(ServerOptions::default()).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/jobs")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"kind":"echo","args":{}}"#))
        .unwrap();
    h.send(req).await.problem(415, "unsupported_media_type");
    // No content type at all is accepted as JSON (curl -d without -H).
    let mut req = request(
        Method::POST,
        "/v1/jobs",
        Some(r#"{"kind":"echo","args":{}}"#),
    );
    req.headers_mut().remove(header::CONTENT_TYPE);
    assert_eq!(h.send(req).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_is_503_with_retry_after() {
    let h = Harness::new(ServerOptions::default()).await;
    h.set_down(true);
    for (m, uri, body) in [
        (Method::GET, "/readyz", None),
        (Method::GET, "/v1/jobs", None),
        (Method::GET, "/v1/jobs/1", None),
        (
            Method::POST,
            "/v1/jobs",
            Some(r#"{"kind":"echo","args":{}}"#),
        ),
        (Method::GET, "/v1/queues", None),
        (Method::GET, "/", None),
    ] {
        let r = h.call(m, uri, body).await;
        let p = r.problem(503, "store_unavailable");
        assert!(r.headers.contains_key(header::RETRY_AFTER), "{uri}");
        assert!(
            !p["detail"].as_str().unwrap().contains("simulated"),
            "leaked: {p}"
        );
    }
    assert_eq!(h.get("/healthz").await.status, 200);
    h.set_down(false);
    assert_eq!(h.get("/readyz").await.status, 200);
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_become_problem_500_without_details() {
    let h = Harness::new(ServerOptions {
        validate_args: Some(std::sync::Arc::new(|kind: &str, _: &serde_json::Value| {
            if kind == "echo" {
                panic!("secret internal detail");
            }
            Ok(())
        })),
        ..ServerOptions::default()
    })
    .await;
    let r = h.post("/v1/jobs", r#"{"kind":"echo","args":{}}"#).await;
    let p = r.problem(500, "internal");
    assert!(!r.text().contains("secret"), "{p}");
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn args_validator_names_the_field() {
    let h = Harness::new(ServerOptions {
        validate_args: Some(std::sync::Arc::new(|_: &str, args: &serde_json::Value| {
            if args.get("command").is_some_and(|c| !c.is_array()) {
                return Err(rota::ValidationError::new(
                    "args.command",
                    "must be an array of strings",
                ));
            }
            Ok(())
        })),
        ..ServerOptions::default()
    })
    .await;
    let r = h
        .post("/v1/jobs", r#"{"kind":"echo","args":{"command":"ls"}}"#)
        .await;
    assert_eq!(r.problem(422, "invalid_value")["field"], "args.command");
    let r = h
        .post(
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"echo","args":{}},{"kind":"echo","args":{"command":1}}]}"#,
        )
        .await;
    assert_eq!(
        r.problem(422, "invalid_value")["field"],
        "jobs[1].args.command"
    );
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_browser_mutations_are_refused() {
    let h = Harness::new(ServerOptions::default()).await;
    let id = h.enqueue(r#"{"kind":"echo","args":{}}"#).await;
    let body = r#"{"kind":"echo","args":{}}"#;
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://evil.example"),
    ] {
        for (m, uri, b) in [
            (Method::POST, "/v1/jobs".to_owned(), Some(body)),
            (Method::POST, format!("/v1/jobs/{id}/cancel"), None),
            (Method::POST, "/v1/queues/default/pause".to_owned(), None),
        ] {
            let mut req = request(m, &uri, b);
            req.headers_mut()
                .insert(header::HOST, "127.0.0.1:7070".parse().unwrap());
            req.headers_mut().insert(name, value.parse().unwrap());
            h.send(req).await.problem(403, "cross_origin_request");
        }
    }
    assert_eq!(h.job_count().await, 1);
    assert_eq!(
        h.get(&format!("/v1/jobs/{id}")).await.json()["state"],
        "available"
    );
    // Same-origin browser requests and reads from anywhere pass.
    let mut req = request(Method::POST, "/v1/jobs", Some(body));
    req.headers_mut()
        .insert(header::HOST, "127.0.0.1:7070".parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://127.0.0.1:7070".parse().unwrap());
    req.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    assert_eq!(h.send(req).await.status, 201);
    let mut req = request(Method::GET, "/v1/jobs", None);
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(h.send(req).await.status, 200);
}
