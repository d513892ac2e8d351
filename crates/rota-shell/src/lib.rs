//! # rota-shell
//!
//! The built-in `shell` job kind of Rota: a job that runs a command on a
//! worker node, with its output, exit code and progress stored on the job.
//!
//! ```no_run
//! # async fn run() -> Result<(), rota::Error> {
//! use rota::{Client, Config, EnqueueOpts, JobRequest, Store};
//! use rota_shell::{KIND, ShellOptions, ShellWorker};
//!
//! let client = Client::builder(Store::open("sqlite://jobs.db").await?)
//!     .config(Config::default().queue("default", 4))
//!     .raw_worker(KIND, ShellWorker::new(ShellOptions { allowed: true, ..Default::default() }))
//!     .build()?;
//! client.start().await?;
//! let args = serde_json::json!({"command": ["pg_dump", "-Fc", "app"], "timeout": "30m"});
//! client.enqueue_many(vec![JobRequest::raw(KIND, args, EnqueueOpts::default())]).await?;
//! # Ok(()) }
//! ```
//!
//! ## Arguments
//!
//! See [`ShellArgs`]: either `command` (an argv executed directly — no
//! shell, so nothing in it is interpolated) or `script` (run explicitly by
//! `/bin/sh -c`), plus optional `stdin`, `env`, `cwd`, `user` and
//! `timeout`. Invalid args fail the job at once (a fatal error naming the
//! field); servers check them before enqueueing with
//! [`ShellArgs::parse`] / [`ShellArgs::validate`].
//!
//! ## Environment
//!
//! The process does **not** inherit the worker's environment (which may
//! hold the worker's own secrets, such as its database URL). It gets:
//! `PATH` (the worker's, or a standard one), `LANG`, `LC_ALL`, `TZ` and
//! `TMPDIR` when the worker has them, `HOME`, `USER` and `LOGNAME` (of the
//! target `user` when one is given, else the worker's), `ROTA_JOB_ID` and
//! `ROTA_JOB_ATTEMPT`, and then the job's `env`, which overrides all of
//! these. Env values are never logged.
//!
//! ## Output, exit code and progress
//!
//! Standard output and standard error are read concurrently and appended,
//! chunk by chunk and interleaved as they arrive, to the job's output. The
//! runtime caps the stored output (head and tail kept, a cut marker between)
//! and flushes it with each heartbeat, so it is visible while the job runs.
//!
//! **Progress channel**: a line on standard output of the form
//!
//! ```text
//! ::progress:: {"done": 40, "total": 100}
//! ```
//!
//! (the prefix [`PROGRESS_PREFIX`] — note the single space — at the very
//! start of a line, followed by one JSON value) is a progress check-in: the
//! JSON is stored as the job's progress at once. The line also stays in the
//! output. Lines that are not valid JSON, or longer than 64 KiB, are not
//! progress. Check-ins arriving faster than the store takes them are
//! coalesced; the last one always gets through.
//!
//! The exit code is stored with the job (death by signal N records
//! `128 + N`, as shells do; a program that cannot be started records 127
//! when not found and 126 when not executable). Exit code 0 succeeds; any
//! other is a retryable error `exit code N`, retried per the job's policy.
//!
//! ## Timeouts, cancellation and the process group
//!
//! The process runs in a new process group. On timeout (the job's own
//! `timeout`, else [`ShellOptions::default_timeout`]) or when the job must
//! stop (cancel, the engine's attempt timeout, shutdown, lost lease) the
//! whole group gets SIGTERM, then after [`ShellOptions::kill_grace`]
//! SIGKILL, and the process is always reaped. The same happens to processes
//! the command leaves behind in its group when it exits (for example
//! `sleep 100 &`). Keep `kill_grace` within the client's
//! `Config::cancel_grace`: should the engine abort the handler first, the
//! group is SIGKILLed at once. A process that moves itself to another
//! session or group (`setsid`, daemons) escapes this, as it escapes any
//! shell; use cgroups or systemd units where that matters.
//!
//! ## When the worker dies
//!
//! A worker killed outright (SIGKILL, OOM) cannot signal anything. So that
//! its commands die with it, they are started through util-linux
//! `setpriv --pdeathsig KILL -- <argv>`, which sets the parent-death signal
//! (`PR_SET_PDEATHSIG`) to SIGKILL and then executes the command in place
//! (same pid, same group). `setpriv` is looked for on the worker's `PATH`
//! once, by [`ShellWorker::new`], and must support `--pdeathsig`
//! (util-linux ≥ 2.33); see [`ShellWorker::pdeathsig_wrapper`]. When it is
//! absent, commands run unwrapped (a warning is logged at construction) and
//! a worker killed with SIGKILL leaves its running commands behind; they
//! are then reparented to init and the jobs are rescued and retried by the
//! engine as usual.
//!
//! Limits: the signal fires when the parent *thread* that spawned the
//! process ends. Processes are spawned from Tokio runtime worker threads,
//! which live as long as the runtime, i.e. the worker process (do not run
//! the client on a runtime that is shut down while the process goes on).
//! The setting covers the started process itself, not processes it forks
//! (those are killed through the group in every case but a killed
//! worker); and the kernel clears it when a set-user-ID or file-capability
//! program is executed.

mod args;
mod process;
mod progress;
mod worker;

use std::time::Duration;

pub use args::{ShellArgs, ShellTimeout};
pub use progress::PROGRESS_PREFIX;
pub use worker::ShellWorker;

/// The job kind served by [`ShellWorker`].
pub const KIND: &str = "shell";

/// The error a node that does not allow shell jobs fails them with.
pub const DISABLED_MESSAGE: &str =
    "shell jobs are disabled on this node; start it with --allow-shell";

/// Settings of a [`ShellWorker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOptions {
    /// Whether this node runs shell jobs at all. Default `false`: every
    /// shell job claimed here fails with [`DISABLED_MESSAGE`].
    pub allowed: bool,
    /// Between SIGTERM and SIGKILL when a process group is stopped.
    /// Default 5 s.
    pub kill_grace: Duration,
    /// Time limit for jobs whose args carry no `timeout`. Default none.
    pub default_timeout: Option<Duration>,
}

impl Default for ShellOptions {
    fn default() -> Self {
        Self {
            allowed: false,
            kill_grace: Duration::from_secs(5),
            default_timeout: None,
        }
    }
}
