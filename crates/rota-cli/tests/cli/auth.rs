//! API keys made with the binary gate a server listening beyond loopback:
//! no key → 401, a read key on a mutating route → 403.

use serde_json::json;

use crate::common::{Sandbox, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_listening_needs_a_key_and_checks_scopes() {
    let sb = Sandbox::new();
    let db = sb.db();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");

    // Without a key in the store the server refuses to start.
    let out = sb
        .run(&["server", "--listen", &listen, "--database", &db])
        .await;
    assert_eq!(out.code(), 2, "{out:#?}");
    assert!(out.stderr.contains("refusing to listen"), "{out:#?}");
    assert!(out.stderr.contains("rota key create"), "{out:#?}");

    // Keys are made directly in the store.
    let admin = sb
        .run(&[
            "key",
            "create",
            "--database",
            &db,
            "--name",
            "admin",
            "--scope",
            "admin",
        ])
        .await;
    let admin = admin.ok().trim().to_owned();
    assert!(admin.starts_with("rota_"), "{admin}");
    let read = sb
        .run(&[
            "key",
            "create",
            "--database",
            &db,
            "--name",
            "ro",
            "--scope",
            "read",
            "-o",
            "json",
        ])
        .await
        .json();
    let read_id = read["key"]["id"].as_str().unwrap().to_owned();
    let read = read["token"].as_str().unwrap().to_owned();
    let keys = sb
        .run(&["key", "list", "--database", &db, "-o", "json"])
        .await
        .json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(&read), "no secret in listings");

    let server = sb.server_at(port, &["server", "--listen", &listen]).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();

    // No key: 401 on every route but the probes.
    for (method, path) in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/nodes"),
        ("GET", "/metrics"),
    ] {
        let r = http
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let out = sb.run(&["job", "list", "--server", &url]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
    assert!(
        out.stderr.contains("--api-key"),
        "the error says how to pass a key: {out:#?}"
    );

    // A read key reads but cannot mutate (403).
    let out = sb
        .run(&["job", "list", "--server", &url, "--api-key", &read])
        .await;
    out.ok();
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &url,
            "--api-key",
            &read,
            "--",
            "true",
        ])
        .await;
    assert_eq!(out.code(), 1, "{out:#?}");
    assert!(out.stderr.contains("scope"), "{out:#?}");
    let r = http
        .post(format!("{url}/v1/jobs"))
        .bearer_auth(&read)
        .json(&json!({"kind": "shell", "args": {"command": ["true"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The admin key, from the environment, mutates.
    let mut c = sb.cmd(&["job", "submit", "--server", &url, "--", "true"]);
    c.env("ROTA_API_KEY", &admin);
    sb.run_cmd(c).await.ok();

    // A revoked key authenticates nothing.
    sb.run(&["key", "revoke", &read_id, "--database", &db])
        .await
        .ok();
    let r = http
        .get(format!("{url}/v1/jobs"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let out = sb.run(&["key", "revoke", "nope", "--database", &db]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
}
