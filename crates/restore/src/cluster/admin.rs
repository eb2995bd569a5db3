//! Tenant administration on the embedded cluster: what obshell's tenant API
//! (`agent/executor/tenant`) does to a tenant, at the domain level — rename, primary
//! zone, replicas (scale out, scale in, modify), variables, parameters and the root
//! password. [`super::TenantService`] documents each operation; this module holds the
//! [`SledCluster`] implementations and the locality rules they share.
//!
//! Each write is one sled transaction (all checks, then all changes), flushed before it
//! returns. Checks run in obshell's order so the first error is the one obshell gives.
//! Root-password work (PBKDF2) runs outside the transaction: the tenant is read, the
//! password checked, and the transaction then writes only if the stored verifier is
//! still the one checked (else it starts over).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sled::transaction::ConflictableTransactionError;

use super::catalog::{
    self, BoolStyle, SetAt, ValueKind, VARIABLE_CHARACTER_SET_SERVER, VARIABLE_COLLATION_SERVER,
    VARIABLE_READ_ONLY, VARIABLE_WHITELIST,
};
use super::error::{ClusterError, ClusterResult};
use super::model::{
    round_cpu, PasswordVerifier, ReplicaModify, ReplicaSpec, ReplicaType, ResourcePool, Server,
    Tenant, TenantMode, TenantOptions, TenantStatus, TenantZone, Unit, UnitConfig, Zone,
    CPU_EPSILON,
};
use super::password;
use super::service::TenantService;
use super::sled_store::{
    abort, corrupt, create_pool, place_units, release_unit, SledCluster, Tx, TxResult, Write, T,
};
use crate::param::{check_tenant_name, normalize_primary_zone, RestoreParamError};

/// `primary_zone` meaning "any zone".
const RANDOM: &str = crate::param::PRIMARY_ZONE_RANDOM;
/// How many times a root-password change starts over when the password changed under it.
const PASSWORD_ATTEMPTS: usize = 3;

/// What [`TenantOptions`] make of a new tenant, checked and normalized.
pub(super) struct TenantSettings {
    pub mode: TenantMode,
    pub charset: String,
    pub collation: String,
    pub comment: String,
    pub read_only: bool,
    pub variables: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub root_password: Option<PasswordVerifier>,
}

impl TenantSettings {
    /// Applies obshell's create-tenant rendering: the charset and collation become the
    /// server variables, `read_only` sets the variable unless `variables` does, the
    /// whitelist (the option, else the variable) is merged with `127.0.0.1`, and a
    /// non-empty root password becomes a verifier.
    ///
    /// # Errors
    /// `CharsetCollationInvalid`, `VariableEmpty`, `VariableNotExist`,
    /// `VariableInvalid`, `ParameterEmpty`, `ParameterNotExist`, `ParameterInvalid`.
    pub(super) fn new(options: &TenantOptions, kdf_iterations: u32) -> ClusterResult<Self> {
        let (charset, collation) =
            catalog::resolve_charset(options.charset.as_deref(), options.collation.as_deref())?;
        let checked_variables = catalog::check_variables(&options.variables, SetAt::Creation)?;
        let parameters = catalog::check_parameters(&options.parameters)?
            .into_iter()
            .map(|(def, value)| (def.name.to_string(), value))
            .collect();
        let mut variables = BTreeMap::new();
        variables.insert(VARIABLE_CHARACTER_SET_SERVER.to_string(), charset.clone());
        variables.insert(VARIABLE_COLLATION_SERVER.to_string(), collation.clone());
        if options.read_only {
            variables.insert(VARIABLE_READ_ONLY.to_string(), "1".to_string());
        }
        let mut whitelist = options.whitelist.clone().unwrap_or_default();
        for (def, value) in checked_variables {
            if def.name == VARIABLE_WHITELIST {
                if options.whitelist.is_none() {
                    whitelist = value;
                }
            } else {
                variables.insert(def.name.to_string(), value);
            }
        }
        let whitelist = ValueKind::Whitelist
            .normalize(&catalog::merge_whitelist(&whitelist), BoolStyle::Digit)
            .map_err(|reason| ClusterError::VariableInvalid {
                name: VARIABLE_WHITELIST.to_string(),
                reason,
            })?;
        variables.insert(VARIABLE_WHITELIST.to_string(), whitelist);
        let read_only = variables
            .get(VARIABLE_READ_ONLY)
            .is_some_and(|value| value == "1");
        let root_password = options
            .root_password
            .as_ref()
            .map(|secret| secret.expose())
            .filter(|password| !password.is_empty())
            .map(|password| password::new_verifier(password, kdf_iterations));
        Ok(TenantSettings {
            mode: options.mode,
            charset,
            collation,
            comment: options.comment.clone(),
            read_only,
            variables,
            parameters,
            root_password,
        })
    }
}

/// Checks create-tenant options as [`TenantService::create_tenant_with`] does
/// (charset and collation, variables at creation, parameters, whitelist), writing
/// nothing; the root password is not looked at.
///
/// # Errors
/// As [`TenantSettings::new`].
pub fn check_tenant_options(options: &TenantOptions) -> ClusterResult<()> {
    let without_password = TenantOptions {
        root_password: None,
        ..options.clone()
    };
    TenantSettings::new(&without_password, 1).map(|_| ())
}

/// Which statuses a write accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    Normal,
    NormalOrRestore,
}

/// Refuses a tenant in the recycle bin, DROPPING, or of a status `accept` excludes.
fn check_state(tenant: &Tenant, accept: Accept) -> ClusterResult<()> {
    let expected = match accept {
        Accept::Normal => "NORMAL",
        Accept::NormalOrRestore => "NORMAL or RESTORE",
    };
    let refuse = |actual: &str| {
        Err(ClusterError::TenantState {
            name: tenant.name.clone(),
            actual: actual.to_string(),
            expected: expected.to_string(),
        })
    };
    if tenant.in_recyclebin() {
        return refuse("in the recycle bin");
    }
    match (tenant.status, accept) {
        (TenantStatus::Normal, _) | (TenantStatus::Restore, Accept::NormalOrRestore) => Ok(()),
        (status, _) => refuse(status.as_str()),
    }
}

/// A [`ClusterResult`] inside a transaction: its error aborts it.
fn check<R>(result: ClusterResult<R>) -> TxResult<R> {
    result.map_err(ConflictableTransactionError::Abort)
}

/// The tenant named `name` (its current name, or its recycle-bin object name).
fn tx_tenant(tx: &Tx<'_>, name: &str) -> TxResult<Tenant> {
    let not_found = || ClusterError::TenantNotFound(name.to_string());
    let Some(id) = tx.tenant_id_by_name(name)? else {
        return abort(not_found());
    };
    match tx.tenant_by_id(id)? {
        Some(tenant) => Ok(tenant),
        None => abort(not_found()),
    }
}

fn tenant_named(cluster: &SledCluster, name: &str) -> ClusterResult<Tenant> {
    cluster
        .tenant(name)?
        .ok_or_else(|| ClusterError::TenantNotFound(name.to_string()))
}

// ---- locality and primary zone rules (obshell's executor/zone/check.go) ----

/// obshell's `CheckPrimaryZone` ([`crate::param::check_primary_zone`]) over the
/// tenant's zones.
fn check_primary_zone(primary_zone: &str, zones: &[TenantZone]) -> ClusterResult<()> {
    let names: Vec<String> = zones.iter().map(|zone| zone.zone.clone()).collect();
    crate::param::check_primary_zone(primary_zone, &names).map_err(|err| match err {
        RestoreParamError::PrimaryZoneInvalid {
            primary_zone,
            reason,
        } => ClusterError::PrimaryZoneInvalid {
            primary_zone,
            reason,
        },
        other => ClusterError::InvalidTenant {
            name: String::new(),
            reason: other.to_string(),
        },
    })
}

/// obshell's `GetFirstPriorityPrimaryZone`: the FULL zones of the first group of
/// `primary_zone` that has any (all FULL zones for `RANDOM`).
fn first_priority_zones(zones: &[TenantZone], primary_zone: &str) -> BTreeSet<String> {
    let is_full = |name: &str| {
        zones
            .iter()
            .any(|zone| zone.zone == name && zone.replica_type == ReplicaType::Full)
    };
    if primary_zone == RANDOM {
        return zones
            .iter()
            .filter(|zone| zone.replica_type == ReplicaType::Full)
            .map(|zone| zone.zone.clone())
            .collect();
    }
    primary_zone
        .split(';')
        .map(|group| {
            group
                .split(',')
                .filter(|zone| is_full(zone))
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
        })
        .find(|group| !group.is_empty())
        .unwrap_or_default()
}

/// A change of the first-priority zones needs `enable_rebalance`.
fn check_first_priority(
    tenant: &Tenant,
    before: BTreeSet<String>,
    after: BTreeSet<String>,
    operation: &str,
) -> ClusterResult<()> {
    if before != after && !tenant.rebalance_enabled() {
        return Err(ClusterError::RebalanceDisabled {
            operation: operation.to_string(),
        });
    }
    Ok(())
}

/// obshell's paxos rule for a locality change: at least one FULL replica stays, and
/// several FULL replicas do not shrink to one.
fn check_full_replicas(before: &[TenantZone], after: &[TenantZone]) -> ClusterResult<()> {
    let full = |zones: &[TenantZone]| {
        zones
            .iter()
            .filter(|zone| zone.replica_type == ReplicaType::Full)
            .count()
    };
    let (previous, current) = (full(before), full(after));
    if current < 1 || (current == 1 && previous > 1) {
        return Err(ClusterError::LocalityPrincipalNotAllowed);
    }
    Ok(())
}

/// obshell's `CheckPrimaryZoneAndLocality`: the first-priority zones (all zones for
/// `RANDOM`) share one region, and if the locality spans regions, that region holds at
/// least 2 FULL replicas.
fn check_primary_zone_and_locality(
    tx: &Tx<'_>,
    primary_zone: &str,
    zones: &[TenantZone],
) -> TxResult<()> {
    let region = |name: &str| -> TxResult<String> {
        Ok(tx
            .get::<Zone>(T::Zones, name.as_bytes())?
            .map(|zone| zone.region)
            .unwrap_or_default())
    };
    let first: Vec<String> = if primary_zone == RANDOM {
        zones.iter().map(|zone| zone.zone.clone()).collect()
    } else {
        primary_zone
            .split(';')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let Some(first_zone) = first.first() else {
        return Ok(());
    };
    let first_region = region(first_zone)?;
    for zone in &first[1..] {
        if region(zone)? != first_region {
            return abort(ClusterError::PrimaryZoneCrossRegion(
                primary_zone.to_string(),
            ));
        }
    }
    let mut multi_region = false;
    let mut full_replicas = 0;
    for zone in zones {
        if region(&zone.zone)? == first_region {
            if zone.replica_type == ReplicaType::Full {
                full_replicas += 1;
            }
        } else {
            multi_region = true;
        }
    }
    if multi_region && full_replicas < 2 {
        return abort(ClusterError::PrimaryRegionFullReplicaNotEnough {
            region: first_region,
            full_replicas,
        });
    }
    Ok(())
}

// ---- the tenant's pools, changed inside one transaction ----

/// The pools of one tenant while a transaction changes them; [`TenantPools::save`]
/// writes them back and removes the ones split or dropped.
struct TenantPools {
    pools: Vec<ResourcePool>,
    removed: Vec<String>,
}

impl TenantPools {
    fn load(tx: &Tx<'_>, tenant: &Tenant) -> TxResult<TenantPools> {
        let mut pools = Vec::with_capacity(tenant.pool_names.len());
        for name in &tenant.pool_names {
            match tx.get::<ResourcePool>(T::Pools, name.as_bytes())? {
                Some(pool) => pools.push(pool),
                None => {
                    return abort(corrupt(
                        T::Tenants,
                        format!(
                            "tenant '{}' lists missing resource pool '{name}'",
                            tenant.name
                        ),
                    ))
                }
            }
        }
        Ok(TenantPools {
            pools,
            removed: Vec::new(),
        })
    }

    /// The tenant's unit num (obshell's `GetTenantUnitNum`: its pools agree on it).
    fn unit_num(&self) -> u32 {
        self.pools.first().map_or(0, |pool| pool.unit_num)
    }

    fn covering(&self, zone: &str) -> Option<&ResourcePool> {
        self.pools
            .iter()
            .find(|pool| pool.zone_list.iter().any(|pool_zone| pool_zone == zone))
    }

    /// `base`, or `base_2`, `base_3`, ... if a pool has that name.
    fn unique_name(&self, tx: &Tx<'_>, base: &str) -> TxResult<String> {
        let mut candidate = base.to_string();
        let mut suffix = 2;
        while tx.tree(T::Pools).get(candidate.as_bytes())?.is_some()
            || self.pools.iter().any(|pool| pool.name == candidate)
        {
            candidate = format!("{base}_{suffix}");
            suffix += 1;
        }
        Ok(candidate)
    }

    /// Replaces the multi-zone pool at `index` by one pool per zone, each keeping its
    /// units (OceanBase's `ALTER RESOURCE POOL .. SPLIT INTO`, named as obshell names
    /// them: `<tenant id>_<zone>_<unix seconds>`).
    fn split(&mut self, tx: &Tx<'_>, index: usize, now: DateTime<Utc>) -> TxResult<()> {
        let pool = self.pools.remove(index);
        let tenant_id = pool.tenant_id.unwrap_or_default();
        for (offset, zone) in pool.zone_list.iter().enumerate() {
            let name = self.unique_name(tx, &format!("{tenant_id}_{zone}_{}", now.timestamp()))?;
            let part = ResourcePool {
                id: tx.next_id("pool_id", 1001, 1)?,
                name,
                unit_config_name: pool.unit_config_name.clone(),
                unit_num: pool.unit_num,
                zone_list: vec![zone.clone()],
                tenant_id: pool.tenant_id,
                creator: pool.creator.clone(),
                units: pool
                    .units
                    .iter()
                    .filter(|unit| &unit.zone == zone)
                    .cloned()
                    .collect(),
                created_at: now,
            };
            self.pools.insert(index + offset, part);
        }
        self.removed.push(pool.name);
        Ok(())
    }

    /// Drops the pool at `index` and gives its units' capacity back.
    fn drop_pool(&mut self, tx: &Tx<'_>, index: usize) -> TxResult<()> {
        let pool = self.pools.remove(index);
        for unit in &pool.units {
            release_unit(tx, unit)?;
        }
        self.removed.push(pool.name);
        Ok(())
    }

    fn save(self, tx: &Tx<'_>, tenant: &mut Tenant) -> TxResult<()> {
        for name in &self.removed {
            tx.remove(T::Pools, name.as_bytes())?;
        }
        for pool in &self.pools {
            tx.put(T::Pools, pool.name.as_bytes(), pool)?;
        }
        tenant.pool_names = self.pools.into_iter().map(|pool| pool.name).collect();
        Ok(())
    }
}

/// Resizes `unit` to `config` on its server, charging or freeing the difference.
fn resize_unit(tx: &Tx<'_>, unit: &mut Unit, config: &UnitConfig) -> TxResult<()> {
    let Some(mut server) = tx.get::<Server>(T::Servers, unit.server.as_bytes())? else {
        return abort(corrupt(
            T::Pools,
            format!("unit {} is on missing server '{}'", unit.id, unit.server),
        ));
    };
    let cpu_free = server.cpu_free() + unit.max_cpu;
    let memory_free = server.memory_free() + unit.memory_size;
    if cpu_free + CPU_EPSILON < config.max_cpu || memory_free < config.memory_size {
        return abort(ClusterError::MachineResourceNotEnough {
            zone: unit.zone.clone(),
        });
    }
    server.cpu_assigned = round_cpu((server.cpu_assigned - unit.max_cpu + config.max_cpu).max(0.0));
    server.memory_assigned = server
        .memory_assigned
        .saturating_sub(unit.memory_size)
        .saturating_add(config.memory_size);
    tx.put(T::Servers, unit.server.as_bytes(), &server)?;
    unit.max_cpu = config.max_cpu;
    unit.min_cpu = config.min_cpu;
    unit.memory_size = config.memory_size;
    Ok(())
}

/// Gives every zone of `pool` `unit_num` units: new ones on free servers, or the
/// newest ones dropped.
fn set_unit_num(tx: &Tx<'_>, pool: &mut ResourcePool, unit_num: u32) -> TxResult<()> {
    let Some(config) = tx.get::<UnitConfig>(T::UnitConfigs, pool.unit_config_name.as_bytes())?
    else {
        return abort(ClusterError::UnitConfigNotFound(
            pool.unit_config_name.clone(),
        ));
    };
    let wanted = unit_num as usize;
    for zone in pool.zone_list.clone() {
        let mut in_zone: Vec<Unit> = pool
            .units
            .iter()
            .filter(|unit| unit.zone == zone)
            .cloned()
            .collect();
        if in_zone.len() < wanted {
            let occupied: Vec<String> = in_zone.iter().map(|unit| unit.server.clone()).collect();
            let added = place_units(tx, &zone, &config, wanted - in_zone.len(), &occupied)?;
            pool.units.extend(added);
        } else if in_zone.len() > wanted {
            let surplus = in_zone.len() - wanted;
            in_zone.sort_by_key(|unit| std::cmp::Reverse(unit.id));
            in_zone.truncate(surplus);
            for unit in &in_zone {
                release_unit(tx, unit)?;
            }
            pool.units
                .retain(|unit| !in_zone.iter().any(|gone| gone.id == unit.id));
        }
    }
    pool.unit_num = unit_num;
    Ok(())
}

// ---- the operations ----

pub(super) fn rename_tenant(
    cluster: &SledCluster,
    name: &str,
    new_name: &str,
) -> ClusterResult<Tenant> {
    if new_name.is_empty() {
        return Err(ClusterError::TenantNameEmpty);
    }
    check_tenant_name(new_name).map_err(|err| match err {
        RestoreParamError::TenantNameInvalid { name, reason } => {
            ClusterError::TenantNameInvalid { name, reason }
        }
        _ => ClusterError::TenantNameEmpty,
    })?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        if tenant.name == new_name {
            return Ok(tenant);
        }
        // The unfinished restore job is found by the tenant's name.
        if let Some(job_id) = tx.get_u64(T::JobActive, tenant.name.as_bytes())? {
            return abort(ClusterError::RestoreJobConflict {
                tenant: tenant.name.clone(),
                job_id,
            });
        }
        if tx.tenant_id_by_name(new_name)?.is_some() {
            return abort(ClusterError::TenantExists(new_name.to_string()));
        }
        tx.remove(T::TenantNames, tenant.name.as_bytes())?;
        tx.put_u64(T::TenantNames, new_name.as_bytes(), tenant.id)?;
        tenant.name = new_name.to_string();
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(tenant)
    })
}

pub(super) fn set_primary_zone(
    cluster: &SledCluster,
    name: &str,
    primary_zone: &str,
    write: Write,
) -> ClusterResult<Tenant> {
    let primary_zone = normalize_primary_zone(Some(primary_zone));
    let now = cluster.clock.now();
    cluster.write(write, |tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        check(check_primary_zone(&primary_zone, &tenant.zone_list))?;
        if tenant.primary_zone == primary_zone {
            return Ok(tenant);
        }
        check(check_first_priority(
            &tenant,
            first_priority_zones(&tenant.zone_list, &tenant.primary_zone),
            first_priority_zones(&tenant.zone_list, &primary_zone),
            "Change first priority zone of primary zone",
        ))?;
        check_primary_zone_and_locality(tx, &primary_zone, &tenant.zone_list)?;
        tenant.primary_zone = primary_zone.clone();
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(tenant)
    })
}

/// obshell's `StaticCheckForZoneParams` for a scale-out.
fn check_replica_specs(zones: &[ReplicaSpec]) -> ClusterResult<()> {
    if zones.is_empty() {
        return Err(ClusterError::ZoneListEmpty);
    }
    for (index, spec) in zones.iter().enumerate() {
        if zones[..index]
            .iter()
            .any(|earlier| earlier.zone == spec.zone)
        {
            return Err(ClusterError::ZoneRepeated(spec.zone.clone()));
        }
        if spec.unit_config_name.trim().is_empty() {
            return Err(ClusterError::UnitConfigNameEmpty);
        }
        if spec.unit_num == 0 {
            return Err(ClusterError::UnitNumInvalid {
                unit_num: 0,
                reason: "unit num should be greater than 0".to_string(),
            });
        }
        if spec.unit_num != zones[0].unit_num {
            return Err(ClusterError::UnitNumInconsistent);
        }
    }
    Ok(())
}

pub(super) fn add_replicas(
    cluster: &SledCluster,
    name: &str,
    zones: &[ReplicaSpec],
    creator: &str,
    write: Write,
) -> ClusterResult<Tenant> {
    check_replica_specs(zones)?;
    let now = cluster.clock.now();
    cluster.write(write, |tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        for spec in zones {
            let Some(zone) = tx.get::<Zone>(T::Zones, spec.zone.as_bytes())? else {
                return abort(ClusterError::ZoneNotFound(spec.zone.clone()));
            };
            if tx
                .tree(T::UnitConfigs)
                .get(spec.unit_config_name.as_bytes())?
                .is_none()
            {
                return abort(ClusterError::UnitConfigNotFound(
                    spec.unit_config_name.clone(),
                ));
            }
            if zone.servers.len() < spec.unit_num as usize {
                return abort(ClusterError::UnitNumExceedsServers {
                    unit_num: spec.unit_num,
                    servers: zone.servers.len(),
                    zone: spec.zone.clone(),
                });
            }
        }
        let pools = TenantPools::load(tx, &tenant)?;
        let mut to_add = Vec::new();
        for spec in zones {
            let Some(existing) = tenant.zone_list.iter().find(|zone| zone.zone == spec.zone) else {
                to_add.push(spec);
                continue;
            };
            let added_before = pools.covering(&spec.zone).is_some_and(|pool| {
                pool.zone_list == [spec.zone.clone()]
                    && pool.creator.as_deref() == Some(creator)
                    && pool.unit_config_name == spec.unit_config_name
                    && pool.unit_num == spec.unit_num
            });
            if !(added_before && existing.replica_type == spec.replica_type) {
                return abort(ClusterError::ZoneAlreadyHasReplica(spec.zone.clone()));
            }
        }
        if to_add.is_empty() {
            return Ok(tenant);
        }
        if !pools.pools.is_empty() && pools.unit_num() != to_add[0].unit_num {
            return abort(ClusterError::UnitNumInconsistent);
        }
        for spec in &to_add {
            if pools.covering(&spec.zone).is_some() {
                return abort(ClusterError::HasPoolOnZone(spec.zone.clone()));
            }
        }
        let mut zone_list = tenant.zone_list.clone();
        zone_list.extend(to_add.iter().map(|spec| TenantZone {
            zone: spec.zone.clone(),
            replica_type: spec.replica_type,
        }));
        check(check_first_priority(
            &tenant,
            first_priority_zones(&tenant.zone_list, &tenant.primary_zone),
            first_priority_zones(&zone_list, &tenant.primary_zone),
            "Change first priority zone of locality",
        ))?;
        check_primary_zone_and_locality(tx, &tenant.primary_zone, &zone_list)?;
        for spec in &to_add {
            let pool_name = pools.unique_name(
                tx,
                &format!("{}_{}_{}", tenant.name, spec.zone, now.timestamp()),
            )?;
            let pool_spec = super::model::PoolSpec {
                name: pool_name,
                unit_config_name: spec.unit_config_name.clone(),
                unit_num: spec.unit_num,
                zone_list: vec![spec.zone.clone()],
            };
            let mut pool = create_pool(tx, &pool_spec, creator, now)?;
            pool.tenant_id = Some(tenant.id);
            tx.put(T::Pools, pool.name.as_bytes(), &pool)?;
            tenant.pool_names.push(pool.name);
        }
        tenant.zone_list = zone_list;
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(tenant)
    })
}

pub(super) fn remove_replicas(
    cluster: &SledCluster,
    name: &str,
    zones: &[String],
    write: Write,
) -> ClusterResult<Tenant> {
    let now = cluster.clock.now();
    cluster.write(write, |tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        let removing: Vec<&str> = tenant
            .zone_list
            .iter()
            .map(|zone| zone.zone.as_str())
            .filter(|zone| zones.iter().any(|asked| asked == zone))
            .collect();
        if removing.is_empty() {
            return Ok(tenant);
        }
        if removing.len() == tenant.zone_list.len() {
            if removing.len() == 1 {
                return abort(ClusterError::ReplicaOnlyOne(tenant.name.clone()));
            }
            return abort(ClusterError::ReplicaDeleteAll);
        }
        let zone_list: Vec<TenantZone> = tenant
            .zone_list
            .iter()
            .filter(|zone| !removing.contains(&zone.zone.as_str()))
            .cloned()
            .collect();
        check(check_full_replicas(&tenant.zone_list, &zone_list))?;
        check(check_primary_zone(&tenant.primary_zone, &zone_list))?;
        check(check_first_priority(
            &tenant,
            first_priority_zones(&tenant.zone_list, &tenant.primary_zone),
            first_priority_zones(&zone_list, &tenant.primary_zone),
            "Change first priority zone of locality",
        ))?;
        check_primary_zone_and_locality(tx, &tenant.primary_zone, &zone_list)?;
        let mut pools = TenantPools::load(tx, &tenant)?;
        let mut index = 0;
        while index < pools.pools.len() {
            let pool = &pools.pools[index];
            if !pool
                .zone_list
                .iter()
                .any(|zone| removing.contains(&zone.as_str()))
            {
                index += 1;
            } else if pool.zone_list.len() > 1 {
                pools.split(tx, index, now)?;
            } else {
                pools.drop_pool(tx, index)?;
            }
        }
        pools.save(tx, &mut tenant)?;
        tenant.zone_list = zone_list;
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(tenant)
    })
}

pub(super) fn modify_replicas(
    cluster: &SledCluster,
    name: &str,
    zones: &[ReplicaModify],
    write: Write,
) -> ClusterResult<Tenant> {
    if zones.is_empty() {
        return Err(ClusterError::ZoneListEmpty);
    }
    let now = cluster.clock.now();
    cluster.write(write, |tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        for change in zones {
            if !tenant.zone_list.iter().any(|zone| zone.zone == change.zone) {
                return abort(ClusterError::ZoneWithoutReplica(change.zone.clone()));
            }
        }
        let mut unit_num: Option<u32> = None;
        let mut zones_with_unit_num = 0;
        let mut configs: BTreeMap<String, UnitConfig> = BTreeMap::new();
        for (index, change) in zones.iter().enumerate() {
            if zones[..index]
                .iter()
                .any(|earlier| earlier.zone == change.zone)
            {
                return abort(ClusterError::ZoneRepeated(change.zone.clone()));
            }
            if let Some(wanted) = change.unit_num {
                if wanted == 0 {
                    return abort(ClusterError::UnitNumInvalid {
                        unit_num: 0,
                        reason: "unit num must be greater than 0".to_string(),
                    });
                }
                let servers = tx
                    .get::<Zone>(T::Zones, change.zone.as_bytes())?
                    .map_or(0, |zone| zone.servers.len());
                if servers < wanted as usize {
                    return abort(ClusterError::UnitNumExceedsServers {
                        unit_num: wanted,
                        servers,
                        zone: change.zone.clone(),
                    });
                }
                if unit_num.is_some_and(|earlier| earlier != wanted) {
                    return abort(ClusterError::UnitNumInconsistent);
                }
                unit_num = Some(wanted);
                zones_with_unit_num += 1;
            }
            if let Some(config_name) = &change.unit_config_name {
                if config_name.trim().is_empty() {
                    return abort(ClusterError::UnitConfigNameEmpty);
                }
                let Some(config) = tx.get::<UnitConfig>(T::UnitConfigs, config_name.as_bytes())?
                else {
                    return abort(ClusterError::UnitConfigNotFound(config_name.clone()));
                };
                configs.insert(change.zone.clone(), config);
            }
        }
        let mut pools = TenantPools::load(tx, &tenant)?;
        let unit_num_change = unit_num.filter(|wanted| *wanted != pools.unit_num());
        if unit_num_change.is_some() {
            if zones_with_unit_num != tenant.zone_list.len() {
                return abort(ClusterError::ModifyUnitNumPartially);
            }
            if !tenant.rebalance_enabled() {
                return abort(ClusterError::RebalanceDisabled {
                    operation: "modify unit num".to_string(),
                });
            }
        }
        let zone_list: Vec<TenantZone> = tenant
            .zone_list
            .iter()
            .map(|zone| {
                let changed = zones
                    .iter()
                    .find(|change| change.zone == zone.zone)
                    .and_then(|change| change.replica_type);
                TenantZone {
                    zone: zone.zone.clone(),
                    replica_type: changed.unwrap_or(zone.replica_type),
                }
            })
            .collect();
        check(check_full_replicas(&tenant.zone_list, &zone_list))?;
        check(check_first_priority(
            &tenant,
            first_priority_zones(&tenant.zone_list, &tenant.primary_zone),
            first_priority_zones(&zone_list, &tenant.primary_zone),
            "Change first priority zone of locality",
        ))?;
        check_primary_zone_and_locality(tx, &tenant.primary_zone, &zone_list)?;

        let mut changed = zone_list != tenant.zone_list;
        tenant.zone_list = zone_list;
        // Unit configs: only zones whose pool has another config change; a pool shared
        // with zones that keep theirs (or go elsewhere) is split first.
        configs.retain(|zone, config| {
            pools
                .covering(zone)
                .is_some_and(|pool| pool.unit_config_name != config.name)
        });
        let mut index = 0;
        while index < pools.pools.len() {
            let pool = &pools.pools[index];
            let targets: BTreeSet<&str> = pool
                .zone_list
                .iter()
                .filter_map(|zone| configs.get(zone).map(|config| config.name.as_str()))
                .collect();
            let covered = pool
                .zone_list
                .iter()
                .filter(|zone| configs.contains_key(*zone))
                .count();
            if targets.is_empty() {
                index += 1;
            } else if targets.len() > 1 || covered != pool.zone_list.len() {
                pools.split(tx, index, now)?;
            } else {
                let config = configs[&pool.zone_list[0]].clone();
                let pool = &mut pools.pools[index];
                for unit in &mut pool.units {
                    resize_unit(tx, unit, &config)?;
                }
                pool.unit_config_name = config.name.clone();
                changed = true;
                index += 1;
            }
        }
        if let Some(wanted) = unit_num_change {
            for pool in &mut pools.pools {
                set_unit_num(tx, pool, wanted)?;
            }
            changed = true;
        }
        if changed || !pools.removed.is_empty() {
            pools.save(tx, &mut tenant)?;
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

pub(super) fn set_variables(
    cluster: &SledCluster,
    name: &str,
    values: &BTreeMap<String, String>,
) -> ClusterResult<Tenant> {
    let checked = catalog::check_variables(values, SetAt::Alter)?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        if tenant.locked && checked.iter().any(|(def, _)| def.needs_tenant_connection) {
            return abort(ClusterError::TenantLocked(tenant.name.clone()));
        }
        let mut changed = false;
        for (def, value) in &checked {
            if tenant.variables.get(def.name) != Some(value) {
                tenant.variables.insert(def.name.to_string(), value.clone());
                changed = true;
            }
        }
        if changed {
            tenant.read_only = tenant
                .variables
                .get(VARIABLE_READ_ONLY)
                .is_some_and(|value| value == "1");
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

pub(super) fn set_parameters(
    cluster: &SledCluster,
    name: &str,
    values: &BTreeMap<String, String>,
) -> ClusterResult<Tenant> {
    let checked = catalog::check_parameters(values)?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::NormalOrRestore))?;
        let mut changed = false;
        for (def, value) in &checked {
            if tenant.parameters.get(def.name) != Some(value) {
                tenant
                    .parameters
                    .insert(def.name.to_string(), value.clone());
                changed = true;
            }
        }
        if changed {
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

/// The checks every root-password write makes: NORMAL and not locked (obshell logs in
/// to the tenant to change or verify it).
fn check_password_writable(tenant: &Tenant) -> ClusterResult<()> {
    check_state(tenant, Accept::Normal)?;
    if tenant.locked {
        return Err(ClusterError::TenantLocked(tenant.name.clone()));
    }
    Ok(())
}

/// Writes `update` of the tenant if its id and stored verifier are still those of
/// `read` (the PBKDF2 work happened outside the transaction); `None` if they changed.
fn write_if_password_unchanged(
    cluster: &SledCluster,
    read: &Tenant,
    update: impl Fn(&mut Tenant),
) -> ClusterResult<Option<Tenant>> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, &read.name)?;
        check(check_password_writable(&tenant))?;
        if tenant.id != read.id || tenant.root_password != read.root_password {
            return Ok(None);
        }
        let before = tenant.clone();
        update(&mut tenant);
        if tenant != before {
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(Some(tenant))
    })
}

pub(super) fn set_root_password(
    cluster: &SledCluster,
    name: &str,
    new: &str,
    old: Option<&str>,
) -> ClusterResult<Tenant> {
    let mut new_verifier: Option<Option<PasswordVerifier>> = None;
    for _ in 0..PASSWORD_ATTEMPTS {
        let tenant = tenant_named(cluster, name)?;
        check_password_writable(&tenant)?;
        let current = tenant.root_password.as_ref();
        if password::is_current(current, new) {
            return Ok(tenant);
        }
        if !password::is_current(current, old.unwrap_or_default()) {
            return Err(ClusterError::RootPasswordIncorrect {
                tenant: tenant.name,
            });
        }
        let verifier = new_verifier
            .get_or_insert_with(|| {
                (!new.is_empty())
                    .then(|| password::new_verifier(new, cluster.password_kdf_iterations))
            })
            .clone();
        let written = write_if_password_unchanged(cluster, &tenant, |tenant| {
            tenant.root_password = verifier.clone();
            tenant.root_password_persisted = false;
        })?;
        if let Some(tenant) = written {
            return Ok(tenant);
        }
    }
    // The password kept changing under us: the old one is no longer current.
    Err(ClusterError::RootPasswordIncorrect {
        tenant: name.to_string(),
    })
}

pub(super) fn persist_root_password(
    cluster: &SledCluster,
    name: &str,
    password: &str,
) -> ClusterResult<Tenant> {
    for _ in 0..PASSWORD_ATTEMPTS {
        let tenant = tenant_named(cluster, name)?;
        check_password_writable(&tenant)?;
        if !password::is_current(tenant.root_password.as_ref(), password) {
            return Err(ClusterError::RootPasswordIncorrect {
                tenant: tenant.name,
            });
        }
        let written = write_if_password_unchanged(cluster, &tenant, |tenant| {
            tenant.root_password_persisted = true;
        })?;
        if let Some(tenant) = written {
            return Ok(tenant);
        }
    }
    Err(ClusterError::RootPasswordIncorrect {
        tenant: name.to_string(),
    })
}

/// obshell's pre-checks: each tenant change a DAG makes is checked in full, in obshell's
/// order, before the DAG is submitted, so that a refusal is a 400 and not a failed DAG.
/// Each returns the tenant as the change would leave it and writes nothing.
impl SledCluster {
    /// [`TenantService::set_primary_zone`], checked only.
    ///
    /// # Errors
    /// As [`TenantService::set_primary_zone`].
    pub fn preview_primary_zone(&self, name: &str, primary_zone: &str) -> ClusterResult<Tenant> {
        set_primary_zone(self, name, primary_zone, Write::Preview)
    }

    /// [`TenantService::add_replicas`], checked only.
    ///
    /// # Errors
    /// As [`TenantService::add_replicas`].
    pub fn preview_add_replicas(
        &self,
        name: &str,
        zones: &[ReplicaSpec],
        creator: &str,
    ) -> ClusterResult<Tenant> {
        add_replicas(self, name, zones, creator, Write::Preview)
    }

    /// [`TenantService::remove_replicas`], checked only.
    ///
    /// # Errors
    /// As [`TenantService::remove_replicas`].
    pub fn preview_remove_replicas(&self, name: &str, zones: &[String]) -> ClusterResult<Tenant> {
        remove_replicas(self, name, zones, Write::Preview)
    }

    /// [`TenantService::modify_replicas`], checked only.
    ///
    /// # Errors
    /// As [`TenantService::modify_replicas`].
    pub fn preview_modify_replicas(
        &self,
        name: &str,
        zones: &[ReplicaModify],
    ) -> ClusterResult<Tenant> {
        modify_replicas(self, name, zones, Write::Preview)
    }
}
