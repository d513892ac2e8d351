//! Over a real listener: body limits without reading the body, SSE.

use std::time::Duration;

use rota_server::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Harness;

async fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("server did not answer in time");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_listener() {
    let h = Harness::started(ServerOptions {
        body_limit: 4096,
        ..ServerOptions::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // A 1 GB body is declared but never sent: 413 at once.
    let r = exchange(
        addr,
        b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert!(
        r.contains("application/problem+json") && r.contains("payload_too_large"),
        "{r}"
    );

    // SSE follow of a running job ends when the job finishes.
    let id = h
        .enqueue(r#"{"kind":"echo","args":{"output":"first","sleep_ms":800,"then":"second"}}"#)
        .await;
    let r = exchange(
        addr,
        format!(
            "GET /v1/jobs/{id}/output?follow=true HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("text/event-stream"), "{r}");
    assert!(
        r.contains("event: output") && r.contains("first") && r.contains("second"),
        "{r}"
    );
    assert!(
        r.contains("event: end") && r.contains(r#""state":"succeeded""#),
        "{r}"
    );
    server.abort();
    h.shutdown().await;
    assert_eq!(h.job_count().await, 1);
}
