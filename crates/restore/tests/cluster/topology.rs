//! Seeding, unit configs, capacity accounting, and sharing the database.

use std::sync::Arc;

use obrestore_restore::cluster::{ClusterError, NewUnitConfig, PoolSpec, UnitConfig, GIB};
use obrestore_restore::{ClusterConfig, ManualClock, SledCluster, TenantService};

use crate::common::fixtures::{pool_spec as pool, start, unit_config};
use crate::support::{open, usage};

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

/// Unit configs the cluster refuses, with its message.
fn refused_unit_configs() -> Vec<(NewUnitConfig, &'static str)> {
    vec![
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
            "unit config 'c' is invalid: max_cpu must be greater than 0 and at most 1048576",
        ),
        // Rounded to the stored precision first: 1e-7 would be stored as 0.
        (
            unit_config("c", 1e-7, GIB),
            "unit config 'c' is invalid: max_cpu must be greater than 0 and at most 1048576",
        ),
        // 1e308 would round to an infinity that the stored JSON cannot hold.
        (
            unit_config("c", 1e308, GIB),
            "unit config 'c' is invalid: max_cpu must be greater than 0 and at most 1048576",
        ),
        (
            unit_config("c", f64::NAN, GIB),
            "unit config 'c' is invalid: max_cpu must be greater than 0 and at most 1048576",
        ),
        (
            unit_config("m", 1.0, u64::MAX),
            "unit config 'm' is invalid: memory_size must be at most 1P",
        ),
        (
            NewUnitConfig {
                log_disk_size: Some(u64::MAX),
                ..unit_config("l", 1.0, GIB)
            },
            "unit config 'l' is invalid: log_disk_size must be at most 3P",
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
    ]
}

#[test]
fn unit_config_rules_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    for (config, message) in refused_unit_configs() {
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
