//! Acceptance tests of the `rota` binary: each test runs the real binary
//! with its own temp dir, SQLite file and free port, and stops what it
//! started.

mod common;

mod auth;
mod bench;
mod cli;
mod config;
mod crash;
mod executions;
mod labels;
mod output_cap;
mod quickstart;
mod scale;
mod schedules;
mod stop;
mod webhooks;
