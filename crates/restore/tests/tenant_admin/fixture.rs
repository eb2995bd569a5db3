//! The tenant-administration tests' cluster (five zones in two regions, three unit
//! configs), tenants made on it, and the checks of refusals and capacity.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use obrestore_restore::cluster::{
    ClusterResult, NewTenant, PoolSpec, ReplicaModify, ReplicaSpec, ReplicaType, ResourcePool,
    ServerSeed, Tenant, TenantOptions, TenantRole, TenantStatus, TenantZone, ZoneSeed, GIB,
};
use obrestore_restore::{ClusterConfig, ClusterError, ManualClock, SledCluster, TenantService};

pub(crate) use crate::common::fixtures::{pool_spec, start, unit_config};

/// PBKDF2 rounds for the tests' verifiers (the default takes seconds unoptimized).
pub(crate) const TEST_KDF_ITERATIONS: u32 = 64;

/// z1..z3 (region hangzhou) have two 16-CPU / 64 GiB servers each, z4 (shanghai) one,
/// z5 (hangzhou) one small 4-CPU / 8 GiB server. Unit configs: s1 (2 CPU, 4 GiB), s2
/// (4 CPU, 8 GiB), big (12 CPU, 48 GiB).
pub(crate) fn config() -> ClusterConfig {
    let server = |port: u16, cpu: f64, memory: u64| ServerSeed {
        ip: "127.0.0.1".into(),
        port,
        cpu_capacity: cpu,
        memory_capacity: memory,
    };
    let zone = |name: &str, region: &str, servers: Vec<ServerSeed>| ZoneSeed {
        name: name.into(),
        region: region.into(),
        servers,
    };
    ClusterConfig {
        zones: vec![
            zone(
                "z1",
                "hangzhou",
                vec![server(2811, 16.0, 64 * GIB), server(2812, 16.0, 64 * GIB)],
            ),
            zone(
                "z2",
                "hangzhou",
                vec![server(2821, 16.0, 64 * GIB), server(2822, 16.0, 64 * GIB)],
            ),
            zone(
                "z3",
                "hangzhou",
                vec![server(2831, 16.0, 64 * GIB), server(2832, 16.0, 64 * GIB)],
            ),
            zone("z4", "shanghai", vec![server(2841, 16.0, 64 * GIB)]),
            zone("z5", "hangzhou", vec![server(2851, 4.0, 8 * GIB)]),
        ],
        unit_configs: vec![
            unit_config("s1", 2.0, 4 * GIB),
            unit_config("s2", 4.0, 8 * GIB),
            unit_config("big", 12.0, 48 * GIB),
        ],
    }
}

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) cluster: SledCluster,
}

pub(crate) fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("db")
}

/// Opens the cluster on the test binary's backend (`crate::backend`: sled, or etcd in
/// `tests/tenant_admin_etcd`) with the agent's database at `path`.
pub(crate) fn open_at(path: &Path, clock: Arc<ManualClock>) -> SledCluster {
    crate::backend::open(path, &config(), clock)
        .unwrap()
        .with_password_kdf_iterations(TEST_KDF_ITERATIONS)
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let cluster = open_at(&db_path(&dir), clock.clone());
    Fixture {
        dir,
        clock,
        cluster,
    }
}

impl Fixture {
    /// Closes the cluster and opens it again on the same directory.
    pub(crate) fn reopened(self) -> Fixture {
        let Fixture {
            dir,
            clock,
            cluster,
        } = self;
        drop(cluster);
        let cluster = open_at(&db_path(&dir), clock.clone());
        Fixture {
            dir,
            clock,
            cluster,
        }
    }

    /// Closes the cluster, lets `edit` change the stored JSON of tenant `id`, and opens
    /// it again: how records written by an older version, or left DROPPING by a crash,
    /// are made.
    pub(crate) fn with_tenant_record_edited(
        self,
        id: u64,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Fixture {
        let Fixture {
            dir,
            clock,
            cluster,
        } = self;
        drop(cluster);
        crate::backend::edit_tenant_record(&db_path(&dir), id, edit);
        let cluster = open_at(&db_path(&dir), clock.clone());
        Fixture {
            dir,
            clock,
            cluster,
        }
    }

    /// A NORMAL, PRIMARY tenant with one pool `<name>_<zone>` of s1 per zone, primary
    /// zone RANDOM.
    pub(crate) fn tenant(&self, name: &str, zones: &[(&str, ReplicaType)]) -> Tenant {
        self.tenant_with(
            name,
            zones,
            "RANDOM",
            TenantStatus::Normal,
            &TenantOptions::default(),
        )
    }

    pub(crate) fn tenant_with(
        &self,
        name: &str,
        zones: &[(&str, ReplicaType)],
        primary_zone: &str,
        status: TenantStatus,
        options: &TenantOptions,
    ) -> Tenant {
        let specs: Vec<PoolSpec> = zones
            .iter()
            .map(|(zone, _)| pool_spec(&format!("{name}_{zone}"), "s1", &[zone]))
            .collect();
        self.cluster.create_pools(&specs, "setup").unwrap();
        let new = new_tenant(
            name,
            zones,
            primary_zone,
            status,
            specs.iter().map(|spec| spec.name.clone()).collect(),
        );
        self.cluster
            .create_tenant_with(&new, options, "setup")
            .unwrap()
    }

    pub(crate) fn get(&self, name: &str) -> Tenant {
        self.cluster.tenant(name).unwrap().unwrap()
    }

    pub(crate) fn pools_of(&self, name: &str) -> Vec<ResourcePool> {
        self.get(name)
            .pool_names
            .iter()
            .map(|pool| self.cluster.pool(pool).unwrap().unwrap())
            .collect()
    }

    pub(crate) fn set_parameter(&self, tenant: &str, name: &str, value: &str) {
        self.cluster
            .set_parameters(tenant, &map(&[(name, value)]))
            .unwrap();
    }
}

pub(crate) fn new_tenant(
    name: &str,
    zones: &[(&str, ReplicaType)],
    primary_zone: &str,
    status: TenantStatus,
    pool_names: Vec<String>,
) -> NewTenant {
    NewTenant {
        name: name.into(),
        status,
        role: if status == TenantStatus::Restore {
            TenantRole::Standby
        } else {
            TenantRole::Primary
        },
        data_version: "4.2.1.0".into(),
        primary_zone: primary_zone.into(),
        zone_list: zones
            .iter()
            .map(|(zone, replica_type)| TenantZone {
                zone: zone.to_string(),
                replica_type: *replica_type,
            })
            .collect(),
        pool_names,
    }
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

pub(crate) fn zones(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

pub(crate) fn replica(
    zone: &str,
    replica_type: ReplicaType,
    config: &str,
    unit_num: u32,
) -> ReplicaSpec {
    ReplicaSpec {
        zone: zone.into(),
        replica_type,
        unit_config_name: config.into(),
        unit_num,
    }
}

pub(crate) fn modify(zone: &str) -> ReplicaModify {
    ReplicaModify {
        zone: zone.into(),
        ..ReplicaModify::default()
    }
}

pub(crate) use ReplicaType::{Full as F, Readonly as R};

/// The name of `err`'s `ClusterError` variant, e.g. `ZoneRepeated` (the identifier its
/// `Debug` output starts with). The obshell errCode and HTTP status of each variant are
/// the server crate's business.
pub(crate) fn variant_name(err: &ClusterError) -> String {
    let debug = format!("{err:?}");
    let end = debug
        .find(|c: char| c == '(' || c == '{' || c.is_whitespace())
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

/// `(variant name, message)` of a refusal.
pub(crate) fn refusal<T: Debug>(result: ClusterResult<T>) -> (String, String) {
    let err = result.unwrap_err();
    (variant_name(&err), err.to_string())
}

/// What a refusal must be: `(variant name, message)`.
pub(crate) type Expected<'a> = (&'a str, &'a str);

/// One refusal to check: a label, what the call returned, and what it must be.
pub(crate) type Case<'a, T> = (&'a str, ClusterResult<T>, Expected<'a>);

/// Checks each `(label, result, (variant name, message))`.
pub(crate) fn check_refusals<T: Debug>(cases: Vec<Case<'_, T>>) {
    for (label, result, (variant, message)) in cases {
        let (got_variant, got_message) = refusal(result);
        assert_eq!(
            (got_variant.as_str(), got_message.as_str()),
            (variant, message),
            "{label}"
        );
    }
}

/// Every server's `(address, cpu_assigned, memory_assigned, unit_count)`.
pub(crate) fn capacity(cluster: &SledCluster) -> Vec<(String, f64, u64, u64)> {
    cluster
        .list_servers()
        .unwrap()
        .into_iter()
        .map(|server| {
            (
                server.address(),
                server.cpu_assigned,
                server.memory_assigned,
                server.unit_count,
            )
        })
        .collect()
}

/// `(cpu_assigned, memory_assigned, unit_count)` of server `address`.
pub(crate) fn usage(cluster: &SledCluster, address: &str) -> (f64, u64, u64) {
    capacity(cluster)
        .into_iter()
        .find(|(server, ..)| server == address)
        .map(|(_, cpu, memory, units)| (cpu, memory, units))
        .unwrap()
}

/// Everything the cluster holds outside rows, to compare before and after.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) pools: Vec<ResourcePool>,
    pub(crate) servers: Vec<(String, f64, u64, u64)>,
}

pub(crate) fn snapshot(cluster: &SledCluster) -> Snapshot {
    Snapshot {
        tenants: cluster.list_tenants().unwrap(),
        pools: cluster.list_pools().unwrap(),
        servers: capacity(cluster),
    }
}

pub(crate) fn zone_list(tenant: &Tenant) -> Vec<(String, ReplicaType)> {
    tenant
        .zone_list
        .iter()
        .map(|zone| (zone.zone.clone(), zone.replica_type))
        .collect()
}

pub(crate) fn pairs(list: &[(&str, ReplicaType)]) -> Vec<(String, ReplicaType)> {
    list.iter()
        .map(|(zone, replica_type)| (zone.to_string(), *replica_type))
        .collect()
}
