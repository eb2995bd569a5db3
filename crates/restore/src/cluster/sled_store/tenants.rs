//! Tenant records and their life: creation on free pools, drop (with the rows), the
//! recycle bin and flashback, locks, and the restore state a restore moves a tenant
//! through (log stream sync SCNs, activation, data version).
//!
//! Invariants: `cluster/tenant_names` maps each live tenant's name (a recycled tenant's
//! object name) to its id; ids are 1002, 1004, ... and never reused; a pool's
//! `tenant_id` names the tenant it is granted to, and that tenant lists the pool.

use chrono::{DateTime, Utc};

use super::{abort, SledCluster, Tree, Tx, TxResult};
use crate::cluster::admin::TenantSettings;
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{
    NewTenant, Recycled, ResourcePool, Tenant, TenantOptions, TenantRole, TenantStatus,
};

impl Tx<'_> {
    pub(in crate::cluster) fn tenant_by_id(&self, tenant_id: u64) -> TxResult<Option<Tenant>> {
        self.get(Tree::Tenants, &tenant_id.to_be_bytes())
    }

    pub(in crate::cluster) fn tenant_id_by_name(&self, name: &str) -> TxResult<Option<u64>> {
        self.get_u64(Tree::TenantNames, name.as_bytes())
    }

    /// The tenant, unless it is missing (`TenantIdNotFound`) or DROPPING (`TenantState`).
    fn live_tenant(&self, tenant_id: u64) -> TxResult<Tenant> {
        match self.tenant_by_id(tenant_id)? {
            None => abort(ClusterError::TenantIdNotFound(tenant_id)),
            Some(tenant) if tenant.status == TenantStatus::Dropping => {
                abort(ClusterError::TenantState {
                    name: tenant.name,
                    actual: TenantStatus::Dropping.to_string(),
                    expected: "NORMAL or RESTORE".to_string(),
                })
            }
            Some(tenant) => Ok(tenant),
        }
    }

    pub(in crate::cluster) fn put_tenant(&self, tenant: &Tenant) -> TxResult<()> {
        self.put(Tree::Tenants, &tenant.id.to_be_bytes(), tenant)
    }
}

impl SledCluster {
    /// All tenants, by id.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_tenants(&self) -> ClusterResult<Vec<Tenant>> {
        self.scan(Tree::Tenants)
    }

    /// The tenant in the recycle bin named `name`, by object name or else by original
    /// name (the most recently recycled one).
    ///
    /// # Errors
    /// Storage failures.
    pub fn recycled_tenant(&self, name: &str) -> ClusterResult<Option<Tenant>> {
        if let Some(tenant) = tenant(self, name)? {
            if tenant.in_recyclebin() {
                return Ok(Some(tenant));
            }
        }
        Ok(self
            .list_tenants()?
            .into_iter()
            .filter(|tenant| {
                tenant
                    .recycled
                    .as_ref()
                    .is_some_and(|recycled| recycled.original_name == name)
            })
            .max_by_key(|tenant| tenant.recycled.as_ref().map(|r| r.recycled_at)))
    }

    /// Brings a tenant back from the recycle bin (`FLASHBACK TENANT .. TO BEFORE DROP
    /// [RENAME TO ..]`) under `new_name`, or its original name.
    ///
    /// # Errors
    /// `RecycledTenantNotFound`, `TenantExists` when the name is taken, storage failures.
    #[tracing::instrument(skip(self))]
    pub fn flashback_tenant(&self, name: &str, new_name: Option<&str>) -> ClusterResult<Tenant> {
        let Some(found) = self.recycled_tenant(name)? else {
            return Err(ClusterError::RecycledTenantNotFound(name.to_string()));
        };
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(found.id)?;
            let Some(recycled) = tenant.recycled.clone() else {
                return abort(ClusterError::RecycledTenantNotFound(name.to_string()));
            };
            let target = new_name.unwrap_or(&recycled.original_name).to_string();
            if tx.tenant_id_by_name(&target)?.is_some() {
                return abort(ClusterError::TenantExists(target));
            }
            if tx.tenant_id_by_name(&tenant.name)? == Some(tenant.id) {
                tx.remove(Tree::TenantNames, tenant.name.as_bytes())?;
            }
            tenant.name = target;
            tenant.recycled = None;
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            tx.put_u64(Tree::TenantNames, tenant.name.as_bytes(), tenant.id)?;
            Ok(tenant)
        })
    }

    /// Locks or unlocks a tenant (`ALTER TENANT .. LOCK|UNLOCK`). Idempotent.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    #[tracing::instrument(skip(self))]
    pub fn set_tenant_locked(&self, name: &str, locked: bool) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let Some(id) = tx.tenant_id_by_name(name)? else {
                return abort(ClusterError::TenantNotFound(name.to_string()));
            };
            let mut tenant = tx.live_tenant(id)?;
            if tenant.locked != locked {
                tenant.locked = locked;
                tenant.updated_at = now;
                tx.put_tenant(&tenant)?;
            }
            Ok(tenant)
        })
    }
}

/// [`crate::TenantService::tenant`].
pub(super) fn tenant(cluster: &SledCluster, name: &str) -> ClusterResult<Option<Tenant>> {
    match cluster.get_u64(Tree::TenantNames, name.as_bytes())? {
        None => Ok(None),
        Some(id) => tenant_by_id(cluster, id),
    }
}

/// [`crate::TenantService::tenant_by_id`].
pub(super) fn tenant_by_id(cluster: &SledCluster, tenant_id: u64) -> ClusterResult<Option<Tenant>> {
    cluster.get(Tree::Tenants, &tenant_id.to_be_bytes())
}

/// [`crate::TenantService::create_tenant_with`]: the options are checked first, then
/// one transaction checks the request and the pools, grants the pools and writes the
/// tenant.
pub(super) fn create_tenant_with(
    cluster: &SledCluster,
    tenant: &NewTenant,
    options: &TenantOptions,
    creator: &str,
) -> ClusterResult<Tenant> {
    let settings = TenantSettings::new(options, cluster.password_kdf_iterations)?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        check_new_tenant(tenant)?;
        if let Some(existing) = repeated_creation(tx, tenant, creator)? {
            return Ok(existing);
        }
        let pools = free_pools_covering_zones(tx, tenant)?;
        let id = tx.next_id("tenant_id", 1002, 2)?;
        for mut pool in pools {
            pool.tenant_id = Some(id);
            tx.put(Tree::Pools, pool.name.as_bytes(), &pool)?;
        }
        let record = new_tenant_record(id, tenant, &settings, creator, now);
        tx.put_tenant(&record)?;
        tx.put_u64(Tree::TenantNames, tenant.name.as_bytes(), id)?;
        Ok(record)
    })
}

fn invalid_tenant(tenant: &NewTenant, reason: impl Into<String>) -> ClusterError {
    ClusterError::InvalidTenant {
        name: tenant.name.clone(),
        reason: reason.into(),
    }
}

/// A name, a status a tenant can be created with, zones and pools.
fn check_new_tenant(tenant: &NewTenant) -> TxResult<()> {
    if tenant.name.trim().is_empty() {
        return abort(invalid_tenant(tenant, "name is empty"));
    }
    if tenant.status == TenantStatus::Dropping {
        return abort(invalid_tenant(
            tenant,
            "a tenant cannot be created DROPPING",
        ));
    }
    if tenant.zone_list.is_empty() || tenant.pool_names.is_empty() {
        return abort(invalid_tenant(
            tenant,
            "zone_list and pool_names must not be empty",
        ));
    }
    Ok(())
}

/// The tenant of that name if `creator` made it on the same pools (a repeated step);
/// `None` if the name is free.
///
/// # Errors
/// `TenantExists` when the name is taken otherwise.
fn repeated_creation(tx: &Tx<'_>, tenant: &NewTenant, creator: &str) -> TxResult<Option<Tenant>> {
    let Some(id) = tx.tenant_id_by_name(&tenant.name)? else {
        return Ok(None);
    };
    if let Some(existing) = tx.tenant_by_id(id)? {
        if existing.creator.as_deref() == Some(creator)
            && existing.pool_names == tenant.pool_names
            && existing.status != TenantStatus::Dropping
        {
            return Ok(Some(existing));
        }
    }
    abort(ClusterError::TenantExists(tenant.name.clone()))
}

/// The tenant's pools: each exists and is not granted to an existing tenant, and
/// together they cover its zones.
///
/// # Errors
/// `PoolNotFound`, `PoolGranted`, `InvalidTenant` for a zone without a pool.
fn free_pools_covering_zones(tx: &Tx<'_>, tenant: &NewTenant) -> TxResult<Vec<ResourcePool>> {
    let mut pools = Vec::with_capacity(tenant.pool_names.len());
    for pool_name in &tenant.pool_names {
        let Some(pool) = tx.get::<ResourcePool>(Tree::Pools, pool_name.as_bytes())? else {
            return abort(ClusterError::PoolNotFound(pool_name.clone()));
        };
        if let Some(owner_id) = pool.tenant_id {
            if let Some(owner) = tx.tenant_by_id(owner_id)? {
                return abort(ClusterError::PoolGranted {
                    pool: pool.name,
                    tenant: owner.name,
                });
            }
        }
        pools.push(pool);
    }
    for zone in &tenant.zone_list {
        if !pools.iter().any(|pool| pool.zone_list.contains(&zone.zone)) {
            return abort(invalid_tenant(
                tenant,
                format!("zone '{}' has no resource pool", zone.zone),
            ));
        }
    }
    Ok(pools)
}

/// The record of a new tenant `id` made by `creator` with `settings`.
fn new_tenant_record(
    id: u64,
    tenant: &NewTenant,
    settings: &TenantSettings,
    creator: &str,
    now: DateTime<Utc>,
) -> Tenant {
    Tenant {
        id,
        name: tenant.name.clone(),
        status: tenant.status,
        role: tenant.role,
        data_version: tenant.data_version.clone(),
        sync_scn: 0,
        ls_sync_scn: Default::default(),
        primary_zone: tenant.primary_zone.clone(),
        zone_list: tenant.zone_list.clone(),
        pool_names: tenant.pool_names.clone(),
        creator: Some(creator.to_string()),
        created_at: now,
        updated_at: now,
        locked: false,
        recycled: None,
        mode: settings.mode,
        charset: settings.charset.clone(),
        collation: settings.collation.clone(),
        comment: settings.comment.clone(),
        read_only: settings.read_only,
        variables: settings.variables.clone(),
        parameters: settings.parameters.clone(),
        root_password: settings.root_password.clone(),
        root_password_persisted: settings.root_password.is_some(),
    }
}

/// [`crate::TenantService::drop_tenant`]: marks the tenant DROPPING, drops its rows,
/// then releases its pools and removes it.
pub(super) fn drop_tenant(cluster: &SledCluster, name: &str) -> ClusterResult<bool> {
    let now = cluster.clock.now();
    let marked = cluster.transact(|tx| {
        let Some(id) = tx.tenant_id_by_name(name)? else {
            return Ok(None);
        };
        let Some(mut tenant) = tx.tenant_by_id(id)? else {
            // A dangling name entry: remove it.
            tx.remove(Tree::TenantNames, name.as_bytes())?;
            return Ok(None);
        };
        tenant.status = TenantStatus::Dropping;
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(Some(id))
    })?;
    let Some(tenant_id) = marked else {
        return Ok(false);
    };
    obrestore_dag::crash_point::hit("cluster:drop tenant:after-mark-dropping");
    cluster.check_row_writer()?;
    cluster.rows.drop_tenant(tenant_id)?;
    obrestore_dag::crash_point::hit(super::CLUSTER_WRITE);
    obrestore_dag::crash_point::hit("cluster:drop tenant:after-drop-rows");
    cluster.transact(|tx| {
        let Some(tenant) = tx.tenant_by_id(tenant_id)? else {
            return Ok(());
        };
        for pool_name in &tenant.pool_names {
            if let Some(mut pool) = tx.get::<ResourcePool>(Tree::Pools, pool_name.as_bytes())? {
                if pool.tenant_id == Some(tenant_id) {
                    pool.tenant_id = None;
                    tx.put(Tree::Pools, pool_name.as_bytes(), &pool)?;
                }
            }
        }
        tx.remove(Tree::Tenants, &tenant_id.to_be_bytes())?;
        if tx.tenant_id_by_name(&tenant.name)? == Some(tenant_id) {
            tx.remove(Tree::TenantNames, tenant.name.as_bytes())?;
        }
        Ok(())
    })?;
    Ok(true)
}

/// [`crate::TenantService::recycle_tenant`].
pub(super) fn recycle_tenant(cluster: &SledCluster, tenant_id: u64) -> ClusterResult<Tenant> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx.live_tenant(tenant_id)?;
        if tenant.in_recyclebin() {
            return Ok(tenant);
        }
        let object_name = format!("__recycle_$_{}_{}", tenant.id, now.timestamp_micros());
        if tx.tenant_id_by_name(&tenant.name)? == Some(tenant_id) {
            tx.remove(Tree::TenantNames, tenant.name.as_bytes())?;
        }
        tenant.recycled = Some(Recycled {
            original_name: std::mem::replace(&mut tenant.name, object_name.clone()),
            recycled_at: now,
        });
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        tx.put_u64(Tree::TenantNames, object_name.as_bytes(), tenant_id)?;
        Ok(tenant)
    })
}

/// Applies `change` to the live tenant `tenant_id` in one transaction; writes it back
/// (with `updated_at`) only if `change` says it changed something.
fn update_live_tenant(
    cluster: &SledCluster,
    tenant_id: u64,
    change: impl Fn(&mut Tenant) -> bool,
) -> ClusterResult<Tenant> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx.live_tenant(tenant_id)?;
        if change(&mut tenant) {
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

/// [`crate::TenantService::set_ls_sync_scn`].
pub(super) fn set_ls_sync_scn(
    cluster: &SledCluster,
    tenant_id: u64,
    ls_id: u64,
    scn: u64,
) -> ClusterResult<Tenant> {
    update_live_tenant(cluster, tenant_id, |tenant| {
        tenant.ls_sync_scn.insert(ls_id, scn);
        tenant.sync_scn = tenant.ls_sync_scn.values().copied().min().unwrap_or(0);
        true
    })
}

/// [`crate::TenantService::activate_tenant`].
pub(super) fn activate_tenant(cluster: &SledCluster, tenant_id: u64) -> ClusterResult<Tenant> {
    update_live_tenant(cluster, tenant_id, |tenant| {
        let change = tenant.role != TenantRole::Primary || tenant.status != TenantStatus::Normal;
        if change {
            tenant.role = TenantRole::Primary;
            tenant.status = TenantStatus::Normal;
        }
        change
    })
}

/// [`crate::TenantService::upgrade_tenant`].
pub(super) fn upgrade_tenant(
    cluster: &SledCluster,
    tenant_id: u64,
    data_version: &str,
) -> ClusterResult<Tenant> {
    update_live_tenant(cluster, tenant_id, |tenant| {
        let change = tenant.data_version != data_version;
        if change {
            tenant.data_version = data_version.to_string();
        }
        change
    })
}
