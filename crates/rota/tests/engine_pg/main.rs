//! The engine acceptance tests again, on PostgreSQL (same `Client` and
//! `Worker` API, unchanged), plus the cluster tests that only make sense
//! there. Needs `ROTA_TEST_POSTGRES_URL`; without it every test prints
//! SKIPPED and passes, unless `ROTA_REQUIRE_POSTGRES=1`.

#![allow(clippy::unwrap_used)]

#[path = "../engine/bulk.rs"]
mod bulk;
#[path = "../engine/cancel.rs"]
mod cancel;
mod common;
#[path = "../engine/concurrency.rs"]
mod concurrency;
#[path = "../engine/executions.rs"]
mod executions;
#[path = "../engine/kill.rs"]
mod kill;
#[path = "../engine/retry.rs"]
mod retry;
#[path = "../engine/schedules.rs"]
mod schedules;
#[path = "../engine/shutdown.rs"]
mod shutdown;
mod tx;
#[path = "../engine/unique.rs"]
mod unique;
#[path = "../engine/validation.rs"]
mod validation;
#[path = "../engine/webhooks.rs"]
mod webhooks;
