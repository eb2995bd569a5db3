//! HTTP DTOs in obshell's shapes (`ob/agent/meta/agent.go`, `lib/http/status.go`,
//! `repository/model/bo`, `repository/model/oceanbase`, `ob/param`), converted from the
//! domain records at the boundary (STYLE rule 2). The engine's DTOs (`DagDetailDto`,
//! ...) are obshell-exact already; their OpenAPI schemas are mirrored in
//! [`crate::openapi`].
//!
//! A few DTOs carry fields obshell's lack (marked "extension"); obshell's clients
//! ignore them. `docs/api.md` lists them.

use std::collections::BTreeMap;

use obrestore_backup::RestoreWindowsDto;
use obrestore_restore::agent::RestoreOverview;
use obrestore_restore::cluster::{
    catalog, parse_capacity, NewUnitConfig, ReplicaModify, ReplicaSpec, ReplicaType, ResourcePool,
    Server, Tenant, TenantParameter, TenantVariable, UnitConfig,
};
use obrestore_restore::{ClusterError, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::envelope::AppError;

/// The SQL port the embedded cluster's connection strings name (OceanBase's default).
pub const SQL_PORT: u16 = 2881;
/// Name of the embedded cluster (`obcluster_info.name`).
pub const CLUSTER_NAME: &str = "obcluster";
/// Id of the embedded cluster (`obcluster_info.id`).
pub const CLUSTER_ID: i64 = 1;

fn time(time: chrono::DateTime<chrono::Utc>) -> String {
    obrestore_dag::dto::format_time(time)
}

fn yes_no(flag: bool) -> String {
    if flag { "YES" } else { "NO" }.to_string()
}

// ---------------------------------------------------------------- agent

/// `GET /api/v1/info` (obshell's `meta.AgentStatus`).
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
    pub pid: u32,
    /// obshell's agent state: 2 = running.
    pub state: i32,
    /// Unix nanoseconds of the start.
    pub start_at: i64,
    /// The agent's data directory.
    pub home_path: String,
    /// Version of the (embedded) OceanBase cluster.
    pub ob_version: String,
    pub architecture: String,
    pub is_obproxy_agent: bool,
    /// Whether the agent has a password.
    pub security: bool,
    /// `["v2"]`.
    pub supported_auth: Vec<String>,
}

/// `agent` of `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentIdentityDto {
    pub ip: String,
    pub port: u16,
    pub identity: String,
}

/// `GET /api/v1/status` (obshell's `http.AgentStatus`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatusDto {
    pub agent: AgentIdentityDto,
    /// obshell's agent state: 2 = running.
    pub state: i32,
    pub version: String,
    pub pid: u32,
    /// Unix nanoseconds of the start.
    pub start_at: i64,
    pub port: u16,
    /// 3: the cluster accepts connections (the embedded one always does).
    pub ob_state: i32,
    /// Whether an agent-local DAG holds a maintenance lock.
    pub under_maintenance: bool,
}

/// `GET /api/v1/secret`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretDto {
    pub ip: String,
    pub port: u16,
    /// Base64 of the PKCS#1 DER RSA public key.
    pub public_key: String,
}

/// One agent of `GET /api/v1/ob/info` (`meta.AgentInstance`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstanceDto {
    pub ip: String,
    pub port: u16,
    pub zone: String,
    pub identity: String,
    pub version: String,
}

/// One server of the topology (`param.ServerConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerConfigDto {
    pub svr_ip: String,
    pub svr_port: u16,
    pub sql_port: u16,
    pub agent_port: u16,
    pub with_rootserver: String,
    pub status: String,
    pub build_version: String,
}

impl ServerConfigDto {
    /// A server of the embedded cluster; the first one carries the root service.
    pub fn of(server: &Server, agent_port: u16, rootserver: bool) -> ServerConfigDto {
        ServerConfigDto {
            svr_ip: server.ip.clone(),
            svr_port: server.port,
            sql_port: SQL_PORT,
            agent_port,
            with_rootserver: yes_no(rootserver),
            status: "ACTIVE".to_string(),
            build_version: format!("{}-embedded", crate::app::OBSHELL_COMPAT_VERSION),
        }
    }
}

/// `obcluster_info` of `GET /api/v1/ob/info` (`param.ClusterConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterInfoDto {
    pub id: i64,
    pub name: String,
    pub version: String,
    /// Servers by zone.
    pub topology: BTreeMap<String, Vec<ServerConfigDto>>,
    pub is_shared_storage: bool,
}

/// `GET /api/v1/ob/info` (`param.ObInfoResp`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObInfoDto {
    pub agent_info: Vec<AgentInstanceDto>,
    pub obcluster_info: ClusterInfoDto,
}

// ---------------------------------------------------------------- tasks

/// Body of `POST /api/v1/task/dag/:id` and `POST /api/v1/task/node/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorParam {
    /// RETRY, ROLLBACK, CANCEL or PASS, any case.
    #[serde(default)]
    pub operator: Option<String>,
}

/// Query of the task endpoints (`param.TaskQueryParams`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowDetailsQuery {
    /// Include nodes and sub-tasks (default true), parsed like Go's
    /// `strconv.ParseBool` (`1 t T TRUE true True 0 f F FALSE false False`).
    pub show_details: Option<String>,
}

// ---------------------------------------------------------------- restore

/// Body of `GET /api/v1/restore/windows` and `POST /api/v1/restore/source-tenant-info`
/// (`param.RestoreStorageParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestoreStorageParam {
    #[serde(default)]
    pub data_backup_uri: String,
    /// Defaults to `data_backup_uri`.
    #[serde(default)]
    pub archive_log_uri: Option<String>,
}

impl RestoreStorageParam {
    /// `(data, archive)` URIs, the archive defaulting to the data URI.
    ///
    /// # Errors
    /// 400 `Common.BindJsonFailed` when `data_backup_uri` is empty.
    pub fn uris(&self) -> Result<(String, String), AppError> {
        if self.data_backup_uri.trim().is_empty() {
            return Err(AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Common.BindJsonFailed",
                "Bind JSON failed: Key: 'data_backup_uri' Error:Field validation for 'data_backup_uri' failed on the 'required' tag",
            )
            .with_field("data_backup_uri"));
        }
        let archive = self
            .archive_log_uri
            .clone()
            .filter(|uri| !uri.trim().is_empty())
            .unwrap_or_else(|| self.data_backup_uri.clone());
        Ok((self.data_backup_uri.clone(), archive))
    }
}

/// A restore job (`param.RestoreOverview` / `bo.RestoreTask`: the fields of
/// CDB_OB_RESTORE_PROGRESS and CDB_OB_RESTORE_HISTORY).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreOverviewDto {
    pub tenant_id: u64,
    pub job_id: u64,
    pub restore_tenant_name: String,
    pub restore_tenant_id: u64,
    pub backup_tenant_name: String,
    pub backup_tenant_id: u64,
    pub backup_cluster_name: String,
    pub restore_option: String,
    pub restore_scn: u64,
    pub restore_scn_display: String,
    pub status: String,
    pub start_timestamp: String,
    pub backup_set_list: String,
    pub backup_piece_list: String,
    pub backup_data_uri: String,
    pub backup_log_uri: String,
    pub tablet_count: u64,
    pub finish_tablet_count: u64,
    pub total_bytes: u64,
    pub total_bytes_display: String,
    pub finish_bytes: u64,
    pub finish_bytes_display: String,
    pub description: String,
    pub recover_scn: u64,
    pub recover_scn_display: String,
    /// Percent with two decimals, e.g. "100.00".
    pub recover_progress: String,
    /// Percent with two decimals.
    pub restore_progress: String,
    /// OceanBase's integer cluster version of the backup.
    pub backup_cluster_version: u64,
    pub ls_count: u64,
    pub finish_ls_count: u64,
    pub comment: String,
    /// "" while the job runs.
    pub finish_timestamp: String,
    /// Extension: the restore DAG's generic id.
    pub dag_id: Option<String>,
}

/// OceanBase's integer cluster version of `a.b.c.d`:
/// `a << 32 | b << 16 | c << 8 | d` (`CLUSTER_VERSION` in `ob_cluster_version.h`).
pub fn cluster_version_number(version: &str) -> u64 {
    let parts: Vec<u64> = version
        .split('.')
        .map(|part| part.trim().parse::<u64>().unwrap_or(0))
        .collect();
    let part = |index: usize| parts.get(index).copied().unwrap_or(0);
    (part(0) << 32) | (part(1) << 16) | (part(2) << 8) | part(3)
}

impl From<&RestoreOverview> for RestoreOverviewDto {
    fn from(overview: &RestoreOverview) -> RestoreOverviewDto {
        let job = &overview.job;
        let display = RestoreOverview::scn_display;
        let human = obrestore_restore::agent::human_bytes;
        RestoreOverviewDto {
            tenant_id: job.restore_tenant_id.unwrap_or(0),
            job_id: job.job_id,
            restore_tenant_name: job.restore_tenant_name.clone(),
            restore_tenant_id: job.restore_tenant_id.unwrap_or(0),
            backup_tenant_name: job.backup_tenant_name.clone().unwrap_or_default(),
            backup_tenant_id: job.backup_tenant_id.unwrap_or(0),
            backup_cluster_name: job.backup_cluster_name.clone().unwrap_or_default(),
            restore_option: job.restore_option.clone(),
            restore_scn: job.restore_scn,
            restore_scn_display: display(job.restore_scn),
            status: job.status.to_string(),
            start_timestamp: time(job.start_time),
            backup_set_list: job.backup_set_list.join(","),
            backup_piece_list: job.backup_piece_list.join(","),
            backup_data_uri: job.data_backup_uri.clone(),
            backup_log_uri: job.archive_log_uri.clone(),
            tablet_count: job.tablet_count,
            finish_tablet_count: job.finish_tablet_count,
            total_bytes: job.total_bytes,
            total_bytes_display: human(job.total_bytes),
            finish_bytes: job.finish_bytes,
            finish_bytes_display: human(job.finish_bytes),
            description: String::new(),
            recover_scn: job.recover_scn,
            recover_scn_display: display(job.recover_scn),
            recover_progress: overview.recover_progress(),
            restore_progress: overview.restore_progress(),
            backup_cluster_version: job
                .backup_cluster_version
                .as_deref()
                .map(cluster_version_number)
                .unwrap_or(0),
            ls_count: job.ls_count,
            finish_ls_count: job.finish_ls_count,
            comment: job.comment.clone(),
            finish_timestamp: job.finish_time.map(time).unwrap_or_default(),
            dag_id: overview.dag_id.clone(),
        }
    }
}

/// Query of `GET /api/v1/restore/tasks` (`param.QueryRestoreTasksParam`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestoreTasksQuery {
    /// RFC 3339: jobs started at or after.
    pub start_time: Option<String>,
    /// RFC 3339: jobs started at or before.
    pub end_time: Option<String>,
    /// Comma-separated statuses, any case.
    pub status: Option<String>,
    /// 1-based page (default 1).
    pub page: Option<u64>,
    /// Page size (default 2147483647).
    pub size: Option<u64>,
}

/// `page` of a paginated listing (`bo.CustomPage`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageDto {
    pub total_elements: u64,
    pub total_pages: u64,
    pub size: u64,
    pub number: u64,
}

/// `GET /api/v1/restore/tasks` (`bo.PaginatedRestoreTaskResponse`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreTasksDto {
    pub contents: Vec<RestoreOverviewDto>,
    pub page: PageDto,
}

/// `POST /api/v1/restore/source-tenant-info` (`system.RestoreTenantInfo`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceTenantInfoDto {
    pub tenant_name: String,
    pub cluster_name: String,
    #[schema(value_type = Object)]
    pub restore_windows: RestoreWindowsDto,
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

// ---------------------------------------------------------------- resources

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
            Capacity::Text(text) => {
                parse_capacity(text).map_err(|_| AppError::illegal(field, text))
            }
        }
    }
}

/// Body of `POST /api/v1/unit/config` (`param.CreateResourceUnitConfigParams`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigParam {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub memory_size: Option<Capacity>,
    #[serde(default)]
    pub max_cpu: Option<f64>,
    #[serde(default)]
    pub min_cpu: Option<f64>,
    #[serde(default)]
    pub log_disk_size: Option<Capacity>,
    #[serde(default)]
    pub data_disk_size: Option<Capacity>,
    #[serde(default)]
    pub max_iops: Option<i64>,
    #[serde(default)]
    pub min_iops: Option<i64>,
}

fn positive_iops(field: &str, value: Option<i64>) -> Result<Option<u64>, AppError> {
    match value {
        None => Ok(None),
        Some(iops) if iops <= 0 => Err(AppError::illegal(
            field,
            format!("{field} should be positive."),
        )),
        Some(iops) => Ok(Some(iops as u64)),
    }
}

impl UnitConfigParam {
    /// The domain request, with obshell's checks in obshell's order
    /// (`executor/unit/unit.go`); the cluster adds OceanBase's own limits.
    ///
    /// # Errors
    /// 400 naming the field.
    pub fn to_new(&self) -> Result<NewUnitConfig, AppError> {
        let mut missing = Vec::new();
        if self.name.is_none() {
            missing.push("name");
        }
        if self.memory_size.is_none() {
            missing.push("memory_size");
        }
        if self.max_cpu.is_none() {
            missing.push("max_cpu");
        }
        if let Some(first) = missing.first() {
            let detail = missing
                .iter()
                .map(|field| format!("Key: '{field}' Error:Field validation for '{field}' failed on the 'required' tag"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Common.BindJsonFailed",
                format!("Bind JSON failed: {detail}"),
            )
            .with_field(*first));
        }
        let name = self.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(AppError::illegal("name", "Resource unit name is empty."));
        }
        let memory_size = self
            .memory_size
            .as_ref()
            .map(|size| size.bytes("memory_size"))
            .transpose()?
            .unwrap_or_default();
        let log_disk_size = self
            .log_disk_size
            .as_ref()
            .map(|size| size.bytes("log_disk_size"))
            .transpose()?;
        if self.data_disk_size.is_some() {
            return Err(AppError::illegal(
                "data_disk_size",
                "DATA_DISK_SIZE is only supported in shared storage mode.",
            ));
        }
        let max_cpu = self.max_cpu.unwrap_or_default();
        if !max_cpu.is_finite() || max_cpu <= 0.0 {
            return Err(AppError::illegal("max_cpu", "max_cpu should be positive."));
        }
        if let Some(min_cpu) = self.min_cpu {
            if !min_cpu.is_finite() || min_cpu <= 0.0 {
                return Err(AppError::illegal("min_cpu", "min_cpu should be positive."));
            }
        }
        let min_iops = positive_iops("min_iops", self.min_iops)?;
        let max_iops = positive_iops("max_iops", self.max_iops)?;
        if let Some(min_cpu) = self.min_cpu {
            if max_cpu < min_cpu {
                return Err(AppError::illegal(
                    "min_cpu",
                    "min_cpu should not be greater than max_cpu.",
                ));
            }
        }
        if max_cpu < 1.0 {
            return Err(AppError::illegal("max_cpu", "min value is 1."));
        }
        if self.min_cpu.is_some_and(|min_cpu| min_cpu < 1.0) {
            return Err(AppError::illegal("min_cpu", "min value is 1."));
        }
        if let (Some(max), Some(min)) = (max_iops, min_iops) {
            if max < min {
                return Err(AppError::illegal(
                    "min_iops",
                    "min_iops should not be greater than max_iops.",
                ));
            }
        }
        Ok(NewUnitConfig {
            name,
            memory_size,
            max_cpu,
            min_cpu: self.min_cpu,
            log_disk_size,
            max_iops,
            min_iops,
        })
    }
}

/// A unit config (`DBA_OB_UNIT_CONFIGS`, obshell's `DbaObUnitConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnitConfigDto {
    pub unit_config_id: u64,
    pub name: String,
    pub max_cpu: f64,
    pub min_cpu: f64,
    /// Bytes.
    pub memory_size: u64,
    /// Bytes.
    pub log_disk_size: u64,
    /// Bytes (0: shared storage only).
    pub data_disk_size: u64,
    pub max_iops: u64,
    pub min_iops: u64,
    pub create_time: String,
    pub modify_time: String,
}

impl From<&UnitConfig> for UnitConfigDto {
    fn from(config: &UnitConfig) -> UnitConfigDto {
        UnitConfigDto {
            unit_config_id: config.id,
            name: config.name.clone(),
            max_cpu: config.max_cpu,
            min_cpu: config.min_cpu,
            memory_size: config.memory_size,
            log_disk_size: config.log_disk_size,
            data_disk_size: 0,
            max_iops: config.max_iops,
            min_iops: config.min_iops,
            create_time: time(config.created_at),
            modify_time: time(config.modified_at.unwrap_or(config.created_at)),
        }
    }
}

/// A resource pool (`DBA_OB_RESOURCE_POOLS`, obshell's `DbaObResourcePool`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourcePoolDto {
    pub id: u64,
    pub name: String,
    /// `z1;z2`.
    pub zone_list: String,
    pub unit_num: u32,
    pub unit_config_id: u64,
    /// 0 while the pool is not granted.
    pub tenant_id: u64,
    pub replica_type: String,
    /// Extension.
    pub unit_config_name: String,
    /// Extension.
    pub create_time: String,
}

impl ResourcePoolDto {
    /// The pool, with its unit config's id looked up in `configs`.
    pub fn of(pool: &ResourcePool, configs: &[UnitConfig]) -> ResourcePoolDto {
        ResourcePoolDto {
            id: pool.id,
            name: pool.name.clone(),
            zone_list: pool.zone_list.join(";"),
            unit_num: pool.unit_num,
            unit_config_id: configs
                .iter()
                .find(|config| config.name == pool.unit_config_name)
                .map(|config| config.id)
                .unwrap_or(0),
            tenant_id: pool.tenant_id.unwrap_or(0),
            replica_type: "FULL".to_string(),
            unit_config_name: pool.unit_config_name.clone(),
            create_time: time(pool.created_at),
        }
    }
}

// ---------------------------------------------------------------- tenants

/// A way to connect to a tenant (`bo.ObproxyAndConnectionString`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionStringDto {
    #[serde(rename = "type")]
    pub kind: String,
    pub obproxy_address: String,
    pub obproxy_port: u16,
    pub connection_string: String,
}

impl ConnectionStringDto {
    fn direct(host: &str, tenant: &str) -> Vec<ConnectionStringDto> {
        vec![ConnectionStringDto {
            kind: "DIRECT".to_string(),
            obproxy_address: String::new(),
            obproxy_port: 0,
            connection_string: format!("obclient -h{host} -P{SQL_PORT} -uroot@{tenant} -p"),
        }]
    }
}

/// A tenant of `GET /api/v1/tenants/overview` (`oceanbase.TenantOverview`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantOverviewDto {
    pub tenant_id: u64,
    pub tenant_name: String,
    /// MYSQL.
    pub mode: String,
    /// NORMAL, RESTORE or DROPPING.
    pub status: String,
    /// YES or NO.
    pub locked: String,
    pub primary_zone: String,
    pub locality: String,
    /// YES or NO.
    pub in_recyclebin: String,
    pub created_time: String,
    pub read_only: bool,
    pub comment: String,
    pub connection_strings: Vec<ConnectionStringDto>,
    /// Extension: PRIMARY or STANDBY.
    pub tenant_role: String,
    /// Extension.
    pub data_version: String,
    /// Extension.
    pub sync_scn: u64,
}

impl TenantOverviewDto {
    /// The tenant as this agent (at `host`) shows it.
    pub fn of(tenant: &Tenant, host: &str) -> TenantOverviewDto {
        TenantOverviewDto {
            tenant_id: tenant.id,
            tenant_name: tenant.name.clone(),
            mode: tenant.mode.as_str().to_string(),
            status: tenant.status.to_string(),
            locked: yes_no(tenant.locked),
            primary_zone: tenant.primary_zone.clone(),
            locality: tenant.locality(),
            in_recyclebin: yes_no(tenant.in_recyclebin()),
            created_time: time(tenant.created_at),
            read_only: tenant.read_only,
            comment: tenant.comment.clone(),
            connection_strings: ConnectionStringDto::direct(host, &tenant.name),
            tenant_role: tenant.role.to_string(),
            data_version: tenant.data_version.clone(),
            sync_scn: tenant.sync_scn,
        }
    }
}

/// A unit config inside a pool of a tenant (`bo.ObUnitConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObUnitConfigDto {
    pub create_time: String,
    pub modify_time: String,
    pub unit_config_id: u64,
    pub name: String,
    pub max_cpu: f64,
    pub min_cpu: f64,
    pub memory_size: u64,
    pub log_disk_size: u64,
    pub data_disk_size: u64,
    pub max_iops: u64,
    pub min_iops: u64,
}

impl From<&UnitConfig> for ObUnitConfigDto {
    fn from(config: &UnitConfig) -> ObUnitConfigDto {
        let dto = UnitConfigDto::from(config);
        ObUnitConfigDto {
            create_time: dto.create_time,
            modify_time: dto.modify_time,
            unit_config_id: dto.unit_config_id,
            name: dto.name,
            max_cpu: dto.max_cpu,
            min_cpu: dto.min_cpu,
            memory_size: dto.memory_size,
            log_disk_size: dto.log_disk_size,
            data_disk_size: dto.data_disk_size,
            max_iops: dto.max_iops,
            min_iops: dto.min_iops,
        }
    }
}

/// A pool of a tenant with its unit config (`bo.ResourcePoolWithUnit`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolWithUnitDto {
    pub pool_name: String,
    pub pool_id: u64,
    /// `z1;z2`.
    pub zone_list: String,
    /// `ip:port,ip:port`.
    pub observer_list: String,
    pub unit_num: u32,
    pub unit_config: Option<ObUnitConfigDto>,
}

/// `GET /api/v1/tenant/:name` (`bo.TenantInfo`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantInfoDto {
    pub tenant_name: String,
    pub tenant_id: u64,
    pub created_time: String,
    pub mode: String,
    pub status: String,
    pub locked: String,
    pub primary_zone: String,
    pub locality: String,
    pub in_recyclebin: String,
    pub charset: String,
    pub collation: String,
    /// The tenant's `ob_tcp_invited_nodes`.
    pub whitelist: String,
    pub pools: Vec<PoolWithUnitDto>,
    pub read_only: bool,
    pub time_zone: String,
    pub lower_case_table_names: String,
    pub dead_lock_detection_enabled: bool,
    pub connection_strings: Vec<ConnectionStringDto>,
    pub comment: String,
    /// Extension: PRIMARY or STANDBY.
    pub tenant_role: String,
    /// Extension.
    pub data_version: String,
    /// Extension.
    pub sync_scn: u64,
}

impl TenantInfoDto {
    /// The tenant with its pools (`pools` and `configs` of the cluster).
    pub fn of(
        tenant: &Tenant,
        pools: &[ResourcePool],
        configs: &[UnitConfig],
        host: &str,
    ) -> TenantInfoDto {
        let pools = tenant
            .pool_names
            .iter()
            .filter_map(|name| pools.iter().find(|pool| &pool.name == name))
            .map(|pool| PoolWithUnitDto {
                pool_name: pool.name.clone(),
                pool_id: pool.id,
                zone_list: pool.zone_list.join(";"),
                observer_list: pool
                    .units
                    .iter()
                    .map(|unit| unit.server.clone())
                    .collect::<Vec<_>>()
                    .join(","),
                unit_num: pool.unit_num,
                unit_config: configs
                    .iter()
                    .find(|config| config.name == pool.unit_config_name)
                    .map(ObUnitConfigDto::from),
            })
            .collect();
        let overview = TenantOverviewDto::of(tenant, host);
        let variable = |name: &str| {
            catalog::variable(name)
                .map(|def| tenant.variable_value(def))
                .unwrap_or_default()
        };
        TenantInfoDto {
            tenant_name: overview.tenant_name,
            tenant_id: overview.tenant_id,
            created_time: overview.created_time,
            mode: overview.mode,
            status: overview.status,
            locked: overview.locked,
            primary_zone: overview.primary_zone,
            locality: overview.locality,
            in_recyclebin: overview.in_recyclebin,
            charset: tenant.charset.clone(),
            collation: tenant.collation.clone(),
            whitelist: variable(catalog::VARIABLE_WHITELIST),
            pools,
            read_only: overview.read_only,
            time_zone: variable("time_zone"),
            lower_case_table_names: variable("lower_case_table_names"),
            // obshell: the cluster parameter `_lcl_op_interval` is not 0; the embedded
            // cluster always detects deadlocks.
            dead_lock_detection_enabled: true,
            connection_strings: overview.connection_strings,
            comment: overview.comment,
            tenant_role: overview.tenant_role,
            data_version: overview.data_version,
            sync_scn: overview.sync_scn,
        }
    }
}

/// Body of `DELETE /api/v1/tenant/:name` (`param.DropTenantParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DropTenantParam {
    /// Move the tenant to the recycle bin instead of dropping it for good.
    #[serde(default)]
    pub need_recycle: Option<bool>,
}

/// Body of `POST /api/v1/recyclebin/tenant/:name` (`param.FlashBackTenantParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FlashbackTenantParam {
    /// The name to bring it back under (default: its original name).
    #[serde(default)]
    pub new_name: Option<String>,
}

/// A tenant in the recycle bin (`DBA_RECYCLEBIN`, obshell's `DbaRecyclebin`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecyclebinTenantDto {
    pub object_name: String,
    pub original_tenant_name: String,
    /// YES or NO.
    pub can_undrop: String,
    /// YES or NO.
    pub can_purge: String,
}

impl RecyclebinTenantDto {
    /// A recycled tenant.
    pub fn of(tenant: &Tenant) -> RecyclebinTenantDto {
        RecyclebinTenantDto {
            object_name: tenant.name.clone(),
            original_tenant_name: tenant
                .recycled
                .as_ref()
                .map(|recycled| recycled.original_name.clone())
                .unwrap_or_default(),
            can_undrop: yes_no(true),
            can_purge: yes_no(true),
        }
    }
}

// ---------------------------------------------------------------- OCP preview

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_version_numbers_are_oceanbases() {
        assert_eq!(
            cluster_version_number("4.2.1.0"),
            (4 << 32) | (2 << 16) | (1 << 8)
        );
        assert_eq!(cluster_version_number("4.2.4.0"), 17_180_001_280);
        assert_eq!(cluster_version_number(""), 0);
    }
}

// ---- tenant administration (obshell's `param/tenant.go`) ----

/// gin's `required` binding failure for `fields` (in declaration order).
pub fn required(fields: Vec<&'static str>) -> AppError {
    obrestore_restore::RestoreParamError::Required { fields }.into()
}

/// Body of `PUT /api/v1/tenant/:name/name` (`param.RenameTenantParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RenameTenantParam {
    /// Required.
    #[serde(default)]
    pub new_name: Option<String>,
}

/// Body of `POST /api/v1/tenant/:name/replicas` (`param.ScaleOutTenantReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ScaleOutReplicasParam {
    /// Required: one replica per zone.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub zone_list: Option<Vec<obrestore_restore::ZoneParam>>,
}

impl ScaleOutReplicasParam {
    /// The replicas to add, each zone's replica type parsed as obshell renders it.
    ///
    /// # Errors
    /// 400: `zone_list` missing, an unknown replica type, a unit num below 1.
    pub fn to_specs(&self) -> Result<Vec<ReplicaSpec>, AppError> {
        let Some(zones) = &self.zone_list else {
            return Err(required(vec!["zone_list"]));
        };
        zones
            .iter()
            .enumerate()
            .map(|(index, zone)| {
                Ok(ReplicaSpec {
                    zone: zone.name.clone(),
                    replica_type: parse_replica_type(
                        index,
                        &zone.name,
                        zone.replica_type.as_deref(),
                    )?,
                    unit_config_name: zone.unit_config_name.clone(),
                    unit_num: unit_num(zone.unit_num)?,
                })
            })
            .collect()
    }
}

/// obshell's `RenderZoneParams` + `CheckReplicaType`: empty → FULL.
fn parse_replica_type(
    index: usize,
    zone: &str,
    value: Option<&str>,
) -> Result<ReplicaType, AppError> {
    match value
        .filter(|value| !value.is_empty())
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("FULL") => Ok(ReplicaType::Full),
        Some("READONLY") => Ok(ReplicaType::Readonly),
        Some(upper) => Err(obrestore_restore::RestoreParamError::ReplicaTypeInvalid {
            index,
            zone: zone.to_string(),
            value: upper.to_string(),
        }
        .into()),
    }
}

/// A unit num as the cluster takes it: 0 and below are `OB.Tenant.UnitNum.Invalid`.
fn unit_num(value: i64) -> Result<u32, AppError> {
    u32::try_from(value.max(0)).map_err(|_| {
        AppError::from(ClusterError::UnitNumInvalid {
            unit_num: u32::MAX,
            reason: "unit num is too large".to_string(),
        })
    })
}

/// Body of `DELETE /api/v1/tenant/:name/replicas` (`param.ScaleInTenantReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ScaleInReplicasParam {
    /// Required: the zones whose replicas go.
    #[serde(default)]
    pub zones: Option<Vec<String>>,
}

/// One zone of `PATCH /api/v1/tenant/:name/replicas` (`param.ModifyReplicaZoneParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ModifyReplicaZoneParam {
    #[serde(default)]
    pub zone_name: String,
    #[serde(default)]
    pub replica_type: Option<String>,
    #[serde(default)]
    pub unit_config_name: Option<String>,
    #[serde(default)]
    pub unit_num: Option<i64>,
}

/// Body of `PATCH /api/v1/tenant/:name/replicas` (`param.ModifyReplicasParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ModifyReplicasParam {
    /// Required.
    #[serde(default)]
    pub zone_list: Option<Vec<ModifyReplicaZoneParam>>,
}

impl ModifyReplicasParam {
    /// The changes, each replica type parsed as obshell renders it.
    ///
    /// # Errors
    /// 400: `zone_list` missing, an unknown replica type, a unit num below 1.
    pub fn to_changes(&self) -> Result<Vec<ReplicaModify>, AppError> {
        let Some(zones) = &self.zone_list else {
            return Err(required(vec!["zone_list"]));
        };
        zones
            .iter()
            .enumerate()
            .map(|(index, zone)| {
                Ok(ReplicaModify {
                    zone: zone.zone_name.clone(),
                    replica_type: zone
                        .replica_type
                        .as_deref()
                        .map(|kind| parse_replica_type(index, &zone.zone_name, Some(kind)))
                        .transpose()?,
                    unit_config_name: zone.unit_config_name.clone(),
                    unit_num: zone.unit_num.map(unit_num).transpose()?,
                })
            })
            .collect()
    }
}

/// Body of `PUT /api/v1/tenant/:name/primary-zone` (`param.ModifyTenantPrimaryZoneParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PrimaryZoneParam {
    /// Required: `RANDOM` (any case) or `z1;z2,z3`.
    #[serde(default)]
    pub primary_zone: Option<String>,
}

/// Body of `PUT /api/v1/tenant/:name/whitelist` (`param.ModifyTenantWhitelistParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WhitelistParam {
    /// Required (may be empty): merged with `127.0.0.1`.
    #[serde(default)]
    pub whitelist: Option<String>,
}

/// Body of `PUT /api/v1/tenant/:name/password` (`param.ModifyTenantRootPasswordParam`).
/// Never logged or echoed.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RootPasswordParam {
    #[serde(default)]
    #[schema(value_type = String)]
    pub old_password: Option<Secret>,
    /// Required (may be empty).
    #[serde(default)]
    #[schema(value_type = String)]
    pub new_password: Option<Secret>,
}

/// Body of `POST /api/v1/tenant/:name/password/persist`
/// (`param.PersistTenantRootPasswordParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PersistPasswordParam {
    #[serde(default)]
    #[schema(value_type = String)]
    pub password: Option<Secret>,
}

/// Body of `PUT /api/v1/tenant/:name/variables` (`param.SetTenantVariablesParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SetVariablesParam {
    /// Required: name → string, number or boolean.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<BTreeMap<String, Value>>,
    /// The root password, for the variables obshell sets over a tenant connection.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tenant_password: Option<Secret>,
}

/// Body of `PUT /api/v1/tenant/:name/parameters` (`param.SetTenantParametersParam`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SetParametersParam {
    /// Required: name → string, number or boolean.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<BTreeMap<String, Value>>,
}

/// Variable or parameter values as OceanBase takes them
/// ([`obrestore_restore::tenant_param::value_text`]).
///
/// # Errors
/// 400 naming the entry whose value is not a string, number or boolean.
pub fn value_texts(
    values: &BTreeMap<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, AppError> {
    values
        .iter()
        .map(|(name, value)| {
            let text = obrestore_restore::tenant_param::value_text(value).ok_or_else(|| {
                AppError::illegal(
                    &format!("{field}.{name}"),
                    "should be a string, a number or a boolean",
                )
            })?;
            Ok((name.clone(), text))
        })
        .collect()
}

/// A system variable (`oceanbase.CdbObSysVariable`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VariableDto {
    pub name: String,
    pub value: String,
    pub info: String,
}

impl From<&TenantVariable> for VariableDto {
    fn from(variable: &TenantVariable) -> VariableDto {
        VariableDto {
            name: variable.name.clone(),
            value: variable.value.clone(),
            info: variable.info.clone(),
        }
    }
}

/// A tenant parameter (`oceanbase.GvObParameter`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParameterDto {
    pub name: String,
    pub value: String,
    pub data_type: String,
    pub info: String,
    pub edit_level: String,
}

impl From<&TenantParameter> for ParameterDto {
    fn from(parameter: &TenantParameter) -> ParameterDto {
        ParameterDto {
            name: parameter.name.clone(),
            value: parameter.value.clone(),
            data_type: parameter.data_type.clone(),
            info: parameter.info.clone(),
            edit_level: parameter.edit_level.clone(),
        }
    }
}

/// `?filter=` of the variable and parameter listings: a SQL `LIKE` pattern, `%` when
/// absent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct FilterQuery {
    pub filter: Option<String>,
}
