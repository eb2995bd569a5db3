//! `RestoreParam` (the body of `POST /api/v1/tenant/restore`) and its validation.
//!
//! Field names are obshell's. [`RestoreParam::validate`] applies the defaults and the
//! rules in obshell's order (`api/restore_route.go`, `param/restore.go`,
//! `executor/ob/restore.go`, `executor/zone/check.go`), with obshell's messages
//! (`assets/i18n/error/en.json`):
//!
//! 0. binding: `data_backup_uri` and `restore_tenant_name` non-empty, `zone_list` not
//!    null (every failing field is named);
//! 1. `restore_tenant_name` is not `sys`;
//! 2. the tenant does not exist;
//! 3. `zone_list` is not empty;
//! 4. defaults: scn 0 / zero time = unset; primary zone "" or any case of `random` →
//!    `RANDOM`; archive URI = data URI; `ha_high_thread_score` 100;
//! 5. not both timestamp and scn; 6. `ha_high_thread_score` in `0..=100`;
//! 7. per zone, every check on zone *i* before zone *i+1*: repeated zone, empty unit
//!    config name, replica type (FULL or READONLY, any case), `unit_num > 0`, the same
//!    `unit_num` as the zone before;
//! 8. per zone: the zone exists, the unit config exists, the zone has `unit_num` servers;
//! 9. at least one FULL replica;
//! 10. primary zone: its zones are in `zone_list` and not repeated; its first-priority
//!     zones are in one region; with zones in several regions, that region has two FULL
//!     replicas.
//!
//! Then the checks obshell leaves to OceanBase, placed where OceanBase would fail
//! (creating the pools, then running `ALTER SYSTEM RESTORE`):
//!
//! 11. enough free capacity on the zones' servers;
//! 12. tenant name rules of `executor/tenant` (letters, digits and `- _ # ~ +`, no `$`,
//!     not `sys`/`all`/`all_meta`/`all_user` in any case, at most 64 characters);
//! 13. `data_backup_uri`, then `archive_log_uri`, of a supported storage type;
//! 14. `concurrency` in `0..=100`.

use chrono::{DateTime, FixedOffset};
use obrestore_backup::{StorageUri, UriError};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cluster::{
    ClusterError, NewTenant, PoolSpec, ReplicaType, TenantRole, TenantService, TenantStatus,
    TenantZone, UnitConfig,
};
use crate::secret::Secret;

/// `primary_zone` meaning "any zone".
pub const PRIMARY_ZONE_RANDOM: &str = "RANDOM";
/// `ha_high_thread_score` when the request has none (SPEC §4.1).
pub const DEFAULT_HA_HIGH_THREAD_SCORE: u32 = 100;
/// Threads of the `ha_high` pool when `ha_high_thread_score` is 0 (OceanBase's default).
pub const HA_HIGH_THREADS_FOR_ZERO_SCORE: u32 = 8;
/// Longest tenant name accepted.
pub const MAX_TENANT_NAME_LENGTH: usize = 64;

/// One zone of the restored tenant (obshell's `ZoneParam`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneParam {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `FULL` (default) or `READONLY`, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub unit_config_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub unit_num: i64,
}

/// The request body of `POST /api/v1/tenant/restore`, as sent. Missing fields take
/// their zero value here and are reported by [`RestoreParam::validate`], so that every
/// problem comes back as a typed error naming its field; only a wrongly typed value
/// (or a timestamp that is not RFC 3339) fails deserialization.
///
/// `Debug` never shows `decryption` or `kms_encrypt_info`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreParam {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_backup_uri: String,
    /// Defaults to `data_backup_uri` (also when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_log_uri: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub restore_tenant_name: String,
    /// RFC 3339. Also accepted as `time_stamp` (the obshell document's spelling). An
    /// empty string or Go's zero time means unset.
    #[serde(
        default,
        alias = "time_stamp",
        deserialize_with = "deserialize_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// 0 means unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scn: Option<u64>,
    /// Required: `null` or missing is a binding error, `[]` is "zone list is empty".
    #[serde(default)]
    pub zone_list: Option<Vec<ZoneParam>>,
    /// `RANDOM` (default; also for "" and any case of "random") or `z1;z2,z3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_zone: Option<String>,
    /// 0..=100; 0 or unset → the unit config's max_cpu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i64>,
    /// 0..=100, default 100; 0 → 8 threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha_high_thread_score: Option<i64>,
    /// Passwords of the backup sets.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub decryption: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_encrypt_info: Option<Secret>,
}

pub(crate) fn null_as_default<'de, D, V>(deserializer: D) -> Result<V, D::Error>
where
    D: Deserializer<'de>,
    V: Default + Deserialize<'de>,
{
    Ok(Option::<V>::deserialize(deserializer)?.unwrap_or_default())
}

fn deserialize_timestamp<'de, D>(deserializer: D) -> Result<Option<DateTime<FixedOffset>>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|err| {
        serde::de::Error::custom(format!("timestamp '{text}' is not RFC 3339: {err}"))
    })?;
    // Go's zero time.Time, which obshell treats as unset.
    if parsed.timestamp() == -62_135_596_800 && parsed.timestamp_subsec_nanos() == 0 {
        return Ok(None);
    }
    Ok(Some(parsed))
}

/// What the restore goes up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreTarget {
    /// Neither scn nor timestamp: the latest restorable point (max checkpoint).
    Latest,
    Scn {
        scn: u64,
    },
    /// `scn` is the timestamp in nanoseconds since the Unix epoch (SPEC §5.2).
    Timestamp {
        timestamp: DateTime<FixedOffset>,
        scn: u64,
    },
}

impl RestoreTarget {
    /// The target SCN, `None` for [`RestoreTarget::Latest`].
    pub fn scn(&self) -> Option<u64> {
        match self {
            RestoreTarget::Latest => None,
            RestoreTarget::Scn { scn } | RestoreTarget::Timestamp { scn, .. } => Some(*scn),
        }
    }
}

/// A validated zone, with the unit config resources it was checked against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatedZone {
    pub name: String,
    pub replica_type: ReplicaType,
    pub unit_config_name: String,
    pub unit_num: u32,
    pub unit_max_cpu: f64,
    pub unit_memory_size: u64,
}

/// The secrets of a restore. `Debug` shows `***`; it is not serializable, so it cannot
/// end up in a persisted record by accident.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreSecrets {
    pub decryption: Vec<Secret>,
    pub kms_encrypt_info: Option<Secret>,
}

/// A normalized, validated restore request: what the restore DAG stores.
///
/// Serializing it leaves the secrets out (`decryption_count` and
/// `has_kms_encrypt_info` say what there was); after loading it back, re-attach them
/// with [`ValidatedRestore::with_secrets`] from wherever the DAG layer keeps them
/// (memory or encrypted), and check [`ValidatedRestore::secrets_missing`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatedRestore {
    pub data_backup_uri: String,
    pub archive_log_uri: String,
    pub restore_tenant_name: String,
    pub target: RestoreTarget,
    pub zone_list: Vec<ValidatedZone>,
    /// `RANDOM` or the request's `z1;z2,z3`.
    pub primary_zone: String,
    /// Capacity of the `restore_data` pool, already resolved (never 0).
    pub concurrency: u32,
    pub ha_high_thread_score: u32,
    /// Capacity of the `ha_high` pool: the score, or 8 for score 0.
    pub ha_high_threads: u32,
    pub decryption_count: usize,
    pub has_kms_encrypt_info: bool,
    #[serde(skip)]
    secrets: RestoreSecrets,
}

impl ValidatedRestore {
    /// The secrets (empty after deserialization until re-attached).
    pub fn secrets(&self) -> &RestoreSecrets {
        &self.secrets
    }

    /// This restore with `secrets` attached.
    pub fn with_secrets(mut self, secrets: RestoreSecrets) -> ValidatedRestore {
        self.secrets = secrets;
        self
    }

    /// Whether secrets the request had are not attached (e.g. after a restart when the
    /// DAG layer kept them only in memory).
    pub fn secrets_missing(&self) -> bool {
        self.secrets.decryption.len() != self.decryption_count
            || self.secrets.kms_encrypt_info.is_some() != self.has_kms_encrypt_info
    }

    /// obshell's pool name for `zone`: `<tenant>_<zone>_<task_time>`.
    pub fn pool_name(&self, zone: &str, task_time: i64) -> String {
        format!("{}_{zone}_{task_time}", self.restore_tenant_name)
    }

    /// One pool per zone, named by [`ValidatedRestore::pool_name`].
    pub fn pool_specs(&self, task_time: i64) -> Vec<PoolSpec> {
        self.zone_list
            .iter()
            .map(|zone| PoolSpec {
                name: self.pool_name(&zone.name, task_time),
                unit_config_name: zone.unit_config_name.clone(),
                unit_num: zone.unit_num,
                zone_list: vec![zone.name.clone()],
            })
            .collect()
    }

    /// The tenant's locality.
    pub fn tenant_zones(&self) -> Vec<TenantZone> {
        self.zone_list
            .iter()
            .map(|zone| TenantZone {
                zone: zone.name.clone(),
                replica_type: zone.replica_type,
            })
            .collect()
    }

    /// The restoring tenant (status RESTORE, role STANDBY) on `pool_names`.
    pub fn restoring_tenant(&self, pool_names: Vec<String>, data_version: &str) -> NewTenant {
        NewTenant {
            name: self.restore_tenant_name.clone(),
            status: TenantStatus::Restore,
            role: TenantRole::Standby,
            data_version: data_version.to_string(),
            primary_zone: self.primary_zone.clone(),
            zone_list: self.tenant_zones(),
            pool_names,
        }
    }
}

/// Why a restore request was refused: one variant per rule of the module docs, with
/// obshell's message (`assets/i18n/error/en.json`). [`RestoreParamError::field`] names
/// the request field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreParamError {
    /// Required fields missing or empty (obshell's `binding:"required"`).
    #[error("Bind JSON failed: {}", required_message(.fields))]
    Required { fields: Vec<&'static str> },
    /// `restore_tenant_name` is `sys`.
    #[error("System tenant is not allowed to perform this operation")]
    SysTenant,
    #[error("Tenant {name} already exists")]
    TenantExists { name: String },
    #[error("Zone list is empty.")]
    ZoneListEmpty,
    #[error("The input parameter 'timestamp or scn' is illegal: cannot be set at the same time")]
    TimestampAndScn,
    #[error("The input parameter 'timestamp' is illegal: '{timestamp}' is outside the SCN range (1970-01-01 to 2262-04-11 UTC)")]
    TimestampOutOfRange { timestamp: String },
    #[error("The input parameter 'ha_high_thread_score' is illegal: should be in [0, 100]")]
    HaHighThreadScoreOutOfRange { value: i64 },
    #[error("Zone '{zone}' is repeated.")]
    ZoneRepeated { index: usize, zone: String },
    #[error("Unit config name is empty.")]
    UnitConfigNameEmpty { index: usize, zone: String },
    #[error("Replica type '{value}' is not supported")]
    ReplicaTypeInvalid {
        index: usize,
        zone: String,
        value: String,
    },
    #[error("Unit number '{unit_num}' is invalid: unit num should be greater than 0")]
    UnitNumInvalid {
        index: usize,
        zone: String,
        unit_num: i64,
    },
    /// `unit_num` differs from the zone before (`previous_zone`).
    #[error("Unit number is inconsistent, should be the same in all zones.")]
    UnitNumInconsistent {
        index: usize,
        zone: String,
        unit_num: i64,
        previous_zone: String,
        expected: i64,
    },
    #[error("Zone '{zone}' does not exist")]
    ZoneNotExist { index: usize, zone: String },
    #[error("Unit config '{unit_config_name}' does not exist.")]
    UnitConfigNotExist {
        index: usize,
        unit_config_name: String,
    },
    #[error("Unit number '{unit_num}' is bigger than server number '{servers}' in zone '{zone}'.")]
    UnitNumExceedsServers {
        index: usize,
        zone: String,
        unit_num: i64,
        servers: usize,
    },
    #[error("Tenant '{tenant}' has no paxos replica, please check tenant's replica info.")]
    NoFullReplica { tenant: String },
    #[error("Primary zone '{primary_zone}' is invalid: {reason}.")]
    PrimaryZoneInvalid {
        primary_zone: String,
        reason: String,
    },
    #[error("Primary zone '{primary_zone}' crosses regions, please check tenant's primary zone.")]
    PrimaryZoneCrossRegion { primary_zone: String },
    #[error("The region {region} where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only {full} full replicas.")]
    PrimaryRegionFullReplicaNotEnough { region: String, full: usize },
    /// Beyond obshell: OceanBase's `OB_MACHINE_RESOURCE_NOT_ENOUGH` when the pool is
    /// created.
    #[error("machine resource '{zone}' is not enough to hold a new unit")]
    MachineResourceNotEnough { index: usize, zone: String },
    /// Beyond obshell for a restore (obshell applies these rules to created tenants).
    #[error("Tenant name '{name}' is invalid: {reason}")]
    TenantNameInvalid { name: String, reason: String },
    /// Beyond obshell: a storage type OceanBase cannot restore from here.
    #[error("The input parameter '{field}' is illegal: {source}")]
    UriInvalid {
        field: &'static str,
        #[source]
        source: UriError,
    },
    /// Beyond obshell: OceanBase refuses a restore `concurrency` outside `0..=100`.
    #[error("The input parameter 'concurrency' is illegal: {value} is out of range, should be in [0, 100]")]
    ConcurrencyOutOfRange { value: i64 },
    /// A tenant mode the embedded cluster (a community edition) does not have: only
    /// `MYSQL` (obshell refuses `ORACLE` on a community edition).
    #[error("Tenant mode '{mode}' is not supported.")]
    TenantModeNotSupported { mode: String },
    /// A refusal of the cluster's own rules (names, charsets, variables, parameters),
    /// or reading the cluster failed.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
}

/// gin's validation text for the fields, one line each.
fn required_message(fields: &[&'static str]) -> String {
    fields
        .iter()
        .map(|field| {
            format!(
                "Key: '{field}' Error:Field validation for '{field}' failed on the 'required' tag"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl RestoreParamError {
    /// The request field the error is about (`zone_list[1].unit_num`), `None` for
    /// internal failures.
    pub fn field(&self) -> Option<String> {
        use RestoreParamError::*;
        let zone_field = |index: &usize, name: &str| format!("zone_list[{index}].{name}");
        Some(match self {
            Required { fields } => fields.first().copied().unwrap_or_default().to_string(),
            SysTenant | TenantExists { .. } | TenantNameInvalid { .. } => {
                "restore_tenant_name".to_string()
            }
            ZoneListEmpty | NoFullReplica { .. } => "zone_list".to_string(),
            TimestampAndScn | TimestampOutOfRange { .. } => "timestamp".to_string(),
            HaHighThreadScoreOutOfRange { .. } => "ha_high_thread_score".to_string(),
            ConcurrencyOutOfRange { .. } => "concurrency".to_string(),
            ReplicaTypeInvalid { index, .. } => zone_field(index, "replica_type"),
            ZoneRepeated { index, .. } | ZoneNotExist { index, .. } => zone_field(index, "name"),
            UnitConfigNameEmpty { index, .. } | UnitConfigNotExist { index, .. } => {
                zone_field(index, "unit_config_name")
            }
            UnitNumInvalid { index, .. }
            | UnitNumInconsistent { index, .. }
            | UnitNumExceedsServers { index, .. } => zone_field(index, "unit_num"),
            MachineResourceNotEnough { index, .. } => format!("zone_list[{index}]"),
            PrimaryZoneInvalid { .. }
            | PrimaryZoneCrossRegion { .. }
            | PrimaryRegionFullReplicaNotEnough { .. } => "primary_zone".to_string(),
            UriInvalid { field, .. } => (*field).to_string(),
            TenantModeNotSupported { .. } => "mode".to_string(),
            Cluster(_) => return None,
        })
    }
}

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

impl RestoreParam {
    /// The fields obshell's JSON binding requires (`binding:"required"`) that are
    /// missing or empty, in declaration order.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.data_backup_uri.is_empty() {
            missing.push("data_backup_uri");
        }
        if self.restore_tenant_name.is_empty() {
            missing.push("restore_tenant_name");
        }
        if self.zone_list.is_none() {
            missing.push("zone_list");
        }
        missing
    }

    /// Applies the defaults and validates against `cluster`, in obshell's order (see
    /// the module docs).
    ///
    /// # Errors
    /// The first rule broken, as a [`RestoreParamError`] naming its field;
    /// `RestoreParamError::Cluster` when reading the cluster fails.
    pub fn validate(
        self,
        cluster: &dyn TenantService,
    ) -> Result<ValidatedRestore, RestoreParamError> {
        // 0. Binding.
        let missing = self.missing_required();
        if !missing.is_empty() {
            return Err(RestoreParamError::Required { fields: missing });
        }
        let zones = self.zone_list.clone().unwrap_or_default();
        // 1-3. Tenant and zone list.
        if self.restore_tenant_name == "sys" {
            return Err(RestoreParamError::SysTenant);
        }
        if cluster.tenant(&self.restore_tenant_name)?.is_some() {
            return Err(RestoreParamError::TenantExists {
                name: self.restore_tenant_name,
            });
        }
        if zones.is_empty() {
            return Err(RestoreParamError::ZoneListEmpty);
        }
        // 4-6. Defaults, target, thread score.
        let target = match (self.timestamp, self.scn.filter(|scn| *scn != 0)) {
            (Some(_), Some(_)) => return Err(RestoreParamError::TimestampAndScn),
            (None, None) => RestoreTarget::Latest,
            (None, Some(scn)) => RestoreTarget::Scn { scn },
            (Some(timestamp), None) => {
                let scn = timestamp
                    .timestamp_nanos_opt()
                    .and_then(|nanos| u64::try_from(nanos).ok())
                    .ok_or_else(|| RestoreParamError::TimestampOutOfRange {
                        timestamp: timestamp.to_rfc3339(),
                    })?;
                RestoreTarget::Timestamp { timestamp, scn }
            }
        };
        let score = match self.ha_high_thread_score {
            None => DEFAULT_HA_HIGH_THREAD_SCORE,
            Some(value) if (0..=100).contains(&value) => value as u32,
            Some(value) => return Err(RestoreParamError::HaHighThreadScoreOutOfRange { value }),
        };
        // 7-8. Zones.
        let replica_types = check_zones_static(&zones)?;
        let checked = check_zones_in_cluster(&zones, cluster)?;
        // 9. A FULL replica.
        if !replica_types.contains(&ReplicaType::Full) {
            return Err(RestoreParamError::NoFullReplica {
                tenant: self.restore_tenant_name,
            });
        }
        // 10. Primary zone.
        let primary_zone = normalize_primary_zone(self.primary_zone.as_deref());
        let zone_names: Vec<String> = zones.iter().map(|zone| zone.name.clone()).collect();
        check_primary_zone(&primary_zone, &zone_names)?;
        let locality: Vec<(String, ReplicaType, String)> = zones
            .iter()
            .zip(&replica_types)
            .zip(&checked)
            .map(|((zone, replica), found)| (zone.name.clone(), *replica, found.region.clone()))
            .collect();
        check_primary_zone_and_locality(&primary_zone, &locality)?;
        // 11. Free capacity (OceanBase, when the pools are created).
        check_capacity(&zones, &checked)?;
        // 12-14. What `ALTER SYSTEM RESTORE` refuses.
        check_tenant_name(&self.restore_tenant_name)?;
        let archive_log_uri = match self.archive_log_uri {
            Some(uri) if !uri.is_empty() => uri,
            _ => self.data_backup_uri.clone(),
        };
        StorageUri::parse(&self.data_backup_uri).map_err(|source| {
            RestoreParamError::UriInvalid {
                field: "data_backup_uri",
                source,
            }
        })?;
        StorageUri::parse(&archive_log_uri).map_err(|source| RestoreParamError::UriInvalid {
            field: "archive_log_uri",
            source,
        })?;
        let requested_concurrency = match self.concurrency {
            None => 0,
            Some(value) if (0..=100).contains(&value) => value as u32,
            Some(value) => return Err(RestoreParamError::ConcurrencyOutOfRange { value }),
        };

        let concurrency = if requested_concurrency == 0 {
            let max_cpu = checked
                .iter()
                .map(|found| found.unit_config.max_cpu)
                .fold(f64::INFINITY, f64::min);
            (max_cpu.ceil() as u32).clamp(1, 100)
        } else {
            requested_concurrency
        };
        let ha_high_threads = if score == 0 {
            HA_HIGH_THREADS_FOR_ZERO_SCORE
        } else {
            score
        };
        let zone_list = validated_zones(&zones, replica_types, &checked);
        let secrets = RestoreSecrets {
            decryption: self.decryption,
            kms_encrypt_info: self.kms_encrypt_info,
        };
        Ok(ValidatedRestore {
            data_backup_uri: self.data_backup_uri,
            archive_log_uri,
            restore_tenant_name: self.restore_tenant_name,
            target,
            zone_list,
            primary_zone,
            concurrency,
            ha_high_thread_score: score,
            ha_high_threads,
            decryption_count: secrets.decryption.len(),
            has_kms_encrypt_info: secrets.kms_encrypt_info.is_some(),
            secrets,
        })
    }
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

    #[test]
    fn debug_hides_secrets() {
        let param = RestoreParam {
            decryption: vec![Secret::new("hunter2")],
            kms_encrypt_info: Some(Secret::new("kms-key")),
            ..RestoreParam::default()
        };
        let debug = format!("{param:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("kms-key"),
            "{debug}"
        );
    }
}
