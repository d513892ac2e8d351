//! The benchmark runs end to end on small numbers, on SQLite and (when
//! configured) PostgreSQL, and cleans up after itself.

#![allow(clippy::unwrap_used)]

use rota_bench::{BenchOptions, PhaseKind, render_table, run};

fn small(database: String) -> BenchOptions {
    BenchOptions {
        database,
        jobs: 2_000,
        single: 200,
        latency: 20,
        concurrency: 50,
        ..BenchOptions::default()
    }
}

fn names(r: &rota_bench::BenchReport) -> Vec<&str> {
    r.phases.iter().map(|p| p.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_run_reports_every_phase_and_removes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(&small(format!(
        "sqlite://{}/bench.db",
        dir.path().display()
    )))
    .await
    .unwrap();
    assert_eq!(
        names(&report),
        [
            "bulk_enqueue",
            "single_enqueue",
            "single_enqueue_concurrent",
            "raw_insert_baseline",
            "process",
            "latency"
        ]
    );
    assert!(report.phases.iter().all(|p| p.seconds > 0.0));
    assert_eq!(report.machine.store, "sqlite");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["phases"][0]["jobs_per_sec"].as_f64().unwrap() > 0.0);
    // What scripts read has fields of its own, in the phases it belongs to.
    let phase = |name: &str| {
        json["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let ratio = phase("single_enqueue")["ratio_to_baseline"]
        .as_f64()
        .unwrap();
    assert!(ratio > 0.0, "{ratio}");
    assert_eq!(phase("single_enqueue_concurrent")["concurrency"], 16);
    let process = phase("process");
    assert_eq!(process["concurrency"], 50);
    assert_eq!(process["claim_batch"], 25, "half the slots");
    assert!(
        process["rss"]["peak_mib"].as_f64().unwrap()
            >= process["rss"]["start_mib"].as_f64().unwrap()
    );
    let latency = phase("latency");
    assert_eq!(latency["end_to_end"]["samples"], 20);
    assert!(
        latency["end_to_end"]["p50_ms"].as_f64().unwrap()
            >= latency["latency"]["p50_ms"].as_f64().unwrap(),
        "the end-to-end span contains the commit -> start span"
    );
    assert!(phase("bulk_enqueue").get("concurrency").is_none());
    assert!(render_table(&report).contains("bulk_enqueue"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "fresh files removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_run_uses_a_fresh_schema() {
    let Ok(url) = std::env::var("ROTA_TEST_POSTGRES_URL") else {
        if std::env::var("ROTA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("ROTA_REQUIRE_POSTGRES=1 but ROTA_TEST_POSTGRES_URL is not set");
        }
        eprintln!("*** SKIPPED: PostgreSQL bench smoke test (set ROTA_TEST_POSTGRES_URL) ***");
        return;
    };
    let mut opts = small(url);
    opts.phases = vec![PhaseKind::Process, PhaseKind::Latency];
    let report = run(&opts).await.unwrap();
    assert_eq!(names(&report), ["process", "latency"]);
    assert_eq!(report.machine.store, "postgres");
    let process = &report.phases[0];
    assert_eq!(process.concurrency, Some(50));
    assert!(process.rss.is_some_and(|r| r.peak_mib >= r.start_mib));
    let end_to_end = report.phases[1].end_to_end.as_ref().unwrap();
    assert_eq!(end_to_end.samples, 20);
}

/// Directories the run had to create for its file go too (when empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_run_removes_the_directories_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small(format!(
        "sqlite://{}/made/for/bench.db",
        dir.path().display()
    ));
    opts.phases = vec![PhaseKind::Bulk];
    run(&opts).await.unwrap();
    assert!(
        !dir.path().join("made").exists(),
        "created directories removed"
    );
    assert!(dir.path().exists(), "the existing one stays");
}
