//! One module per command group; [`run`] dispatches.

use anyhow::Context as _;
use std::io::IsTerminal as _;

use serde::de::DeserializeOwned;

use crate::cli::{
    Cli, Command, ExecutionCommand, Format, JobCommand, KeyCommand, NodeCommand, PageArgs,
    QueueCommand, ScheduleCommand, WebhookCommand,
};
use crate::config::{Config, Flags};
use crate::exit::Exit;
use crate::http::Api;

mod bench;
mod execution;
mod job;
mod key;
mod migrate;
mod node;
mod queue;
mod schedule;
mod server;
mod webhook;
mod worker;

/// What every command gets: the merged settings and the output format.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) cfg: Config,
    pub(crate) format: Format,
}

impl Ctx {
    /// An API client from `server` and `api_key`.
    pub(crate) fn api(&self) -> anyhow::Result<Api> {
        Api::new(self.cfg.server()?, self.cfg.api_key()?)
    }
}

/// Page size of `--all`.
const ALL_PAGE: u32 = 1000;
/// Page size otherwise.
const DEFAULT_PAGE: u32 = 50;

/// Fetches a paged list at `path?query&limit=..&after=..`: one page, or
/// every page with `--all`. `split` takes a page apart into its items and
/// its `next` cursor; returns the items and the cursor after them.
pub(crate) async fn fetch_pages<P: DeserializeOwned, I>(
    api: &Api,
    path: &str,
    query: Vec<(String, String)>,
    page: &PageArgs,
    split: impl Fn(P) -> (Vec<I>, Option<String>),
) -> anyhow::Result<(Vec<I>, Option<String>)> {
    let limit = page
        .limit
        .unwrap_or(if page.all { ALL_PAGE } else { DEFAULT_PAGE });
    let mut after = page.after.clone();
    let mut items = Vec::new();
    loop {
        let mut q = query.clone();
        q.push(("limit".to_owned(), limit.to_string()));
        if let Some(c) = &after {
            q.push(("after".to_owned(), c.clone()));
        }
        let (batch, next) = split(api.get(path, &q).await?);
        items.extend(batch);
        match next {
            Some(n) if page.all => after = Some(n),
            other => return Ok((items, other)),
        }
    }
}

/// The flags of the chosen command that are settings.
fn flags(command: &Command) -> Flags {
    match command {
        Command::Server(a) => a.flags(),
        Command::Worker(a) => a.node.flags(),
        Command::Job(j) => match j {
            JobCommand::Submit(a) => a.http.flags(),
            JobCommand::List(a) => a.http.flags(),
            JobCommand::Wait(a) => a.http.flags(),
            JobCommand::Show { http, .. }
            | JobCommand::Logs { http, .. }
            | JobCommand::Cancel { http, .. }
            | JobCommand::Retry { http, .. }
            | JobCommand::Delete { http, .. } => http.flags(),
        },
        Command::Queue(q) => match q {
            QueueCommand::List { http }
            | QueueCommand::Pause { http, .. }
            | QueueCommand::Resume { http, .. } => http.flags(),
        },
        Command::Node(n) => match n {
            NodeCommand::List { http } | NodeCommand::Drain { http, .. } => http.flags(),
        },
        Command::Execution(e) => match e {
            ExecutionCommand::List(a) => a.http.flags(),
            ExecutionCommand::Show { http, .. }
            | ExecutionCommand::Jobs { http, .. }
            | ExecutionCommand::Stop { http, .. } => http.flags(),
        },
        Command::Schedule(s) => match s {
            ScheduleCommand::Create(a) => a.http.flags(),
            ScheduleCommand::List { http }
            | ScheduleCommand::Show { http, .. }
            | ScheduleCommand::Pause { http, .. }
            | ScheduleCommand::Resume { http, .. }
            | ScheduleCommand::Trigger { http, .. }
            | ScheduleCommand::Delete { http, .. }
            | ScheduleCommand::Runs { http, .. } => http.flags(),
        },
        Command::Webhook(w) => match w {
            WebhookCommand::Create(a) => a.http.flags(),
            WebhookCommand::List { http }
            | WebhookCommand::Delete { http, .. }
            | WebhookCommand::Deliveries { http, .. } => http.flags(),
        },
        Command::Key(k) => match k {
            KeyCommand::Create { db, .. }
            | KeyCommand::List { db }
            | KeyCommand::Revoke { db, .. } => db.flags(),
        },
        Command::Migrate(m) => m.db.flags(),
        Command::Bench(b) => b.db.flags(),
        Command::Completions { .. } => Flags::default(),
    }
}

/// Logs go to stderr. Long-running nodes log at `info`; one-shot commands
/// only warn, so their stdout/stderr stay readable.
fn init_logging(cfg: &Config, node: bool) -> anyhow::Result<()> {
    let default = if node { "info" } else { "warn" };
    let filter = match cfg.opt_text("log", "log filter")? {
        Some(f) => f,
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("invalid log filter {filter:?}"))
        .map_err(|e| crate::exit::Fail::usage(format!("{e:#}")))?;
    let ansi = std::io::stderr().is_terminal()
        && anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
    // Several subscribers in one process (tests) are not an error.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
    Ok(())
}

/// Runs the command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let mut flags = flags(&cli.command);
    flags.set("log", &cli.log);
    let cfg = Config::load(cli.config.as_deref(), flags)?;
    let node = matches!(cli.command, Command::Server(_) | Command::Worker(_));
    init_logging(&cfg, node)?;
    let ctx = Ctx {
        cfg,
        format: cli.output,
    };
    match cli.command {
        Command::Server(_) => server::run(&ctx).await,
        Command::Worker(_) => worker::run(&ctx).await,
        Command::Job(c) => job::run(c, &ctx).await,
        Command::Queue(c) => queue::run(c, &ctx).await,
        Command::Node(c) => node::run(c, &ctx).await,
        Command::Execution(c) => execution::run(c, &ctx).await,
        Command::Schedule(c) => schedule::run(c, &ctx).await,
        Command::Webhook(c) => webhook::run(c, &ctx).await,
        Command::Key(c) => key::run(c, &ctx).await,
        Command::Migrate(a) => migrate::run(a.action, &ctx).await,
        Command::Bench(a) => bench::run(&a, &ctx).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "rota", &mut out);
            Ok(Exit::Success)
        }
    }
}
