//! `RestoreParam` (the body of `POST /api/v1/tenant/restore`) and its validation.
//!
//! Field names are obshell's. [`RestoreParam::validate`] applies SPEC §4.1's defaults
//! and rules **in SPEC order**, each rule over the whole `zone_list` before the next
//! rule (so a param breaking two rules always reports the earlier rule):
//!
//! 1. tenant name valid and not reserved;
//! 2. tenant does not exist;
//! 3. zone_list not empty;
//! 4. not both timestamp and scn;
//! 5. ha_high_thread_score, then concurrency, in `0..=100`;
//! 6. replica_type FULL or READONLY;
//! 7. no repeated zone;
//! 8. unit_config_name not empty;
//! 9. unit_num > 0, then equal in all zones;
//! 10. zone exists;
//! 11. unit config exists;
//! 12. servers in the zone ≥ unit_num;
//! 13. enough free capacity on those servers;
//! 14. at least one FULL replica;
//! 15. primary_zone zones in zone_list and not repeated;
//! 16. data_backup_uri, then archive_log_uri, of a supported storage type.
//!
//! Tenant names follow obshell (`agent/executor/tenant`): letters, digits and
//! `- _ # ~ +`, no `$`, not `all`/`all_meta`/`all_user` (any case); plus not `sys` (any
//! case, SPEC) and at most 64 characters (OceanBase's `OB_MAX_TENANT_NAME_LENGTH`).

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
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_list: Vec<ZoneParam>,
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

fn null_as_default<'de, D, V>(deserializer: D) -> Result<V, D::Error>
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

/// Why a restore request was refused. Every variant but `Cluster` is a 400 whose
/// message starts with the field it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreParamError {
    #[error("restore_tenant_name: tenant name is empty")]
    TenantNameEmpty,
    #[error("restore_tenant_name: tenant name '{name}' is invalid: {reason}")]
    TenantNameInvalid { name: String, reason: String },
    #[error("restore_tenant_name: tenant '{name}' already exists")]
    TenantExists { name: String },
    #[error("zone_list: zone_list is empty")]
    ZoneListEmpty,
    #[error("timestamp: timestamp and scn cannot be set at the same time")]
    TimestampAndScn,
    #[error("timestamp: '{timestamp}' is outside the SCN range (1970-01-01 to 2262-04-11 UTC)")]
    TimestampOutOfRange { timestamp: String },
    #[error("ha_high_thread_score: {value} is out of range, should be in [0, 100]")]
    HaHighThreadScoreOutOfRange { value: i64 },
    #[error("concurrency: {value} is out of range, should be in [0, 100]")]
    ConcurrencyOutOfRange { value: i64 },
    #[error(
        "zone_list[{index}].replica_type: replica type '{value}' of zone '{zone}' is invalid, should be FULL or READONLY"
    )]
    ReplicaTypeInvalid {
        index: usize,
        zone: String,
        value: String,
    },
    #[error("zone_list[{index}].name: zone '{zone}' is repeated")]
    ZoneRepeated { index: usize, zone: String },
    #[error("zone_list[{index}].unit_config_name: unit config name of zone '{zone}' is empty")]
    UnitConfigNameEmpty { index: usize, zone: String },
    #[error(
        "zone_list[{index}].unit_num: unit num '{unit_num}' of zone '{zone}' is invalid, should be greater than 0"
    )]
    UnitNumInvalid {
        index: usize,
        zone: String,
        unit_num: i64,
    },
    #[error(
        "zone_list[{index}].unit_num: unit num '{unit_num}' of zone '{zone}' differs from '{expected}' of zone '{first_zone}', it should be the same in all zones"
    )]
    UnitNumInconsistent {
        index: usize,
        zone: String,
        unit_num: i64,
        first_zone: String,
        expected: i64,
    },
    #[error("zone_list[{index}].name: zone '{zone}' does not exist")]
    ZoneNotExist { index: usize, zone: String },
    #[error(
        "zone_list[{index}].unit_config_name: unit config '{unit_config_name}' does not exist"
    )]
    UnitConfigNotExist {
        index: usize,
        unit_config_name: String,
    },
    #[error(
        "zone_list[{index}].unit_num: unit num '{unit_num}' is bigger than server num '{servers}' in zone '{zone}'"
    )]
    UnitNumExceedsServers {
        index: usize,
        zone: String,
        unit_num: i64,
        servers: usize,
    },
    #[error("zone_list[{index}]: machine resource '{zone}' is not enough to hold a new unit")]
    MachineResourceNotEnough { index: usize, zone: String },
    #[error("zone_list: at least one zone should have a FULL replica")]
    NoFullReplica,
    #[error("primary_zone: primary zone '{primary_zone}' is invalid: {reason}")]
    PrimaryZoneInvalid {
        primary_zone: String,
        reason: String,
    },
    #[error("{field}: {source}")]
    UriInvalid {
        field: &'static str,
        #[source]
        source: UriError,
    },
    #[error("reading the cluster failed: {0}")]
    Cluster(#[from] ClusterError),
}

impl RestoreParamError {
    /// The request field the error is about (`zone_list[1].unit_num`), `None` for
    /// internal failures.
    pub fn field(&self) -> Option<String> {
        use RestoreParamError::*;
        let zone_field = |index: &usize, name: &str| format!("zone_list[{index}].{name}");
        Some(match self {
            TenantNameEmpty | TenantNameInvalid { .. } | TenantExists { .. } => {
                "restore_tenant_name".to_string()
            }
            ZoneListEmpty | NoFullReplica => "zone_list".to_string(),
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
            PrimaryZoneInvalid { .. } => "primary_zone".to_string(),
            UriInvalid { field, .. } => (*field).to_string(),
            Cluster(_) => return None,
        })
    }

    /// obshell's dotted error code for `error.errCode`.
    pub fn err_code(&self) -> &'static str {
        use RestoreParamError::*;
        match self {
            TenantNameEmpty => "OB.Tenant.Name.Empty",
            TenantNameInvalid { .. } => "OB.Tenant.Name.Invalid",
            TenantExists { .. } => "OB.Tenant.Existed",
            ZoneListEmpty => "OB.Tenant.ZoneList.Empty",
            TimestampAndScn
            | TimestampOutOfRange { .. }
            | HaHighThreadScoreOutOfRange { .. }
            | ConcurrencyOutOfRange { .. } => "Common.IllegalArgument",
            ReplicaTypeInvalid { .. } => "OB.Tenant.Replica.InvalidType",
            ZoneRepeated { .. } => "OB.Tenant.Zone.Repeated",
            UnitConfigNameEmpty { .. } => "OB.Resource.UnitConfig.Name.Empty",
            UnitNumInvalid { .. } => "OB.Tenant.UnitNum.Invalid",
            UnitNumInconsistent { .. } => "OB.Tenant.UnitNum.Inconsistent",
            ZoneNotExist { .. } => "OB.Zone.NotExist",
            UnitConfigNotExist { .. } => "OB.Resource.UnitConfig.NotExist",
            UnitNumExceedsServers { .. } => "OB.Tenant.UnitNum.ExceedsLimit",
            MachineResourceNotEnough { .. } => "OB.Tenant.ResourceNotEnough",
            NoFullReplica => "OB.Tenant.NoPaxosReplica",
            PrimaryZoneInvalid { .. } => "OB.Tenant.PrimaryZone.Invalid",
            UriInvalid { .. } => "OB.Storage.URI.Invalid",
            Cluster(err) => err.err_code(),
        }
    }

    /// HTTP status: 400 for every validation error, the cluster error's status otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            RestoreParamError::Cluster(err) => err.http_status(),
            _ => 400,
        }
    }
}

/// Checks a tenant name by the rules in the module docs.
///
/// # Errors
/// `TenantNameEmpty` or `TenantNameInvalid` with the reason.
pub fn check_tenant_name(name: &str) -> Result<(), RestoreParamError> {
    let invalid = |reason: &str| {
        Err(RestoreParamError::TenantNameInvalid {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return Err(RestoreParamError::TenantNameEmpty);
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

fn check_primary_zone(primary_zone: &str, zones: &[String]) -> Result<(), RestoreParamError> {
    if primary_zone == PRIMARY_ZONE_RANDOM {
        return Ok(());
    }
    let mut seen: Vec<&str> = Vec::new();
    for zone in primary_zone.split(';').flat_map(|group| group.split(',')) {
        let reason = if !zones.iter().any(|name| name == zone) {
            format!("zone '{zone}' is not in zone_list")
        } else if seen.contains(&zone) {
            format!("zone '{zone}' is repeated in primary_zone")
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

fn parse_replica_type(index: usize, zone: &ZoneParam) -> Result<ReplicaType, RestoreParamError> {
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
        _ => Err(RestoreParamError::ReplicaTypeInvalid {
            index,
            zone: zone.name.clone(),
            value: value.to_string(),
        }),
    }
}

fn check_score(
    value: Option<i64>,
    error: fn(i64) -> RestoreParamError,
) -> Result<u32, RestoreParamError> {
    match value {
        None => Ok(0),
        Some(value) if (0..=100).contains(&value) => Ok(value as u32),
        Some(value) => Err(error(value)),
    }
}

impl RestoreParam {
    /// Applies the defaults and validates against `cluster`, in SPEC §4.1 order (see the
    /// module docs).
    ///
    /// # Errors
    /// The first rule broken, as a [`RestoreParamError`] naming its field;
    /// `RestoreParamError::Cluster` when reading the cluster fails.
    pub fn validate(
        self,
        cluster: &dyn TenantService,
    ) -> Result<ValidatedRestore, RestoreParamError> {
        // 1-2. Tenant name.
        check_tenant_name(&self.restore_tenant_name)?;
        if cluster.tenant(&self.restore_tenant_name)?.is_some() {
            return Err(RestoreParamError::TenantExists {
                name: self.restore_tenant_name,
            });
        }
        // 3. Zones given.
        if self.zone_list.is_empty() {
            return Err(RestoreParamError::ZoneListEmpty);
        }
        // 4. Target.
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
        // 5. Thread score, then concurrency.
        let score = match self.ha_high_thread_score {
            None => DEFAULT_HA_HIGH_THREAD_SCORE,
            Some(value) => check_score(Some(value), |value| {
                RestoreParamError::HaHighThreadScoreOutOfRange { value }
            })?,
        };
        let requested_concurrency = check_score(self.concurrency, |value| {
            RestoreParamError::ConcurrencyOutOfRange { value }
        })?;
        // 6. Replica types.
        let replica_types = self
            .zone_list
            .iter()
            .enumerate()
            .map(|(index, zone)| parse_replica_type(index, zone))
            .collect::<Result<Vec<_>, _>>()?;
        // 7. Repeated zones.
        for (index, zone) in self.zone_list.iter().enumerate() {
            if self.zone_list[..index]
                .iter()
                .any(|earlier| earlier.name == zone.name)
            {
                return Err(RestoreParamError::ZoneRepeated {
                    index,
                    zone: zone.name.clone(),
                });
            }
        }
        // 8. Unit config names given.
        for (index, zone) in self.zone_list.iter().enumerate() {
            if zone.unit_config_name.is_empty() {
                return Err(RestoreParamError::UnitConfigNameEmpty {
                    index,
                    zone: zone.name.clone(),
                });
            }
        }
        // 9. Unit num positive, then the same everywhere.
        for (index, zone) in self.zone_list.iter().enumerate() {
            if zone.unit_num <= 0 {
                return Err(RestoreParamError::UnitNumInvalid {
                    index,
                    zone: zone.name.clone(),
                    unit_num: zone.unit_num,
                });
            }
        }
        let first = &self.zone_list[0];
        for (index, zone) in self.zone_list.iter().enumerate() {
            if zone.unit_num != first.unit_num {
                return Err(RestoreParamError::UnitNumInconsistent {
                    index,
                    zone: zone.name.clone(),
                    unit_num: zone.unit_num,
                    first_zone: first.name.clone(),
                    expected: first.unit_num,
                });
            }
        }
        // 10. Zones exist.
        for (index, zone) in self.zone_list.iter().enumerate() {
            if cluster.zone(&zone.name)?.is_none() {
                return Err(RestoreParamError::ZoneNotExist {
                    index,
                    zone: zone.name.clone(),
                });
            }
        }
        // 11. Unit configs exist.
        let mut unit_configs: Vec<UnitConfig> = Vec::with_capacity(self.zone_list.len());
        for (index, zone) in self.zone_list.iter().enumerate() {
            match cluster.unit_config(&zone.unit_config_name)? {
                Some(config) => unit_configs.push(config),
                None => {
                    return Err(RestoreParamError::UnitConfigNotExist {
                        index,
                        unit_config_name: zone.unit_config_name.clone(),
                    })
                }
            }
        }
        // 12. Enough servers.
        let mut servers_by_zone = Vec::with_capacity(self.zone_list.len());
        for (index, zone) in self.zone_list.iter().enumerate() {
            let servers = cluster.servers_in_zone(&zone.name)?;
            if (servers.len() as i64) < zone.unit_num {
                return Err(RestoreParamError::UnitNumExceedsServers {
                    index,
                    zone: zone.name.clone(),
                    unit_num: zone.unit_num,
                    servers: servers.len(),
                });
            }
            servers_by_zone.push(servers);
        }
        // 13. Enough free capacity on them.
        for (index, zone) in self.zone_list.iter().enumerate() {
            let holding = servers_by_zone[index]
                .iter()
                .filter(|server| server.can_hold(&unit_configs[index]))
                .count();
            if (holding as i64) < zone.unit_num {
                return Err(RestoreParamError::MachineResourceNotEnough {
                    index,
                    zone: zone.name.clone(),
                });
            }
        }
        // 14. A FULL replica.
        if !replica_types.contains(&ReplicaType::Full) {
            return Err(RestoreParamError::NoFullReplica);
        }
        // 15. Primary zone.
        let primary_zone = normalize_primary_zone(self.primary_zone.as_deref());
        let zone_names: Vec<String> = self
            .zone_list
            .iter()
            .map(|zone| zone.name.clone())
            .collect();
        check_primary_zone(&primary_zone, &zone_names)?;
        // 16. Storage types.
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

        let concurrency = if requested_concurrency == 0 {
            let max_cpu = unit_configs
                .iter()
                .map(|config| config.max_cpu)
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
        let zone_list = self
            .zone_list
            .iter()
            .zip(replica_types)
            .zip(&unit_configs)
            .map(|((zone, replica_type), config)| ValidatedZone {
                name: zone.name.clone(),
                replica_type,
                unit_config_name: zone.unit_config_name.clone(),
                unit_num: zone.unit_num as u32,
                unit_max_cpu: config.max_cpu,
                unit_memory_size: config.memory_size,
            })
            .collect();
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
            ("", Some("restore_tenant_name: tenant name is empty")),
            ("SYS", Some("restore_tenant_name: tenant name 'SYS' is invalid: the name is reserved")),
            ("all_meta", Some("restore_tenant_name: tenant name 'all_meta' is invalid: the name is reserved")),
            ("a$b", Some("restore_tenant_name: tenant name 'a$b' is invalid: a tenant name containing '$' is not supported")),
            ("a b", Some("restore_tenant_name: tenant name 'a b' is invalid: tenant names may only contain letters, numbers, and special characters (- _ # ~ +)")),
        ];
        for (name, expected) in cases {
            let got = check_tenant_name(name).err().map(|err| err.to_string());
            assert_eq!(got.as_deref(), *expected, "{name}");
        }
        let long = "a".repeat(65);
        assert_eq!(
            check_tenant_name(&long).unwrap_err().to_string(),
            format!("restore_tenant_name: tenant name '{long}' is invalid: a tenant name is at most 64 characters long")
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
