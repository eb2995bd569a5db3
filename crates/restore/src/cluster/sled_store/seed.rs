//! What a new cluster store is seeded with: zones, their servers and unit configs
//! ([`ClusterConfig`]). Seeding happens once, in the transaction that writes the format
//! version; later opens ignore the config.

use chrono::{DateTime, Utc};

use super::{pools, topology, Tx, TxResult};
use crate::cluster::model::{NewUnitConfig, GIB};

/// A server to seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSeed {
    pub ip: String,
    pub port: u16,
    pub cpu_capacity: f64,
    pub memory_capacity: u64,
}

/// A zone to seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSeed {
    pub name: String,
    pub region: String,
    pub servers: Vec<ServerSeed>,
}

/// What the embedded cluster is seeded with on first start (later starts ignore it).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    pub zones: Vec<ZoneSeed>,
    pub unit_configs: Vec<NewUnitConfig>,
}

/// Name of the unit config seeded by [`ClusterConfig::default`].
pub const DEFAULT_UNIT_CONFIG: &str = "s1";

impl ClusterConfig {
    /// Zones `z1..=zN` in region `default`, one server each at `127.0.0.1:2882`,
    /// `127.0.0.1:2883`, ..., with `cpu` cores and `memory` bytes, and the default unit
    /// config `s1` (2 CPU, 4 GiB memory, 12 GiB log disk, 10000 IOPS).
    pub fn uniform(zone_count: u16, cpu: f64, memory: u64) -> ClusterConfig {
        ClusterConfig {
            zones: (1..=zone_count)
                .map(|n| ZoneSeed {
                    name: format!("z{n}"),
                    region: "default".to_string(),
                    servers: vec![ServerSeed {
                        ip: "127.0.0.1".to_string(),
                        port: 2881 + n,
                        cpu_capacity: cpu,
                        memory_capacity: memory,
                    }],
                })
                .collect(),
            unit_configs: vec![NewUnitConfig {
                name: DEFAULT_UNIT_CONFIG.to_string(),
                memory_size: 4 * GIB,
                max_cpu: 2.0,
                min_cpu: None,
                log_disk_size: None,
                max_iops: None,
                min_iops: None,
            }],
        }
    }
}

impl Default for ClusterConfig {
    /// Zones z1..z3, one server each with 16 CPU and 64 GiB, unit config `s1`.
    fn default() -> ClusterConfig {
        ClusterConfig::uniform(3, 16.0, 64 * GIB)
    }
}

/// Writes the zones, servers and unit configs of `config`.
pub(super) fn seed(tx: &Tx<'_>, config: &ClusterConfig, now: DateTime<Utc>) -> TxResult<()> {
    for zone in &config.zones {
        topology::insert_zone(tx, &zone.name, &zone.region, now)?;
        for server in &zone.servers {
            topology::insert_server(tx, &zone.name, server, now)?;
        }
    }
    for unit_config in &config.unit_configs {
        pools::insert_unit_config(tx, unit_config, now)?;
    }
    Ok(())
}
