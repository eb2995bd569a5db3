//! Unit configs and resource pools, and the placement of a pool's units on servers.
//!
//! Invariant: a server's `cpu_assigned`, `memory_assigned` and `unit_count` are the sums
//! over the units placed on it; every unit placed is charged ([`place_units`]) and every
//! unit removed is given back ([`release_unit`]) in the same transaction.

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{abort, corrupt, SledCluster, Tree, Tx, TxResult};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{
    round_cpu, NewUnitConfig, PoolSpec, ResourcePool, Server, Unit, UnitConfig, Zone, CPU_EPSILON,
    GIB,
};

impl SledCluster {
    /// All unit configs, by name.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_unit_configs(&self) -> ClusterResult<Vec<UnitConfig>> {
        self.scan(Tree::UnitConfigs)
    }

    /// Creates a unit config (obshell's rules: memory ≥ 1G, max_cpu > 0,
    /// min_cpu ≤ max_cpu, log disk ≥ 2G, max_iops ≥ 1024, min_iops ≤ max_iops).
    ///
    /// # Errors
    /// `InvalidUnitConfig`, `UnitConfigExists`, storage failures.
    #[instrument(skip(self), fields(name = %config.name))]
    pub fn create_unit_config(&self, config: &NewUnitConfig) -> ClusterResult<UnitConfig> {
        let now = self.clock.now();
        self.transact(|tx| insert_unit_config(tx, config, now))
    }

    /// Drops a unit config; `Ok(false)` if it did not exist. (Pool usage is checked just
    /// before the transaction; a pool created concurrently in that window is not seen.)
    ///
    /// # Errors
    /// `UnitConfigInUse` while a pool uses it, storage failures.
    #[instrument(skip(self))]
    pub fn drop_unit_config(&self, name: &str) -> ClusterResult<bool> {
        // Pools cannot be scanned inside a sled transaction; the check runs just before.
        if let Some(pool) = self
            .list_pools()?
            .into_iter()
            .find(|pool| pool.unit_config_name == name)
        {
            return Err(ClusterError::UnitConfigInUse {
                name: name.to_string(),
                pool: pool.name,
            });
        }
        self.transact(|tx| {
            let existed = tx.contains(Tree::UnitConfigs, name.as_bytes())?;
            tx.remove(Tree::UnitConfigs, name.as_bytes())?;
            Ok(existed)
        })
    }

    /// The pool `name`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    pub fn pool(&self, name: &str) -> ClusterResult<Option<ResourcePool>> {
        self.get(Tree::Pools, name.as_bytes())
    }

    /// All pools, by name.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_pools(&self) -> ClusterResult<Vec<ResourcePool>> {
        self.scan(Tree::Pools)
    }
}

/// [`crate::TenantService::unit_config`].
pub(super) fn unit_config(cluster: &SledCluster, name: &str) -> ClusterResult<Option<UnitConfig>> {
    cluster.get(Tree::UnitConfigs, name.as_bytes())
}

/// [`crate::TenantService::create_pools`].
pub(super) fn create_pools(
    cluster: &SledCluster,
    specs: &[PoolSpec],
    creator: &str,
) -> ClusterResult<Vec<ResourcePool>> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        specs
            .iter()
            .map(|spec| create_pool(tx, spec, creator, now))
            .collect()
    })
}

/// [`crate::TenantService::drop_pools`].
pub(super) fn drop_pools(cluster: &SledCluster, names: &[String]) -> ClusterResult<usize> {
    cluster.transact(|tx| {
        let mut dropped = 0;
        for name in names {
            let Some(pool) = tx.get::<ResourcePool>(Tree::Pools, name.as_bytes())? else {
                continue;
            };
            if let Some(tenant_id) = pool.tenant_id {
                if let Some(tenant) = tx.tenant_by_id(tenant_id)? {
                    return abort(ClusterError::PoolGranted {
                        pool: pool.name,
                        tenant: tenant.name,
                    });
                }
            }
            for unit in &pool.units {
                release_unit(tx, unit)?;
            }
            tx.remove(Tree::Pools, name.as_bytes())?;
            dropped += 1;
        }
        Ok(dropped)
    })
}

/// Applies obshell's unit config rules and OceanBase's defaults.
/// The largest CPU count of a unit config (2^20 cores): sums over every unit of a
/// cluster stay exact and finite.
const MAX_UNIT_CPU: f64 = 1_048_576.0;

/// The largest memory of a unit config (1 PiB; its log disk may be 3 times that):
/// capacity sums over every unit of a cluster cannot overflow.
const MAX_UNIT_BYTES: u64 = 1 << 50;

fn build_unit_config(config: &NewUnitConfig, now: DateTime<Utc>) -> ClusterResult<UnitConfig> {
    let invalid = |reason: &str| ClusterError::InvalidUnitConfig {
        name: config.name.clone(),
        reason: reason.to_string(),
    };
    if config.name.trim().is_empty() {
        return Err(invalid("name is empty"));
    }
    if config.memory_size < GIB {
        return Err(invalid("memory_size must be at least 1G"));
    }
    if config.memory_size > MAX_UNIT_BYTES {
        return Err(invalid("memory_size must be at most 1P"));
    }
    // Checked after rounding to what is stored: 1e-7 would be stored as 0, 1e308 as an
    // infinity that JSON cannot hold.
    let max_cpu = round_cpu(config.max_cpu);
    if !max_cpu.is_finite() || max_cpu <= 0.0 || max_cpu > MAX_UNIT_CPU {
        return Err(invalid(
            "max_cpu must be greater than 0 and at most 1048576",
        ));
    }
    let min_cpu = round_cpu(config.min_cpu.unwrap_or(config.max_cpu));
    if !min_cpu.is_finite() || min_cpu <= 0.0 || min_cpu > max_cpu + CPU_EPSILON {
        return Err(invalid(
            "min_cpu must be greater than 0 and at most max_cpu",
        ));
    }
    let log_disk_size = config
        .log_disk_size
        .unwrap_or(config.memory_size.saturating_mul(3));
    if log_disk_size < 2 * GIB {
        return Err(invalid("log_disk_size must be at least 2G"));
    }
    if log_disk_size > 3 * MAX_UNIT_BYTES {
        return Err(invalid("log_disk_size must be at most 3P"));
    }
    let max_iops = config.max_iops.unwrap_or(10_000);
    let min_iops = config.min_iops.unwrap_or(max_iops);
    if max_iops < 1024 {
        return Err(invalid("max_iops must be at least 1024"));
    }
    if min_iops > max_iops {
        return Err(invalid("min_iops must be at most max_iops"));
    }
    Ok(UnitConfig {
        id: 0,
        name: config.name.clone(),
        memory_size: config.memory_size,
        max_cpu,
        min_cpu,
        log_disk_size,
        max_iops,
        min_iops,
        created_at: now,
        modified_at: None,
    })
}

/// First `UNIT_CONFIG_ID` (OceanBase numbers user unit configs from 1001).
const FIRST_UNIT_CONFIG_ID: u64 = 1001;

/// The next unit config id.
pub(super) fn next_unit_config_id(tx: &Tx<'_>) -> TxResult<u64> {
    tx.next_id("unit_config_id", FIRST_UNIT_CONFIG_ID, 1)
}

pub(super) fn insert_unit_config(
    tx: &Tx<'_>,
    config: &NewUnitConfig,
    now: DateTime<Utc>,
) -> TxResult<UnitConfig> {
    let mut unit_config = match build_unit_config(config, now) {
        Ok(unit_config) => unit_config,
        Err(err) => return abort(err),
    };
    if tx.contains(Tree::UnitConfigs, unit_config.name.as_bytes())? {
        return abort(ClusterError::UnitConfigExists(unit_config.name));
    }
    unit_config.id = next_unit_config_id(tx)?;
    tx.put(Tree::UnitConfigs, unit_config.name.as_bytes(), &unit_config)?;
    Ok(unit_config)
}

fn check_pool_spec(spec: &PoolSpec) -> ClusterResult<()> {
    let invalid = |reason: String| ClusterError::InvalidPool {
        name: spec.name.clone(),
        reason,
    };
    if spec.name.trim().is_empty() {
        return Err(invalid("name is empty".to_string()));
    }
    if spec.unit_num == 0 {
        return Err(invalid("unit_num must be greater than 0".to_string()));
    }
    if spec.zone_list.is_empty() {
        return Err(invalid("zone_list is empty".to_string()));
    }
    for (index, zone) in spec.zone_list.iter().enumerate() {
        if spec.zone_list[..index].contains(zone) {
            return Err(invalid(format!("zone '{zone}' is repeated")));
        }
    }
    Ok(())
}

/// Creates the pool of `spec` and places its units. A pool of that name that `creator`
/// made to the same spec is returned as is (a repeated step).
///
/// # Errors
/// `InvalidPool`, `PoolExists`, `UnitConfigNotFound`, and what [`place_units`] refuses.
pub(in crate::cluster) fn create_pool(
    tx: &Tx<'_>,
    spec: &PoolSpec,
    creator: &str,
    now: DateTime<Utc>,
) -> TxResult<ResourcePool> {
    if let Err(err) = check_pool_spec(spec) {
        return abort(err);
    }
    if let Some(existing) = tx.get::<ResourcePool>(Tree::Pools, spec.name.as_bytes())? {
        if existing.creator.as_deref() == Some(creator) && existing.spec() == *spec {
            return Ok(existing);
        }
        return abort(ClusterError::PoolExists(spec.name.clone()));
    }
    let Some(unit_config) =
        tx.get::<UnitConfig>(Tree::UnitConfigs, spec.unit_config_name.as_bytes())?
    else {
        return abort(ClusterError::UnitConfigNotFound(
            spec.unit_config_name.clone(),
        ));
    };
    let mut units = Vec::new();
    for zone_name in &spec.zone_list {
        units.extend(place_units(
            tx,
            zone_name,
            &unit_config,
            spec.unit_num as usize,
            &[],
        )?);
    }
    let pool = ResourcePool {
        id: tx.next_id("pool_id", 1001, 1)?,
        name: spec.name.clone(),
        unit_config_name: spec.unit_config_name.clone(),
        unit_num: spec.unit_num,
        zone_list: spec.zone_list.clone(),
        tenant_id: None,
        creator: Some(creator.to_string()),
        units,
        created_at: now,
    };
    tx.put(Tree::Pools, spec.name.as_bytes(), &pool)?;
    Ok(pool)
}

/// Places `count` more units of `unit_config` in zone `zone_name` and charges their
/// servers: on the servers that can hold one and host none of `occupied` (the servers
/// of the pool's units already there), most free memory first, ties by address.
///
/// # Errors
/// `ZoneNotFound`; `UnitNumExceedsServers` when the zone has fewer servers than the
/// pool's units would then number; `MachineResourceNotEnough` when too few servers can
/// hold a unit.
pub(in crate::cluster) fn place_units(
    tx: &Tx<'_>,
    zone_name: &str,
    unit_config: &UnitConfig,
    count: usize,
    occupied: &[String],
) -> TxResult<Vec<Unit>> {
    let Some(zone) = tx.get::<Zone>(Tree::Zones, zone_name.as_bytes())? else {
        return abort(ClusterError::ZoneNotFound(zone_name.to_string()));
    };
    let total = occupied.len() + count;
    if zone.servers.len() < total {
        return abort(ClusterError::UnitNumExceedsServers {
            unit_num: u32::try_from(total).unwrap_or(u32::MAX),
            servers: zone.servers.len(),
            zone: zone_name.to_string(),
        });
    }
    let mut candidates = Vec::new();
    for address in zone
        .servers
        .iter()
        .filter(|address| !occupied.contains(address))
    {
        match tx.get::<Server>(Tree::Servers, address.as_bytes())? {
            Some(server) if server.can_hold(unit_config) => candidates.push(server),
            Some(_) => {}
            None => {
                return abort(corrupt(
                    Tree::Zones,
                    format!("zone '{zone_name}' lists missing server '{address}'"),
                ))
            }
        }
    }
    if candidates.len() < count {
        return abort(ClusterError::MachineResourceNotEnough {
            zone: zone_name.to_string(),
        });
    }
    candidates.sort_by(|a, b| {
        b.memory_free()
            .cmp(&a.memory_free())
            .then_with(|| a.address().cmp(&b.address()))
    });
    let mut units = Vec::with_capacity(count);
    for mut server in candidates.into_iter().take(count) {
        let unit_id = tx.next_id("unit_id", 1001, 1)?;
        server.cpu_assigned = round_cpu(server.cpu_assigned + unit_config.max_cpu);
        server.memory_assigned += unit_config.memory_size;
        server.unit_count += 1;
        tx.put(Tree::Servers, server.address().as_bytes(), &server)?;
        units.push(Unit {
            id: unit_id,
            zone: zone_name.to_string(),
            server: server.address(),
            max_cpu: unit_config.max_cpu,
            min_cpu: unit_config.min_cpu,
            memory_size: unit_config.memory_size,
        });
    }
    Ok(units)
}

/// Gives the resources of `unit` back to its server (a missing server is skipped).
pub(in crate::cluster) fn release_unit(tx: &Tx<'_>, unit: &Unit) -> TxResult<()> {
    let Some(mut server) = tx.get::<Server>(Tree::Servers, unit.server.as_bytes())? else {
        return Ok(());
    };
    server.cpu_assigned = round_cpu((server.cpu_assigned - unit.max_cpu).max(0.0));
    server.memory_assigned = server.memory_assigned.saturating_sub(unit.memory_size);
    server.unit_count = server.unit_count.saturating_sub(1);
    tx.put(Tree::Servers, unit.server.as_bytes(), &server)
}
