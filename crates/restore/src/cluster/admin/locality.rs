//! The locality and primary-zone rules of obshell's `executor/zone/check.go`, shared by
//! the primary-zone change and the replica changes. Each takes the tenant's zones as
//! they would be after the change; none writes anything.

use std::collections::BTreeSet;

use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{ReplicaType, Tenant, TenantZone, Zone};
use crate::cluster::sled_store::{abort, Tree, Tx, TxResult};
use crate::param::RestoreParamError;

/// `primary_zone` meaning "any zone".
const RANDOM: &str = crate::param::PRIMARY_ZONE_RANDOM;

/// obshell's `CheckPrimaryZone` ([`crate::param::check_primary_zone`]) over the
/// tenant's zones.
pub(super) fn check_primary_zone(primary_zone: &str, zones: &[TenantZone]) -> ClusterResult<()> {
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
pub(super) fn first_priority_zones(zones: &[TenantZone], primary_zone: &str) -> BTreeSet<String> {
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
pub(super) fn check_first_priority(
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
pub(super) fn check_full_replicas(
    before: &[TenantZone],
    after: &[TenantZone],
) -> ClusterResult<()> {
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
pub(super) fn check_primary_zone_and_locality(
    tx: &Tx<'_>,
    primary_zone: &str,
    zones: &[TenantZone],
) -> TxResult<()> {
    let region = |name: &str| -> TxResult<String> {
        Ok(tx
            .get::<Zone>(Tree::Zones, name.as_bytes())?
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
