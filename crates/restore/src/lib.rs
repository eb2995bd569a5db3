//! OceanBase tenant restore: [`RestoreParam`] and its validation, and the embedded
//! cluster ([`SledCluster`], the default [`TenantService`]) a restore creates the
//! tenant in. The restore DAG and its step executors build on these.
//!
//! The agent keeps one sled database, `<data dir>/obrestore.sled`
//! ([`cluster::agent_db_path`]), shared by the DAG engine and the cluster; the
//! cluster's trees are prefixed `cluster/`.

pub mod clock;
pub mod cluster;
pub mod param;
pub mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{ClusterConfig, ClusterError, SledCluster, TenantService};
pub use param::{
    RestoreParam, RestoreParamError, RestoreSecrets, RestoreTarget, ValidatedRestore,
    ValidatedZone, ZoneParam,
};
pub use secret::Secret;
