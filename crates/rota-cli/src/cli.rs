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
    /// List, inspect and stop executions: groups of jobs run for an owner
    /// (over HTTP).
    #[command(subcommand)]
    Execution(ExecutionCommand),
    /// Create and control schedules: jobs fired on a cron rule or an
    /// interval, exactly once per fire across the cluster (over HTTP).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Subscribe URLs to job and execution status events; see their
    /// deliveries (over HTTP, admin key).
    #[command(subcommand)]
    Webhook(WebhookCommand),
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

/// What a job runs: a shell command (`-- COMMAND ARGS...` or `--script`),
/// or another kind with JSON args. Shared by `job submit` and `schedule
/// create`.
#[derive(Debug, Args)]
pub(crate) struct PayloadArgs {
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
}

/// `rota job submit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  rota job submit -- echo hello\n  rota job submit --wait \
    --timeout 10m --label region=eu -- pg_dump -Fc app\n  rota job submit --script 'tar czf \
    /tmp/x.tgz /srv && echo ok'\n  rota job submit --kind send_email --args '{\"to\": \"a@b.c\"}'"
)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub(crate) payload: PayloadArgs,
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

/// `--limit`, `--after`, `--all` of paged lists.
#[derive(Debug, Clone, Args)]
pub(crate) struct PageArgs {
    /// Page size, 1..=10000 [default: 50, or 1000 with --all].
    #[arg(short, long)]
    pub(crate) limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    #[arg(long, value_name = "CURSOR")]
    pub(crate) after: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "after")]
    pub(crate) all: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExecutionCommand {
    /// List executions, newest first, with their job counts.
    List(ExecutionListArgs),
    /// Show one execution: status, job counts, and its newest jobs (with
    /// -o json: the execution alone; see `execution jobs`).
    Show {
        /// Execution id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// List the jobs of an execution, newest first.
    Jobs {
        /// Execution id.
        id: i64,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Stop an execution: cancel every unfinished job of it (running ones
    /// are stopped and end canceled).
    Stop {
        /// Execution id.
        id: i64,
        /// Wait until its jobs have ended.
        #[arg(short, long)]
        wait: bool,
        /// Give up waiting after this long (exit 4; the stop goes on).
        #[arg(long, value_name = "DURATION", requires = "wait")]
        wait_timeout: Option<String>,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// `rota execution list`.
#[derive(Debug, Args)]
pub(crate) struct ExecutionListArgs {
    /// Owner type, e.g. replication.
    #[arg(long, value_name = "KIND")]
    pub(crate) owner_kind: Option<String>,
    /// Owner id, e.g. 42.
    #[arg(long, value_name = "ID")]
    pub(crate) owner_id: Option<String>,
    /// Statuses, comma-separated: running, succeeded, failed, canceled,
    /// error.
    #[arg(short, long)]
    pub(crate) status: Option<String>,
    /// Attribute filter K=V (repeatable; all must match).
    #[arg(long = "attr", value_name = "K=V")]
    pub(crate) attrs: Vec<String>,
    #[command(flatten)]
    pub(crate) page: PageArgs,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// A schedule's overlap policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Policy {
    /// One job per fire however many schedulers run (the default).
    Interval,
    /// Never two runs at once cluster-wide (see --on-overlap).
    Alone,
    /// One job per live node matching the job's labels, per fire.
    Common,
}

/// What an `alone` schedule does with a fire while a run is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOverlapArg {
    /// Record the fire as skipped (the default).
    Skip,
    /// Keep it due until the running one ends.
    Queue,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Create a schedule firing a shell job (`-- COMMAND ARGS...` or
    /// --script) or a job of another kind (--kind K --args JSON); prints
    /// its id.
    Create(Box<ScheduleCreateArgs>),
    /// Every schedule with its rule and next fire.
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Show one schedule: rule, job, next and last fire, average run time.
    Show {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Stop firing until resumed.
    Pause {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Fire again, from now on (fires missed while paused are not made
    /// up).
    Resume {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Fire now, once (a manual run; its overlap policy applies).
    Trigger {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Delete a schedule and its run history (its jobs stay).
    Delete {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Run history, newest fire first, with outcome and duration.
    Runs {
        /// Schedule id or name.
        schedule: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// `rota schedule create`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("rule").required(true).args(["cron", "every"])),
    after_help = "A SCHEDULE argument of the other subcommands is an id, or a name that is not \
    all digits.\n\nExamples:\n  rota schedule create tick --every 30s -- echo tick\n  rota \
    schedule create backup --cron '0 30 2 * * *' --tz Europe/Berlin --policy alone -- \
    /usr/local/bin/backup\n  rota schedule create report --cron '@daily' --kind report --args \
    '{\"day\": \"yesterday\"}'"
)]
pub(crate) struct ScheduleCreateArgs {
    /// Unique name: letters, digits, `_`, `-`, `.`, `:`.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) payload: PayloadArgs,
    /// Cron rule: 5 fields, or 6 with leading seconds (`*/5 * * * * *`),
    /// or `@hourly`, `@daily`, ...
    #[arg(long, value_name = "EXPR")]
    pub(crate) cron: Option<String>,
    /// Fixed interval instead of a cron rule, e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION")]
    pub(crate) every: Option<String>,
    /// IANA time zone of the cron rule, e.g. Europe/Berlin [default: UTC].
    #[arg(long = "tz", value_name = "ZONE")]
    pub(crate) timezone: Option<String>,
    /// Overlap policy [default: interval].
    #[arg(long, value_enum)]
    pub(crate) policy: Option<Policy>,
    /// With --policy alone: skip a fire due while a run is unfinished, or
    /// queue it [default: skip].
    #[arg(long, value_enum)]
    pub(crate) on_overlap: Option<OnOverlapArg>,
    /// Fires missed while no scheduler ran: none, latest, or all:N (the
    /// newest N of them) [default: latest].
    #[arg(long, value_name = "POLICY")]
    pub(crate) catch_up: Option<String>,
    /// Queue of the jobs [default: default].
    #[arg(short, long)]
    pub(crate) queue: Option<String>,
    /// Priority of the jobs, 0 (first) to 9 (last) [default: 0].
    #[arg(short, long)]
    pub(crate) priority: Option<i64>,
    /// Attempts per job.
    #[arg(long, value_name = "N")]
    pub(crate) max_attempts: Option<i64>,
    /// Time limit per attempt, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Node selector label (repeatable): only nodes with all of them run
    /// the jobs; with --policy common, every such node gets one.
    #[arg(long = "label", value_name = "K=V")]
    pub(crate) labels: Vec<String>,
    /// Queryable attribute of the jobs (repeatable).
    #[arg(long = "attr", value_name = "K=V")]
    pub(crate) attrs: Vec<String>,
    /// Wrap each fire's jobs in an execution of this owner type (with
    /// --owner-id).
    #[arg(long, value_name = "KIND", requires = "owner_id")]
    pub(crate) owner_kind: Option<String>,
    /// Owner id of those executions.
    #[arg(long, value_name = "ID", requires = "owner_kind")]
    pub(crate) owner_id: Option<String>,
    /// Back off while runs keep failing (server defaults: 1s doubling up
    /// to 1h, reset after 1h without failure); implied by --backoff-*.
    #[arg(long)]
    pub(crate) backoff: bool,
    /// Wait after the first failed run.
    #[arg(long, value_name = "DURATION")]
    pub(crate) backoff_initial: Option<String>,
    /// Longest backoff wait.
    #[arg(long, value_name = "DURATION")]
    pub(crate) backoff_max: Option<String>,
    /// After this long without a failure the backoff starts afresh
    /// (`never`: it does not).
    #[arg(long, value_name = "DURATION")]
    pub(crate) backoff_reset: Option<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Subscribe a URL to status events; prints the subscription id.
    /// Requests are signed: `Rota-Signature: t=<unix>,v1=<hex
    /// HMAC-SHA256(secret, "<t>.<body>")>`.
    Create(WebhookCreateArgs),
    /// Every subscription (never secrets).
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Remove a subscription and its deliveries.
    Delete {
        /// Webhook id.
        id: i64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Deliveries of a subscription, newest first, with their attempts.
    Deliveries {
        /// Webhook id.
        id: i64,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// `rota webhook create`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("signing").required(true).args(["secret", "secret_file"])),
    after_help = "Examples:\n  rota webhook create https://hooks.example/rota --event 'job.*' \
    --secret \"$SECRET\"\n  rota webhook create http://10.0.0.5/x --event job.failed,execution.* \
    --kind backup --secret-file /etc/rota/hook.secret"
)]
pub(crate) struct WebhookCreateArgs {
    /// Receiver URL (http:// or https://).
    pub(crate) url: String,
    /// Event pattern (repeatable or comma-separated): `job.*`,
    /// `job.succeeded`, `job.progress`, `execution.*`, `*` [default: every
    /// event].
    #[arg(long = "event", value_name = "PATTERN", value_delimiter = ',')]
    pub(crate) events: Vec<String>,
    /// Signing secret, 16..=1024 bytes [env: ROTA_WEBHOOK_SECRET].
    #[arg(
        long,
        env = "ROTA_WEBHOOK_SECRET",
        hide_env = true,
        hide_env_values = true
    )]
    pub(crate) secret: Option<String>,
    /// Read the signing secret from this file (`-`: standard input;
    /// trailing newlines dropped).
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,
    /// Only jobs of this kind (repeatable or comma-separated) [default:
    /// any].
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    pub(crate) kinds: Vec<String>,
    /// Only executions of this owner type (repeatable or comma-separated)
    /// [default: any].
    #[arg(long = "owner-kind", value_name = "KIND", value_delimiter = ',')]
    pub(crate) owner_kinds: Vec<String>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
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
        assert_eq!(s.payload.command, ["echo", "-n", "hi"]);
        let cli = Cli::try_parse_from(["rota", "job", "submit", "ls", "-l"]).unwrap();
        let Command::Job(JobCommand::Submit(s)) = cli.command else {
            panic!("not submit")
        };
        assert_eq!(s.payload.command, ["ls", "-l"]);
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
    /// Worker concurrency for processing. Each claim takes up to half of it
    /// (at most 1,000), so one batch is claimed while the other finishes;
    /// with no-op handlers it sets how many jobs a claim and a finish carry.
    #[arg(long, default_value_t = 1000)]
    pub(crate) concurrency: u32,
    /// Finished jobs to load first, to measure against a long history.
    #[arg(long, default_value_t = 0)]
    pub(crate) history: u64,
}
