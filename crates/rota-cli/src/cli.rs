//! The command line, as clap derive types.
//!
//! Flags that are also settings (`--database`, `--listen`, `--server`, ...)
//! are plain `Option`s here, without clap's `env`: the settings layers
//! (defaults < config file < `ROTA_*` environment < flags) are merged in
//! [`crate::config`], which can then say which layer a bad value came from.
//! Each such flag is named after its config key (`--shutdown-grace` is key
//! `shutdown_grace`, env `ROTA_SHUTDOWN_GRACE`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Flags;

/// Rota: durable jobs on SQLite or PostgreSQL — server, worker nodes and CLI.
///
/// Settings come from defaults, then the TOML file given with --config,
/// then ROTA_* environment variables (ROTA_DATABASE, ROTA_LISTEN,
/// ROTA_SERVER, ROTA_API_KEY, ...), then flags; later layers win.
///
/// Exit codes: 0 success, 1 failure (job failed, API refused), 2 usage or
/// invalid input, 3 job canceled, 4 timed out waiting, 5 server or store
/// unreachable.
#[derive(Debug, Parser)]
#[command(name = "rota", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// TOML config file; its keys are the long flag names with `_` for `-`.
    #[arg(long, global = true, env = "ROTA_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Output format: human tables, or JSON on stdout (logs stay on stderr).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,

    #[command(flatten)]
    pub(crate) color: colorchoice_clap::Color,

    /// Log filter (tracing env-filter syntax, e.g. `info` or `rota=debug`);
    /// env ROTA_LOG. Default: info for server and worker, warn otherwise.
    #[arg(long, global = true, value_name = "FILTER")]
    pub(crate) log: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable tables and messages.
    Table,
    /// JSON documents on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP API, workers and leader maintenance in one process.
    Server(ServerArgs),
    /// Join the cluster as a worker node (no HTTP).
    Worker(WorkerArgs),
    /// Submit, inspect and control jobs (over HTTP).
    #[command(subcommand)]
    Job(JobCommand),
    /// List, pause and resume queues (over HTTP).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// List and drain worker nodes (over HTTP).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Manage API keys (directly in the database, so the first key can be
    /// made before a server listens publicly).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Apply or show database migrations.
    Migrate(MigrateArgs),
    /// Benchmark a store: bulk and single enqueue, processing, latency.
    Bench(BenchArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `--database`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbArgs {
    /// Store URL: sqlite://PATH or postgres://... (`?rota_schema=S` puts
    /// Rota's tables in schema S) [env: ROTA_DATABASE] [default:
    /// sqlite://rota.db]
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) database: Option<String>,
}

impl DbArgs {
    pub(crate) fn flags(&self) -> Flags {
        let mut f = Flags::default();
        f.set("database", &self.database);
        f
    }
}

/// `--server` and `--api-key`, for commands that talk to the API.
#[derive(Debug, Clone, Args)]
pub(crate) struct HttpArgs {
    /// Server URL [env: ROTA_SERVER] [default: http://127.0.0.1:7070]
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// API key, sent as a Bearer token [env: ROTA_API_KEY]
    #[arg(long, value_name = "KEY")]
    pub(crate) api_key: Option<String>,
}

impl HttpArgs {
    pub(crate) fn flags(&self) -> Flags {
        let mut f = Flags::default();
        f.set("server", &self.server);
        f.set("api_key", &self.api_key);
        f
    }
}

/// What a node runs: shared by `server` and `worker`.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Queues to work, NAME[=CONCURRENCY],... (concurrency defaults to 10;
    /// an empty value works no queue) [env: ROTA_QUEUES] [default:
    /// default=10]
    #[arg(long, value_name = "LIST")]
    pub(crate) queues: Option<String>,
    /// This node's labels, KEY=VALUE,...; jobs with a label selector run
    /// only on nodes having all its labels [env: ROTA_LABELS]
    #[arg(long, value_name = "LIST")]
    pub(crate) labels: Option<String>,
    /// Node id [env: ROTA_NODE_ID] [default: HOST-PID-RANDOM]
    #[arg(long, value_name = "ID")]
    pub(crate) node_id: Option<String>,
    /// Run shell jobs on this node [env: ROTA_ALLOW_SHELL]
    #[arg(long, conflicts_with = "disable_shell")]
    pub(crate) allow_shell: bool,
    /// Never run shell jobs on this node (shell jobs it claims fail)
    #[arg(long)]
    pub(crate) disable_shell: bool,
    /// On SIGINT/SIGTERM, how long running jobs get to finish before they
    /// are stopped and handed back [env: ROTA_SHUTDOWN_GRACE] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub(crate) shutdown_grace: Option<String>,
    /// How long a claimed job stays claimed without a heartbeat: a dead
    /// node's jobs are rescued after this [env: ROTA_LEASE] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub(crate) lease: Option<String>,
    /// Stored output per job, e.g. 1MiB (head and tail kept, the cut
    /// marked) [env: ROTA_OUTPUT_CAP] [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub(crate) output_cap: Option<String>,
    /// Time limit of shell jobs that set none [env: ROTA_SHELL_TIMEOUT]
    #[arg(long, value_name = "DURATION")]
    pub(crate) shell_timeout: Option<String>,
    /// Between SIGTERM and SIGKILL when a shell job is stopped [env:
    /// ROTA_SHELL_KILL_GRACE] [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub(crate) shell_kill_grace: Option<String>,
}

impl NodeArgs {
    pub(crate) fn flags(&self) -> Flags {
        let mut f = self.db.flags();
        f.set("queues", &self.queues);
        f.set("labels", &self.labels);
        f.set("node_id", &self.node_id);
        if self.allow_shell {
            f.set_bool("allow_shell", true);
        }
        if self.disable_shell {
            f.set_bool("allow_shell", false);
        }
        f.set("shutdown_grace", &self.shutdown_grace);
        f.set("lease", &self.lease);
        f.set("output_cap", &self.output_cap);
        f.set("shell_timeout", &self.shell_timeout);
        f.set("shell_kill_grace", &self.shell_kill_grace);
        f
    }
}

/// `rota server`.
#[derive(Debug, Args)]
#[command(
    after_help = "Shell jobs run when the server listens on loopback only, unless \
    --disable-shell (elsewhere only with --allow-shell). Listening beyond loopback needs at \
    least one API key in the store (rota key create); once any key exists, every request but \
    /healthz and /readyz needs one."
)]
pub(crate) struct ServerArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// Address to listen on, HOST:PORT [env: ROTA_LISTEN] [default:
    /// 127.0.0.1:7070]
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Largest request body, e.g. 1MiB [env: ROTA_BODY_LIMIT] [default:
    /// 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub(crate) body_limit: Option<String>,
    /// Accept jobs of kinds this server has no worker for (other nodes run
    /// them) [env: ROTA_ACCEPT_UNKNOWN_KINDS]
    #[arg(long)]
    pub(crate) accept_unknown_kinds: bool,
}

impl ServerArgs {
    pub(crate) fn flags(&self) -> Flags {
        let mut f = self.node.flags();
        f.set("listen", &self.listen);
        f.set("body_limit", &self.body_limit);
        if self.accept_unknown_kinds {
            f.set_bool("accept_unknown_kinds", true);
        }
        f
    }
}

/// `rota worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Submit a shell job (`-- COMMAND ARGS...` or --script) or a job of
    /// another kind (--kind K --args JSON); prints the job id.
    Submit(Box<SubmitArgs>),
    /// List jobs, newest first.
    List(ListArgs),
    /// Show one job.
    Show {
        /// Job id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Print a job's stored output.
    Logs {
        /// Job id.
        id: i64,
        /// Keep streaming new output until the job finishes (table output
        /// only; with -o json the stored output is printed once).
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Cancel a job (a running one is stopped and ends canceled).
    Cancel {
        /// Job id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Run a job again now (finished jobs start with fresh attempts).
    Retry {
        /// Job id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Wait until jobs finish; exit 0 only if all succeeded.
    Wait(WaitArgs),
    /// Delete a finished job.
    Delete {
        /// Job id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// `rota job submit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  rota job submit -- echo hello\n  rota job submit --wait \
    --timeout 10m --label region=eu -- pg_dump -Fc app\n  rota job submit --script 'tar czf \
    /tmp/x.tgz /srv && echo ok'\n  rota job submit --kind send_email --args '{\"to\": \"a@b.c\"}'"
)]
pub(crate) struct SubmitArgs {
    /// The program and its arguments, run directly (no shell).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        conflicts_with_all = ["script", "kind"]
    )]
    pub(crate) command: Vec<String>,
    /// A script run by /bin/sh -c.
    #[arg(long, conflicts_with = "kind")]
    pub(crate) script: Option<String>,
    /// File whose contents are the command's standard input (`-`: this
    /// process's standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "kind")]
    pub(crate) stdin: Option<PathBuf>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "K=V", conflicts_with = "kind")]
    pub(crate) env: Vec<String>,
    /// Absolute working directory of the command.
    #[arg(long, value_name = "DIR", conflicts_with = "kind")]
    pub(crate) cwd: Option<String>,
    /// Run the command as this user (the node must run as root).
    #[arg(long, value_name = "USER", conflicts_with = "kind")]
    pub(crate) user: Option<String>,
    /// Job kind other than shell.
    #[arg(long, requires = "args")]
    pub(crate) kind: Option<String>,
    /// Job args as JSON (`@FILE` reads a file), with --kind.
    #[arg(long, value_name = "JSON", requires = "kind")]
    pub(crate) args: Option<String>,
    /// Queue [default: default].
    #[arg(short, long)]
    pub(crate) queue: Option<String>,
    /// Priority 0 (first) to 9 (last) [default: 0].
    #[arg(short, long)]
    pub(crate) priority: Option<i64>,
    /// Run at this RFC 3339 time, e.g. 2030-01-02T03:04:05Z.
    #[arg(long, value_name = "TIME", conflicts_with = "delay")]
    pub(crate) at: Option<String>,
    /// Run after this delay, e.g. 10m.
    #[arg(long = "in", value_name = "DURATION")]
    pub(crate) delay: Option<String>,
    /// Attempts allowed.
    #[arg(long, value_name = "N")]
    pub(crate) max_attempts: Option<i64>,
    /// Time limit per attempt, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// At most one unfinished job carries this key.
    #[arg(long, value_name = "KEY")]
    pub(crate) unique: Option<String>,
    /// Node selector label (repeatable): only nodes with all of them run it.
    #[arg(long = "label", value_name = "K=V")]
    pub(crate) labels: Vec<String>,
    /// Queryable attribute (repeatable).
    #[arg(long = "attr", value_name = "K=V")]
    pub(crate) attrs: Vec<String>,
    /// Wait for the job, print its output, exit with its outcome.
    #[arg(short, long)]
    pub(crate) wait: bool,
    /// Give up waiting after this long (exit 4).
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub(crate) wait_timeout: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// `rota job list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// States, comma-separated: scheduled, available, running, retrying,
    /// succeeded, failed, canceled.
    #[arg(short, long)]
    pub(crate) state: Option<String>,
    /// Queue.
    #[arg(short, long)]
    pub(crate) queue: Option<String>,
    /// Kind.
    #[arg(short, long)]
    pub(crate) kind: Option<String>,
    /// Attribute filter K=V (repeatable; all must match).
    #[arg(long = "attr", value_name = "K=V")]
    pub(crate) attrs: Vec<String>,
    /// Page size, 1..=10000 [default: 50, or 1000 with --all].
    #[arg(short, long)]
    pub(crate) limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    #[arg(long, value_name = "CURSOR")]
    pub(crate) after: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "after")]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// `rota job wait`.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Job ids.
    #[arg(required = true)]
    pub(crate) ids: Vec<i64>,
    /// Give up after this long (exit 4), e.g. 10m.
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Every queue with its job counts.
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Stop every node claiming from a queue.
    Pause {
        /// Queue name.
        name: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Resume a paused queue.
    Resume {
        /// Queue name.
        name: String,
        #[command(flatten)]
        http: HttpArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Nodes with labels, queues, heartbeat age and running jobs.
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Ask a node to stop claiming new work (its running jobs finish).
    Drain {
        /// Node id.
        id: String,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// A key scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scope {
    /// Read-only routes.
    Read,
    /// Read, and mutate jobs and queues.
    Write,
    /// Everything, including keys and node drain.
    Admin,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key; its token is printed once, on stdout.
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        scope: Scope,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Every key (never secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key: it authenticates nothing from then on.
    Revoke {
        /// Key id (as listed).
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `rota migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// What to do [default: up].
    #[command(subcommand)]
    pub(crate) action: Option<MigrateAction>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// Show which migrations are applied (changes nothing).
    Status,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn submit_takes_the_command_after_options() {
        let cli =
            Cli::try_parse_from(["rota", "job", "submit", "--wait", "--", "echo", "-n", "hi"])
                .unwrap();
        let Command::Job(JobCommand::Submit(s)) = cli.command else {
            panic!("not submit")
        };
        assert!(s.wait);
        assert_eq!(s.command, ["echo", "-n", "hi"]);
        let cli = Cli::try_parse_from(["rota", "job", "submit", "ls", "-l"]).unwrap();
        let Command::Job(JobCommand::Submit(s)) = cli.command else {
            panic!("not submit")
        };
        assert_eq!(s.command, ["ls", "-l"]);
        assert!(Cli::try_parse_from(["rota", "job", "submit", "--kind", "k", "--", "ls"]).is_err());
        assert!(Cli::try_parse_from(["rota", "job", "submit", "--at", "x", "--in", "1m"]).is_err());
    }
}

/// `rota bench`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Jobs for bulk enqueue and processing.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) jobs: u64,
    /// Jobs for sequential single enqueue.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) single: u64,
    /// Jobs for the latency phase.
    #[arg(long, default_value_t = 200)]
    pub(crate) latency: u64,
    /// Phases to run, comma-separated: bulk,single,process,latency.
    #[arg(long, default_value = "bulk,single,process,latency")]
    pub(crate) phases: String,
    /// Worker concurrency for processing.
    #[arg(long, default_value_t = 100)]
    pub(crate) concurrency: u32,
}
