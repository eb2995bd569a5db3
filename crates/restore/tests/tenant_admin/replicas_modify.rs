//! Modify replicas: type, unit config and unit num with capacity accounting, a shared
//! pool split for a partial change, refusals.

use chrono::Duration;
use obrestore_restore::cluster::{ReplicaModify, ReplicaType, TenantOptions, TenantStatus, GIB};
use obrestore_restore::TenantService;

use crate::fixture::*;

// long: walks one tenant through every kind of change (type, config up, unit num up,
// the same again, unit num down, config down), checking its servers after each.
#[test]
fn modify_replicas_changes_type_config_and_unit_num_with_capacity_accounting() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    let first_servers = ["127.0.0.1:2811", "127.0.0.1:2821", "127.0.0.1:2831"];
    let second_servers = ["127.0.0.1:2812", "127.0.0.1:2822", "127.0.0.1:2832"];
    let usages = |servers: &[&str]| {
        servers
            .iter()
            .map(|s| usage(&fx.cluster, s))
            .collect::<Vec<_>>()
    };
    let all_zones = |change: fn(ReplicaModify) -> ReplicaModify| -> Vec<ReplicaModify> {
        ["z1", "z2", "z3"]
            .into_iter()
            .map(|zone| change(modify(zone)))
            .collect()
    };

    // Replica type.
    let tenant = fx
        .cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                replica_type: Some(R),
                ..modify("z3")
            }],
        )
        .unwrap();
    assert_eq!(tenant.locality(), "FULL{1}@z1, FULL{1}@z2, READONLY{1}@z3");

    // Unit config: the units grow in place.
    let to_s2 = all_zones(|change| ReplicaModify {
        unit_config_name: Some("s2".into()),
        ..change
    });
    fx.cluster.modify_replicas("t1", &to_s2).unwrap();
    for pool in fx.pools_of("t1") {
        assert_eq!(pool.unit_config_name, "s2");
        assert_eq!(
            pool.units
                .iter()
                .map(|unit| (unit.max_cpu, unit.memory_size))
                .collect::<Vec<_>>(),
            [(4.0, 8 * GIB)]
        );
    }
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(0.0, 0, 0); 3]);

    // Unit num 2: a second unit per zone, on the other server.
    let two = all_zones(|change| ReplicaModify {
        unit_num: Some(2),
        ..change
    });
    fx.cluster.modify_replicas("t1", &two).unwrap();
    for pool in fx.pools_of("t1") {
        assert_eq!(pool.unit_num, 2);
        let mut servers: Vec<_> = pool.units.iter().map(|unit| unit.server.clone()).collect();
        servers.dedup();
        assert_eq!(servers.len(), 2, "{}", pool.name);
    }
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(4.0, 8 * GIB, 1); 3]);

    // Idempotent: asking for what is there changes nothing at all.
    fx.clock.advance(Duration::seconds(1));
    let before = snapshot(&fx.cluster);
    fx.cluster.modify_replicas("t1", &two).unwrap();
    fx.cluster.modify_replicas("t1", &to_s2).unwrap();
    fx.cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                replica_type: Some(R),
                ..modify("z3")
            }],
        )
        .unwrap();
    assert_eq!(snapshot(&fx.cluster), before);

    // Back to 1: the newest unit of each zone goes and its server is freed.
    let one = all_zones(|change| ReplicaModify {
        unit_num: Some(1),
        ..change
    });
    let original_units: Vec<u64> = fx
        .pools_of("t1")
        .iter()
        .map(|pool| pool.units[0].id)
        .collect();
    fx.cluster.modify_replicas("t1", &one).unwrap();
    let pools = fx.pools_of("t1");
    assert_eq!(
        pools
            .iter()
            .map(|pool| pool.units[0].id)
            .collect::<Vec<_>>(),
        original_units
    );
    assert!(pools
        .iter()
        .all(|pool| pool.unit_num == 1 && pool.units.len() == 1));
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(0.0, 0, 0); 3]);

    // Back to s1: the units shrink and give the difference back.
    let to_s1 = all_zones(|change| ReplicaModify {
        unit_config_name: Some("s1".into()),
        ..change
    });
    fx.cluster.modify_replicas("t1", &to_s1).unwrap();
    assert_eq!(usages(&first_servers), [(2.0, 4 * GIB, 1); 3]);
}

#[test]
fn modify_replicas_splits_a_shared_pool_for_a_partial_config_change() {
    let fx = fixture();
    fx.cluster
        .create_pools(&[pool_spec("shared", "s1", &["z1", "z2"])], "setup")
        .unwrap();
    let tenant = fx
        .cluster
        .create_tenant(
            &new_tenant(
                "t1",
                &[("z1", F), ("z2", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["shared".into()],
            ),
            "setup",
        )
        .unwrap();
    let now = start().timestamp();
    let changed = fx
        .cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                unit_config_name: Some("s2".into()),
                ..modify("z2")
            }],
        )
        .unwrap();
    let (z1, z2) = (
        format!("{}_z1_{now}", tenant.id),
        format!("{}_z2_{now}", tenant.id),
    );
    assert_eq!(changed.pool_names, [z1.clone(), z2.clone()]);
    assert_eq!(fx.cluster.pool("shared").unwrap(), None);
    assert_eq!(
        fx.cluster.pool(&z1).unwrap().unwrap().unit_config_name,
        "s1"
    );
    assert_eq!(
        fx.cluster.pool(&z2).unwrap().unwrap().unit_config_name,
        "s2"
    );
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (4.0, 8 * GIB, 1));
}

/// A change of `zone`'s unit num.
fn unit_num(zone: &str, num: u32) -> ReplicaModify {
    ReplicaModify {
        unit_num: Some(num),
        ..modify(zone)
    }
}

/// A change of `zone`'s unit config.
fn config(zone: &str, name: &str) -> ReplicaModify {
    ReplicaModify {
        unit_config_name: Some(name.into()),
        ..modify(zone)
    }
}

/// A change of `zone`'s replica type.
fn kind(zone: &str, replica_type: ReplicaType) -> ReplicaModify {
    ReplicaModify {
        replica_type: Some(replica_type),
        ..modify(zone)
    }
}

/// Tenants t1 (z1..z3), `two` (z1, z2), `small` (z5, the small server), `calm` (z1..z3,
/// rebalance off) and `restoring` (RESTORE).
fn modify_replicas_refusal_fixture() -> Fixture {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.tenant("two", &[("z1", F), ("z2", F)]);
    fx.tenant("small", &[("z5", F)]);
    fx.tenant("calm", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    fx.tenant_with(
        "restoring",
        &[("z4", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    fx
}

#[test]
fn modify_replicas_refusals_of_the_request_and_the_tenant() {
    let fx = modify_replicas_refusal_fixture();
    let before = snapshot(&fx.cluster);
    let change =
        |tenant: &str, changes: &[ReplicaModify]| fx.cluster.modify_replicas(tenant, changes);
    check_refusals(vec![
        (
            "no zones",
            change("t1", &[]),
            ("ZoneListEmpty", "Zone list is empty."),
        ),
        (
            "missing tenant",
            change("nope", &[modify("z1")]),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
        (
            "restoring tenant",
            change("restoring", &[modify("z4")]),
            (
                "TenantState",
                "tenant 'restoring' is RESTORE, the operation needs NORMAL",
            ),
        ),
        (
            "zone without replica",
            change("t1", &[modify("z1"), modify("z4")]),
            ("ZoneWithoutReplica", "Zone 'z4' does not have a replica."),
        ),
        (
            "repeated zone",
            change("t1", &[modify("z1"), modify("z1")]),
            ("ZoneRepeated", "Zone 'z1' is repeated."),
        ),
        (
            "unit num 0",
            change("t1", &[unit_num("z1", 0)]),
            (
                "UnitNumInvalid",
                "Unit number '0' is invalid: unit num must be greater than 0",
            ),
        ),
        (
            "more units than servers",
            change("t1", &[unit_num("z1", 3)]),
            (
                "UnitNumExceedsServers",
                "unit num '3' is bigger than server num '2' in zone 'z1'",
            ),
        ),
        (
            "unit nums differ",
            change("t1", &[unit_num("z1", 2), unit_num("z2", 1)]),
            (
                "UnitNumInconsistent",
                "Unit number is inconsistent, should be the same in all zones.",
            ),
        ),
        (
            "no unit config name",
            change("t1", &[config("z1", "")]),
            ("UnitConfigNameEmpty", "Unit config name is empty."),
        ),
        (
            "missing unit config",
            change("t1", &[config("z1", "s9")]),
            ("UnitConfigNotFound", "unit config 's9' does not exist"),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
}

#[test]
fn modify_replicas_refusals_by_locality_rebalance_and_capacity() {
    let fx = modify_replicas_refusal_fixture();
    let before = snapshot(&fx.cluster);
    let change =
        |tenant: &str, changes: &[ReplicaModify]| fx.cluster.modify_replicas(tenant, changes);
    check_refusals(vec![
        (
            "unit num of some zones",
            change("t1", &[unit_num("z1", 2), unit_num("z2", 2)]),
            ("ModifyUnitNumPartially", "Cannot modify unit number partially."),
        ),
        (
            "unit num with rebalance off",
            change("calm", &[unit_num("z1", 2), unit_num("z2", 2), unit_num("z3", 2)]),
            (
                "RebalanceDisabled",
                "modify unit num is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "two FULL to one",
            change("two", &[kind("z2", R)]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "no FULL left",
            change("two", &[kind("z1", R), kind("z2", R)]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "RANDOM's first priority shrinks",
            change("calm", &[kind("z3", R)]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "the server cannot hold the bigger unit",
            change("small", &[config("z5", "big")]),
            ("MachineResourceNotEnough", "machine resource 'z5' is not enough to hold a new unit"),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // The same unit num everywhere is no change, so it is no partial change either; and
    // s2 fills the small server exactly.
    change("t1", &[unit_num("z1", 1)]).unwrap();
    change("small", &[config("z5", "s2")]).unwrap();
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2851"), (4.0, 8 * GIB, 1));
}
