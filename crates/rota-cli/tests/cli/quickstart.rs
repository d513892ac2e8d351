//! The README quick start: a server, then `rota job submit --wait -- echo hello`.

use crate::common::Sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_and_wait_prints_the_output() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &server.url,
            "--wait",
            "--",
            "echo",
            "hello",
        ])
        .await;
    assert_eq!(out.code(), 0, "{out:#?}");
    assert!(out.stdout.contains("hello"), "{out:#?}");

    // Without --wait, stdout is just the id; the job shows up in the list.
    let out = sb
        .run(&["job", "submit", "--server", &server.url, "--", "true"])
        .await;
    let id: i64 = out.ok().trim().parse().expect("an id");
    let list = sb
        .run(&["job", "list", "--server", &server.url, "-o", "json"])
        .await
        .json();
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id)
    );
    let logs = sb.run(&["job", "logs", "1", "--server", &server.url]).await;
    assert_eq!(logs.ok(), "hello\n");
    // /metrics is served by the binary's Prometheus recorder.
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert!(metrics.status().is_success());
}
