//! A job printing 50 MiB stores at most the cap, with the cut marked.

use crate::common::Sandbox;

/// `rota_core::output::CUT_MARKER`.
const CUT: &str = "[... rota: output cut ...]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_of_output_is_capped_and_marked() {
    let sb = Sandbox::new();
    let cap = 64 * 1024;
    let server = sb.server(&["--output-cap", "64KiB"]).await;
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &server.url,
            "--script",
            "head -c 52428800 /dev/zero | tr '\\0' a; echo; echo the-end",
        ])
        .await;
    let id = out.ok().trim().to_owned();
    let out = sb
        .run(&[
            "job",
            "wait",
            &id,
            "--server",
            &server.url,
            "--timeout",
            "120s",
        ])
        .await;
    assert_eq!(out.code(), 0, "{out:#?}");
    let logs = sb
        .run(&["job", "logs", &id, "--server", &server.url, "-o", "json"])
        .await
        .json();
    let text = logs["output"].as_str().unwrap();
    assert!(
        text.len() <= cap + CUT.len() + 2,
        "stored {} bytes",
        text.len()
    );
    assert!(text.len() >= cap / 2, "stored only {} bytes", text.len());
    assert!(text.contains(CUT), "the cut is marked");
    assert!(text.starts_with("aaaa"), "the head is kept");
    assert!(text.trim_end().ends_with("the-end"), "the tail is kept");
    assert_eq!(logs["exit_code"], 0);
}
