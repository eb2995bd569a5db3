//! Durability: everything survives a reopen, seeding happens once, and the store's
//! format version is checked (version 2 upgraded, others refused).

use std::sync::Arc;

use obrestore_restore::cluster::{NewRestoreJob, RestoreOutcome, GIB};
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster, TenantService};

use crate::common;
use crate::common::fixtures::{
    pool_spec as pool, put, restoring_tenant as new_tenant, start, unit_config,
};
use crate::support::{open, open_at, usage};

#[test]
fn everything_survives_reopen_and_seeding_happens_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let clock = Arc::new(ManualClock::new(start()));
    let (pools, tenant, digest, job) = {
        let cluster = open_at(&path, clock.clone());
        cluster
            .create_unit_config(&unit_config("s2", 4.0, 8 * GIB))
            .unwrap();
        let pools = cluster
            .create_pools(&[pool("p", "s2", &["z1"])], "d")
            .unwrap();
        let tenant = cluster
            .create_tenant(&new_tenant("t", &["p"], &["z1"]), "d")
            .unwrap();
        cluster
            .apply_rows(tenant.id, &[put(5, "a", "1"), put(5, "b", "2")])
            .unwrap();
        let tenant = cluster.set_ls_sync_scn(tenant.id, 1, 99).unwrap();
        let digest = cluster.tenant_digest(tenant.id).unwrap();
        let job_id = cluster
            .start_restore_job(
                &NewRestoreJob {
                    restore_tenant_name: "t".into(),
                    ..NewRestoreJob::default()
                },
                "d",
            )
            .unwrap()
            .job_id;
        let job = cluster
            .finish_restore_job(job_id, RestoreOutcome::Success, None)
            .unwrap();
        // The seeded config is dropped; a reopen must not bring it back.
        cluster.drop_unit_config("s1").unwrap();
        (pools, tenant, digest, job)
    };
    let cluster = open_at(&path, clock);
    assert_eq!(
        cluster
            .list_unit_configs()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["s2"]
    );
    assert_eq!(
        cluster.list_pools().unwrap(),
        [ResourcePoolWithTenant::of(&pools[0], tenant.id)]
    );
    assert_eq!(cluster.tenant("t").unwrap(), Some(tenant.clone()));
    assert_eq!(cluster.tenant_digest(tenant.id).unwrap(), digest);
    assert_eq!(cluster.restore_history(None).unwrap(), [job]);
    assert_eq!(usage(&cluster, "z1"), (4.0, 8 * GIB, 12.0, 56 * GIB, 1));
    // Counters continue.
    cluster
        .create_pools(&[pool("p2", "s2", &["z2"])], "d")
        .unwrap();
    assert_eq!(
        cluster
            .create_tenant(&new_tenant("u", &["p2"], &["z2"]), "d")
            .unwrap()
            .id,
        1004
    );
}

/// The pool as persisted after `create_tenant` granted it.
struct ResourcePoolWithTenant;

impl ResourcePoolWithTenant {
    fn of(
        pool: &obrestore_restore::cluster::ResourcePool,
        tenant_id: u64,
    ) -> obrestore_restore::cluster::ResourcePool {
        obrestore_restore::cluster::ResourcePool {
            tenant_id: Some(tenant_id),
            ..pool.clone()
        }
    }
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    db.open_tree("cluster/meta")
        .unwrap()
        .insert("format_version", &1u64.to_be_bytes())
        .unwrap();
    let err = SledCluster::new(
        &db,
        dir.path().join("rows"),
        &ClusterConfig::default(),
        Arc::new(ManualClock::new(start())),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster store format version 1 is not supported (expected 3)"
    );
}

#[test]
fn format_2_is_upgraded_by_giving_unit_configs_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let (cluster, _) = open(&dir);
        cluster
            .create_unit_config(&unit_config("u2", 1.0, GIB))
            .unwrap();
    }
    // Rewrite the store as a format-2 agent left it: no ids.
    {
        let db = common::retry_while_locked(|| sled::open(&path)).unwrap();
        let meta = db.open_tree("cluster/meta").unwrap();
        meta.insert("format_version", &2u64.to_be_bytes()).unwrap();
        meta.remove("next_unit_config_id").unwrap();
        let configs = db.open_tree("cluster/unit_configs").unwrap();
        for entry in configs.iter() {
            let (key, value) = entry.unwrap();
            let mut record: serde_json::Value = serde_json::from_slice(&value).unwrap();
            let object = record.as_object_mut().unwrap();
            object.remove("id");
            object.remove("modified_at");
            configs
                .insert(key, serde_json::to_vec(&record).unwrap())
                .unwrap();
        }
        db.flush().unwrap();
    }
    let (cluster, _) = open(&dir);
    let ids: Vec<(String, u64)> = cluster
        .list_unit_configs()
        .unwrap()
        .into_iter()
        .map(|config| (config.name, config.id))
        .collect();
    assert_eq!(ids, [("s1".to_string(), 1001), ("u2".to_string(), 1002)]);
    // New configs continue the sequence.
    let next = cluster
        .create_unit_config(&unit_config("u3", 1.0, GIB))
        .unwrap();
    assert_eq!(next.id, 1003);
}
