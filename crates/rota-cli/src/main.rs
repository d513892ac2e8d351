//! `rota`: the job server with its HTTP API, worker nodes, and a CLI over
//! the API.
//!
//! The binary is a thin face over the library: `rota server` serves
//! `rota_server::router` over a `rota::Client` with the shell kind
//! registered; `rota worker` runs the same client without HTTP; the other
//! commands are HTTP calls (`job`, `queue`, `node`, `execution`, `schedule`,
//! `webhook`) or direct store access (`key`, `migrate`). Exit codes are in
//! [`exit::Exit`].

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;

mod cli;
mod commands;
mod config;
mod engine;
mod exit;
mod http;
mod output;

/// jemalloc instead of glibc's malloc, for Rust and (through the
/// `unprefixed_malloc_on_supported_platforms` feature) for the bundled
/// SQLite's C allocations too. With glibc, memory freed on one thread stays
/// in that thread's arena: a worker's RSS crept up with every job processed
/// (measured: +34 MiB over 1,000,000 jobs, +57 MiB over 2,000,000; flat
/// with `MALLOC_ARENA_MAX=1`). jemalloc returns it (after 1 s, by a
/// background thread: see `.cargo/config.toml`), and the allocation-heavy
/// paths (bulk enqueue, claims) got faster too.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = cli::Cli::parse();
    cli.color.write_global();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return exit::Exit::Failure.into();
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Do not wait for a task blocked on reading stdin or a stuck request.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code.into(),
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&format!("{e:#}"));
            exit::code_of(&e).into()
        }
    }
}
