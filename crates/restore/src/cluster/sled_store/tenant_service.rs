//! `impl TenantService for SledCluster`: one line per method, each delegating to the file
//! of its record kind (or to [`crate::cluster::admin`] for tenant administration).

use std::collections::BTreeMap;

use tracing::instrument;

use super::{pools, restore_jobs, rows, tenants, topology, SledCluster, Write};
use crate::cluster::admin;
use crate::cluster::error::ClusterResult;
use crate::cluster::model::{
    NewRestoreJob, NewTenant, PartProgress, PoolSpec, ReplicaModify, ReplicaSpec, ResourcePool,
    RestoreJob, RestoreJobPatch, RestoreOutcome, RowBatch, Server, Tenant, TenantOptions,
    UnitConfig, Zone,
};
use crate::cluster::service::{RowVisitor, TenantService};

impl TenantService for SledCluster {
    fn zone(&self, name: &str) -> ClusterResult<Option<Zone>> {
        topology::zone(self, name)
    }

    fn servers_in_zone(&self, zone: &str) -> ClusterResult<Vec<Server>> {
        topology::servers_in_zone(self, zone)
    }

    fn unit_config(&self, name: &str) -> ClusterResult<Option<UnitConfig>> {
        pools::unit_config(self, name)
    }

    #[instrument(skip(self, specs), fields(pools = specs.len()))]
    fn create_pools(&self, specs: &[PoolSpec], creator: &str) -> ClusterResult<Vec<ResourcePool>> {
        pools::create_pools(self, specs, creator)
    }

    #[instrument(skip(self))]
    fn drop_pools(&self, names: &[String]) -> ClusterResult<usize> {
        pools::drop_pools(self, names)
    }

    fn tenant(&self, name: &str) -> ClusterResult<Option<Tenant>> {
        tenants::tenant(self, name)
    }

    fn tenant_by_id(&self, tenant_id: u64) -> ClusterResult<Option<Tenant>> {
        tenants::tenant_by_id(self, tenant_id)
    }

    #[instrument(skip(self, tenant, options), fields(name = %tenant.name))]
    fn create_tenant_with(
        &self,
        tenant: &NewTenant,
        options: &TenantOptions,
        creator: &str,
    ) -> ClusterResult<Tenant> {
        tenants::create_tenant_with(self, tenant, options, creator)
    }

    #[instrument(skip(self))]
    fn drop_tenant(&self, name: &str) -> ClusterResult<bool> {
        tenants::drop_tenant(self, name)
    }

    #[instrument(skip(self))]
    fn recycle_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant> {
        tenants::recycle_tenant(self, tenant_id)
    }

    fn set_ls_sync_scn(&self, tenant_id: u64, ls_id: u64, scn: u64) -> ClusterResult<Tenant> {
        tenants::set_ls_sync_scn(self, tenant_id, ls_id, scn)
    }

    #[instrument(skip(self))]
    fn activate_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant> {
        tenants::activate_tenant(self, tenant_id)
    }

    #[instrument(skip(self))]
    fn upgrade_tenant(&self, tenant_id: u64, data_version: &str) -> ClusterResult<Tenant> {
        tenants::upgrade_tenant(self, tenant_id, data_version)
    }

    #[instrument(skip(self))]
    fn set_primary_zone(&self, name: &str, primary_zone: &str) -> ClusterResult<Tenant> {
        admin::set_primary_zone(self, name, primary_zone, Write::Apply)
    }

    #[instrument(skip(self, zones), fields(zones = zones.len()))]
    fn add_replicas(
        &self,
        name: &str,
        zones: &[ReplicaSpec],
        creator: &str,
    ) -> ClusterResult<Tenant> {
        admin::add_replicas(self, name, zones, creator, Write::Apply)
    }

    #[instrument(skip(self))]
    fn remove_replicas(&self, name: &str, zones: &[String]) -> ClusterResult<Tenant> {
        admin::remove_replicas(self, name, zones, Write::Apply)
    }

    #[instrument(skip(self, zones), fields(zones = zones.len()))]
    fn modify_replicas(&self, name: &str, zones: &[ReplicaModify]) -> ClusterResult<Tenant> {
        admin::modify_replicas(self, name, zones, Write::Apply)
    }

    #[instrument(skip(self, variables), fields(variables = variables.len()))]
    fn set_variables(
        &self,
        name: &str,
        variables: &BTreeMap<String, String>,
    ) -> ClusterResult<Tenant> {
        admin::set_variables(self, name, variables)
    }

    #[instrument(skip(self, parameters), fields(parameters = parameters.len()))]
    fn set_parameters(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
    ) -> ClusterResult<Tenant> {
        admin::set_parameters(self, name, parameters)
    }

    #[instrument(skip(self, new, old))]
    fn set_root_password(&self, name: &str, new: &str, old: Option<&str>) -> ClusterResult<Tenant> {
        admin::set_root_password(self, name, new, old)
    }

    fn apply_batch(&self, tenant_id: u64, batch: &RowBatch) -> ClusterResult<()> {
        rows::apply_batch(self, tenant_id, batch)
    }

    fn for_each_row(&self, tenant_id: u64, visit: &mut RowVisitor<'_>) -> ClusterResult<()> {
        rows::for_each_row(self, tenant_id, visit)
    }

    #[instrument(skip(self, job), fields(tenant = %job.restore_tenant_name))]
    fn start_restore_job(&self, job: &NewRestoreJob, creator: &str) -> ClusterResult<RestoreJob> {
        restore_jobs::start_restore_job(self, job, creator)
    }

    fn update_restore_job(
        &self,
        job_id: u64,
        patch: &RestoreJobPatch,
    ) -> ClusterResult<RestoreJob> {
        restore_jobs::update_restore_job(self, job_id, patch)
    }

    fn record_restore_part(
        &self,
        job_id: u64,
        part: &str,
        progress: PartProgress,
    ) -> ClusterResult<RestoreJob> {
        restore_jobs::record_restore_part(self, job_id, part, progress)
    }

    fn finish_restore_ls(&self, job_id: u64, ls_id: u64) -> ClusterResult<RestoreJob> {
        restore_jobs::finish_restore_ls(self, job_id, ls_id)
    }

    #[instrument(skip(self))]
    fn finish_restore_job(
        &self,
        job_id: u64,
        outcome: RestoreOutcome,
        comment: Option<&str>,
    ) -> ClusterResult<RestoreJob> {
        restore_jobs::finish_restore_job(self, job_id, outcome, comment)
    }

    fn active_restore_job(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>> {
        restore_jobs::active_restore_job(self, tenant_name)
    }
}
