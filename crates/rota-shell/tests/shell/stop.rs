//! Stopping commands: their own timeout, the engine's timeout, cancel, a
//! process ignoring SIGTERM, grandchildren, and a worker killed outright.
//! No process of the job's group may survive any of them.

use std::time::{Duration, Instant};

use rota::drivers::sqlite::{SqliteDriver, SqliteOptions};
use rota::{Client, Config, EnqueueOpts, ErrorKind, JobRequest, JobState, Store};
use rota_shell::{KIND, ShellOptions, ShellWorker};
use serde_json::json;

use crate::common::{Harness, alive, allowed, fast_config, group_alive, once, pid};

/// Waits until none of `pids` runs and their group is empty.
async fn all_gone(pgid: i32, pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) || group_alive(pgid) {
        assert!(
            Instant::now() < deadline,
            "processes of group {pgid} survived: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_timeout_kills_the_whole_group_and_retries() {
    let h = Harness::new(allowed()).await;
    let t0 = Instant::now();
    let id = h
        .enqueue(
            json!({"script": "echo $$; sleep 100 & echo $!; wait", "timeout": "1s"}),
            once(),
        )
        .await;
    let lines = h.output_lines(id, 2).await;
    let (leader, sleeper) = (pid(&lines[0]), pid(&lines[1]));
    assert!(alive(leader) && alive(sleeper));
    let job = h.client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.errors[0].kind, ErrorKind::Error, "retryable");
    assert_eq!(job.errors[0].message, "timed out after 1s");
    assert_eq!(job.exit_code, Some(128 + 15), "sh ended by SIGTERM");
    all_gone(leader, &[leader, sleeper]).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ignored_means_sigkill_after_the_grace() {
    // The default timeout applies to jobs without their own.
    let opts = ShellOptions {
        default_timeout: Some(Duration::from_millis(500)),
        kill_grace: Duration::from_millis(700),
        ..allowed()
    };
    let h = Harness::new(opts).await;
    let t0 = Instant::now();
    let job = h
        .run(json!({"script": "trap '' TERM; echo $$; sleep 100 & echo $!; wait"}))
        .await;
    let took = t0.elapsed();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.errors[0].message, "timed out after 500ms");
    assert_eq!(job.exit_code, Some(128 + 9), "sh needed SIGKILL");
    assert!(
        took >= Duration::from_millis(1200),
        "SIGKILL came before the grace: {took:?}"
    );
    let out = job.output.unwrap();
    let pids: Vec<i32> = out.lines().map(pid).collect();
    all_gone(pids[0], &pids).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_timeout_also_kills_the_group() {
    let h = Harness::new(allowed()).await;
    let id = h
        .enqueue(
            json!({"script": "echo $$; sleep 100"}),
            EnqueueOpts {
                max_attempts: Some(1),
                timeout: Some(Duration::from_secs(1)),
                ..EnqueueOpts::default()
            },
        )
        .await;
    let leader = pid(&h.output_lines(id, 1).await[0]);
    let job = h.client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.errors[0].kind, ErrorKind::Timeout);
    all_gone(leader, &[leader]).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_command() {
    let h = Harness::new(allowed()).await;
    let id = h
        .enqueue(
            json!({"command": ["sh", "-c", "echo $$; exec sleep 100"]}),
            once(),
        )
        .await;
    let leader = pid(&h.output_lines(id, 1).await[0]);
    assert!(alive(leader));
    let t0 = Instant::now();
    h.client.cancel(id).await.unwrap();
    let job = h.client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(job.state, JobState::Canceled);
    assert_eq!(job.exit_code, Some(128 + 15));
    all_gone(leader, &[leader]).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_grandchildren() {
    let h = Harness::new(allowed()).await;
    let id = h
        .enqueue(
            json!({"script": "echo $$; sh -c 'echo $$; sleep 100 & echo $!; sleep 100' & wait"}),
            once(),
        )
        .await;
    let pids: Vec<i32> = h.output_lines(id, 3).await.iter().map(|l| pid(l)).collect();
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");
    h.client.cancel(id).await.unwrap();
    let job = h.client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(job.state, JobState::Canceled);
    all_gone(pids[0], &pids).await;
    h.shutdown().await;
}

/// Env var that turns [`child_worker`] into a real worker on this database.
const CHILD_DB: &str = "ROTA_SHELL_TEST_CHILD_DB";

/// Not a test of its own: the worker process killed by
/// [`a_worker_killed_outright_takes_its_command_with_it`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper run in a child process"]
async fn child_worker() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let driver = SqliteDriver::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let client = Client::builder(Store::sqlite(driver))
        .config(fast_config().queue("default", 1))
        .raw_worker(KIND, ShellWorker::new(allowed()))
        .build()
        .unwrap();
    client.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_outright_takes_its_command_with_it() {
    if ShellWorker::new(allowed()).pdeathsig_wrapper().is_none() {
        eprintln!("setpriv with --pdeathsig not available; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rota.db").display());
    // The operator: no queues, no maintenance.
    let operator = Client::builder(Store::sqlite(
        SqliteDriver::open(&url, SqliteOptions::default())
            .await
            .unwrap(),
    ))
    .config(Config {
        maintenance: false,
        ..fast_config()
    })
    .build()
    .unwrap();
    let mut worker = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stop::child_worker", "--ignored", "--quiet"])
        .env(CHILD_DB, &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = operator
        .enqueue_many(vec![JobRequest::raw(
            KIND,
            json!({"script": "echo $$; exec sleep 100"}),
            once(),
        )])
        .await
        .unwrap()[0]
        .job
        .id;
    // Wait for the command's pid to show in the flushed output.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let out = operator.get(id).await.unwrap().output.unwrap_or_default();
        if out.ends_with('\n') {
            break pid(&out);
        }
        assert!(
            Instant::now() < deadline,
            "the child worker never ran the job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(alive(leader));
    worker.kill().unwrap(); // SIGKILL: no chance to clean up
    worker.wait().unwrap();
    all_gone(leader, &[leader]).await;
}
