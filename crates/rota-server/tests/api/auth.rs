//! API keys: 401 without a key, 403 for an insufficient scope, revocation.

use axum::http::{Method, header};
use rota::ApiKeyScope;
use rota_server::ServerOptions;

use crate::common::{Harness, request};
use crate::happy::ROUTES;

fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{name}", "default")
}

fn method(m: &str) -> Method {
    m.to_uppercase().parse().unwrap()
}

async fn secured() -> Harness {
    Harness::new(ServerOptions {
        require_auth: true,
        metrics: Some(std::sync::Arc::new(String::new)),
        ..ServerOptions::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_key() {
    let h = secured().await;
    let admin = h
        .client
        .create_api_key("admin", ApiKeyScope::Admin)
        .await
        .unwrap();
    for (m, p) in ROUTES {
        let uri = concrete(p);
        let body = (m == "post").then_some("{}");
        let r = h.call(method(m), &uri, body).await;
        if p == "/healthz" || p == "/readyz" {
            assert_eq!(r.status, 200, "{m} {p}: {}", r.text());
            continue;
        }
        r.problem(401, "unauthorized");
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{m} {p}"
        );
        for bad in ["", "Bearer", "Bearer nope", "Basic abc", "Bearer rota_x_y"] {
            let mut req = request(method(m), &uri, body);
            req.headers_mut()
                .insert(header::AUTHORIZATION, bad.parse().unwrap());
            h.send(req).await.problem(401, "unauthorized");
        }
    }
    // Unknown routes too (no probing without a key).
    h.get("/v1/secret").await.problem(401, "unauthorized");
    // A wrong secret for a real key id.
    let forged = format!("{}x", admin.token);
    let mut req = request(Method::GET, "/v1/jobs", None);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {forged}").parse().unwrap(),
    );
    h.send(req).await.problem(401, "unauthorized");
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_keys_cannot_mutate() {
    let mut h = secured().await;
    let read = h
        .client
        .create_api_key("reader", ApiKeyScope::Read)
        .await
        .unwrap();
    h.token = Some(read.token.clone());
    for (m, p) in ROUTES {
        let uri = concrete(p);
        if m == "get" {
            let r = h.get(&uri).await;
            let allowed = !uri.starts_with("/v1/keys") && !uri.starts_with("/v1/webhooks");
            if allowed {
                assert!(
                    r.status.as_u16() != 401 && r.status.as_u16() != 403,
                    "{m} {p}: {}",
                    r.text()
                );
            } else {
                r.problem(403, "insufficient_scope");
            }
            continue;
        }
        let body = (m == "post").then_some(r#"{"kind":"echo","args":{}}"#);
        let r = h.call(method(m), &uri, body).await;
        r.problem(403, "insufficient_scope");
    }
    assert_eq!(h.job_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_admin_and_revocation() {
    let mut h = secured().await;
    let write = h
        .client
        .create_api_key("writer", ApiKeyScope::Write)
        .await
        .unwrap();
    let admin = h
        .client
        .create_api_key("admin", ApiKeyScope::Admin)
        .await
        .unwrap();

    h.token = Some(write.token.clone());
    let id = h.enqueue(r#"{"kind":"echo","args":{}}"#).await;
    assert_eq!(
        h.post_empty(&format!("/v1/jobs/{id}/cancel")).await.status,
        200
    );
    assert_eq!(h.post_empty("/v1/queues/default/pause").await.status, 200);
    h.post_empty("/v1/nodes/n1/drain")
        .await
        .problem(403, "insufficient_scope");
    h.post("/v1/keys", r#"{"name":"x","scope":"read"}"#)
        .await
        .problem(403, "insufficient_scope");
    h.get("/v1/keys").await.problem(403, "insufficient_scope");

    h.token = Some(admin.token.clone());
    // Admin passes auth for drain (the node does not exist here).
    h.post_empty("/v1/nodes/n1/drain")
        .await
        .problem(404, "node_not_found");
    let r = h.post("/v1/keys", r#"{"name":"ci","scope":"read"}"#).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let token = created["token"].as_str().unwrap().to_owned();
    let key_id = created["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["key"]["scope"], "read");
    let list = h.get("/v1/keys").await.json();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter()
            .all(|k| k.get("token").is_none() && k.get("secret_hash").is_none())
    );

    // The new key reads; after revocation it is refused.
    h.token = Some(token.clone());
    assert_eq!(h.get("/v1/jobs").await.status, 200);
    h.token = Some(admin.token.clone());
    let r = h.delete(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["revoked_at"].is_string());
    h.delete("/v1/keys/doesnotexist")
        .await
        .problem(404, "api_key_not_found");
    h.token = Some(token);
    h.get("/v1/jobs").await.problem(401, "unauthorized");
    // Health stays open.
    h.token = None;
    assert_eq!(h.get("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_list_and_drain() {
    let h = Harness::started(ServerOptions::default()).await;
    let node_id = h.client.config().node_id.clone();
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(10), || async {
            let r = h.get("/v1/nodes").await;
            r.status == 200 && r.json()["nodes"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await,
        "node never registered: {}",
        h.get("/v1/nodes").await.text()
    );
    let list = h.get("/v1/nodes").await.json();
    let n = &list["nodes"][0];
    assert_eq!(n["id"], node_id.as_str());
    assert_eq!(n["queues"]["default"], 4);
    assert_eq!(n["draining"], false);
    let age = n["heartbeat_age_seconds"].as_f64().unwrap();
    assert!((0.0..30.0).contains(&age), "{age}");
    let r = h.post_empty(&format!("/v1/nodes/{node_id}/drain")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["draining"], true);
    h.post_empty("/v1/nodes/nope/drain")
        .await
        .problem(404, "node_not_found");
    h.shutdown().await;
}
