//! Tenants: idempotent creation and drop, pools granted, the restore lifecycle, the
//! recycle bin, flashback and locks.

use chrono::Duration;
use obrestore_restore::cluster::{ClusterError, PoolSpec, TenantRole, TenantStatus, GIB};
use obrestore_restore::TenantService;

use crate::common::fixtures::{pool_spec as pool, put, restoring_tenant as new_tenant, start};
use crate::support::{open, usage};

/// The pools a restore DAG `dag-7` creates for tenant t1.
fn t1_pools() -> [PoolSpec; 2] {
    [
        pool("t1_z1_1", "s1", &["z1"]),
        pool("t1_z2_1", "s1", &["z2"]),
    ]
}

#[test]
fn pool_creation_is_idempotent_for_its_creator() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    let specs = t1_pools();
    let first = cluster.create_pools(&specs, "dag-7").unwrap();
    let again = cluster.create_pools(&specs, "dag-7").unwrap();
    assert_eq!(first, again);
    assert_eq!(usage(&cluster, "z1"), (2.0, 4 * GIB, 14.0, 60 * GIB, 1));
    assert_eq!(
        cluster
            .create_pools(&specs, "dag-8")
            .unwrap_err()
            .to_string(),
        "resource pool 't1_z1_1' already exists"
    );
    let changed = [PoolSpec {
        unit_config_name: "other".into(),
        ..specs[0].clone()
    }];
    assert_eq!(
        cluster
            .create_pools(&changed, "dag-7")
            .unwrap_err()
            .to_string(),
        "resource pool 't1_z1_1' already exists"
    );
}

#[test]
fn tenant_creation_is_idempotent_for_its_creator_and_drops_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    let specs = t1_pools();
    cluster.create_pools(&specs, "dag-7").unwrap();
    let tenant = new_tenant("t1", &["t1_z1_1", "t1_z2_1"], &["z1", "z2"]);
    let created = cluster.create_tenant(&tenant, "dag-7").unwrap();
    assert_eq!(
        (created.id, created.status, created.role),
        (1002, TenantStatus::Restore, TenantRole::Standby)
    );
    assert_eq!(created.locality(), "FULL{1}@z1, FULL{1}@z2");
    assert_eq!(cluster.create_tenant(&tenant, "dag-7").unwrap(), created);
    let err = cluster.create_tenant(&tenant, "dag-8").unwrap_err();
    assert_eq!(err.to_string(), "tenant 't1' already exists");
    assert!(matches!(err, ClusterError::TenantExists(_)), "{err:?}");
    assert_eq!(
        cluster.pool("t1_z1_1").unwrap().unwrap().tenant_id,
        Some(1002)
    );

    // A granted pool can neither be dropped nor given to another tenant.
    assert_eq!(
        cluster
            .drop_pools(&["t1_z1_1".into()])
            .unwrap_err()
            .to_string(),
        "resource pool 't1_z1_1' has already been granted to tenant 't1'"
    );
    assert_eq!(
        cluster
            .create_tenant(&new_tenant("t2", &["t1_z1_1"], &["z1"]), "x")
            .unwrap_err()
            .to_string(),
        "resource pool 't1_z1_1' has already been granted to tenant 't1'"
    );
    assert_eq!(
        cluster
            .create_tenant(&new_tenant("t3", &["nope"], &["z1"]), "x")
            .unwrap_err()
            .to_string(),
        "resource pool 'nope' does not exist"
    );

    // Rollback order: tenant, then pools; each twice.
    cluster.apply_rows(1002, &[put(1, "k", "v")]).unwrap();
    assert!(cluster.drop_tenant("t1").unwrap());
    assert!(!cluster.drop_tenant("t1").unwrap());
    assert_eq!(cluster.tenant("t1").unwrap(), None);
    assert_eq!(cluster.row_count(1002).unwrap(), 0);
    assert_eq!(cluster.pool("t1_z1_1").unwrap().unwrap().tenant_id, None);
    let names = vec!["t1_z1_1".to_string(), "t1_z2_1".to_string()];
    assert_eq!(cluster.drop_pools(&names).unwrap(), 2);
    assert_eq!(cluster.drop_pools(&names).unwrap(), 0);
    assert_eq!(cluster.list_pools().unwrap(), []);
    assert_eq!(usage(&cluster, "z1"), (0.0, 0, 16.0, 64 * GIB, 0));

    // Ids are never reused.
    cluster.create_pools(&specs[..1], "dag-9").unwrap();
    let next = cluster
        .create_tenant(&new_tenant("t1", &["t1_z1_1"], &["z1"]), "dag-9")
        .unwrap();
    assert_eq!(next.id, 1004);
    assert_eq!(cluster.row_count(1004).unwrap(), 0);
}

#[test]
fn tenant_lifecycle_sync_scn_activate_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, clock) = open(&dir);
    cluster
        .create_pools(&[pool("p", "s1", &["z1"])], "d")
        .unwrap();
    let tenant = cluster
        .create_tenant(&new_tenant("t", &["p"], &["z1"]), "d")
        .unwrap();
    assert_eq!(tenant.sync_scn, 0);
    clock.advance(Duration::seconds(5));
    cluster.set_ls_sync_scn(tenant.id, 1, 300).unwrap();
    let after = cluster.set_ls_sync_scn(tenant.id, 1001, 200).unwrap();
    assert_eq!(after.sync_scn, 200);
    assert_eq!(
        after.ls_sync_scn.into_iter().collect::<Vec<_>>(),
        [(1, 300), (1001, 200)]
    );
    assert_eq!(after.updated_at, start() + Duration::seconds(5));
    assert_eq!(
        cluster
            .set_ls_sync_scn(tenant.id, 1001, 300)
            .unwrap()
            .sync_scn,
        300
    );

    let active = cluster.activate_tenant(tenant.id).unwrap();
    assert_eq!(
        (active.status, active.role),
        (TenantStatus::Normal, TenantRole::Primary)
    );
    assert_eq!(cluster.activate_tenant(tenant.id).unwrap(), active);
    let upgraded = cluster.upgrade_tenant(tenant.id, "4.3.5.0").unwrap();
    assert_eq!(upgraded.data_version, "4.3.5.0");
    assert_eq!(
        cluster.upgrade_tenant(tenant.id, "4.3.5.0").unwrap(),
        upgraded
    );

    assert_eq!(
        cluster.activate_tenant(77).unwrap_err().to_string(),
        "tenant with id 77 does not exist"
    );
    assert_eq!(
        cluster
            .apply_rows(77, &[put(1, "k", "v")])
            .unwrap_err()
            .to_string(),
        "tenant with id 77 does not exist"
    );
}

#[test]
fn recycle_bin_flashback_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, clock) = open(&dir);
    cluster
        .create_pools(&[pool("p1", "s1", &["z1"])], "c")
        .unwrap();
    let tenant = cluster
        .create_tenant(&new_tenant("t1", &["p1"], &["z1"]), "c")
        .unwrap();
    cluster.apply_rows(tenant.id, &[put(1, "k", "v")]).unwrap();
    clock.advance(Duration::seconds(5));
    let recycled = cluster.recycle_tenant(tenant.id).unwrap();
    let object_name = format!(
        "__recycle_$_{}_{}",
        tenant.id,
        (start() + Duration::seconds(5)).timestamp_micros()
    );
    assert_eq!(recycled.name, object_name);
    assert!(recycled.in_recyclebin());
    assert_eq!(recycled.recycled.as_ref().unwrap().original_name, "t1");
    // Recycling twice is harmless.
    assert_eq!(cluster.recycle_tenant(tenant.id).unwrap(), recycled);
    assert!(cluster.tenant("t1").unwrap().is_none());
    assert_eq!(cluster.tenant(&object_name).unwrap().unwrap().id, tenant.id);
    // Found by object name and by original name; rows and pools stay.
    assert_eq!(
        cluster.recycled_tenant("t1").unwrap().unwrap().id,
        tenant.id
    );
    assert_eq!(
        cluster.recycled_tenant(&object_name).unwrap().unwrap().id,
        tenant.id
    );
    assert_eq!(cluster.row_count(tenant.id).unwrap(), 1);
    assert_eq!(
        cluster.pool("p1").unwrap().unwrap().tenant_id,
        Some(tenant.id)
    );
    assert!(matches!(
        cluster.flashback_tenant("nope", None),
        Err(ClusterError::RecycledTenantNotFound(_))
    ));
    // The name is free meanwhile; a flashback onto a taken name is refused.
    cluster
        .create_pools(&[pool("p2", "s1", &["z2"])], "c")
        .unwrap();
    cluster
        .create_tenant(&new_tenant("t1", &["p2"], &["z2"]), "c")
        .unwrap();
    assert!(matches!(
        cluster.flashback_tenant("t1", None),
        Err(ClusterError::TenantExists(name)) if name == "t1"
    ));
    let back = cluster.flashback_tenant(&object_name, Some("t1b")).unwrap();
    assert_eq!((back.name.as_str(), back.id), ("t1b", tenant.id));
    assert!(!back.in_recyclebin());
    assert_eq!(cluster.row_count(tenant.id).unwrap(), 1);
    assert!(cluster.recycled_tenant("t1").unwrap().is_none());
    // Lock and unlock.
    assert!(cluster.set_tenant_locked("t1b", true).unwrap().locked);
    assert!(cluster.tenant("t1b").unwrap().unwrap().locked);
    assert!(!cluster.set_tenant_locked("t1b", false).unwrap().locked);
    assert!(matches!(
        cluster.set_tenant_locked("nope", true),
        Err(ClusterError::TenantNotFound(_))
    ));
}
