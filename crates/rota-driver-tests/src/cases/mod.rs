//! The conformance cases, one async function each, grouped by topic.
//!
//! Every case takes a driver on a fresh, migrated, empty store and panics
//! with a message naming the broken rule when the driver disagrees with the
//! [`Driver`](rota_driver::Driver) docs or the job state machine
//! ([`rota_core::state`]).

pub mod api_keys;
pub mod cancel_retry;
pub mod claim;
pub mod executions;
pub mod finish;
pub mod insert;
pub mod leader;
pub mod list;
pub mod maintenance;
pub mod nodes;
pub mod peers;
pub mod queues;
pub mod revisions;
pub mod schedules;
pub mod state_machine;
pub mod store;
pub mod webhooks;
