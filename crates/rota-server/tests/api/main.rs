//! HTTP API tests against a real SQLite client, driven with `oneshot`. One
//! test binary (all modules) to keep link time down.

#![allow(clippy::unwrap_used)]

mod auth;
mod bad_requests;
mod common;
mod executions;
mod flaky;
mod happy;
mod schedules;
mod webhooks;
mod wire;
