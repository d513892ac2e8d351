//! Running one process in its own group: spawn, pump its pipes into the job
//! output, wait, and wind the whole group down (SIGTERM, grace, SIGKILL)
//! on timeout, cancellation or when the leader exits leaving others behind.

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rota::JobContext;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use crate::progress::ProgressScanner;

/// Read size for the child's pipes.
const READ_CHUNK: usize = 64 * 1024;
/// How often the group is checked for survivors while it winds down.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// How long the pipes are drained after the group is dead (a process that
/// left the group may still hold them).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// What to run, fully resolved.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Program and arguments (already wrapped with `setpriv` if used).
    pub(crate) argv: Vec<String>,
    /// The complete environment (the child inherits nothing else).
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
    /// uid and gid to switch to.
    pub(crate) creds: Option<(u32, u32)>,
    pub(crate) stdin: Option<String>,
    /// Own time limit.
    pub(crate) timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    pub(crate) kill_grace: Duration,
}

/// Why the process stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// It exited by itself.
    Exited,
    /// Its own timeout fired and it was terminated.
    TimedOut,
    /// The job was told to stop and it was terminated.
    Stopped,
}

/// A process that ran.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) why: Why,
}

/// Running failed before an exit status was known.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The process could not be started.
    Spawn(io::Error),
    /// Waiting for it failed (the group was killed).
    Wait(io::Error),
}

/// The shell-style exit code: the code, or 128 + signal number.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => -1,
    }
}

/// Runs `plan` to the end, appending its output to the job's.
pub(crate) async fn run(ctx: &JobContext, plan: Plan) -> Result<Finished, RunError> {
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(RunError::Spawn(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty argv",
        )));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .kill_on_drop(true)
        .stdin(if plan.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &plan.cwd {
        cmd.current_dir(cwd);
    }
    if let Some((uid, gid)) = plan.creds {
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        // Reaped already: cannot happen before the first wait.
        return Err(RunError::Wait(io::Error::other("child has no pid")));
    };
    let mut group = Group::new(Pid::from_raw(pid));
    tracing::debug!(pgid = pid, "process started");

    let (tx, rx) = watch::channel(None);
    let io = pump_all(
        ctx,
        child.stdin.take().zip(plan.stdin),
        child.stdout.take(),
        child.stderr.take(),
        tx,
        rx,
    );
    tokio::pin!(io);
    let mut io_done = false;
    let deadline = plan.timeout.map(|t| Instant::now() + t);
    let timer = async move {
        match deadline {
            Some(d) => sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timer);

    let (why, status) = loop {
        tokio::select! {
            _ = &mut io, if !io_done => io_done = true,
            s = child.wait() => break (Why::Exited, Some(s.map_err(RunError::Wait)?)),
            _ = &mut timer => break (Why::TimedOut, None),
            _ = ctx.cancelled() => break (Why::Stopped, None),
        }
    };
    let status = group
        .wind_down(&mut child, status, plan.kill_grace, &mut io, &mut io_done)
        .await
        .map_err(RunError::Wait)?;
    if !io_done && tokio::time::timeout(DRAIN_LIMIT, &mut io).await.is_err() {
        tracing::warn!("output pipes still open after the process group ended; stopped reading");
    }
    Ok(Finished { status, why })
}

/// A process group that is SIGKILLed when dropped unless it was wound down
/// (the handler may be aborted by the engine mid-way).
struct Group {
    pgid: Pid,
    armed: bool,
}

impl Group {
    fn new(pgid: Pid) -> Self {
        Self { pgid, armed: true }
    }

    fn signal(&self, sig: Signal) {
        match killpg(self.pgid, sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = %self.pgid, signal = %sig, error = %e, "cannot signal process group")
            }
        }
    }

    /// Whether any member of the group is still running (zombies, which
    /// nobody may reap in a container without an init, do not count).
    fn alive(&self) -> bool {
        match killpg(self.pgid, None) {
            Err(Errno::ESRCH) => false,
            _ => live_member(self.pgid.as_raw()).unwrap_or(true),
        }
    }

    /// Ends the group: SIGTERM to every member, up to `grace` for the
    /// leader to exit and the others to go, then SIGKILL. Skipped when the
    /// leader already exited alone. Always reaps the leader.
    async fn wind_down<F: Future<Output = ()>>(
        &mut self,
        child: &mut Child,
        mut status: Option<ExitStatus>,
        grace: Duration,
        io: &mut std::pin::Pin<&mut F>,
        io_done: &mut bool,
    ) -> io::Result<ExitStatus> {
        if status.is_none() || self.alive() {
            if status.is_some() {
                tracing::debug!(pgid = %self.pgid, "process exited leaving others in its group; terminating them");
            }
            self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            loop {
                if status.is_some() && !self.alive() {
                    break;
                }
                tokio::select! {
                    _ = io.as_mut(), if !*io_done => *io_done = true,
                    s = child.wait(), if status.is_none() => status = Some(s?),
                    _ = sleep(GROUP_POLL), if status.is_some() => {}
                    _ = sleep_until(deadline) => break,
                }
            }
            if status.is_none() || self.alive() {
                tracing::debug!(pgid = %self.pgid, "grace over; killing process group");
                self.signal(Signal::SIGKILL);
            }
        }
        let status = match status {
            Some(s) => s,
            None => child.wait().await?,
        };
        self.armed = false;
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            self.signal(Signal::SIGKILL);
        }
    }
}

/// Whether `/proc` lists a non-zombie process in group `pgid`; `None` when
/// `/proc` cannot be read.
fn live_member(pgid: i32) -> Option<bool> {
    let dir = std::fs::read_dir("/proc").ok()?;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may contain anything.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid) && !matches!(state, Some("Z" | "X")) {
            return Some(true);
        }
    }
    Some(false)
}

/// Feeds stdin, pumps stdout and stderr into the output, and reports
/// progress lines, until the pipes close.
async fn pump_all(
    ctx: &JobContext,
    stdin: Option<(ChildStdin, String)>,
    stdout: Option<ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    tx: watch::Sender<Option<serde_json::Value>>,
    rx: watch::Receiver<Option<serde_json::Value>>,
) {
    tokio::join!(
        feed_stdin(stdin),
        pump(ctx, stdout, Some(tx)),
        pump(ctx, stderr, None),
        report_progress(ctx, rx),
    );
}

async fn feed_stdin(stdin: Option<(ChildStdin, String)>) {
    let Some((mut pipe, data)) = stdin else {
        return;
    };
    if let Err(e) = pipe.write_all(data.as_bytes()).await {
        // Typically EPIPE: the process did not read all of it.
        tracing::debug!(error = %e, "stdin not fully written");
    }
    drop(pipe);
}

/// Copies a pipe into the job output. With `progress`, scans it for
/// progress lines too.
async fn pump<R: AsyncRead + Unpin>(
    ctx: &JobContext,
    pipe: Option<R>,
    progress: Option<watch::Sender<Option<serde_json::Value>>>,
) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut scanner = ProgressScanner::default();
    let mut found = Vec::new();
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                let chunk = &buf[..n];
                ctx.write_output(chunk);
                if let Some(tx) = &progress {
                    scanner.feed(chunk, &mut found);
                    if let Some(last) = found.drain(..).next_back() {
                        tx.send_replace(Some(last));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the process output failed");
                break;
            }
        }
    }
    if let (Some(tx), Some(last)) = (&progress, scanner.finish()) {
        tx.send_replace(Some(last));
    }
}

/// Checks in the latest progress; values arriving faster than check-ins
/// complete are coalesced (the last one always gets through).
async fn report_progress(ctx: &JobContext, mut rx: watch::Receiver<Option<serde_json::Value>>) {
    let mut sent: Option<serde_json::Value> = None;
    loop {
        let closed = rx.changed().await.is_err();
        let latest = rx.borrow_and_update().clone();
        if latest.is_some() && latest != sent {
            if let Some(v) = latest.clone() {
                match ctx.checkin(v).await {
                    Ok(true) => {}
                    Ok(false) => tracing::debug!("progress check-in: lease no longer held"),
                    Err(e) => tracing::warn!(error = %e, "progress check-in failed"),
                }
            }
            sent = latest;
        }
        if closed {
            break;
        }
    }
}

/// Finds `setpriv` on the worker's `PATH` and checks that it supports
/// `--pdeathsig` (util-linux ≥ 2.33).
pub(crate) fn find_setpriv() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("setpriv"))
        .find(|p| is_executable(p))?;
    let ok = std::process::Command::new(&found)
        .args(["--pdeathsig", "KILL", "--"])
        .arg(&found)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(found)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn own_group_has_a_live_member() {
        let pgid = nix::unistd::getpgrp().as_raw();
        assert_eq!(live_member(pgid), Some(true));
        assert_eq!(live_member(i32::MAX), Some(false));
    }
}
