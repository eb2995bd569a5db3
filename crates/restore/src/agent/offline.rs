//! [`OfflineAgent`]: the agent's state (its database, the cluster, the engine's records)
//! opened without the engine, for one-shot commands run while the daemon is stopped
//! (the CLI's `tenant drop`).
//!
//! Why not a [`RestoreAgent`](super::RestoreAgent): opening the engine resumes every
//! unfinished DAG, so an interrupted restore would start running inside a short CLI
//! command and be cut again when it exits; and a `Drop tenant` DAG needs the engine to
//! stay up until it ends. sled locks the database, so while an `OfflineAgent` is open no
//! daemon runs on the same state, and the engine's persisted lock records say exactly
//! what the engine would.
//!
//! Invariant: the agent's policies apply unchanged ([`tenant_to_drop`]), decided from
//! the engine's records; nothing here writes an engine record.

use std::path::Path;
use std::sync::Arc;

use obrestore_dag::store::{Records, SledStore, StoreError};
use obrestore_dag::{LockConflict, Maintenance, QueryError};

use super::tenants::tenant_to_drop;
use super::{open_agent_state, RestoreError};
use crate::cluster::{ClusterConfig, SledCluster, Tenant, TenantService};

/// What [`OfflineAgent::drop_tenant`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTenant {
    /// The tenant as it was before the drop (with its pool names).
    pub tenant: Tenant,
    /// The unfinished restore job the drop closed as CANCELED, if any.
    pub canceled_restore_job: Option<u64>,
    /// How many of the tenant's resource pools were dropped (0 unless asked).
    pub pools_dropped: usize,
}

/// The agent's state without the engine.
pub struct OfflineAgent {
    cluster: SledCluster,
    engine_records: SledStore,
}

impl std::fmt::Debug for OfflineAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineAgent").finish_non_exhaustive()
    }
}

impl OfflineAgent {
    /// Opens the agent's database in `data_dir` (creating it on first start) as
    /// [`RestoreAgent::open`](super::RestoreAgent::open) does, without the engine and
    /// the keystore. Blocking.
    ///
    /// # Errors
    /// The directory or the database cannot be opened, e.g. while a daemon runs on it.
    pub fn open(data_dir: &Path, cluster: &ClusterConfig) -> Result<OfflineAgent, RestoreError> {
        let (db, cluster) = open_agent_state(data_dir, cluster)?;
        let engine_records = SledStore::from_db(&db).map_err(store_error)?;
        Ok(OfflineAgent {
            cluster,
            engine_records,
        })
    }

    /// The embedded cluster, for reads.
    pub fn cluster(&self) -> &SledCluster {
        &self.cluster
    }

    /// Drops a tenant for good, with its rows, under the agent's drop policy
    /// (`tenant_to_drop`: not `sys`, not while a DAG holds its lock, e.g. its
    /// restore); its resource pools too with `drop_pools`. The unfinished job of a
    /// failed restore is closed as CANCELED, as the `Drop tenant` DAG does. `None` when
    /// the tenant does not exist. Blocking.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`], [`RestoreError::UnderMaintenance`], the cluster
    /// fails.
    pub fn drop_tenant(
        &self,
        name: &str,
        drop_pools: bool,
    ) -> Result<Option<DroppedTenant>, RestoreError> {
        let Some(tenant) = tenant_to_drop(&self.cluster, name, |lock| self.lock_holder(lock))?
        else {
            return Ok(None);
        };
        let canceled_restore_job = crate::tenant_ops::drop_tenant_now(&self.cluster, &tenant)?;
        let pools_dropped = if drop_pools && !tenant.pool_names.is_empty() {
            self.cluster.drop_pools(&tenant.pool_names)?
        } else {
            0
        };
        Ok(Some(DroppedTenant {
            tenant,
            canceled_restore_job,
            pools_dropped,
        }))
    }

    /// The DAG that holds `lock`, from the engine's records (what the engine's
    /// `lock_taker` reads, through the same [`Records::lock_taker`]).
    fn lock_holder(&self, lock: Maintenance) -> Result<Option<LockConflict>, RestoreError> {
        let records = Records::new(Arc::new(self.engine_records.clone()));
        Ok(match records.lock_taker(&lock).map_err(store_error)? {
            Some((dag, true)) => Some(LockConflict {
                lock,
                holder: dag.id,
                holder_name: dag.name,
            }),
            _ => None,
        })
    }
}

fn store_error(err: StoreError) -> RestoreError {
    RestoreError::Query(QueryError::from(err))
}
