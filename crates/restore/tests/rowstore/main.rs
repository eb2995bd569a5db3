//! The tenant row store (sorted run files, see `cluster/rowstore.rs`) through the public
//! `SledCluster` / `TenantService` API, every check against a reference model: a
//! `BTreeMap<(tablet_id, key), value>` that gets the same ops in the same order.
//!
//! Covers last-op-wins within a batch, newest-run-wins across batches, tombstones,
//! random batches with compaction and reopen, automatic compaction, corrupt and truncated
//! run files, leftovers of interrupted writes, compactions and drops, and tenant
//! isolation.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod batches;
mod random;
mod run_files;
