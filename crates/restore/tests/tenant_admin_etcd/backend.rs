//! The tenant-administration tests' backend on etcd: the records in this test's etcd
//! (`crate::support`), the agent's own database at the path, rows in `path.rows`.

use std::path::Path;
use std::sync::Arc;

use obrestore_etcd::Op;
use obrestore_restore::cluster::ClusterResult;
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster};

use crate::common;
use crate::support::{etcd, CLUSTER};

pub(crate) fn open(
    path: &Path,
    config: &ClusterConfig,
    clock: Arc<ManualClock>,
) -> ClusterResult<SledCluster> {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::open_etcd(
        &db,
        etcd(),
        CLUSTER,
        None,
        path.with_extension("rows"),
        config,
        clock,
    )
}

/// Lets `edit` change the stored JSON of tenant `id` in etcd.
pub(crate) fn edit_tenant_record(
    _path: &Path,
    id: u64,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let etcd = etcd();
    let mut key = format!("/obrestore/{CLUSTER}/cluster/tenants/").into_bytes();
    key.extend_from_slice(&id.to_be_bytes());
    let bytes = etcd.get(&key).unwrap().unwrap().value;
    let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    edit(record.as_object_mut().unwrap());
    let put = Op::Put(key, serde_json::to_vec(&record).unwrap());
    assert!(etcd.txn(Vec::new(), vec![put]).unwrap());
}
