//! Tenant administration through DAGs (obshell's `executor/tenant`): each request is
//! checked in full first, with the cluster's previews (a refusal is an error, not a
//! failed DAG), then its DAG is submitted under the tenant's maintenance lock
//! ([`crate::tenant_ops`]).
//!
//! Invariant: a previewed request writes nothing; only its DAG changes the tenant.

use obrestore_dag::DagDetailDto;

use super::{RestoreAgent, RestoreError};
use crate::cluster::{ClusterError, TenantService};

/// Tenant administration through DAGs (obshell's `executor/tenant`): each request is
/// checked in full first (a refusal is an error, not a failed DAG), then its DAG is
/// submitted under the tenant's maintenance lock ([`crate::tenant_ops`]).
impl RestoreAgent {
    /// obshell's `CreateTenant`: checks `param` ([`crate::tenant_param`]) and submits
    /// `Create tenant <name>`. The root password is kept sealed in the DAG.
    ///
    /// # Errors
    /// The first rule broken, [`RestoreError::UnderMaintenance`], engine failures.
    pub async fn create_tenant(
        &self,
        param: crate::tenant_param::CreateTenantParam,
    ) -> Result<DagDetailDto, RestoreError> {
        let plan = self
            .blocking(move |cluster| Ok(param.validate(cluster)?))
            .await?;
        let root_password_sealed = plan
            .root_password()
            .map(|password| self.keystore.seal(password.expose().as_bytes()));
        let params = crate::tenant_ops::CreateTenantDagParams {
            plan,
            task_time: chrono::Utc::now().timestamp(),
            root_password_sealed,
        };
        self.submit_brief(crate::tenant_ops::create_tenant_dag(&params))
            .await
    }

    /// obshell's `ScaleOutTenantReplicas`: a replica in each of `zones`.
    ///
    /// # Errors
    /// The cluster's refusal in obshell's order ([`TenantService::add_replicas`]),
    /// [`RestoreError::UnderMaintenance`], engine failures.
    pub async fn add_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<crate::cluster::ReplicaSpec>,
    ) -> Result<DagDetailDto, RestoreError> {
        let (tenant, checked) = (name.to_string(), zones.clone());
        self.blocking(move |cluster| {
            Ok(cluster.preview_add_replicas(&tenant, &checked, "preview")?)
        })
        .await?;
        let change = crate::tenant_ops::Reshape::AddReplicas(zones);
        self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
            .await
    }

    /// obshell's `ScaleInTenantReplicas`: zones without a replica are left out, and
    /// `None` (204) when none is left.
    ///
    /// # Errors
    /// As [`TenantService::remove_replicas`], [`RestoreError::UnderMaintenance`].
    pub async fn remove_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<String>,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let tenant = name.to_string();
        let kept: Vec<String> = self
            .blocking(move |cluster| {
                let current = cluster
                    .tenant(&tenant)?
                    .ok_or_else(|| ClusterError::TenantNotFound(tenant.clone()))?;
                let kept: Vec<String> = zones
                    .into_iter()
                    .filter(|zone| current.zone_list.iter().any(|has| &has.zone == zone))
                    .collect();
                if !kept.is_empty() {
                    cluster.preview_remove_replicas(&tenant, &kept)?;
                }
                Ok(kept)
            })
            .await?;
        if kept.is_empty() {
            return Ok(None);
        }
        let change = crate::tenant_ops::Reshape::RemoveReplicas(kept);
        Ok(Some(
            self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
                .await?,
        ))
    }

    /// obshell's `ModifyTenantReplica`; `None` (204) when every zone already is as
    /// asked.
    ///
    /// # Errors
    /// As [`TenantService::modify_replicas`], [`RestoreError::UnderMaintenance`].
    pub async fn modify_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<crate::cluster::ReplicaModify>,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let (tenant, checked) = (name.to_string(), zones.clone());
        let changes = self
            .blocking(move |cluster| {
                cluster.preview_modify_replicas(&tenant, &checked)?;
                let current = cluster
                    .tenant(&tenant)?
                    .ok_or_else(|| ClusterError::TenantNotFound(tenant.clone()))?;
                let pools = cluster.list_pools()?;
                Ok(checked.iter().any(|change| {
                    let replica = current
                        .zone_list
                        .iter()
                        .find(|zone| zone.zone == change.zone);
                    let pool = pools.iter().find(|pool| {
                        pool.tenant_id == Some(current.id) && pool.zone_list.contains(&change.zone)
                    });
                    let replica_differs = change
                        .replica_type
                        .is_some_and(|kind| !replica.is_some_and(|zone| zone.replica_type == kind));
                    let config_differs = change.unit_config_name.as_ref().is_some_and(|config| {
                        !pool.is_some_and(|pool| &pool.unit_config_name == config)
                    });
                    let unit_num_differs = change.unit_num.is_some_and(|unit_num| {
                        !pool.is_some_and(|pool| pool.unit_num == unit_num)
                    });
                    replica_differs || config_differs || unit_num_differs
                }))
            })
            .await?;
        if !changes {
            return Ok(None);
        }
        let change = crate::tenant_ops::Reshape::ModifyReplicas(zones);
        Ok(Some(
            self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
                .await?,
        ))
    }

    /// obshell's `ModifyTenantPrimaryZone` (always a DAG, as obshell's).
    ///
    /// # Errors
    /// As [`TenantService::set_primary_zone`], [`RestoreError::UnderMaintenance`].
    pub async fn set_tenant_primary_zone(
        &self,
        name: &str,
        primary_zone: &str,
    ) -> Result<DagDetailDto, RestoreError> {
        let (tenant, zone) = (name.to_string(), primary_zone.to_string());
        self.blocking(move |cluster| Ok(cluster.preview_primary_zone(&tenant, &zone)?))
            .await?;
        let change = crate::tenant_ops::Reshape::PrimaryZone(primary_zone.to_string());
        self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
            .await
    }
}
