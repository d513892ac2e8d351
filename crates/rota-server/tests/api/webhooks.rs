//! `/v1/webhooks`: create (secret never returned), list, deliveries (with a
//! real receiver), delete; bad inputs; admin only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::routing::post;
use rota::ApiKeyScope;
use rota_server::ServerOptions;
use serde_json::{Value, json};

use crate::common::{Harness, bad, eventually, fast_config};

const SECRET: &str = "s3cret-s3cret-s3cret";

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    got.lock().unwrap().push((headers, body));
    "ok"
}

/// A webhook receiver on a loopback port; returns its URL.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_deliver_delete() {
    let (url, got) = receiver().await;
    let h = Harness::with_config(ServerOptions::default(), fast_config().queue("default", 2)).await;
    let r = h
        .post(
            "/v1/webhooks",
            &json!({"url": url, "events": ["job.*"], "kinds": ["echo"], "secret": SECRET})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains(SECRET), "{}", r.text());
    let w = r.json();
    let id = w["id"].as_i64().unwrap();
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/webhooks/{id}").as_str()
    );
    assert_eq!(w["url"], url.as_str());
    assert_eq!(w["events"], json!(["job.*"]));
    assert_eq!(w["kinds"], json!(["echo"]));
    assert_eq!(w["owner_kinds"], json!([]));
    assert!(w.get("secret").is_none());
    // A second subscription with defaults (every event).
    let all = h
        .created(
            "/v1/webhooks",
            &json!({"url": "https://example.invalid/x", "secret": SECRET}).to_string(),
        )
        .await;
    assert_eq!(all["events"], json!([]));
    let list = h.get("/v1/webhooks").await;
    assert_eq!(list.status, 200);
    assert!(!list.text().contains(SECRET));
    let hooks = list.json();
    let listed: Vec<i64> = hooks["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![id, all["id"].as_i64().unwrap()]);
    h.delete(&format!("/v1/webhooks/{}", all["id"])).await;

    // A job's status changes are delivered, signed, and listed.
    let job = h.enqueue(r#"{"kind":"echo","args":{}}"#).await;
    let deliveries = format!("/v1/webhooks/{id}/deliveries");
    assert!(
        eventually(Duration::from_secs(30), || async {
            let d = h.get(&deliveries).await.json();
            d["deliveries"].as_array().is_some_and(|ds| {
                ds.iter()
                    .any(|d| d["status"] == "delivered" && d["event"]["type"] == "job.succeeded")
            })
        })
        .await,
        "{}",
        h.get(&deliveries).await.text()
    );
    let d = h.get(&deliveries).await.json();
    let done = d["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event"]["type"] == "job.succeeded")
        .unwrap();
    assert_eq!(done["webhook_id"], id);
    assert_eq!(done["event"]["entity"], "job");
    assert_eq!(done["event"]["id"], job);
    assert!(done["event"]["revision"].as_i64().unwrap() >= 1);
    assert!(done["attempts"].as_u64().unwrap() >= 1);
    assert_eq!(done["last_status_code"], 200);
    assert!(done["delivered_at"].is_string());
    // Pagination.
    let n = d["deliveries"].as_array().unwrap().len();
    if n > 1 {
        let p = h.get(&format!("{deliveries}?limit=1")).await.json();
        let next = p["next"].as_str().unwrap();
        let p2 = h
            .get(&format!("{deliveries}?limit=1&after={next}"))
            .await
            .json();
        assert_eq!(p2["deliveries"][0]["id"], d["deliveries"][1]["id"]);
    }
    // The receiver got them, signed with the secret.
    let received = got.lock().unwrap().clone();
    assert!(!received.is_empty());
    for (headers, body) in &received {
        let sig = headers["rota-signature"].to_str().unwrap();
        let now = jiff::Timestamp::now().as_second();
        assert!(
            rota::verify_webhook(SECRET, sig, body, now, Duration::from_secs(300)),
            "{sig}"
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["kind"], "echo");
    }

    // Delete: gone, its deliveries too.
    let r = h.delete(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id);
    h.get(&deliveries).await.problem(404, "webhook_not_found");
    h.delete(&format!("/v1/webhooks/{id}"))
        .await
        .problem(404, "webhook_not_found");
    assert_eq!(h.get("/v1/webhooks").await.json()["webhooks"], json!([]));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_requests() {
    let h = Harness::new(ServerOptions::default()).await;
    let w = h
        .created(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/x", "secret": SECRET}).to_string(),
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    use Method as M;
    let post = |name, body: Value, code, field| {
        bad(
            name,
            M::POST,
            "/v1/webhooks",
            Some(&body.to_string()),
            422,
            code,
            field,
        )
    };
    let long = "x".repeat(3000);
    let cases = vec![
        post(
            "missing url",
            json!({"secret": SECRET}),
            "missing_field",
            Some("url"),
        ),
        post(
            "missing secret",
            json!({"url": "http://a/"}),
            "missing_field",
            Some("secret"),
        ),
        post(
            "not a URL",
            json!({"url": "not a url", "secret": SECRET}),
            "invalid_value",
            Some("url"),
        ),
        post(
            "ftp URL",
            json!({"url": "ftp://a/", "secret": SECRET}),
            "invalid_value",
            Some("url"),
        ),
        post(
            "URL too long",
            json!({"url": format!("http://a/{long}"), "secret": SECRET}),
            "invalid_value",
            Some("url"),
        ),
        post(
            "short secret",
            json!({"url": "http://a/", "secret": "short"}),
            "invalid_value",
            Some("secret"),
        ),
        post(
            "NUL in secret",
            json!({"url": "http://a/", "secret": "0123456789abcdef\u{0}"}),
            "invalid_value",
            Some("secret"),
        ),
        post(
            "bad event",
            json!({"url": "http://a/", "secret": SECRET, "events": ["bogus"]}),
            "invalid_value",
            Some("events"),
        ),
        post(
            "empty event",
            json!({"url": "http://a/", "secret": SECRET, "events": [""]}),
            "invalid_value",
            Some("events[0]"),
        ),
        post(
            "events wrong type",
            json!({"url": "http://a/", "secret": SECRET, "events": "job.*"}),
            "invalid_type",
            Some("events"),
        ),
        post(
            "NUL in kind filter",
            json!({"url": "http://a/", "secret": SECRET, "kinds": ["a", "b\u{0}"]}),
            "invalid_value",
            Some("kinds[1]"),
        ),
        post(
            "unknown field",
            json!({"url": "http://a/", "secret": SECRET, "active": true}),
            "unknown_field",
            Some("active"),
        ),
        bad(
            "delete unknown id",
            M::DELETE,
            "/v1/webhooks/999999",
            None,
            404,
            "webhook_not_found",
            Some("id"),
        ),
        bad(
            "deliveries of unknown id",
            M::GET,
            "/v1/webhooks/999999/deliveries",
            None,
            404,
            "webhook_not_found",
            Some("id"),
        ),
        bad(
            "non-numeric id",
            M::DELETE,
            "/v1/webhooks/abc",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        bad(
            "deliveries bad limit",
            M::GET,
            format!("/v1/webhooks/{id}/deliveries?limit=0"),
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        bad(
            "deliveries bad cursor",
            M::GET,
            format!("/v1/webhooks/{id}/deliveries?after=x"),
            None,
            422,
            "invalid_parameter",
            Some("after"),
        ),
        bad(
            "GET one webhook",
            M::GET,
            format!("/v1/webhooks/{id}"),
            None,
            405,
            "method_not_allowed",
            None,
        ),
    ];
    h.expect_problems(&cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_admin() {
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
    let admin = h
        .client
        .create_api_key("a", ApiKeyScope::Admin)
        .await
        .unwrap();
    let body = json!({"url": "http://127.0.0.1:9/x", "secret": SECRET}).to_string();
    h.token = Some(admin.token.clone());
    let id = h.created("/v1/webhooks", &body).await["id"]
        .as_i64()
        .unwrap();
    let before = h.snapshot().await;
    for token in [&read.token, &write.token] {
        h.token = Some(token.clone());
        h.get("/v1/webhooks")
            .await
            .problem(403, "insufficient_scope");
        h.get(&format!("/v1/webhooks/{id}/deliveries"))
            .await
            .problem(403, "insufficient_scope");
        h.post("/v1/webhooks", &body)
            .await
            .problem(403, "insufficient_scope");
        h.delete(&format!("/v1/webhooks/{id}"))
            .await
            .problem(403, "insufficient_scope");
    }
    assert_eq!(h.snapshot().await, before);
    h.token = Some(admin.token);
    assert_eq!(h.get("/v1/webhooks").await.status, 200);
    let r = h.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deliveries"], json!([]));
}
