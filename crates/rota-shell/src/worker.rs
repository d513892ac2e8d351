//! The [`ShellWorker`]: turns a job's args into a process plan, runs it and
//! maps how it ended to the job's outcome.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rota::{CancelReason, JobContext, JobError, JobOutcome, JobResult, RawWorker};

use crate::process::{self, Finished, Plan, RunError, Why};
use crate::{DISABLED_MESSAGE, ShellArgs, ShellOptions};

/// `PATH` given to commands when the worker itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Worker variables passed through to commands when set.
const PASSTHROUGH_ENV: [&str; 4] = ["LANG", "LC_ALL", "TZ", "TMPDIR"];

/// Runs `shell` jobs (see the crate docs). Register it with
/// `ClientBuilder::raw_worker(KIND, ShellWorker::new(..))`.
#[derive(Debug, Clone)]
pub struct ShellWorker {
    opts: ShellOptions,
    setpriv: Option<PathBuf>,
}

impl ShellWorker {
    /// A worker with these options. Looks for `setpriv` on `PATH` once
    /// (runs it briefly to check it supports `--pdeathsig`).
    pub fn new(opts: ShellOptions) -> Self {
        let setpriv = if opts.allowed {
            process::find_setpriv()
        } else {
            None
        };
        match &setpriv {
            Some(p) => {
                tracing::debug!(setpriv = %p.display(), "shell jobs die with the worker (pdeathsig)")
            }
            None if opts.allowed => tracing::warn!(
                "setpriv with --pdeathsig not found on PATH: commands of shell jobs may outlive a worker that is killed outright"
            ),
            None => {}
        }
        Self { opts, setpriv }
    }

    /// The options it was built with.
    pub fn options(&self) -> &ShellOptions {
        &self.opts
    }

    /// The `setpriv` commands are wrapped with to set the parent-death
    /// signal, if one was found (always `None` on a node that does not
    /// allow shell jobs).
    pub fn pdeathsig_wrapper(&self) -> Option<&Path> {
        self.setpriv.as_deref()
    }

    async fn plan(&self, ctx: &JobContext, args: ShellArgs) -> Result<Plan, JobError> {
        let timeout = args
            .timeout_duration()
            .map_err(|e| JobError::fatal(format!("bad shell job args: {e}")))?
            .or(self.opts.default_timeout);
        let account = match &args.user {
            Some(name) => Some(lookup_user(name).await?),
            None => None,
        };
        let mut argv = Vec::new();
        if let Some(setpriv) = &self.setpriv {
            argv.push(setpriv.to_string_lossy().into_owned());
            argv.extend(["--pdeathsig", "KILL", "--"].map(String::from));
        }
        match (args.command, args.script) {
            (Some(command), _) => argv.extend(command),
            (None, Some(script)) => argv.extend(["/bin/sh".to_owned(), "-c".to_owned(), script]),
            (None, None) => return Err(JobError::fatal("bad shell job args: no command")),
        }
        Ok(Plan {
            argv,
            env: environment(ctx, account.as_ref(), args.env),
            cwd: args.cwd,
            creds: account.as_ref().map(|a| (a.uid, a.gid)),
            stdin: args.stdin,
            timeout,
            kill_grace: self.opts.kill_grace,
        })
    }
}

#[rota::async_trait]
impl RawWorker for ShellWorker {
    async fn work_raw(&self, ctx: &JobContext, args: serde_json::Value) -> JobResult {
        if !self.opts.allowed {
            return Err(JobError::fatal(DISABLED_MESSAGE));
        }
        let args = ShellArgs::parse(&args)
            .map_err(|e| JobError::fatal(format!("bad shell job args: {e}")))?;
        let env_names: Vec<&str> = args.env.keys().map(String::as_str).collect();
        tracing::debug!(
            mode = if args.script.is_some() { "script" } else { "command" },
            program = args.command.as_ref().and_then(|c| c.first()).map(String::as_str).unwrap_or("/bin/sh"),
            env = ?env_names,
            user = args.user.as_deref(),
            "starting shell job"
        );
        let plan = self.plan(ctx, args).await?;
        if ctx.is_cancelled() {
            // Told to stop before anything started (e.g. during a user lookup).
            return stopped(ctx);
        }
        let timeout = plan.timeout;
        let program = plan
            .argv
            .get(if self.setpriv.is_some() { 4 } else { 0 })
            .cloned();
        let cwd = plan.cwd.clone();
        match process::run(ctx, plan).await {
            Ok(Finished { status, why }) => {
                let code = process::exit_code(status);
                ctx.set_exit_code(code);
                outcome(ctx, code, status.signal(), why, timeout)
            }
            Err(RunError::Spawn(e)) => {
                let code = match e.kind() {
                    std::io::ErrorKind::NotFound => Some(127),
                    std::io::ErrorKind::PermissionDenied => Some(126),
                    _ => None,
                };
                if let Some(code) = code {
                    ctx.set_exit_code(code);
                }
                let place = cwd.map(|c| format!(" in {c}")).unwrap_or_default();
                Err(JobError::retry(format!(
                    "cannot start {}{place}: {e}",
                    program.as_deref().unwrap_or("the command")
                )))
            }
            Err(RunError::Wait(e)) => Err(JobError::retry(format!(
                "waiting for the process failed: {e}"
            ))),
        }
    }
}

/// Maps how the process ended to the job's outcome.
fn outcome(
    ctx: &JobContext,
    code: i32,
    signal: Option<i32>,
    why: Why,
    timeout: Option<Duration>,
) -> JobResult {
    match why {
        Why::Exited if code == 0 => Ok(JobOutcome::Done),
        Why::Exited => Err(JobError::retry(match signal {
            Some(sig) => format!("exit code {code} (killed by signal {sig})"),
            None => format!("exit code {code}"),
        })),
        Why::TimedOut => Err(JobError::retry(format!(
            "timed out after {}",
            timeout.map(|t| format!("{t:?}")).unwrap_or_default()
        ))),
        Why::Stopped => stopped(ctx),
    }
}

/// The outcome when the job was told to stop: a retryable timeout when the
/// engine's attempt timeout fired, else a cancel (the engine records
/// shutdown and lost leases by their own reason).
fn stopped(ctx: &JobContext) -> JobResult {
    match ctx.cancel_reason() {
        Some(CancelReason::Timeout) => {
            Err(JobError::retry("timed out (the job's attempt timeout)"))
        }
        _ => Ok(JobOutcome::Cancel("canceled".to_owned())),
    }
}

/// A user to run as.
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

async fn lookup_user(name: &str) -> Result<Account, JobError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(JobError::fatal(format!(
            "`user` is only allowed when the worker runs as root; this worker runs as uid {euid}"
        )));
    }
    let owned = name.to_owned();
    let found = tokio::task::spawn_blocking(move || nix::unistd::User::from_name(&owned))
        .await
        .map_err(|e| JobError::retry(format!("user lookup failed: {e}")))?
        .map_err(|e| JobError::retry(format!("user lookup of {name:?} failed: {e}")))?;
    let user =
        found.ok_or_else(|| JobError::fatal(format!("no such user {name:?} on this node")))?;
    Ok(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir.to_string_lossy().into_owned(),
    })
}

/// The complete environment of the process (see the crate docs).
fn environment(
    ctx: &JobContext,
    account: Option<&Account>,
    job_env: BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_owned(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()),
    );
    for name in PASSTHROUGH_ENV {
        if let Ok(v) = std::env::var(name) {
            env.insert(name.to_owned(), v);
        }
    }
    match account {
        Some(a) => {
            env.insert("HOME".to_owned(), a.home.clone());
            env.insert("USER".to_owned(), a.name.clone());
            env.insert("LOGNAME".to_owned(), a.name.clone());
        }
        None => {
            for name in ["HOME", "USER", "LOGNAME"] {
                if let Ok(v) = std::env::var(name) {
                    env.insert(name.to_owned(), v);
                }
            }
        }
    }
    env.insert("ROTA_JOB_ID".to_owned(), ctx.id().to_string());
    env.insert("ROTA_JOB_ATTEMPT".to_owned(), ctx.attempt().to_string());
    env.extend(job_env);
    env.into_iter().collect()
}
