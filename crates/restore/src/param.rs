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
    TenantZone,
};
use crate::secret::Secret;

mod rules;

pub(crate) use rules::{check_capacity, check_zone_list, validated_zones, CheckedZone};
pub use rules::{
    check_primary_zone, check_primary_zone_and_locality, check_tenant_name, normalize_primary_zone,
};

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

/// The point a validated restore goes up to, with a timestamp already converted to its
/// SCN. (The planner's request, which may still hold an unparsed timestamp, is
/// [`obrestore_backup::RestoreTarget`]; [`RestorePoint::plan_target`] converts.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestorePoint {
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

impl RestorePoint {
    /// The target SCN, `None` for [`RestorePoint::Latest`].
    pub fn scn(&self) -> Option<u64> {
        match self {
            RestorePoint::Latest => None,
            RestorePoint::Scn { scn } | RestorePoint::Timestamp { scn, .. } => Some(*scn),
        }
    }

    /// What the planner is asked for: the SCN, or the latest restorable point.
    pub fn plan_target(&self) -> obrestore_backup::RestoreTarget {
        match self.scn() {
            Some(scn) => obrestore_backup::RestoreTarget::Scn(obrestore_backup::Scn(scn)),
            None => obrestore_backup::RestoreTarget::Latest,
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
    pub target: RestorePoint,
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

    /// The backup sets' decryption passwords, in clear (for planning and sealing).
    pub fn decryption_passwords(&self) -> Vec<String> {
        self.secrets
            .decryption
            .iter()
            .map(|secret| secret.expose().to_string())
            .collect()
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
    #[error(transparent)]
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
        // 0-3. Binding, tenant and zone list.
        let zones = self.check_tenant_and_zone_list(cluster)?;
        // 4-6. Defaults, target, thread score.
        let target = self.restore_point()?;
        let score = match self.ha_high_thread_score {
            None => DEFAULT_HA_HIGH_THREAD_SCORE,
            Some(value) if (0..=100).contains(&value) => value as u32,
            Some(value) => return Err(RestoreParamError::HaHighThreadScoreOutOfRange { value }),
        };
        // 7-10. Zones, a FULL replica, the primary zone.
        let primary_zone = normalize_primary_zone(self.primary_zone.as_deref());
        let checked = check_zone_list(&self.restore_tenant_name, &zones, &primary_zone, cluster)?;
        // 11. Free capacity (OceanBase, when the pools are created).
        check_capacity(&zones, &checked.found)?;
        // 12-14. What `ALTER SYSTEM RESTORE` refuses.
        check_tenant_name(&self.restore_tenant_name)?;
        let archive_log_uri = self.checked_uris()?;
        let concurrency = self.concurrency_over(&checked.found)?;
        let ha_high_threads = if score == 0 {
            HA_HIGH_THREADS_FOR_ZERO_SCORE
        } else {
            score
        };
        let zone_list = validated_zones(&zones, checked.replica_types, &checked.found);
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

    /// Rules 0-3: the required fields, not `sys`, a new tenant, a zone list. Returns the
    /// zones.
    fn check_tenant_and_zone_list(
        &self,
        cluster: &dyn TenantService,
    ) -> Result<Vec<ZoneParam>, RestoreParamError> {
        let missing = self.missing_required();
        if !missing.is_empty() {
            return Err(RestoreParamError::Required { fields: missing });
        }
        if self.restore_tenant_name == "sys" {
            return Err(RestoreParamError::SysTenant);
        }
        if cluster.tenant(&self.restore_tenant_name)?.is_some() {
            return Err(RestoreParamError::TenantExists {
                name: self.restore_tenant_name.clone(),
            });
        }
        let zones = self.zone_list.clone().unwrap_or_default();
        if zones.is_empty() {
            return Err(RestoreParamError::ZoneListEmpty);
        }
        Ok(zones)
    }

    /// Rule 5: at most one of timestamp and scn (0 is unset); a timestamp in SCN range.
    fn restore_point(&self) -> Result<RestorePoint, RestoreParamError> {
        Ok(match (self.timestamp, self.scn.filter(|scn| *scn != 0)) {
            (Some(_), Some(_)) => return Err(RestoreParamError::TimestampAndScn),
            (None, None) => RestorePoint::Latest,
            (None, Some(scn)) => RestorePoint::Scn { scn },
            (Some(timestamp), None) => {
                let scn = timestamp
                    .timestamp_nanos_opt()
                    .and_then(|nanos| u64::try_from(nanos).ok())
                    .ok_or_else(|| RestoreParamError::TimestampOutOfRange {
                        timestamp: timestamp.to_rfc3339(),
                    })?;
                RestorePoint::Timestamp { timestamp, scn }
            }
        })
    }

    /// Rule 13: both URIs of a supported storage type (data first). Returns the archive
    /// URI, which defaults to the data URI.
    fn checked_uris(&self) -> Result<String, RestoreParamError> {
        let archive_log_uri = match &self.archive_log_uri {
            Some(uri) if !uri.is_empty() => uri.clone(),
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
        Ok(archive_log_uri)
    }

    /// Rule 14 and the default: `concurrency` in `0..=100`; 0 or unset takes the
    /// smallest unit config's max_cpu (at least 1).
    fn concurrency_over(&self, found: &[CheckedZone]) -> Result<u32, RestoreParamError> {
        let requested = match self.concurrency {
            None => 0,
            Some(value) if (0..=100).contains(&value) => value as u32,
            Some(value) => return Err(RestoreParamError::ConcurrencyOutOfRange { value }),
        };
        if requested != 0 {
            return Ok(requested);
        }
        let max_cpu = found
            .iter()
            .map(|zone| zone.unit_config.max_cpu)
            .fold(f64::INFINITY, f64::min);
        Ok((max_cpu.ceil() as u32).clamp(1, 100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
