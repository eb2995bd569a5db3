//! OceanBase tenant restore: [`RestoreParam`] and its validation, the embedded cluster
//! ([`SledCluster`], the default [`TenantService`]) a restore creates the tenant in,
//! planning a restore once ([`prepare`]), the restore DAG with its step executors
//! ([`executors`]), and the [`RestoreAgent`] that wires them to the engine and through
//! which every frontend goes ([`OfflineAgent`] when the daemon is stopped).
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
pub mod prepare;
pub mod secret;
pub mod tenant_ops;
pub mod tenant_param;
pub mod verify;

pub use agent::{
    open_agent_db, AgentConfig, DroppedTenant, OfflineAgent, RestoreAgent, RestoreError,
    RestoreOverview, RestoreTaskFilter, SharedState, SourceTenantInfo, SHARED_ROWS_DIR,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{ClusterConfig, ClusterError, SledCluster, TenantService};
pub use param::{
    RestoreParam, RestoreParamError, RestorePoint, RestoreSecrets, ValidatedRestore, ValidatedZone,
    ZoneParam,
};
pub use secret::Secret;
