//! Zones, servers, unit configs, resource pools and their units.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::units::{round_cpu, CPU_EPSILON};

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
