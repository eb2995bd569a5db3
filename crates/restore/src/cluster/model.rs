//! Records of the embedded cluster. These are domain types; the HTTP layer converts
//! them to obshell-shaped DTOs at its boundary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One KiB, MiB, GiB in bytes.
pub const KIB: u64 = 1 << 10;
/// One MiB in bytes.
pub const MIB: u64 = 1 << 20;
/// One GiB in bytes.
pub const GIB: u64 = 1 << 30;

/// Two CPU quantities closer than this are equal (CPU counts are decimals like 0.5).
pub(crate) const CPU_EPSILON: f64 = 1e-6;

/// Rounds a CPU quantity to 6 decimals so repeated add/subtract does not drift.
pub(crate) fn round_cpu(cpu: f64) -> f64 {
    (cpu * 1e6).round() / 1e6
}

/// A zone of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    pub region: String,
    /// Addresses (`ip:port`) of the servers in the zone, in the order they were added.
    pub servers: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A server (observer) with its capacity and what units already take of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub zone: String,
    pub ip: String,
    pub port: u16,
    /// CPU cores.
    pub cpu_capacity: f64,
    /// Bytes.
    pub memory_capacity: u64,
    /// Sum of `max_cpu` of the units placed here.
    pub cpu_assigned: f64,
    /// Sum of `memory_size` of the units placed here.
    pub memory_assigned: u64,
    pub unit_count: u64,
    pub created_at: DateTime<Utc>,
}

impl Server {
    /// `ip:port`, the key of the server.
    pub fn address(&self) -> String {
        server_address(&self.ip, self.port)
    }

    /// CPU cores not yet assigned to a unit.
    pub fn cpu_free(&self) -> f64 {
        round_cpu(self.cpu_capacity - self.cpu_assigned)
    }

    /// Memory bytes not yet assigned to a unit.
    pub fn memory_free(&self) -> u64 {
        self.memory_capacity.saturating_sub(self.memory_assigned)
    }

    /// Whether one more unit of `unit_config` fits in the free capacity.
    pub fn can_hold(&self, unit_config: &UnitConfig) -> bool {
        self.cpu_free() + CPU_EPSILON >= unit_config.max_cpu
            && self.memory_free() >= unit_config.memory_size
    }
}

/// `ip:port`.
pub fn server_address(ip: &str, port: u16) -> String {
    format!("{ip}:{port}")
}

/// A resource unit specification, like OceanBase's `CREATE RESOURCE UNIT`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitConfig {
    /// `UNIT_CONFIG_ID`: 1001, 1002, ... (assigned when cluster format 2 is upgraded
    /// to 3 for configs created before ids existed).
    #[serde(default)]
    pub id: u64,
    pub name: String,
    /// Bytes.
    pub memory_size: u64,
    pub max_cpu: f64,
    pub min_cpu: f64,
    /// Bytes.
    pub log_disk_size: u64,
    pub max_iops: u64,
    pub min_iops: u64,
    pub created_at: DateTime<Utc>,
    /// Last change (`MODIFY_TIME`); the creation time until then.
    #[serde(default)]
    pub modified_at: Option<DateTime<Utc>>,
}

/// What creating a unit config takes; the optional fields get OceanBase's defaults
/// (`min_cpu = max_cpu`, `log_disk_size = 3 × memory_size`, `max_iops = min_iops = 10000`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewUnitConfig {
    pub name: String,
    pub memory_size: u64,
    pub max_cpu: f64,
    #[serde(default)]
    pub min_cpu: Option<f64>,
    #[serde(default)]
    pub log_disk_size: Option<u64>,
    #[serde(default)]
    pub max_iops: Option<u64>,
    #[serde(default)]
    pub min_iops: Option<u64>,
}

/// A resource pool: `unit_num` units of `unit_config_name` in each zone of `zone_list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourcePool {
    pub id: u64,
    pub name: String,
    pub unit_config_name: String,
    pub unit_num: u32,
    pub zone_list: Vec<String>,
    /// The tenant the pool is granted to.
    pub tenant_id: Option<u64>,
    /// Who created it (for example a restore job or DAG id); a repeated create by the
    /// same creator with the same spec returns this pool instead of failing.
    pub creator: Option<String>,
    pub units: Vec<Unit>,
    pub created_at: DateTime<Utc>,
}

impl ResourcePool {
    /// The spec this pool was created from.
    pub fn spec(&self) -> PoolSpec {
        PoolSpec {
            name: self.name.clone(),
            unit_config_name: self.unit_config_name.clone(),
            unit_num: self.unit_num,
            zone_list: self.zone_list.clone(),
        }
    }
}

/// What creating a resource pool takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    pub unit_config_name: String,
    pub unit_num: u32,
    pub zone_list: Vec<String>,
}

/// A unit placed on a server. Its resources are copied from the unit config at
/// placement, so altering or dropping the config later does not change accounting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub id: u64,
    pub zone: String,
    /// `ip:port` of the server.
    pub server: String,
    pub max_cpu: f64,
    pub min_cpu: f64,
    pub memory_size: u64,
}

/// Tenant status, as OceanBase's `DBA_OB_TENANTS.STATUS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantStatus {
    Normal,
    Restore,
    Dropping,
}

/// Tenant role, as OceanBase's `DBA_OB_TENANTS.TENANT_ROLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantRole {
    Primary,
    Standby,
}

/// Replica type of a tenant in a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicaType {
    Full,
    Readonly,
}

macro_rules! display_as_serde_name {
    ($($ty:ty => { $($variant:ident = $name:literal),+ $(,)? })+) => {$(
        impl $ty {
            /// The upper-case name used on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

display_as_serde_name! {
    TenantStatus => { Normal = "NORMAL", Restore = "RESTORE", Dropping = "DROPPING" }
    TenantRole => { Primary = "PRIMARY", Standby = "STANDBY" }
    ReplicaType => { Full = "FULL", Readonly = "READONLY" }
    TenantMode => { Mysql = "MYSQL", Oracle = "ORACLE" }
}

/// A zone of a tenant's locality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantZone {
    pub zone: String,
    pub replica_type: ReplicaType,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: u64,
    pub name: String,
    pub status: TenantStatus,
    pub role: TenantRole,
    /// Four-part version such as `4.2.1.0`.
    pub data_version: String,
    /// The minimum of `ls_sync_scn` (0 while no log stream reported).
    pub sync_scn: u64,
    /// Per log stream: the SCN up to which it is restored/replayed.
    pub ls_sync_scn: BTreeMap<u64, u64>,
    /// `RANDOM` or `z1;z2,z3`.
    pub primary_zone: String,
    pub zone_list: Vec<TenantZone>,
    pub pool_names: Vec<String>,
    pub creator: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `DBA_OB_TENANTS.LOCKED`: a locked tenant refuses connections.
    #[serde(default)]
    pub locked: bool,
    /// Set while the tenant is in the recycle bin (`DROP TENANT` without `PURGE`); its
    /// `name` is then the recycle-bin object name.
    #[serde(default)]
    pub recycled: Option<Recycled>,
    /// `DBA_OB_TENANTS.COMPATIBILITY_MODE`, fixed at creation.
    #[serde(default)]
    pub mode: TenantMode,
    /// The tenant's character set, fixed at creation (lower case, e.g. `utf8mb4`).
    #[serde(default = "default_charset")]
    pub charset: String,
    /// The tenant's collation, fixed at creation (lower case, e.g. `utf8mb4_general_ci`).
    #[serde(default = "default_collation")]
    pub collation: String,
    /// `CREATE TENANT .. COMMENT`.
    #[serde(default)]
    pub comment: String,
    /// The system variable `read_only`, kept equal to `variables["read_only"] == "1"`.
    #[serde(default)]
    pub read_only: bool,
    /// System variables set on the tenant (lower-case name → normalized value); the
    /// others have the catalogue default ([`crate::cluster::catalog`]).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Tenant parameters set on the tenant (lower-case name → normalized value); the
    /// others have the catalogue default.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// A salted verifier of the tenant's `root` password, `None` while it has none (an
    /// empty password). The password itself is never stored.
    #[serde(default)]
    pub root_password: Option<PasswordVerifier>,
    /// Whether the agent holds the current root password (obshell's
    /// `persist_tenant_root_password`, or a password given at creation).
    #[serde(default)]
    pub root_password_persisted: bool,
}

/// The character set of tenants created before tenants had one, and the default.
pub const DEFAULT_CHARSET: &str = "utf8mb4";
/// The collation of tenants created before tenants had one, and the default.
pub const DEFAULT_COLLATION: &str = "utf8mb4_general_ci";

fn default_charset() -> String {
    DEFAULT_CHARSET.to_string()
}

fn default_collation() -> String {
    DEFAULT_COLLATION.to_string()
}

/// A tenant's compatibility mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantMode {
    #[default]
    Mysql,
    Oracle,
}

/// A salted, iterated verifier of a password (PBKDF2-HMAC-SHA256, the backup crate's
/// [`obrestore_backup::crypto`] verifier): enough to check a password, useless to
/// recover it. `Debug` shows neither salt nor verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordVerifier {
    /// Always `PBKDF2-HMAC-SHA256`.
    pub kdf: String,
    pub iterations: u32,
    /// 16 random bytes, hex.
    pub salt_hex: String,
    /// HMAC-SHA256 of a constant under a key derived from the password, hex.
    pub verifier_hex: String,
}

impl fmt::Debug for PasswordVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordVerifier")
            .field("kdf", &self.kdf)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A tenant in the recycle bin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recycled {
    /// The name it had before it was dropped.
    pub original_name: String,
    pub recycled_at: DateTime<Utc>,
}

impl Tenant {
    /// Whether the tenant is in the recycle bin (`DBA_OB_TENANTS.IN_RECYCLEBIN`).
    pub fn in_recyclebin(&self) -> bool {
        self.recycled.is_some()
    }

    /// OceanBase locality string, e.g. `FULL{1}@z1, READONLY{1}@z2`.
    pub fn locality(&self) -> String {
        locality(&self.zone_list)
    }
}

/// OceanBase locality string of `zones`.
pub fn locality(zones: &[TenantZone]) -> String {
    zones
        .iter()
        .map(|zone| format!("{}{{1}}@{}", zone.replica_type, zone.zone))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What creating a tenant takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenant {
    pub name: String,
    pub status: TenantStatus,
    pub role: TenantRole,
    pub data_version: String,
    pub primary_zone: String,
    pub zone_list: Vec<TenantZone>,
    /// Pools granted to the tenant; they must exist, be free and cover `zone_list`.
    pub pool_names: Vec<String>,
}

/// The create-tenant options of obshell's `CreateTenantParam` beyond what [`NewTenant`]
/// holds, for [`crate::TenantService::create_tenant_with`]. The default is what
/// obshell does when the request leaves them out: MySQL mode, `utf8mb4` /
/// `utf8mb4_general_ci`, no comment, writable, no variables or parameters, whitelist
/// `127.0.0.1`, no root password.
///
/// `root_password` is never serialized: a DAG that must survive a restart seals it
/// (see [`crate::keystore`]) instead of keeping it in its parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantOptions {
    #[serde(default)]
    pub mode: TenantMode,
    /// A character set of [`crate::cluster::catalog::CHARSETS`], any case; `None` is the
    /// collation's character set, or `utf8mb4`.
    #[serde(default)]
    pub charset: Option<String>,
    /// A collation of that character set, any case; `None` is its default collation.
    #[serde(default)]
    pub collation: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// Sets the variable `read_only` to 1, unless `variables` sets it.
    #[serde(default)]
    pub read_only: bool,
    /// System variables, validated like [`crate::TenantService::set_variables`]; the
    /// create-only `lower_case_table_names` may be set here.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Tenant parameters, validated like [`crate::TenantService::set_parameters`].
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The IP whitelist (`ob_tcp_invited_nodes`), merged with `127.0.0.1` as obshell
    /// does ([`crate::cluster::catalog::merge_whitelist`]). `None` takes
    /// `variables["ob_tcp_invited_nodes"]`, else just `127.0.0.1`.
    #[serde(default)]
    pub whitelist: Option<String>,
    /// The `root` password; `None` or empty leaves the tenant without one.
    #[serde(skip)]
    pub root_password: Option<crate::secret::Secret>,
}

/// A replica to add to a tenant in `zone` (obshell's `ZoneParam` of
/// `POST /api/v1/tenant/:name/replicas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSpec {
    pub zone: String,
    pub replica_type: ReplicaType,
    pub unit_config_name: String,
    pub unit_num: u32,
}

/// A change to the replica of a tenant in `zone` (obshell's `ModifyReplicaZoneParam`
/// of `PATCH /api/v1/tenant/:name/replicas`); `None` leaves that part unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaModify {
    pub zone: String,
    #[serde(default)]
    pub replica_type: Option<ReplicaType>,
    #[serde(default)]
    pub unit_config_name: Option<String>,
    #[serde(default)]
    pub unit_num: Option<u32>,
}

/// A system variable of a tenant, as `CDB_OB_SYS_VARIABLES` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantVariable {
    pub name: String,
    pub value: String,
    pub info: String,
}

/// A parameter of a tenant, as `GV$OB_PARAMETERS` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantParameter {
    pub name: String,
    pub value: String,
    pub data_type: String,
    pub info: String,
    pub edit_level: String,
}

/// One change to a tenant's rows. `Put` is an upsert, `Delete` of a missing row is a no-op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowOp {
    Put {
        tablet_id: u64,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        tablet_id: u64,
        key: Vec<u8>,
    },
}

/// One change of a [`RowBatch`], borrowed from it: `value: None` is a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowChange<'a> {
    pub tablet_id: u64,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

impl RowChange<'_> {
    /// `(tablet_id, key)`, the order rows are stored in.
    pub fn sort_key(&self) -> (u64, &[u8]) {
        (self.tablet_id, self.key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackedChange {
    tablet_id: u64,
    start: usize,
    key_end: usize,
    value_end: usize,
    delete: bool,
}

/// Row changes packed into one buffer, applied in order as one atomic batch
/// ([`crate::TenantService::apply_batch`]). Filling one costs no allocation per row once
/// its buffers have grown, so the restore executors reuse one per worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowBatch {
    bytes: Vec<u8>,
    changes: Vec<PackedChange>,
}

impl RowBatch {
    /// An empty batch.
    pub fn new() -> RowBatch {
        RowBatch::default()
    }

    /// Appends an upsert.
    pub fn put(&mut self, tablet_id: u64, key: &[u8], value: &[u8]) {
        self.push(tablet_id, key, Some(value));
    }

    /// Appends a delete (a no-op for a missing row).
    pub fn delete(&mut self, tablet_id: u64, key: &[u8]) {
        self.push(tablet_id, key, None);
    }

    /// Appends a change: `value: None` is a delete.
    pub fn push(&mut self, tablet_id: u64, key: &[u8], value: Option<&[u8]>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        if let Some(value) = value {
            self.bytes.extend_from_slice(value);
        }
        self.changes.push(PackedChange {
            tablet_id,
            start,
            key_end,
            value_end: self.bytes.len(),
            delete: value.is_none(),
        });
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// No changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Removes every change, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.changes.clear();
    }

    /// The `index`-th change.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn get(&self, index: usize) -> RowChange<'_> {
        let change = self.changes[index];
        RowChange {
            tablet_id: change.tablet_id,
            key: &self.bytes[change.start..change.key_end],
            value: (!change.delete).then(|| &self.bytes[change.key_end..change.value_end]),
        }
    }

    /// The changes in order.
    pub fn iter(&self) -> impl Iterator<Item = RowChange<'_>> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// A batch holding `ops`.
    pub fn from_ops(ops: &[RowOp]) -> RowBatch {
        let mut batch = RowBatch::new();
        for op in ops {
            match op {
                RowOp::Put {
                    tablet_id,
                    key,
                    value,
                } => batch.put(*tablet_id, key, value),
                RowOp::Delete { tablet_id, key } => batch.delete(*tablet_id, key),
            }
        }
        batch
    }
}

/// One row of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    pub tablet_id: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Row count and digest of a tenant's rows (see [`crate::cluster::digest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDigest {
    pub row_count: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// Status of a restore job: its stage while running, `SUCCESS`/`FAIL`/`CANCELED` in history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum RestoreJobStatus {
    RestorePre,
    CreateTenant,
    RestoreSysTablets,
    RestoreData,
    ReplayLog,
    PostCheck,
    Activate,
    Upgrade,
    Success,
    Fail,
    Canceled,
}

display_as_serde_name! {
    RestoreJobStatus => {
        RestorePre = "RESTORE_PRE",
        CreateTenant = "CREATE_TENANT",
        RestoreSysTablets = "RESTORE_SYS_TABLETS",
        RestoreData = "RESTORE_DATA",
        ReplayLog = "REPLAY_LOG",
        PostCheck = "POST_CHECK",
        Activate = "ACTIVATE",
        Upgrade = "UPGRADE",
        Success = "SUCCESS",
        Fail = "FAIL",
        Canceled = "CANCELED",
    }
}

/// How a restore job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreOutcome {
    Success,
    Fail,
    Canceled,
}

impl From<RestoreOutcome> for RestoreJobStatus {
    fn from(outcome: RestoreOutcome) -> RestoreJobStatus {
        match outcome {
            RestoreOutcome::Success => RestoreJobStatus::Success,
            RestoreOutcome::Fail => RestoreJobStatus::Fail,
            RestoreOutcome::Canceled => RestoreJobStatus::Canceled,
        }
    }
}

/// Progress of one piece of restore work (a data file / tablet group), recorded
/// idempotently under its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartProgress {
    pub bytes: u64,
    pub tablets: u64,
}

/// A restore job: the fields of OceanBase's `CDB_OB_RESTORE_PROGRESS` (while running)
/// and `CDB_OB_RESTORE_HISTORY` (once finished).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreJob {
    pub job_id: u64,
    pub restore_tenant_name: String,
    pub restore_tenant_id: Option<u64>,
    /// Who started it (the restore DAG id); a repeated start by the same creator
    /// returns this job.
    pub creator: String,
    pub status: RestoreJobStatus,
    pub restore_scn: u64,
    pub data_backup_uri: String,
    pub archive_log_uri: String,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    /// The backed-up cluster's name (`BACKUP_CLUSTER_NAME`).
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    /// OceanBase's `RESTORE_OPTION`: the pools, locality, primary zone and concurrency
    /// the restore was started with.
    #[serde(default)]
    pub restore_option: String,
    pub backup_set_list: Vec<String>,
    pub backup_piece_list: Vec<String>,
    pub ls_count: u64,
    pub finish_ls_count: u64,
    pub finished_ls: BTreeSet<u64>,
    pub tablet_count: u64,
    pub finish_tablet_count: u64,
    pub total_bytes: u64,
    pub finish_bytes: u64,
    pub parts: BTreeMap<String, PartProgress>,
    pub recover_scn: u64,
    pub comment: String,
    pub start_time: DateTime<Utc>,
    pub finish_time: Option<DateTime<Utc>>,
}

impl RestoreJob {
    /// Whether the job is in history (SUCCESS, FAIL or CANCELED).
    pub fn is_finished(&self) -> bool {
        self.finish_time.is_some()
    }

    /// `finish_bytes / total_bytes` in [0, 1]; 0 while `total_bytes` is unknown.
    pub fn restore_progress(&self) -> f64 {
        ratio(self.finish_bytes, self.total_bytes)
    }

    /// `finish_ls_count / ls_count` in [0, 1]; 0 while `ls_count` is unknown.
    pub fn recover_progress(&self) -> f64 {
        ratio(self.finish_ls_count, self.ls_count)
    }
}

fn ratio(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).min(1.0)
    }
}

/// What starting a restore job takes; the plan fields may also be filled in later
/// with [`RestoreJobPatch`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewRestoreJob {
    pub restore_tenant_name: String,
    pub restore_scn: u64,
    pub data_backup_uri: String,
    pub archive_log_uri: String,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    #[serde(default)]
    pub restore_option: String,
    pub backup_set_list: Vec<String>,
    pub backup_piece_list: Vec<String>,
    pub ls_count: u64,
    pub tablet_count: u64,
    pub total_bytes: u64,
}

/// A partial update of a running restore job; `None` leaves a field unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreJobPatch {
    pub status: Option<RestoreJobStatus>,
    pub restore_tenant_id: Option<u64>,
    pub restore_scn: Option<u64>,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    pub backup_set_list: Option<Vec<String>>,
    pub backup_piece_list: Option<Vec<String>>,
    pub ls_count: Option<u64>,
    pub tablet_count: Option<u64>,
    pub total_bytes: Option<u64>,
    pub recover_scn: Option<u64>,
    pub comment: Option<String>,
}

/// Parses an OceanBase capacity string: a number with an optional unit `B`, `K`, `M`,
/// `G`, `T`, `P` (case-insensitive, optional trailing `B`, e.g. `8G`, `512MB`, `1024`).
/// A bare number is bytes.
///
/// # Errors
/// A message naming the input when it is empty, not a number, fractional in bytes,
/// or overflows u64.
pub fn parse_capacity(input: &str) -> Result<u64, String> {
    let trimmed = input.trim();
    let upper = trimmed.to_ascii_uppercase();
    let without_b = upper
        .strip_suffix('B')
        .filter(|rest| rest.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&upper);
    let (number, multiplier) = match without_b.chars().last() {
        Some('K') => (&without_b[..without_b.len() - 1], KIB),
        Some('M') => (&without_b[..without_b.len() - 1], MIB),
        Some('G') => (&without_b[..without_b.len() - 1], GIB),
        Some('T') => (&without_b[..without_b.len() - 1], GIB * 1024),
        Some('P') => (&without_b[..without_b.len() - 1], GIB * 1024 * 1024),
        Some('B') => (&without_b[..without_b.len() - 1], 1),
        _ => (without_b, 1),
    };
    let number = number.trim();
    if number.is_empty() {
        return Err(format!("capacity '{input}' is empty or has no number"));
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("capacity '{input}' is too large"));
    }
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            let bytes = value * multiplier as f64;
            if bytes > u64::MAX as f64 {
                Err(format!("capacity '{input}' is too large"))
            } else if bytes.fract() != 0.0 {
                Err(format!("capacity '{input}' is not a whole number of bytes"))
            } else {
                Ok(bytes as u64)
            }
        }
        _ => Err(format!(
            "capacity '{input}' is not a number with a unit (B, K, M, G, T, P)"
        )),
    }
}

/// Formats bytes the way OceanBase displays capacities: the largest unit that divides
/// exactly (`8G`, `1536M`, `100B`).
pub fn format_capacity(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (GIB * 1024 * 1024, "P"),
        (GIB * 1024, "T"),
        (GIB, "G"),
        (MIB, "M"),
        (KIB, "K"),
    ];
    for (size, suffix) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{suffix}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_strings() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("8G", Ok(8 * GIB)),
            ("8g", Ok(8 * GIB)),
            ("8GB", Ok(8 * GIB)),
            ("512M", Ok(512 * MIB)),
            ("1.5G", Ok(1536 * MIB)),
            ("1024", Ok(1024)),
            ("100B", Ok(100)),
            ("2K", Ok(2048)),
            ("", Err("capacity '' is empty or has no number")),
            ("G", Err("capacity 'G' is empty or has no number")),
            (
                "x1G",
                Err("capacity 'x1G' is not a number with a unit (B, K, M, G, T, P)"),
            ),
            (
                "0.5B",
                Err("capacity '0.5B' is not a whole number of bytes"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_capacity(input),
                expected.map_err(str::to_string),
                "{input}"
            );
        }
    }

    #[test]
    fn capacity_display() {
        assert_eq!(format_capacity(8 * GIB), "8G");
        assert_eq!(format_capacity(1536 * MIB), "1536M");
        assert_eq!(format_capacity(100), "100B");
        assert_eq!(format_capacity(0), "0B");
    }

    #[test]
    fn locality_string() {
        let zones = vec![
            TenantZone {
                zone: "z1".into(),
                replica_type: ReplicaType::Full,
            },
            TenantZone {
                zone: "z2".into(),
                replica_type: ReplicaType::Readonly,
            },
        ];
        assert_eq!(locality(&zones), "FULL{1}@z1, READONLY{1}@z2");
    }
}
