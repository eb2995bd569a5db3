//! The embedded cluster: seeding, capacity, idempotent create/drop, durability across
//! reopen, rows and digest, restore jobs and history.

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use obrestore_restore::cluster::digest::digest_rows;
use obrestore_restore::cluster::{
    ClusterError, NewRestoreJob, NewTenant, NewUnitConfig, PartProgress, PoolSpec, ReplicaType,
    RestoreJobPatch, RestoreJobStatus, RestoreOutcome, Row, RowOp, Server, TenantRole,
    TenantStatus, TenantZone, UnitConfig, GIB,
};
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster, TenantService};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 9, 11, 43).unwrap()
}

fn open_at(path: &Path, clock: Arc<ManualClock>) -> SledCluster {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::new(
        &db,
        path.with_extension("rows"),
        &ClusterConfig::default(),
        clock,
    )
    .unwrap()
}

fn open(dir: &tempfile::TempDir) -> (SledCluster, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (open_at(&dir.path().join("db"), clock.clone()), clock)
}

fn unit_config(name: &str, cpu: f64, memory: u64) -> NewUnitConfig {
    NewUnitConfig {
        name: name.into(),
        memory_size: memory,
        max_cpu: cpu,
        min_cpu: None,
        log_disk_size: None,
        max_iops: None,
        min_iops: None,
    }
}

fn pool(name: &str, config: &str, zones: &[&str]) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        unit_config_name: config.into(),
        unit_num: 1,
        zone_list: zones.iter().map(|zone| zone.to_string()).collect(),
    }
}

fn new_tenant(name: &str, pools: &[&str], zones: &[&str]) -> NewTenant {
    NewTenant {
        name: name.into(),
        status: TenantStatus::Restore,
        role: TenantRole::Standby,
        data_version: "4.2.1.0".into(),
        primary_zone: "RANDOM".into(),
        zone_list: zones
            .iter()
            .map(|zone| TenantZone {
                zone: zone.to_string(),
                replica_type: ReplicaType::Full,
            })
            .collect(),
        pool_names: pools.iter().map(|pool| pool.to_string()).collect(),
    }
}

fn usage(cluster: &SledCluster, zone: &str) -> (f64, u64, f64, u64, u64) {
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

fn put(tablet_id: u64, key: &str, value: &str) -> RowOp {
    RowOp::Put {
        tablet_id,
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn row(tablet_id: u64, key: &str, value: &str) -> Row {
    Row {
        tablet_id,
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

#[test]
fn first_start_seeds_zones_servers_and_unit_config() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    let zones = cluster.list_zones().unwrap();
    let names: Vec<&str> = zones.iter().map(|zone| zone.name.as_str()).collect();
    assert_eq!(names, ["z1", "z2", "z3"]);
    let servers = cluster.list_servers().unwrap();
    let summary: Vec<(String, String, f64, u64)> = servers
        .iter()
        .map(|server| {
            (
                server.zone.clone(),
                server.address(),
                server.cpu_capacity,
                server.memory_capacity,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "z1".to_string(),
                "127.0.0.1:2882".to_string(),
                16.0,
                64 * GIB
            ),
            (
                "z2".to_string(),
                "127.0.0.1:2883".to_string(),
                16.0,
                64 * GIB
            ),
            (
                "z3".to_string(),
                "127.0.0.1:2884".to_string(),
                16.0,
                64 * GIB
            ),
        ]
    );
    assert_eq!(
        cluster.list_unit_configs().unwrap(),
        [UnitConfig {
            id: 1001,
            name: "s1".into(),
            memory_size: 4 * GIB,
            max_cpu: 2.0,
            min_cpu: 2.0,
            log_disk_size: 12 * GIB,
            max_iops: 10_000,
            min_iops: 10_000,
            created_at: start(),
            modified_at: None,
        }]
    );
}

#[test]
fn unit_config_rules_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    let cases = [
        (
            unit_config("", 1.0, GIB),
            "unit config '' is invalid: name is empty",
        ),
        (
            unit_config("m", 1.0, GIB - 1),
            "unit config 'm' is invalid: memory_size must be at least 1G",
        ),
        (
            unit_config("c", 0.0, GIB),
            "unit config 'c' is invalid: max_cpu must be greater than 0",
        ),
        (
            NewUnitConfig {
                min_cpu: Some(3.0),
                ..unit_config("mc", 2.0, GIB)
            },
            "unit config 'mc' is invalid: min_cpu must be greater than 0 and at most max_cpu",
        ),
        (
            NewUnitConfig {
                log_disk_size: Some(GIB),
                ..unit_config("l", 1.0, GIB)
            },
            "unit config 'l' is invalid: log_disk_size must be at least 2G",
        ),
        (
            NewUnitConfig {
                max_iops: Some(1000),
                ..unit_config("i", 1.0, GIB)
            },
            "unit config 'i' is invalid: max_iops must be at least 1024",
        ),
        (
            unit_config("s1", 1.0, GIB),
            "unit config 's1' already exists",
        ),
    ];
    for (config, message) in cases {
        assert_eq!(
            cluster.create_unit_config(&config).unwrap_err().to_string(),
            message
        );
    }
    cluster
        .create_pools(&[pool("p", "s1", &["z1"])], "test")
        .unwrap();
    let in_use = cluster.drop_unit_config("s1").unwrap_err();
    assert_eq!(
        in_use.to_string(),
        "unit config 's1' is used by resource pool 'p'"
    );
    assert!(
        matches!(in_use, ClusterError::UnitConfigInUse { .. }),
        "{in_use:?}"
    );
    cluster.drop_pools(&["p".into()]).unwrap();
    assert!(cluster.drop_unit_config("s1").unwrap());
    assert!(!cluster.drop_unit_config("s1").unwrap());
    assert_eq!(cluster.list_unit_configs().unwrap(), []);
}

#[test]
fn units_take_capacity_and_over_capacity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    cluster
        .create_unit_config(&unit_config("big", 8.0, 32 * GIB))
        .unwrap();
    assert_eq!(usage(&cluster, "z1"), (0.0, 0, 16.0, 64 * GIB, 0));

    let created = cluster
        .create_pools(
            &[pool("a", "s1", &["z1", "z2"]), pool("b", "big", &["z1"])],
            "job-1",
        )
        .unwrap();
    assert_eq!(
        created.iter().map(|p| p.id).collect::<Vec<_>>(),
        [1001, 1002]
    );
    assert_eq!(
        created[0]
            .units
            .iter()
            .map(|u| (u.id, u.server.as_str()))
            .collect::<Vec<_>>(),
        [(1001, "127.0.0.1:2882"), (1002, "127.0.0.1:2883")]
    );
    assert_eq!(usage(&cluster, "z1"), (10.0, 36 * GIB, 6.0, 28 * GIB, 2));
    assert_eq!(usage(&cluster, "z2"), (2.0, 4 * GIB, 14.0, 60 * GIB, 1));

    // 8 more CPU do not fit in the 6 left; the whole call is refused and nothing is created.
    let err = cluster
        .create_pools(
            &[pool("c", "s1", &["z3"]), pool("d", "big", &["z1"])],
            "job-1",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "machine resource 'z1' is not enough to hold a new unit"
    );
    assert!(matches!(err, ClusterError::MachineResourceNotEnough { ref zone } if zone == "z1"));
    assert_eq!(cluster.pool("c").unwrap(), None);
    assert_eq!(usage(&cluster, "z3"), (0.0, 0, 16.0, 64 * GIB, 0));

    let two = PoolSpec {
        unit_num: 2,
        ..pool("e", "s1", &["z1"])
    };
    assert_eq!(
        cluster
            .create_pools(&[two], "job-1")
            .unwrap_err()
            .to_string(),
        "unit num '2' is bigger than server num '1' in zone 'z1'"
    );

    // Dropping frees the capacity exactly.
    assert_eq!(cluster.drop_pools(&["b".into()]).unwrap(), 1);
    assert_eq!(usage(&cluster, "z1"), (2.0, 4 * GIB, 14.0, 60 * GIB, 1));
    assert_eq!(cluster.drop_pools(&["a".into()]).unwrap(), 1);
    assert_eq!(usage(&cluster, "z1"), (0.0, 0, 16.0, 64 * GIB, 0));
    assert_eq!(usage(&cluster, "z2"), (0.0, 0, 16.0, 64 * GIB, 0));
}

#[test]
fn fractional_cpu_accounting_does_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    cluster
        .create_unit_config(&unit_config("tenth", 0.1, GIB))
        .unwrap();
    let names: Vec<String> = (0..30).map(|n| format!("p{n}")).collect();
    let specs: Vec<PoolSpec> = names
        .iter()
        .map(|name| pool(name, "tenth", &["z1"]))
        .collect();
    cluster.create_pools(&specs, "t").unwrap();
    assert_eq!(usage(&cluster, "z1"), (3.0, 30 * GIB, 13.0, 34 * GIB, 30));
    cluster.drop_pools(&names).unwrap();
    assert_eq!(usage(&cluster, "z1"), (0.0, 0, 16.0, 64 * GIB, 0));
}

#[test]
fn creation_is_idempotent_for_its_creator_and_drops_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    let specs = [
        pool("t1_z1_1", "s1", &["z1"]),
        pool("t1_z2_1", "s1", &["z2"]),
    ];
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
fn rows_upsert_delete_count_digest_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    cluster
        .create_pools(&[pool("p", "s1", &["z1"]), pool("q", "s1", &["z2"])], "d")
        .unwrap();
    let a = cluster
        .create_tenant(&new_tenant("a", &["p"], &["z1"]), "d")
        .unwrap()
        .id;
    let b = cluster
        .create_tenant(&new_tenant("b", &["q"], &["z2"]), "d")
        .unwrap()
        .id;

    let batch = [
        put(200001, "k2", "v2"),
        put(200001, "k1", "v1"),
        put(200002, "k1", "x"),
        put(200001, "k2", "v2-new"),
        RowOp::Delete {
            tablet_id: 200002,
            key: b"k1".to_vec(),
        },
        RowOp::Delete {
            tablet_id: 9,
            key: b"missing".to_vec(),
        },
        put(1, "", ""),
    ];
    cluster.apply_rows(a, &batch).unwrap();
    // Re-applying a batch is harmless.
    cluster.apply_rows(a, &batch).unwrap();
    cluster
        .apply_rows(b, &[put(200001, "k1", "other tenant")])
        .unwrap();

    let mut seen = Vec::new();
    cluster
        .for_each_row(a, &mut |tablet, key, value| {
            seen.push(Row {
                tablet_id: tablet,
                key: key.to_vec(),
                value: value.to_vec(),
            })
        })
        .unwrap();
    let expected = vec![
        row(1, "", ""),
        row(200001, "k1", "v1"),
        row(200001, "k2", "v2-new"),
    ];
    assert_eq!(seen, expected);
    assert_eq!(cluster.row_count(a).unwrap(), 3);
    let digest = cluster.tenant_digest(a).unwrap();
    assert_eq!(digest, digest_rows(expected.into_iter().rev()));
    assert_eq!(digest.row_count, 3);
    // Pinned: the digest scheme is a documented format.
    assert_eq!(
        digest.sha256,
        "f79a84054c9a5e7d5e3f14515a34a8f20824014f3e2f85c56b9d9d66f35edc03"
    );

    assert_eq!(cluster.drop_rows(a).unwrap(), 3);
    assert_eq!(cluster.row_count(a).unwrap(), 0);
    assert_eq!(cluster.row_count(b).unwrap(), 1);
    assert_eq!(
        cluster.tenant_digest(a).unwrap().sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn restore_job_progress_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, clock) = open(&dir);
    let new_job = NewRestoreJob {
        restore_tenant_name: "t1".into(),
        restore_scn: 1_704_762_703_000_000_000,
        data_backup_uri: "file:///b/data".into(),
        archive_log_uri: "file:///b/clog".into(),
        ls_count: 2,
        tablet_count: 10,
        total_bytes: 1000,
        ..NewRestoreJob::default()
    };
    let job = cluster.start_restore_job(&new_job, "dag-1").unwrap();
    assert_eq!(
        (job.job_id, job.status, job.start_time, job.finish_time),
        (1, RestoreJobStatus::RestorePre, start(), None)
    );
    assert_eq!(cluster.start_restore_job(&new_job, "dag-1").unwrap(), job);
    let conflict = cluster.start_restore_job(&new_job, "dag-2").unwrap_err();
    assert_eq!(
        conflict.to_string(),
        "tenant 't1' already has an unfinished restore job 1"
    );
    assert!(
        matches!(conflict, ClusterError::RestoreJobConflict { .. }),
        "{conflict:?}"
    );

    let patch = RestoreJobPatch {
        status: Some(RestoreJobStatus::RestoreData),
        restore_tenant_id: Some(1002),
        backup_set_list: Some(vec!["file:///b/data/backup_set_1_full".into()]),
        backup_piece_list: Some(vec!["file:///b/clog/piece_d1r1p1".into()]),
        ..RestoreJobPatch::default()
    };
    cluster.update_restore_job(1, &patch).unwrap();
    cluster
        .record_restore_part(
            1,
            "ls1001/file0",
            PartProgress {
                bytes: 300,
                tablets: 3,
            },
        )
        .unwrap();
    cluster
        .record_restore_part(
            1,
            "ls1001/file1",
            PartProgress {
                bytes: 200,
                tablets: 2,
            },
        )
        .unwrap();
    // A re-executed sub-task records the same part again: no double counting.
    let job = cluster
        .record_restore_part(
            1,
            "ls1001/file0",
            PartProgress {
                bytes: 300,
                tablets: 3,
            },
        )
        .unwrap();
    assert_eq!((job.finish_bytes, job.finish_tablet_count), (500, 5));
    assert_eq!(job.restore_progress(), 0.5);
    cluster.finish_restore_ls(1, 1001).unwrap();
    let job = cluster.finish_restore_ls(1, 1001).unwrap();
    assert_eq!(job.finish_ls_count, 1);
    assert_eq!(job.recover_progress(), 0.5);
    let job = cluster
        .update_restore_job(
            1,
            &RestoreJobPatch {
                recover_scn: Some(42),
                ..RestoreJobPatch::default()
            },
        )
        .unwrap();
    assert_eq!(
        (job.recover_scn, job.status, job.restore_tenant_id),
        (42, RestoreJobStatus::RestoreData, Some(1002))
    );
    assert_eq!(cluster.active_restore_job("t1").unwrap(), Some(job.clone()));
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(job.clone()));

    clock.advance(Duration::seconds(90));
    let done = cluster
        .finish_restore_job(1, RestoreOutcome::Success, Some("restored"))
        .unwrap();
    assert_eq!(done.status, RestoreJobStatus::Success);
    assert_eq!(done.finish_time, Some(start() + Duration::seconds(90)));
    assert_eq!(done.comment, "restored");
    assert_eq!(
        cluster
            .finish_restore_job(1, RestoreOutcome::Fail, None)
            .unwrap(),
        done
    );
    assert_eq!(cluster.active_restore_job("t1").unwrap(), None);
    assert_eq!(
        cluster.restore_history(Some("t1")).unwrap(),
        std::slice::from_ref(&done)
    );
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(done.clone()));
    assert_eq!(cluster.restore_job(1).unwrap(), Some(done.clone()));
    assert_eq!(
        cluster
            .record_restore_part(1, "x", PartProgress::default())
            .unwrap_err()
            .to_string(),
        "restore job 1 is already finished"
    );
    assert_eq!(
        cluster.finish_restore_ls(9, 1).unwrap_err().to_string(),
        "restore job 9 does not exist"
    );

    // A new restore of the same tenant gets the next id; history keeps both.
    let second = cluster.start_restore_job(&new_job, "dag-2").unwrap();
    assert_eq!(second.job_id, 2);
    let failed = cluster
        .finish_restore_job(
            2,
            RestoreOutcome::Fail,
            Some("backup set password is invalid"),
        )
        .unwrap();
    assert_eq!(
        cluster
            .restore_history(None)
            .unwrap()
            .iter()
            .map(|j| (j.job_id, j.status))
            .collect::<Vec<_>>(),
        [(1, RestoreJobStatus::Success), (2, RestoreJobStatus::Fail)]
    );
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(failed));
    assert_eq!(cluster.restore_overview("other").unwrap(), None);
}

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
fn shares_a_db_with_other_trees() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    db.open_tree("dag/dags").unwrap().insert("k", "v").unwrap();
    let cluster = SledCluster::new(
        &db,
        dir.path().join("rows"),
        &ClusterConfig::uniform(1, 4.0, 8 * GIB),
        Arc::new(ManualClock::new(start())),
    )
    .unwrap();
    assert_eq!(cluster.list_zones().unwrap().len(), 1);
    assert_eq!(
        db.open_tree("dag/dags")
            .unwrap()
            .get("k")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(usage(&cluster, "z1"), (0.0, 0, 4.0, 8 * GIB, 0));
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
