//! The validation rules shared by the restore request ([`crate::param`]), the
//! create-tenant request ([`crate::tenant_param`]) and the cluster's own previews:
//! tenant names, primary zones, zone lists and capacity, each in obshell's wording.
//!
//! Invariant: every rule only reads (the cluster through [`TenantService`]); each
//! returns the first problem as a [`RestoreParamError`] naming its field.

use super::{
    RestoreParamError, ValidatedZone, ZoneParam, MAX_TENANT_NAME_LENGTH, PRIMARY_ZONE_RANDOM,
};
use crate::cluster::{ReplicaType, TenantService, UnitConfig};

/// Checks a tenant name by the rules of obshell's `executor/tenant` (rule 12 of the
/// module docs).
///
/// # Errors
/// `TenantNameInvalid` with the reason.
pub fn check_tenant_name(name: &str) -> Result<(), RestoreParamError> {
    let invalid = |reason: &str| {
        Err(RestoreParamError::TenantNameInvalid {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name.contains('$') {
        return invalid("a tenant name containing '$' is not supported");
    }
    let lower = name.to_ascii_lowercase();
    if ["sys", "all", "all_meta", "all_user"].contains(&lower.as_str()) {
        return invalid("the name is reserved");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '#' | '~' | '+'))
    {
        return invalid(
            "tenant names may only contain letters, numbers, and special characters (- _ # ~ +)",
        );
    }
    if name.chars().count() > MAX_TENANT_NAME_LENGTH {
        return invalid("a tenant name is at most 64 characters long");
    }
    Ok(())
}

/// Normalizes `primary_zone`: unset, empty or any case of `random` → `RANDOM`.
pub fn normalize_primary_zone(primary_zone: Option<&str>) -> String {
    match primary_zone {
        None => PRIMARY_ZONE_RANDOM.to_string(),
        Some(zone) if zone.is_empty() || zone.eq_ignore_ascii_case(PRIMARY_ZONE_RANDOM) => {
            PRIMARY_ZONE_RANDOM.to_string()
        }
        Some(zone) => zone.to_string(),
    }
}

/// obshell's `CheckPrimaryZone`: every zone of `primary_zone` is in `zones`, once.
///
/// # Errors
/// `PrimaryZoneInvalid` naming the zone.
pub fn check_primary_zone(primary_zone: &str, zones: &[String]) -> Result<(), RestoreParamError> {
    if primary_zone == PRIMARY_ZONE_RANDOM {
        return Ok(());
    }
    let mut seen: Vec<&str> = Vec::new();
    for zone in primary_zone.split(';').flat_map(|group| group.split(',')) {
        let reason = if !zones.iter().any(|name| name == zone) {
            format!("Zone '{zone}' is not in zone_list")
        } else if seen.contains(&zone) {
            format!("Zone '{zone}' is repeated in primary_zone")
        } else {
            seen.push(zone);
            continue;
        };
        return Err(RestoreParamError::PrimaryZoneInvalid {
            primary_zone: primary_zone.to_string(),
            reason,
        });
    }
    Ok(())
}

/// obshell's `CheckPrimaryZoneAndLocality`: the first-priority zones of the primary
/// zone lie in one region and, when the locality spans several regions, that region
/// holds at least two FULL replicas. `locality` is `(zone, replica type, region)`.
///
/// # Errors
/// `PrimaryZoneCrossRegion`, `PrimaryRegionFullReplicaNotEnough`.
pub fn check_primary_zone_and_locality(
    primary_zone: &str,
    locality: &[(String, ReplicaType, String)],
) -> Result<(), RestoreParamError> {
    let region_of = |zone: &str| {
        locality
            .iter()
            .find(|(name, _, _)| name == zone)
            .map(|(_, _, region)| region.as_str())
            .unwrap_or("")
    };
    let first: Vec<&str> = if primary_zone == PRIMARY_ZONE_RANDOM {
        locality.iter().map(|(zone, _, _)| zone.as_str()).collect()
    } else {
        primary_zone
            .split(';')
            .next()
            .unwrap_or_default()
            .split(',')
            .collect()
    };
    let Some(first_zone) = first.first() else {
        return Ok(());
    };
    let region = region_of(first_zone);
    if first.iter().any(|zone| region_of(zone) != region) {
        return Err(RestoreParamError::PrimaryZoneCrossRegion {
            primary_zone: primary_zone.to_string(),
        });
    }
    if locality.iter().all(|(_, _, other)| other == region) {
        return Ok(());
    }
    let full = locality
        .iter()
        .filter(|(_, replica, other)| other == region && *replica == ReplicaType::Full)
        .count();
    if full < 2 {
        return Err(RestoreParamError::PrimaryRegionFullReplicaNotEnough {
            region: region.to_string(),
            full,
        });
    }
    Ok(())
}

/// obshell's `RenderZoneParams` + `CheckReplicaType`: empty → FULL, otherwise
/// upper-cased FULL or READONLY.
pub(crate) fn parse_replica_type(
    index: usize,
    zone: &ZoneParam,
) -> Result<ReplicaType, RestoreParamError> {
    let Some(value) = zone
        .replica_type
        .as_deref()
        .filter(|value| !value.is_empty())
    else {
        return Ok(ReplicaType::Full);
    };
    match value.to_ascii_uppercase().as_str() {
        "FULL" => Ok(ReplicaType::Full),
        "READONLY" => Ok(ReplicaType::Readonly),
        upper => Err(RestoreParamError::ReplicaTypeInvalid {
            index,
            zone: zone.name.clone(),
            value: upper.to_string(),
        }),
    }
}

/// obshell's `StaticCheckForZoneParams` (rule 7): each zone's checks before the next
/// zone's. Returns the replica types.
pub(crate) fn check_zones_static(
    zones: &[ZoneParam],
) -> Result<Vec<ReplicaType>, RestoreParamError> {
    let mut replica_types = Vec::with_capacity(zones.len());
    for (index, zone) in zones.iter().enumerate() {
        if zones[..index]
            .iter()
            .any(|earlier| earlier.name == zone.name)
        {
            return Err(RestoreParamError::ZoneRepeated {
                index,
                zone: zone.name.clone(),
            });
        }
        if zone.unit_config_name.is_empty() {
            return Err(RestoreParamError::UnitConfigNameEmpty {
                index,
                zone: zone.name.clone(),
            });
        }
        replica_types.push(parse_replica_type(index, zone)?);
        if zone.unit_num <= 0 {
            return Err(RestoreParamError::UnitNumInvalid {
                index,
                zone: zone.name.clone(),
                unit_num: zone.unit_num,
            });
        }
        if let Some(previous) = index.checked_sub(1).map(|i| &zones[i]) {
            if zone.unit_num != previous.unit_num {
                return Err(RestoreParamError::UnitNumInconsistent {
                    index,
                    zone: zone.name.clone(),
                    unit_num: zone.unit_num,
                    previous_zone: previous.name.clone(),
                    expected: previous.unit_num,
                });
            }
        }
    }
    Ok(replica_types)
}

/// What rule 8 found about one zone.
pub(crate) struct CheckedZone {
    pub(crate) region: String,
    pub(crate) unit_config: UnitConfig,
    pub(crate) servers: Vec<crate::cluster::Server>,
}

/// obshell's `CheckZoneParams` (rule 8): per zone, it exists, its unit config exists,
/// it has `unit_num` servers.
pub(crate) fn check_zones_in_cluster(
    zones: &[ZoneParam],
    cluster: &dyn TenantService,
) -> Result<Vec<CheckedZone>, RestoreParamError> {
    let mut checked = Vec::with_capacity(zones.len());
    for (index, zone) in zones.iter().enumerate() {
        let Some(found) = cluster.zone(&zone.name)? else {
            return Err(RestoreParamError::ZoneNotExist {
                index,
                zone: zone.name.clone(),
            });
        };
        let Some(unit_config) = cluster.unit_config(&zone.unit_config_name)? else {
            return Err(RestoreParamError::UnitConfigNotExist {
                index,
                unit_config_name: zone.unit_config_name.clone(),
            });
        };
        let servers = cluster.servers_in_zone(&zone.name)?;
        if (servers.len() as i64) < zone.unit_num {
            return Err(RestoreParamError::UnitNumExceedsServers {
                index,
                zone: zone.name.clone(),
                unit_num: zone.unit_num,
                servers: servers.len(),
            });
        }
        checked.push(CheckedZone {
            region: found.region,
            unit_config,
            servers,
        });
    }
    Ok(checked)
}

/// Free capacity for every unit of `zones` (OceanBase's check when the pools are
/// created; obshell's `CheckResourceEnough`).
///
/// # Errors
/// `MachineResourceNotEnough` for the first zone that cannot hold its units.
pub(crate) fn check_capacity(
    zones: &[ZoneParam],
    checked: &[CheckedZone],
) -> Result<(), RestoreParamError> {
    for (index, (zone, found)) in zones.iter().zip(checked).enumerate() {
        let holding = found
            .servers
            .iter()
            .filter(|server| server.can_hold(&found.unit_config))
            .count();
        if (holding as i64) < zone.unit_num {
            return Err(RestoreParamError::MachineResourceNotEnough {
                index,
                zone: zone.name.clone(),
            });
        }
    }
    Ok(())
}

/// The zones as checked, with the unit config resources they were checked against.
pub(crate) fn validated_zones(
    zones: &[ZoneParam],
    replica_types: Vec<ReplicaType>,
    checked: &[CheckedZone],
) -> Vec<ValidatedZone> {
    zones
        .iter()
        .zip(replica_types)
        .zip(checked)
        .map(|((zone, replica_type), found)| ValidatedZone {
            name: zone.name.clone(),
            replica_type,
            unit_config_name: zone.unit_config_name.clone(),
            unit_num: zone.unit_num as u32,
            unit_max_cpu: found.unit_config.max_cpu,
            unit_memory_size: found.unit_config.memory_size,
        })
        .collect()
}

/// A zone list that passed the zone rules ([`check_zone_list`]).
pub(crate) struct CheckedZones {
    /// Each zone's replica type, in request order.
    pub(crate) replica_types: Vec<ReplicaType>,
    /// What the cluster has for each zone, in request order.
    pub(crate) found: Vec<CheckedZone>,
}

/// The zone rules a restore and a create-tenant request share, in obshell's order: each
/// zone's static checks, then each zone in the cluster, then a FULL replica, then the
/// primary zone over the zones and its region rules. `tenant` names the tenant in
/// `NoFullReplica`; `primary_zone` is already normalized.
///
/// # Errors
/// The first rule broken.
pub(crate) fn check_zone_list(
    tenant: &str,
    zones: &[ZoneParam],
    primary_zone: &str,
    cluster: &dyn TenantService,
) -> Result<CheckedZones, RestoreParamError> {
    let replica_types = check_zones_static(zones)?;
    let found = check_zones_in_cluster(zones, cluster)?;
    if !replica_types.contains(&ReplicaType::Full) {
        return Err(RestoreParamError::NoFullReplica {
            tenant: tenant.to_string(),
        });
    }
    let zone_names: Vec<String> = zones.iter().map(|zone| zone.name.clone()).collect();
    check_primary_zone(primary_zone, &zone_names)?;
    let locality: Vec<(String, ReplicaType, String)> = zones
        .iter()
        .zip(&replica_types)
        .zip(&found)
        .map(|((zone, replica), found)| (zone.name.clone(), *replica, found.region.clone()))
        .collect();
    check_primary_zone_and_locality(primary_zone, &locality)?;
    Ok(CheckedZones {
        replica_types,
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("t1", None),
            ("_t", None),
            ("A-b_c#d~e+f", None),
            ("1abc", None),
            (&"a".repeat(64), None),
            ("", Some("Tenant name '' is invalid: the name is empty")),
            ("SYS", Some("Tenant name 'SYS' is invalid: the name is reserved")),
            ("all_meta", Some("Tenant name 'all_meta' is invalid: the name is reserved")),
            ("a$b", Some("Tenant name 'a$b' is invalid: a tenant name containing '$' is not supported")),
            ("a b", Some("Tenant name 'a b' is invalid: tenant names may only contain letters, numbers, and special characters (- _ # ~ +)")),
        ];
        for (name, expected) in cases {
            let got = check_tenant_name(name).err().map(|err| err.to_string());
            assert_eq!(got.as_deref(), *expected, "{name}");
        }
        let long = "a".repeat(65);
        assert_eq!(
            check_tenant_name(&long).unwrap_err().to_string(),
            format!("Tenant name '{long}' is invalid: a tenant name is at most 64 characters long")
        );
    }

    #[test]
    fn primary_zone_normalization() {
        assert_eq!(normalize_primary_zone(None), "RANDOM");
        assert_eq!(normalize_primary_zone(Some("")), "RANDOM");
        assert_eq!(normalize_primary_zone(Some("rAnDoM")), "RANDOM");
        assert_eq!(normalize_primary_zone(Some("z1;z2,z3")), "z1;z2,z3");
    }
}
