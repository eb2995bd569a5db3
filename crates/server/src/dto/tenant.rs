//! Tenant views (`GET /api/v1/tenants/overview`, `GET /api/v1/tenant/:name`), the drop
//! and flashback bodies, and the recycle bin.

use obrestore_restore::cluster::{catalog, ResourcePool, Tenant, UnitConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{time, yes_no, UnitConfigDto, SQL_PORT};

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
