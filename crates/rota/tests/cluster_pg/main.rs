//! Cluster tests on PostgreSQL with real processes (SIGKILL chaos, leader
//! failover, database restart, rescue timing). A binary of their own, and
//! run one at a time, because they load the machine and one restarts the
//! database server.

#![allow(clippy::unwrap_used)]

mod cluster;
#[path = "../engine_pg/common.rs"]
mod common;
