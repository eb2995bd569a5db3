//! A tenant's resource pools while one transaction changes them: split per zone,
//! units resized to another unit config or added and removed for another unit num,
//! pools dropped. Every unit added is charged to its server and every unit removed or
//! shrunk gives its capacity back, in the same transaction.

use chrono::{DateTime, Utc};

use crate::cluster::error::ClusterError;
use crate::cluster::model::{
    round_cpu, ResourcePool, Server, Tenant, Unit, UnitConfig, CPU_EPSILON,
};
use crate::cluster::sled_store::{abort, corrupt, place_units, release_unit, Tree, Tx, TxResult};

/// The pools of one tenant while a transaction changes them; [`TenantPools::save`]
/// writes them back and removes the ones split or dropped.
pub(super) struct TenantPools {
    pub(super) pools: Vec<ResourcePool>,
    pub(super) removed: Vec<String>,
}

impl TenantPools {
    pub(super) fn load(tx: &Tx<'_>, tenant: &Tenant) -> TxResult<TenantPools> {
        let mut pools = Vec::with_capacity(tenant.pool_names.len());
        for name in &tenant.pool_names {
            match tx.get::<ResourcePool>(Tree::Pools, name.as_bytes())? {
                Some(pool) => pools.push(pool),
                None => {
                    return abort(corrupt(
                        Tree::Tenants,
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
    pub(super) fn unit_num(&self) -> u32 {
        self.pools.first().map_or(0, |pool| pool.unit_num)
    }

    pub(super) fn covering(&self, zone: &str) -> Option<&ResourcePool> {
        self.pools
            .iter()
            .find(|pool| pool.zone_list.iter().any(|pool_zone| pool_zone == zone))
    }

    /// `base`, or `base_2`, `base_3`, ... if a pool has that name.
    pub(super) fn unique_name(&self, tx: &Tx<'_>, base: &str) -> TxResult<String> {
        let mut candidate = base.to_string();
        let mut suffix = 2;
        while tx.contains(Tree::Pools, candidate.as_bytes())?
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
    pub(super) fn split(&mut self, tx: &Tx<'_>, index: usize, now: DateTime<Utc>) -> TxResult<()> {
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
    pub(super) fn drop_pool(&mut self, tx: &Tx<'_>, index: usize) -> TxResult<()> {
        let pool = self.pools.remove(index);
        for unit in &pool.units {
            release_unit(tx, unit)?;
        }
        self.removed.push(pool.name);
        Ok(())
    }

    /// Writes the pools back, removes the ones split or dropped, and gives the tenant
    /// the pools' names.
    pub(super) fn save(self, tx: &Tx<'_>, tenant: &mut Tenant) -> TxResult<()> {
        for name in &self.removed {
            tx.remove(Tree::Pools, name.as_bytes())?;
        }
        for pool in &self.pools {
            tx.put(Tree::Pools, pool.name.as_bytes(), pool)?;
        }
        tenant.pool_names = self.pools.into_iter().map(|pool| pool.name).collect();
        Ok(())
    }
}

/// Resizes `unit` to `config` on its server, charging or freeing the difference.
pub(super) fn resize_unit(tx: &Tx<'_>, unit: &mut Unit, config: &UnitConfig) -> TxResult<()> {
    let Some(mut server) = tx.get::<Server>(Tree::Servers, unit.server.as_bytes())? else {
        return abort(corrupt(
            Tree::Pools,
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
    tx.put(Tree::Servers, unit.server.as_bytes(), &server)?;
    unit.max_cpu = config.max_cpu;
    unit.min_cpu = config.min_cpu;
    unit.memory_size = config.memory_size;
    Ok(())
}

/// Gives every zone of `pool` `unit_num` units: new ones on free servers, or the
/// newest ones dropped.
pub(super) fn set_unit_num(tx: &Tx<'_>, pool: &mut ResourcePool, unit_num: u32) -> TxResult<()> {
    let Some(config) = tx.get::<UnitConfig>(Tree::UnitConfigs, pool.unit_config_name.as_bytes())?
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
