//! Shared fixtures: a client with the shell worker on a temp database, and
//! process liveness checks through `/proc`.

use std::time::Duration;

use rota::drivers::sqlite::{SqliteDriver, SqliteOptions};
use rota::{Client, Config, EnqueueOpts, Job, JobRequest, Store};
use rota_shell::{KIND, ShellOptions, ShellWorker};
use tempfile::TempDir;

/// A started client serving the shell kind, with its database directory.
pub(crate) struct Harness {
    pub(crate) client: Client,
    _dir: TempDir,
}

/// Fast engine settings for tests.
pub(crate) fn fast_config() -> Config {
    Config {
        lease: Duration::from_millis(1500),
        heartbeat_interval: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        promote_interval: Duration::from_millis(50),
        rescue_interval: Duration::from_millis(200),
        leader_ttl: Duration::from_secs(2),
        cancel_grace: Duration::from_secs(5),
        ..Config::default()
    }
}

/// Shell options allowing shell jobs, with a short kill grace.
pub(crate) fn allowed() -> ShellOptions {
    ShellOptions {
        allowed: true,
        kill_grace: Duration::from_millis(500),
        default_timeout: None,
    }
}

impl Harness {
    pub(crate) async fn new(opts: ShellOptions) -> Self {
        Self::with_config(opts, fast_config()).await
    }

    pub(crate) async fn with_config(opts: ShellOptions, config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rota.db").display());
        let driver = SqliteDriver::open(&url, SqliteOptions::default())
            .await
            .unwrap();
        let client = Client::builder(Store::sqlite(driver))
            .config(config.queue("default", 4))
            .raw_worker(KIND, ShellWorker::new(opts))
            .build()
            .unwrap();
        client.start().await.unwrap();
        Self { client, _dir: dir }
    }

    /// Enqueues a shell job with these args.
    pub(crate) async fn enqueue(&self, args: serde_json::Value, opts: EnqueueOpts) -> i64 {
        let inserted = self
            .client
            .enqueue_many(vec![JobRequest::raw(KIND, args, opts)])
            .await
            .unwrap();
        inserted[0].job.id
    }

    /// Enqueues with one attempt and waits for the job to finish.
    pub(crate) async fn run(&self, args: serde_json::Value) -> Job {
        let id = self.enqueue(args, once()).await;
        self.client.wait(id, Duration::from_secs(30)).await.unwrap()
    }

    /// Waits until the running job's output has `lines` complete lines and
    /// returns them (output is flushed with heartbeats).
    pub(crate) async fn output_lines(&self, id: i64, lines: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = self
                .client
                .get(id)
                .await
                .unwrap()
                .output
                .unwrap_or_default();
            let got: Vec<String> = out.lines().map(str::to_owned).collect();
            if out.ends_with('\n') && got.len() >= lines {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} printed only {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn shutdown(self) {
        self.client.shutdown(Duration::from_secs(10)).await.unwrap();
    }
}

/// One attempt only.
pub(crate) fn once() -> EnqueueOpts {
    EnqueueOpts {
        max_attempts: Some(1),
        ..EnqueueOpts::default()
    }
}

/// `(state, pgrp)` of a process from `/proc/<pid>/stat`, if it exists.
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let pgrp = f.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether `pid` is a running (not dead, not zombie) process. A zombie is
/// dead; with no reaping init in a container it may linger.
pub(crate) fn alive(pid: i32) -> bool {
    let by_signal = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    by_signal && stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// Whether any running process belongs to process group `pgid`.
pub(crate) fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .any(|pid| stat(pid).is_some_and(|(state, g)| g == pgid && !matches!(state, 'Z' | 'X')))
}

/// Parses a pid line.
pub(crate) fn pid(line: &str) -> i32 {
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a pid: {line:?}"))
}
