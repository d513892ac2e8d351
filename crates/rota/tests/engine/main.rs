//! Engine acceptance tests against real SQLite files. One test binary (all
//! modules) to keep link time down.

#![allow(clippy::unwrap_used)]

mod bulk;
mod cancel;
mod common;
mod concurrency;
mod executions;
mod kill;
mod retry;
mod schedules;
mod shutdown;
mod tx;
mod unique;
mod validation;
mod webhooks;
