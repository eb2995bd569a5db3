//! The embedded cluster: zones, servers, unit configs, resource pools, tenants with
//! their rows, restore jobs and restore history. [`SledCluster`] stores them
//! (`sled_store` and its record files; tenant administration in `admin`; rows in
//! `rowstore`; the tenant digest of `docs/backup-format.md` §5 over them in `digest`);
//! the restore reaches it through [`TenantService`], the part of it the restore's
//! validation and DAG executors need.

mod admin;
pub mod catalog;
mod digest;
mod error;
mod model;
mod password;
mod rowstore;
mod service;
mod sled_store;

pub use admin::check_tenant_options;
pub use error::{ClusterError, ClusterResult};
pub use model::*;
pub use password::ROOT_PASSWORD_KDF_ITERATIONS;
#[cfg(feature = "failpoints")]
pub use rowstore::{clear_row_write_failure, fail_row_writes_under};
pub use rowstore::{RunStats, COMPACT_AT_RUNS, RUN_FORMAT_VERSION, TIER_FAN_IN};
pub use service::{RowVisitor, TenantService};
pub use sled_store::{
    agent_db_path, agent_rows_path, ClusterConfig, ServerSeed, SledCluster, ZoneSeed,
    AGENT_DB_FILE, CLUSTER_FORMAT_VERSION, DEFAULT_UNIT_CONFIG,
};
