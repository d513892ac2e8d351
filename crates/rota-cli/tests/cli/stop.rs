//! Timeout and cancel of running shell jobs: the job ends failed/canceled
//! and no process of it survives.

use std::time::Duration;

use crate::common::{Sandbox, eventually, processes_with, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_job_fails_and_leaves_no_process() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &server.url,
            "--wait",
            "--timeout",
            "1s",
            "--max-attempts",
            "1",
            "--",
            "sleep",
            "100.123",
        ])
        .await;
    assert_eq!(out.code(), 1, "a failed job exits 1: {out:#?}");
    assert!(out.stderr.contains("failed"), "{out:#?}");
    let job = show(&sb, &server.url, "1").await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["errors"][0]["kind"], "timeout", "{job:#}");
    eventually(10, "no sleep 100.123 left", || async {
        processes_with("sleep", "100.123").is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_job_ends_canceled_and_leaves_no_process() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &server.url,
            "--",
            "sleep",
            "100.456",
        ])
        .await;
    let id = out.ok().trim().to_owned();
    eventually(30, "the job running its sleep", || async {
        let job = show(&sb, &server.url, &id).await;
        (job["state"] == "running" && !processes_with("sleep", "100.456").is_empty()).then_some(())
    })
    .await;
    let out = sb
        .run(&["job", "cancel", &id, "--server", &server.url])
        .await;
    assert!(out.ok().contains(&format!("job {id}")), "{out:#?}");
    let out = sb
        .run(&[
            "job",
            "wait",
            &id,
            "--server",
            &server.url,
            "--timeout",
            "30s",
        ])
        .await;
    assert_eq!(out.code(), 3, "a canceled job exits 3: {out:#?}");
    assert_eq!(show(&sb, &server.url, &id).await["state"], "canceled");
    eventually(10, "no sleep 100.456 left", || async {
        processes_with("sleep", "100.456").is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_running_jobs_back_and_exits_cleanly() {
    let sb = Sandbox::new();
    let server = sb.server(&["--shutdown-grace", "1s"]).await;
    let url = server.url.clone();
    let out = sb
        .run(&["job", "submit", "--server", &url, "--", "sleep", "100.789"])
        .await;
    let id = out.ok().trim().to_owned();
    eventually(30, "the job running its sleep", || async {
        let job = show(&sb, &url, &id).await;
        (job["state"] == "running" && !processes_with("sleep", "100.789").is_empty()).then_some(())
    })
    .await;
    let status = server.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
    assert!(
        processes_with("sleep", "100.789").is_empty(),
        "the job's process is gone"
    );
    // Restarted, the handed-back job is visible as waiting to run again.
    let server = sb.server(&["--queues", ""]).await;
    let job = show(&sb, &server.url, &id).await;
    assert_eq!(job["state"], "available", "{job:#}");
    assert_eq!(job["errors"][0]["kind"], "shutdown", "{job:#}");
}
