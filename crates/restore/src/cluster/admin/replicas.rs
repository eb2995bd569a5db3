//! A tenant's replicas: scale out (one new pool per added zone), scale in (the removed
//! zones' pools split off and dropped) and modify (replica type, unit config, unit num).
//! Each checks in obshell's order, then changes the locality and the pools in the same
//! transaction; each can also be previewed (checked only) before its DAG is submitted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::locality::{
    check_first_priority, check_full_replicas, check_primary_zone, check_primary_zone_and_locality,
    first_priority_zones,
};
use super::tenant_pools::{resize_unit, set_unit_num, TenantPools};
use super::{check, check_state, tx_tenant, Accept};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{
    PoolSpec, ReplicaModify, ReplicaSpec, Tenant, TenantZone, UnitConfig, Zone,
};
use crate::cluster::sled_store::{abort, create_pool, SledCluster, Tree, Tx, TxResult, Write};

/// obshell's pre-checks: each replica change a DAG makes is checked in full, in
/// obshell's order, before the DAG is submitted, so that a refusal is a 400 and not a
/// failed DAG. Each returns the tenant as the change would leave it and writes nothing.
impl SledCluster {
    /// [`crate::TenantService::add_replicas`], checked only.
    ///
    /// # Errors
    /// As [`crate::TenantService::add_replicas`].
    pub fn preview_add_replicas(
        &self,
        name: &str,
        zones: &[ReplicaSpec],
        creator: &str,
    ) -> ClusterResult<Tenant> {
        add_replicas(self, name, zones, creator, Write::Preview)
    }

    /// [`crate::TenantService::remove_replicas`], checked only.
    ///
    /// # Errors
    /// As [`crate::TenantService::remove_replicas`].
    pub fn preview_remove_replicas(&self, name: &str, zones: &[String]) -> ClusterResult<Tenant> {
        remove_replicas(self, name, zones, Write::Preview)
    }

    /// [`crate::TenantService::modify_replicas`], checked only.
    ///
    /// # Errors
    /// As [`crate::TenantService::modify_replicas`].
    pub fn preview_modify_replicas(
        &self,
        name: &str,
        zones: &[ReplicaModify],
    ) -> ClusterResult<Tenant> {
        modify_replicas(self, name, zones, Write::Preview)
    }
}

// ---- scale out ----

/// [`crate::TenantService::add_replicas`], made or only checked.
pub(in crate::cluster) fn add_replicas(
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
        check_zones_can_host(tx, zones)?;
        let pools = TenantPools::load(tx, &tenant)?;
        let to_add = replicas_to_add(&tenant, &pools, zones, creator)?;
        if to_add.is_empty() {
            return Ok(tenant);
        }
        check_new_replicas_fit_pools(&pools, &to_add)?;
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
        create_replica_pools(tx, &mut tenant, &pools, &to_add, creator, now)?;
        tenant.zone_list = zone_list;
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

/// Each zone exists, its unit config exists, and it has a server per unit.
fn check_zones_can_host(tx: &Tx<'_>, zones: &[ReplicaSpec]) -> TxResult<()> {
    for spec in zones {
        let Some(zone) = tx.get::<Zone>(Tree::Zones, spec.zone.as_bytes())? else {
            return abort(ClusterError::ZoneNotFound(spec.zone.clone()));
        };
        if !tx.contains(Tree::UnitConfigs, spec.unit_config_name.as_bytes())? {
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
    Ok(())
}

/// The zones of `zones` the tenant has no replica in. A zone it has one in counts as
/// added before only if `creator` added it to that spec (a repeated step).
///
/// # Errors
/// `ZoneAlreadyHasReplica` for any other zone the tenant has a replica in.
fn replicas_to_add<'a>(
    tenant: &Tenant,
    pools: &TenantPools,
    zones: &'a [ReplicaSpec],
    creator: &str,
) -> TxResult<Vec<&'a ReplicaSpec>> {
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
    Ok(to_add)
}

/// The new replicas take the tenant's unit num and a zone no pool of it covers.
fn check_new_replicas_fit_pools(pools: &TenantPools, to_add: &[&ReplicaSpec]) -> TxResult<()> {
    if !pools.pools.is_empty() && pools.unit_num() != to_add[0].unit_num {
        return abort(ClusterError::UnitNumInconsistent);
    }
    for spec in to_add {
        if pools.covering(&spec.zone).is_some() {
            return abort(ClusterError::HasPoolOnZone(spec.zone.clone()));
        }
    }
    Ok(())
}

/// One new pool per added zone, named as obshell names them, granted to the tenant.
fn create_replica_pools(
    tx: &Tx<'_>,
    tenant: &mut Tenant,
    pools: &TenantPools,
    to_add: &[&ReplicaSpec],
    creator: &str,
    now: DateTime<Utc>,
) -> TxResult<()> {
    for spec in to_add {
        let pool_name = pools.unique_name(
            tx,
            &format!("{}_{}_{}", tenant.name, spec.zone, now.timestamp()),
        )?;
        let pool_spec = PoolSpec {
            name: pool_name,
            unit_config_name: spec.unit_config_name.clone(),
            unit_num: spec.unit_num,
            zone_list: vec![spec.zone.clone()],
        };
        let mut pool = create_pool(tx, &pool_spec, creator, now)?;
        pool.tenant_id = Some(tenant.id);
        tx.put(Tree::Pools, pool.name.as_bytes(), &pool)?;
        tenant.pool_names.push(pool.name);
    }
    Ok(())
}

// ---- scale in ----

/// [`crate::TenantService::remove_replicas`], made or only checked.
pub(in crate::cluster) fn remove_replicas(
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

// ---- modify ----

/// [`crate::TenantService::modify_replicas`], made or only checked.
pub(in crate::cluster) fn modify_replicas(
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
        let asked = AskedChanges::check(tx, zones)?;
        let mut pools = TenantPools::load(tx, &tenant)?;
        let unit_num_change = asked.unit_num.filter(|wanted| *wanted != pools.unit_num());
        if unit_num_change.is_some() {
            check_unit_num_change(&tenant, asked.zones_with_unit_num)?;
        }
        let zone_list = modified_zone_list(&tenant, zones);
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
        changed |= change_unit_configs(tx, &mut pools, asked.configs, now)?;
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

/// What a modify request asks for beyond replica types, checked per zone.
struct AskedChanges {
    /// The unit num asked for (the same in every zone that asks for one).
    unit_num: Option<u32>,
    /// How many zones ask for a unit num.
    zones_with_unit_num: usize,
    /// The unit config asked for, by zone.
    configs: BTreeMap<String, UnitConfig>,
}

impl AskedChanges {
    /// Checks each zone's change in obshell's order: `ZoneRepeated`, `UnitNumInvalid`,
    /// `UnitNumExceedsServers`, `UnitNumInconsistent`, `UnitConfigNameEmpty`,
    /// `UnitConfigNotFound`.
    fn check(tx: &Tx<'_>, zones: &[ReplicaModify]) -> TxResult<AskedChanges> {
        let mut asked = AskedChanges {
            unit_num: None,
            zones_with_unit_num: 0,
            configs: BTreeMap::new(),
        };
        for (index, change) in zones.iter().enumerate() {
            if zones[..index]
                .iter()
                .any(|earlier| earlier.zone == change.zone)
            {
                return abort(ClusterError::ZoneRepeated(change.zone.clone()));
            }
            if let Some(wanted) = change.unit_num {
                asked.check_unit_num(tx, &change.zone, wanted)?;
            }
            if let Some(config_name) = &change.unit_config_name {
                if config_name.trim().is_empty() {
                    return abort(ClusterError::UnitConfigNameEmpty);
                }
                let Some(config) =
                    tx.get::<UnitConfig>(Tree::UnitConfigs, config_name.as_bytes())?
                else {
                    return abort(ClusterError::UnitConfigNotFound(config_name.clone()));
                };
                asked.configs.insert(change.zone.clone(), config);
            }
        }
        Ok(asked)
    }

    /// `wanted` units in `zone`: more than none, no more than its servers, the same as
    /// the other zones ask for.
    fn check_unit_num(&mut self, tx: &Tx<'_>, zone: &str, wanted: u32) -> TxResult<()> {
        if wanted == 0 {
            return abort(ClusterError::UnitNumInvalid {
                unit_num: 0,
                reason: "unit num must be greater than 0".to_string(),
            });
        }
        let servers = tx
            .get::<Zone>(Tree::Zones, zone.as_bytes())?
            .map_or(0, |zone| zone.servers.len());
        if servers < wanted as usize {
            return abort(ClusterError::UnitNumExceedsServers {
                unit_num: wanted,
                servers,
                zone: zone.to_string(),
            });
        }
        if self.unit_num.is_some_and(|earlier| earlier != wanted) {
            return abort(ClusterError::UnitNumInconsistent);
        }
        self.unit_num = Some(wanted);
        self.zones_with_unit_num += 1;
        Ok(())
    }
}

/// A unit num change names every zone of the tenant and needs `enable_rebalance`.
fn check_unit_num_change(tenant: &Tenant, zones_with_unit_num: usize) -> TxResult<()> {
    if zones_with_unit_num != tenant.zone_list.len() {
        return abort(ClusterError::ModifyUnitNumPartially);
    }
    if !tenant.rebalance_enabled() {
        return abort(ClusterError::RebalanceDisabled {
            operation: "modify unit num".to_string(),
        });
    }
    Ok(())
}

/// The tenant's locality with the replica types `zones` ask for.
fn modified_zone_list(tenant: &Tenant, zones: &[ReplicaModify]) -> Vec<TenantZone> {
    tenant
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
        .collect()
}

/// Gives the zones of `configs` their unit config: only zones whose pool has another
/// config change; a pool shared with zones that keep theirs (or go elsewhere) is split
/// first, and the units of a pool wholly changing are resized in place. Returns
/// whether a pool changed its config.
fn change_unit_configs(
    tx: &Tx<'_>,
    pools: &mut TenantPools,
    mut configs: BTreeMap<String, UnitConfig>,
    now: DateTime<Utc>,
) -> TxResult<bool> {
    configs.retain(|zone, config| {
        pools
            .covering(zone)
            .is_some_and(|pool| pool.unit_config_name != config.name)
    });
    let mut changed = false;
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
    Ok(changed)
}
