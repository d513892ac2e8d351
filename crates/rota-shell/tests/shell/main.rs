//! Acceptance tests of the `shell` job kind: real processes run by a real
//! client on a temporary SQLite file. One test binary (all modules).

#![allow(clippy::unwrap_used)]

mod args;
mod common;
mod run;
mod stop;
