//! Route handlers, one module per resource.

pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod nodes;
pub(crate) mod queues;
