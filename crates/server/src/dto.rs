//! HTTP DTOs of the endpoints this crate owns, converted from domain records at the
//! boundary (STYLE rule 2). The engine's DTOs (`DagDetailDto`, ...) are obshell-exact
//! already; their OpenAPI schemas are mirrored in [`crate::openapi`].

use obrestore_restore::cluster::{
    format_capacity, parse_capacity, NewUnitConfig, ResourcePool, Tenant, UnitConfig,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::envelope::AppError;

/// `GET /api/v1/info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfoDto {
    pub ip: String,
    pub port: u16,
    pub zone: String,
    /// obshell identity: `CLUSTER AGENT` (the agent manages the embedded cluster).
    pub identity: String,
    /// Four-part obshell version this API is compatible with.
    pub version: String,
    pub supported_auth: Vec<String>,
    /// Whether requests must be authenticated (the agent has a password).
    pub security: bool,
    pub is_obproxy_agent: bool,
}

/// `GET /api/v1/secret`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretDto {
    pub ip: String,
    pub port: u16,
    /// Base64 of the PKCS#1 DER RSA public key.
    pub public_key: String,
}

/// `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatusDto {
    pub pid: u32,
    /// obshell's agent state: 2 = running.
    pub state: i32,
    /// Unix milliseconds.
    pub start_at: i64,
    pub port: u16,
    pub version: String,
    /// Whether some DAG (e.g. a restore) is unfinished.
    pub under_maintenance: bool,
    pub unfinished_dags: usize,
}

/// Body of `POST /api/v1/task/dag/:id` and `POST /api/v1/task/node/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorParam {
    /// RUN, RETRY, ROLLBACK, CANCEL or PASS, any case.
    #[serde(default)]
    pub operator: String,
}

/// Query of `GET /api/v1/task/dag/:id`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowDetailsQuery {
    /// Include nodes and sub-tasks (default true).
    pub show_details: Option<bool>,
}

/// Body of `GET /api/v1/restore/windows` (a GET with a JSON body, as obshell).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestoreWindowsParam {
    #[serde(default)]
    pub data_backup_uri: String,
    /// Defaults to `data_backup_uri`.
    #[serde(default)]
    pub archive_log_uri: Option<String>,
}

/// Body of `POST /api/v1/tenant/:name/backup/config` (the fields used here; obshell's
/// other fields are accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupConfigParam {
    #[serde(default)]
    pub data_base_uri: String,
    #[serde(default)]
    pub archive_base_uri: String,
}

/// A number or an OceanBase capacity string (`"5GB"`, `"512M"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Capacity {
    Bytes(u64),
    Text(String),
}

impl Capacity {
    fn bytes(&self, field: &str) -> Result<u64, AppError> {
        match self {
            Capacity::Bytes(bytes) => Ok(*bytes),
            Capacity::Text(text) => parse_capacity(text)
                .map_err(|reason| AppError::illegal(format!("{field}: {reason}"))),
        }
    }
}

fn null_as_default<'de, D, V>(deserializer: D) -> Result<V, D::Error>
where
    D: Deserializer<'de>,
    V: Default + Deserialize<'de>,
{
    Ok(Option::<V>::deserialize(deserializer)?.unwrap_or_default())
}

/// Body of `POST /api/v1/unit/config` (obshell's `UnitConfigParams`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigParam {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    pub memory_size: Option<Capacity>,
    pub max_cpu: Option<f64>,
    #[serde(default)]
    pub min_cpu: Option<f64>,
    #[serde(default)]
    pub log_disk_size: Option<Capacity>,
    #[serde(default)]
    pub max_iops: Option<u64>,
    #[serde(default)]
    pub min_iops: Option<u64>,
}

impl UnitConfigParam {
    /// The domain request; names the first missing or malformed field.
    ///
    /// # Errors
    /// 400 naming the field.
    pub fn to_new(&self) -> Result<NewUnitConfig, AppError> {
        if self.name.trim().is_empty() {
            return Err(AppError::IllegalArgument {
                err_code: "OB.Resource.UnitConfig.Name.Empty",
                message: "name: unit config name is empty".to_string(),
            });
        }
        let memory_size = self
            .memory_size
            .as_ref()
            .ok_or_else(|| AppError::illegal("memory_size: required"))?
            .bytes("memory_size")?;
        let max_cpu = self
            .max_cpu
            .ok_or_else(|| AppError::illegal("max_cpu: required"))?;
        Ok(NewUnitConfig {
            name: self.name.clone(),
            memory_size,
            max_cpu,
            min_cpu: self.min_cpu,
            log_disk_size: self
                .log_disk_size
                .as_ref()
                .map(|size| size.bytes("log_disk_size"))
                .transpose()?,
            max_iops: self.max_iops,
            min_iops: self.min_iops,
        })
    }
}

/// A unit config (`DBA_OB_UNIT_CONFIGS`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigDto {
    pub name: String,
    /// Bytes.
    pub memory_size: u64,
    pub memory_size_display: String,
    pub max_cpu: f64,
    pub min_cpu: f64,
    /// Bytes.
    pub log_disk_size: u64,
    pub max_iops: u64,
    pub min_iops: u64,
    pub create_time: String,
}

impl From<&UnitConfig> for UnitConfigDto {
    fn from(config: &UnitConfig) -> UnitConfigDto {
        UnitConfigDto {
            name: config.name.clone(),
            memory_size: config.memory_size,
            memory_size_display: format_capacity(config.memory_size),
            max_cpu: config.max_cpu,
            min_cpu: config.min_cpu,
            log_disk_size: config.log_disk_size,
            max_iops: config.max_iops,
            min_iops: config.min_iops,
            create_time: obrestore_dag::dto::format_time(config.created_at),
        }
    }
}

/// A resource pool (`DBA_OB_RESOURCE_POOLS`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourcePoolDto {
    pub resource_pool_id: u64,
    pub name: String,
    pub unit_config_name: String,
    pub unit_num: u32,
    /// `z1;z2`.
    pub zone_list: String,
    pub tenant_id: Option<u64>,
    /// `ip:port` of each unit's server.
    pub units: Vec<String>,
    pub create_time: String,
}

impl From<&ResourcePool> for ResourcePoolDto {
    fn from(pool: &ResourcePool) -> ResourcePoolDto {
        ResourcePoolDto {
            resource_pool_id: pool.id,
            name: pool.name.clone(),
            unit_config_name: pool.unit_config_name.clone(),
            unit_num: pool.unit_num,
            zone_list: pool.zone_list.join(";"),
            tenant_id: pool.tenant_id,
            units: pool.units.iter().map(|unit| unit.server.clone()).collect(),
            create_time: obrestore_dag::dto::format_time(pool.created_at),
        }
    }
}

/// A tenant (obshell's `TenantInfo` / overview row).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantDto {
    pub tenant_id: u64,
    pub tenant_name: String,
    pub tenant_type: String,
    pub mode: String,
    /// NORMAL, RESTORE or DROPPING.
    pub status: String,
    /// PRIMARY or STANDBY.
    pub tenant_role: String,
    pub locality: String,
    pub primary_zone: String,
    pub data_version: String,
    pub sync_scn: u64,
    pub resource_pools: Vec<String>,
    pub created_time: String,
}

impl From<&Tenant> for TenantDto {
    fn from(tenant: &Tenant) -> TenantDto {
        TenantDto {
            tenant_id: tenant.id,
            tenant_name: tenant.name.clone(),
            tenant_type: "USER".to_string(),
            mode: "MYSQL".to_string(),
            status: tenant.status.to_string(),
            tenant_role: tenant.role.to_string(),
            locality: tenant.locality(),
            primary_zone: tenant.primary_zone.clone(),
            data_version: tenant.data_version.clone(),
            sync_scn: tenant.sync_scn,
            resource_pools: tenant.pool_names.clone(),
            created_time: obrestore_dag::dto::format_time(tenant.created_at),
        }
    }
}

/// OCP's RestoreTenantParam (seed 000). Only what the preview needs is typed; the rest
/// (`restoreTenantInfoParam`, `tableRestoreObjects`, ...) is accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTenantParam {
    /// `ONLINE` or `OFFLINE`.
    #[serde(default)]
    pub backup_tenant_status: String,
    #[serde(default)]
    pub restore_online_tenant_required_param: Option<OnlineRestoreParam>,
    #[serde(default)]
    pub restore_offline_tenant_required_param: Option<OfflineRestoreParam>,
    /// Extension: passwords of encrypted backup sets (OCP keeps them server-side).
    #[serde(default)]
    pub decryption: Vec<String>,
}

/// `restoreOnlineTenantRequiredParam`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineRestoreParam {
    #[serde(default)]
    pub backup_cluster_id: Option<i64>,
    /// The id of a tenant of this agent's cluster whose backup destinations were set
    /// with `POST /api/v1/tenant/:name/backup/config`.
    #[serde(default)]
    pub backup_tenant_id: Option<u64>,
    #[serde(default)]
    pub restore_cluster_id: Option<i64>,
    /// RFC 3339; the newest restorable point when absent.
    #[serde(default)]
    pub restore_end_time: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub restore_tenant_info_param: Option<serde_json::Value>,
}

/// `restoreOfflineTenantRequiredParam`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineRestoreParam {
    #[serde(default)]
    pub backup_mode: Option<String>,
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    #[serde(default)]
    pub backup_ob_cluster_id: Option<i64>,
    #[serde(default)]
    pub backup_tenant_name: Option<String>,
    #[serde(default)]
    pub backup_ob_tenant_id: Option<i64>,
    #[serde(default)]
    pub restore_cluster_id: Option<i64>,
    #[serde(default)]
    pub ob_backup_storage_base_info: Option<BackupStorageBaseInfo>,
    /// RFC 3339; the newest restorable point when absent.
    #[serde(default)]
    pub restore_end_time: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub restore_tenant_info_param: Option<serde_json::Value>,
}

/// `obBackupStorageBaseInfo` as this agent reads it (see `docs/api.md`): the data and
/// archive destinations of the backed-up tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageBaseInfo {
    /// `FILE` (`file://` URIs); other storage types are refused.
    #[serde(default)]
    pub storage_type: Option<String>,
    /// Data backup destination (`.../data`). Also accepted as `dataBackupUri`.
    #[serde(default, alias = "dataBackupUri")]
    pub data_base_uri: String,
    /// Archive log destination (`.../clog`); defaults to the data one. Also accepted
    /// as `archiveLogUri`.
    #[serde(default, alias = "archiveLogUri")]
    pub archive_base_uri: Option<String>,
}
