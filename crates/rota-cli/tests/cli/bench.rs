//! `rota bench` on SQLite: one command, a table or stable JSON, and the
//! fresh database it made is gone afterwards.

use crate::common::Sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_every_phase_as_json_and_cleans_up() {
    let sb = Sandbox::new();
    let db = sb.db();
    let mut cmd = sb.cmd(&[
        "bench",
        "--database",
        &db,
        "--jobs",
        "1000",
        "--single",
        "100",
        "--latency",
        "20",
        "-o",
        "json",
    ]);
    // Tokio's own setting, which the report must reflect.
    cmd.env("TOKIO_WORKER_THREADS", "1");
    let out = sb.run_cmd(cmd).await;
    assert!(out.status.success(), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("bench JSON");
    let names: Vec<&str> = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bulk_enqueue",
            "single_enqueue",
            "single_enqueue_concurrent",
            "raw_insert_baseline",
            "process",
            "latency"
        ]
    );
    assert!(v["phases"][0]["jobs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["phases"][5]["latency"]["p99_ms"].as_f64().is_some());
    // What scripts read has fields of its own (docs/benchmarks.md).
    assert!(v["phases"][1]["ratio_to_baseline"].as_f64().is_some());
    assert_eq!(v["phases"][4]["concurrency"], 1000);
    assert!(v["phases"][4]["rss"]["peak_mib"].as_f64().is_some());
    assert!(v["phases"][5]["end_to_end"]["p99_ms"].as_f64().is_some());
    assert_eq!(v["machine"]["store"], "sqlite");
    assert!(
        v["machine"]["fsync_p50_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0),
        "the disk probe reports a time"
    );
    assert!(
        v["machine"]["settings"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        v["machine"]["runtime_workers"], 1,
        "the runtime's worker threads are reported"
    );
    let left: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("rota-bench-")),
        "{left:?}"
    );

    let table = sb
        .run(&[
            "bench",
            "--database",
            &db,
            "--jobs",
            "200",
            "--phases",
            "bulk,process",
        ])
        .await;
    assert!(table.status.success(), "{}", table.stderr);
    assert!(
        table.stdout.contains("bulk_enqueue") && table.stdout.contains("process"),
        "{}",
        table.stdout
    );
    let bad = sb
        .run(&["bench", "--database", &db, "--phases", "warp"])
        .await;
    assert_eq!(bad.status.code(), Some(2));
}

/// A PostgreSQL server that cannot be reached: exit 5 (store unreachable),
/// and the message says why rather than "pool exhausted".
#[tokio::test]
async fn bench_on_an_unreachable_server_exits_5_and_says_why() {
    let sb = Sandbox::new();
    let out = sb
        .run(&[
            "bench",
            "--database",
            "postgres://postgres:postgres@127.0.0.1:1/postgres",
            "--jobs",
            "10",
        ])
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{}",
        out.stderr
    );
}
