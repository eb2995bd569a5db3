//! Opening a cluster with a manual clock, and reading a zone's capacity.

use std::path::Path;
use std::sync::Arc;

use obrestore_restore::cluster::Server;
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster, TenantService};

use crate::common;
use crate::common::fixtures::start;

pub fn open_at(path: &Path, clock: Arc<ManualClock>) -> SledCluster {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::new(
        &db,
        path.with_extension("rows"),
        &ClusterConfig::default(),
        clock,
    )
    .unwrap()
}

pub fn open(dir: &tempfile::TempDir) -> (SledCluster, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (open_at(&dir.path().join("db"), clock.clone()), clock)
}

/// `(cpu_assigned, memory_assigned, cpu_free, memory_free, unit_count)` of the one
/// server of `zone`.
pub fn usage(cluster: &SledCluster, zone: &str) -> (f64, u64, f64, u64, u64) {
    let servers: Vec<Server> = cluster.servers_in_zone(zone).unwrap();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    (
        server.cpu_assigned,
        server.memory_assigned,
        server.cpu_free(),
        server.memory_free(),
        server.unit_count,
    )
}
