//! Harness: a temp dir with a SQLite file per test, the real `rota` binary,
//! servers and workers on free ports that are stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

/// The binary under test.
pub(crate) const ROTA: &str = env!("CARGO_BIN_EXE_rota");

/// A test's own directory and database.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `sqlite://DIR/rota.db`.
    pub(crate) fn db(&self) -> String {
        format!("sqlite://{}", self.path().join("rota.db").display())
    }

    /// A `rota` command run in this dir with no inherited `ROTA_*`
    /// settings (so the machine's environment cannot leak into a test).
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ROTA);
        c.args(args).current_dir(self.path()).kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("ROTA_") || k == "NO_COLOR" || k == "CLICOLOR_FORCE" || k == "RUST_LOG"
            {
                c.env_remove(k);
            }
        }
        c
    }

    /// Runs a `rota` command to completion.
    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.cmd(args)).await
    }

    pub(crate) async fn run_cmd(&self, mut c: Command) -> Out {
        let out = tokio::time::timeout(Duration::from_secs(120), c.stdin(Stdio::null()).output())
            .await
            .expect("rota command took over 2 minutes")
            .expect("run rota");
        Out {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `rota server` on a free loopback port with this sandbox's
    /// database and waits for `/healthz`.
    pub(crate) async fn server(&self, extra: &[&str]) -> Node {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["server", "--listen", &listen];
        args.extend_from_slice(extra);
        self.server_at(port, &args).await
    }

    /// Starts `rota server` with exactly `args` (which must make it listen
    /// on `port`) and waits for `/healthz` on 127.0.0.1:port.
    pub(crate) async fn server_at(&self, port: u16, args: &[&str]) -> Node {
        let db = self.db();
        let mut all: Vec<&str> = args.to_vec();
        if !args.contains(&"--database") {
            all.extend(["--database", &db]);
        }
        if !args.contains(&"--shutdown-grace") {
            all.extend(["--shutdown-grace", "2s"]);
        }
        let mut node = self.spawn(&all, &format!("server-{port}"));
        node.url = format!("http://127.0.0.1:{port}");
        node.wait_healthy().await;
        node
    }

    /// Starts `rota worker` with `args` (plus this sandbox's database).
    pub(crate) fn worker(&self, name: &str, args: &[&str]) -> Node {
        let db = self.db();
        let mut all = vec!["worker", "--database", &db, "--shutdown-grace", "2s"];
        all.extend_from_slice(args);
        self.spawn(&all, name)
    }

    fn spawn(&self, args: &[&str], name: &str) -> Node {
        let log = self.path().join(format!("{name}.log"));
        let out = self.path().join(format!("{name}.out"));
        let mut c = self.cmd(args);
        c.stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = c.spawn().expect("spawn rota");
        Node {
            child: Some(child),
            url: String::new(),
            log,
            out,
        }
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code(), 0, "rota failed: {self:#?}");
        &self.stdout
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A running server or worker process, stopped on drop.
pub(crate) struct Node {
    child: Option<Child>,
    /// Base URL (servers only).
    pub(crate) url: String,
    pub(crate) log: PathBuf,
    pub(crate) out: PathBuf,
}

impl Node {
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server never became healthy:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits up to `patience` for the exit.
    pub(crate) async fn terminate(mut self, patience: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        match tokio::time::timeout(patience, c.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = c.start_kill();
                panic!("no exit within {patience:?} of SIGTERM");
            }
        }
    }

    /// SIGKILL, and reap.
    pub(crate) async fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // Graceful first, so the node's shell children are stopped by
            // it; a stuck one is killed below by `kill_on_drop`.
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if matches!(c.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = c.start_kill();
        }
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` until it returns `Some`, or panics after `secs` with `what`.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids of live processes whose argv[0] is `program` (or ends in
/// `/program`) and whose arguments include `marker`.
pub(crate) fn processes_with(program: &str, marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_program = argv
            .first()
            .is_some_and(|a0| a0 == program || a0.ends_with(&format!("/{program}")));
        // Zombies have an empty cmdline and are skipped above.
        if is_program && argv.iter().skip(1).any(|a| a == marker) {
            pids.push(pid);
        }
    }
    pids
}

/// GET `url` as JSON.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.expect("JSON body")
}

/// A job's JSON via the CLI.
pub(crate) async fn show(sb: &Sandbox, server: &str, id: &str) -> Value {
    sb.run(&["job", "show", id, "--server", server, "-o", "json"])
        .await
        .json()
}
