//! The tenant-administration tests' backend: the cluster's records in the agent's sled
//! database (`tests/tenant_admin_etcd` runs the same tests on etcd).

use std::path::Path;
use std::sync::Arc;

use obrestore_restore::cluster::ClusterResult;
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster};

use crate::common;

/// Opens the cluster in the sled database at `path`, rows in `path.rows`.
pub(crate) fn open(
    path: &Path,
    config: &ClusterConfig,
    clock: Arc<ManualClock>,
) -> ClusterResult<SledCluster> {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::new(&db, path.with_extension("rows"), config, clock)
}

/// Lets `edit` change the stored JSON of tenant `id` (the cluster is closed).
pub(crate) fn edit_tenant_record(
    path: &Path,
    id: u64,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    let tenants = db.open_tree("cluster/tenants").unwrap();
    let bytes = tenants.get(id.to_be_bytes()).unwrap().unwrap();
    let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    edit(record.as_object_mut().unwrap());
    tenants
        .insert(id.to_be_bytes(), serde_json::to_vec(&record).unwrap())
        .unwrap();
    db.flush().unwrap();
}
