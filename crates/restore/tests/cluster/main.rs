//! The embedded cluster: seeding, capacity, idempotent create/drop, durability across
//! reopen, rows and digest, restore jobs and history.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod device_sync;
mod durability;
mod restore_jobs;
mod rows;
mod tenants;
mod topology;
