//! Tenants: the record, its locality, the create and replica requests, and the
//! variable and parameter rows shown for it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
