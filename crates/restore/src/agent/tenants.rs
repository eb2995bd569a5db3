//! Dropping, recycling and locking tenants through the agent, and the drop policy
//! every frontend shares ([`tenant_to_drop`]).
//!
//! Invariant: a tenant is dropped only after [`tenant_to_drop`] allowed it, whether
//! through a `Drop tenant` DAG ([`RestoreAgent::drop_tenant`]) or offline
//! ([`super::OfflineAgent::drop_tenant`]).

use obrestore_dag::{DagDetailDto, LockConflict, Maintenance};

use super::{RestoreAgent, RestoreError};
use crate::cluster::{SledCluster, Tenant, TenantService};

/// The drop policy of every frontend, in this order: `sys` is refused
/// ([`RestoreError::SysTenant`]); a tenant that does not exist is nothing to drop
/// (`None`); while a DAG holds the tenant's maintenance lock (its restore, another
/// tenant operation) or the cluster's, the drop is refused with
/// [`RestoreError::UnderMaintenance`]. `lock_holder` tells who holds a lock: the
/// running engine, or the engine's records when it is not running.
///
/// # Errors
/// The refusals above; the cluster or the engine's records cannot be read.
pub(super) fn tenant_to_drop(
    cluster: &SledCluster,
    name: &str,
    lock_holder: impl Fn(Maintenance) -> Result<Option<LockConflict>, RestoreError>,
) -> Result<Option<Tenant>, RestoreError> {
    if name == "sys" {
        return Err(RestoreError::SysTenant);
    }
    let Some(tenant) = cluster.tenant(name)? else {
        return Ok(None);
    };
    for lock in [Maintenance::Tenant(name.to_string()), Maintenance::Global] {
        if let Some(conflict) = lock_holder(lock)? {
            return Err(RestoreError::UnderMaintenance(conflict));
        }
    }
    Ok(Some(tenant))
}

impl RestoreAgent {
    /// Drops a tenant through a `Drop tenant` DAG (obshell's `DropTenant`): for good,
    /// with its rows and pools, or into the recycle bin with `need_recycle`. `None`
    /// when the tenant does not exist. The drop policy (`tenant_to_drop`) applies: a
    /// restore that holds the tenant refuses it with [`RestoreError::UnderMaintenance`];
    /// the unfinished job of a failed restore is closed as CANCELED by the drop.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`], [`RestoreError::UnderMaintenance`], engine failures.
    ///
    /// # Cancel safety
    /// If dropped, the DAG may or may not have been submitted.
    pub async fn drop_tenant(
        &self,
        name: &str,
        need_recycle: bool,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let Some(tenant) =
            tenant_to_drop(self.cluster.as_ref(), name, |lock| self.lock_holder(lock))?
        else {
            return Ok(None);
        };
        let spec = crate::tenant_ops::drop_tenant_dag(&tenant, need_recycle);
        Ok(Some(self.submit_brief(spec).await?))
    }

    /// Tenants in the recycle bin.
    ///
    /// # Errors
    /// The cluster cannot be read.
    pub fn recycled_tenants(&self) -> Result<Vec<Tenant>, RestoreError> {
        Ok(self
            .cluster
            .list_tenants()?
            .into_iter()
            .filter(Tenant::in_recyclebin)
            .collect())
    }

    /// Brings a tenant back from the recycle bin (by object or original name), under
    /// `new_name` or its original name.
    ///
    /// # Errors
    /// [`RestoreError::NotInRecyclebin`], `TenantExists` when the name is taken.
    pub fn flashback_tenant(
        &self,
        name: &str,
        new_name: Option<&str>,
    ) -> Result<Tenant, RestoreError> {
        if self.cluster.recycled_tenant(name)?.is_none() {
            return Err(RestoreError::NotInRecyclebin(name.to_string()));
        }
        Ok(self.cluster.flashback_tenant(name, new_name)?)
    }

    /// Purges a tenant from the recycle bin through a `Wait tenant purge finished` DAG.
    /// `None` when no such tenant is in the bin.
    ///
    /// # Errors
    /// [`RestoreError::UnderMaintenance`], engine failures.
    ///
    /// # Cancel safety
    /// If dropped, the DAG may or may not have been submitted.
    pub async fn purge_recycled_tenant(
        &self,
        name: &str,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let Some(tenant) = self.cluster.recycled_tenant(name)? else {
            return Ok(None);
        };
        let spec = crate::tenant_ops::purge_tenant_dag(&tenant);
        Ok(Some(self.submit_brief(spec).await?))
    }

    /// Locks a tenant (`ALTER TENANT .. LOCK`: it refuses connections) or unlocks it.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`]; the tenant does not exist.
    pub async fn set_tenant_locked(
        &self,
        name: &str,
        locked: bool,
    ) -> Result<Tenant, RestoreError> {
        if name == "sys" {
            return Err(RestoreError::SysTenant);
        }
        let name = name.to_string();
        self.blocking(move |cluster| Ok(cluster.set_tenant_locked(&name, locked)?))
            .await
    }
}
