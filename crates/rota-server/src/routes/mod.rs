//! Route handlers, one module per resource.

pub(crate) mod executions;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod nodes;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod webhooks;
