//! The embedded cluster with its records in a real etcd: the cluster tests of
//! `tests/cluster` that do not reach into sled (seeding, capacity, tenants, restore
//! jobs, rows) run again on etcd, and `shared` checks what sharing adds: two handles
//! on one cluster, concurrent writers, concurrent first starts, a lost fence. Every
//! test starts its own etcd (`obrestore_etcd::testing`); this binary needs the `etcd`
//! binary (CI installs `etcd-server`).

#[path = "../common/mod.rs"]
mod common;
mod support;

mod crash;

#[path = "../cluster/restore_jobs.rs"]
mod restore_jobs;
#[path = "../cluster/rows.rs"]
mod rows;
mod shared;
#[path = "../cluster/tenants.rs"]
mod tenants;
#[path = "../cluster/topology.rs"]
mod topology;
