//! Opening a cluster on etcd for the shared cluster tests: the same `open`, `open_at`
//! and `usage` as `tests/cluster/support.rs`, with the records in an etcd started for
//! the test (one per test thread, stopped when the test ends) and the rows in
//! `path.rows` standing in for the shared directory.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Compare, Etcd, Fence, Op};
use obrestore_restore::cluster::{ClusterResult, Server};
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster, TenantService};

use crate::common;
use crate::common::fixtures::start;

/// The cluster name every test uses (each test has an etcd of its own).
pub const CLUSTER: &str = "c1";

thread_local! {
    /// This test's etcd: libtest runs each test on a thread of its own, whose end
    /// drops (kills) it.
    static ETCD: RefCell<Option<EtcdCluster>> = const { RefCell::new(None) };
}

/// A client of this test's etcd, started on first use.
///
/// # Panics
/// When etcd is not installed: these tests exist to run on etcd.
pub fn etcd() -> Etcd {
    ETCD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let started = EtcdCluster::start(1);
            assert!(
                started.is_some(),
                "these tests need etcd (Debian package etcd-server, or OBRESTORE_ETCD_BIN)"
            );
            *cell = started;
        }
        cell.as_ref().map(EtcdCluster::client).unwrap()
    })
}

/// Opens cluster [`CLUSTER`] on `etcd` as an agent would: its own database at
/// `path`, the rows in `rows` (the shared directory), `fence` if it is the maintainer.
pub fn open_agent(
    etcd: Etcd,
    path: &Path,
    rows: &Path,
    fence: Option<Fence>,
    clock: Arc<ManualClock>,
) -> ClusterResult<SledCluster> {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::open_etcd(
        &db,
        etcd,
        CLUSTER,
        fence,
        rows,
        &ClusterConfig::default(),
        clock,
    )
}

pub fn open_at(path: &Path, clock: Arc<ManualClock>) -> SledCluster {
    open_agent(etcd(), path, &path.with_extension("rows"), None, clock).unwrap()
}

pub fn open(dir: &tempfile::TempDir) -> (SledCluster, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (open_at(&dir.path().join("db"), clock.clone()), clock)
}

/// The maintainer's key of the tests.
pub const MAINTAINER_KEY: &[u8] = b"/obrestore/c1/maintainer";

/// Claims the maintainer key (it must be free) and returns the fence on it.
pub fn claim_maintainer(etcd: &Etcd) -> Fence {
    let key = MAINTAINER_KEY.to_vec();
    let claimed = etcd
        .txn(
            vec![Compare::Absent(key.clone())],
            vec![Op::Put(key.clone(), b"agent".to_vec())],
        )
        .unwrap();
    assert!(claimed, "the maintainer key is taken");
    let kv = etcd.get(&key).unwrap().unwrap();
    Fence::new(key, kv.create_revision)
}

/// Deletes the maintainer key, as the end of its lease does.
pub fn lose_maintainer(etcd: &Etcd) {
    etcd.txn(Vec::new(), vec![Op::Delete(MAINTAINER_KEY.to_vec())])
        .unwrap();
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
