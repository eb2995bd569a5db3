//! Device syncs per cluster write, counted through the database's `DeviceSync`: each
//! committed transaction is one device sync before it returns; what commits nothing in
//! sled (a preview, a refusal, a row batch, whose run file is `fdatasync`ed itself)
//! is none. The engine's store on the same database shares the same `DeviceSync`.

use std::sync::Arc;

use obrestore_dag::store::DeviceSync;
use obrestore_dag::SledStore;
use obrestore_restore::cluster::{ClusterResult, NewTenant, TenantRole, TenantStatus, GIB};
use obrestore_restore::{SledCluster, TenantService};

use crate::common::fixtures::{pool_spec as pool, put, restoring_tenant, unit_config};
use crate::support::open;

/// A cluster write and the device syncs it must cost.
struct Case {
    what: &'static str,
    write: fn(&SledCluster) -> ClusterResult<()>,
    syncs: u64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "create a unit config",
            write: |c| {
                c.create_unit_config(&unit_config("s2", 4.0, 8 * GIB))
                    .map(drop)
            },
            syncs: 1,
        },
        Case {
            what: "a refused unit config (the name exists)",
            write: |c| {
                let refused = c.create_unit_config(&unit_config("s2", 2.0, 4 * GIB));
                assert!(refused.is_err(), "a second s2 was created");
                Ok(())
            },
            syncs: 0,
        },
        Case {
            what: "create a pool",
            write: |c| c.create_pools(&[pool("p", "s2", &["z1"])], "d").map(drop),
            syncs: 1,
        },
        Case {
            what: "create a tenant",
            write: |c| {
                let tenant = NewTenant {
                    status: TenantStatus::Normal,
                    role: TenantRole::Primary,
                    ..restoring_tenant("t", &["p"], &["z1"])
                };
                c.create_tenant(&tenant, "d").map(drop)
            },
            syncs: 1,
        },
        Case {
            what: "preview a primary zone",
            write: |c| c.preview_primary_zone("t", "z1").map(drop),
            syncs: 0,
        },
        Case {
            what: "a row batch (a run file, synced by the row store)",
            write: |c| {
                let tenant = c.tenant("t")?.expect("tenant t");
                c.apply_rows(tenant.id, &[put(1, "k", "v")])
            },
            syncs: 0,
        },
        Case {
            what: "set a primary zone",
            write: |c| c.set_primary_zone("t", "z1").map(drop),
            syncs: 1,
        },
        Case {
            what: "sync_to_device",
            write: SledCluster::sync_to_device,
            syncs: 1,
        },
    ]
}

#[test]
fn each_committed_transaction_is_one_device_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _clock) = open(&dir);
    let device = DeviceSync::of(cluster.db()).unwrap();
    for case in cases() {
        let before = device.syncs();
        (case.write)(&cluster).unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(device.syncs() - before, case.syncs, "{}", case.what);
    }
}

#[test]
fn the_engine_store_and_the_cluster_share_one_device_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _clock) = open(&dir);
    let store = SledStore::from_db(cluster.db()).unwrap();
    let device = DeviceSync::of(cluster.db()).unwrap();
    assert!(Arc::ptr_eq(&device, &DeviceSync::of(store.db()).unwrap()));
}
