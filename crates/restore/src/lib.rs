//! OceanBase tenant restore: [`RestoreParam`] and its validation, the embedded cluster
//! ([`SledCluster`], the default [`TenantService`]) a restore creates the tenant in, the
//! restore DAG with its step executors ([`executors`]), and the [`RestoreAgent`] that
//! wires them to the engine.
//!
//! The agent keeps one sled database, `<data dir>/obrestore.sled`
//! ([`cluster::agent_db_path`]), shared by the DAG engine and the cluster; the
//! cluster's trees are prefixed `cluster/`. Restored rows are run files under
//! `<data dir>/obrestore.rows` ([`cluster::agent_rows_path`]).

pub mod agent;
pub mod clock;
pub mod cluster;
pub mod executors;
pub mod keystore;
pub mod param;
pub mod secret;
pub mod tenant_ops;
pub mod tenant_param;
pub mod verify;

pub use agent::{
    AgentConfig, RestoreAgent, RestoreError, RestoreOverview, RestoreTaskFilter, SourceTenantInfo,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{ClusterConfig, ClusterError, SledCluster, TenantService};
pub use param::{
    RestoreParam, RestoreParamError, RestoreSecrets, RestoreTarget, ValidatedRestore,
    ValidatedZone, ZoneParam,
};
pub use secret::Secret;
