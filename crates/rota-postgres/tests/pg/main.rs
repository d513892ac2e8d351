//! Integration tests against a real PostgreSQL server.
//!
//! The server comes from `ROTA_TEST_POSTGRES_URL`. Without it every test
//! prints `SKIPPED: ROTA_TEST_POSTGRES_URL not set` to stderr and passes,
//! unless `ROTA_REQUIRE_POSTGRES=1`, which makes them fail. Each test works
//! in a fresh, randomly named schema and drops it at the end, pass or fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

mod claim;
mod executions;
mod insert;
mod kept;
mod maintenance;
mod notify;
mod pool;
mod schedules;
mod schema;
mod transactional;
mod webhooks;
