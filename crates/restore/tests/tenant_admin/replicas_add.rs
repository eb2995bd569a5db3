//! Scale out: granted pools, capacity charged, idempotency, pool names, refusals.

use chrono::Duration;
use obrestore_restore::cluster::{ReplicaSpec, TenantOptions, TenantStatus, GIB};
use obrestore_restore::TenantService;

use crate::fixture::*;

#[test]
fn add_replicas_creates_granted_pools_charges_capacity_and_is_idempotent() {
    let fx = fixture();
    let tenant = fx.tenant("t1", &[("z1", F)]);
    let free = capacity(&fx.cluster);
    fx.clock.advance(Duration::seconds(60));
    let now = start() + Duration::seconds(60);
    let wanted = [replica("z2", F, "s2", 1), replica("z3", R, "s1", 1)];
    let added = fx.cluster.add_replicas("t1", &wanted, "dag-9").unwrap();

    let pool_z2 = format!("t1_z2_{}", now.timestamp());
    let pool_z3 = format!("t1_z3_{}", now.timestamp());
    assert_eq!(
        added.pool_names,
        [
            tenant.pool_names[0].clone(),
            pool_z2.clone(),
            pool_z3.clone()
        ]
    );
    assert_eq!(zone_list(&added), pairs(&[("z1", F), ("z2", F), ("z3", R)]));
    assert_eq!(added.locality(), "FULL{1}@z1, FULL{1}@z2, READONLY{1}@z3");
    assert_eq!(added.updated_at, now);
    for (name, zone, config) in [(&pool_z2, "z2", "s2"), (&pool_z3, "z3", "s1")] {
        let pool = fx.cluster.pool(name).unwrap().unwrap();
        assert_eq!(pool.tenant_id, Some(tenant.id));
        assert_eq!(pool.creator.as_deref(), Some("dag-9"));
        assert_eq!(pool.spec(), pool_spec(name, config, &[zone]));
        assert_eq!(pool.units.len(), 1);
        assert_eq!(pool.units[0].zone, zone);
    }
    // The units went to the first server of each zone (equal free memory, ties by
    // address) and took exactly their config.
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
    let changed: Vec<_> = capacity(&fx.cluster)
        .into_iter()
        .zip(&free)
        .filter(|(now, before)| now != *before)
        .map(|(now, _)| now.0)
        .collect();
    assert_eq!(changed, ["127.0.0.1:2821", "127.0.0.1:2831"]);

    // A step re-executed later (another second) by the same creator converges: nothing
    // new is created or charged.
    fx.clock.advance(Duration::seconds(1));
    let before = snapshot(&fx.cluster);
    assert_eq!(
        fx.cluster.add_replicas("t1", &wanted, "dag-9").unwrap(),
        added
    );
    assert_eq!(snapshot(&fx.cluster), before);
    // Another creator, or another spec, is refused.
    check_refusals(vec![
        (
            "another creator",
            fx.cluster.add_replicas("t1", &wanted, "dag-10"),
            ("ZoneAlreadyHasReplica", "Zone 'z2' already has a replica."),
        ),
        (
            "another replica type",
            fx.cluster
                .add_replicas("t1", &[replica("z3", F, "s1", 1)], "dag-9"),
            ("ZoneAlreadyHasReplica", "Zone 'z3' already has a replica."),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
}

#[test]
fn add_replicas_pool_names_do_not_collide() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    let now = start().timestamp();
    // Someone else's pool already has the name obshell would pick.
    fx.cluster
        .create_pools(
            &[pool_spec(&format!("t1_z2_{now}"), "s1", &["z3"])],
            "other",
        )
        .unwrap();
    let tenant = fx
        .cluster
        .add_replicas("t1", &[replica("z2", F, "s1", 1)], "dag-1")
        .unwrap();
    assert_eq!(tenant.pool_names[1], format!("t1_z2_{now}_2"));
    let other = fx.cluster.pool(&format!("t1_z2_{now}")).unwrap().unwrap();
    assert_eq!(
        (other.tenant_id, other.creator.as_deref()),
        (None, Some("other"))
    );
}

/// Tenants t1 (z1), `east` (z1, primary zone z1), `restoring` (RESTORE), `wide` (a
/// replica in z1 on a pool that also covers z2) and `calm` (rebalance off).
fn add_replicas_refusal_fixture() -> Fixture {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant_with(
        "east",
        &[("z1", F)],
        "z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    // A tenant whose pool also covers z2, where it has no replica.
    fx.cluster
        .create_pools(&[pool_spec("wide", "s1", &["z1", "z2"])], "setup")
        .unwrap();
    fx.cluster
        .create_tenant(
            &new_tenant(
                "wide",
                &[("z1", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["wide".into()],
            ),
            "setup",
        )
        .unwrap();
    fx.tenant("calm", &[("z1", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    fx
}

#[test]
fn add_replicas_refusals_of_the_request_and_the_tenant() {
    let fx = add_replicas_refusal_fixture();
    let before = snapshot(&fx.cluster);
    let add = |tenant: &str, specs: &[ReplicaSpec]| fx.cluster.add_replicas(tenant, specs, "dag-1");
    check_refusals(vec![
        (
            "no zones",
            add("t1", &[]),
            ("ZoneListEmpty", "Zone list is empty."),
        ),
        (
            "repeated zone",
            add(
                "t1",
                &[replica("z2", F, "s1", 1), replica("z2", R, "s1", 1)],
            ),
            ("ZoneRepeated", "Zone 'z2' is repeated."),
        ),
        (
            "no unit config",
            add("t1", &[replica("z2", F, " ", 1)]),
            ("UnitConfigNameEmpty", "Unit config name is empty."),
        ),
        (
            "unit num 0",
            add("t1", &[replica("z2", F, "s1", 0)]),
            (
                "UnitNumInvalid",
                "Unit number '0' is invalid: unit num should be greater than 0",
            ),
        ),
        (
            "unit nums differ",
            add(
                "t1",
                &[replica("z2", F, "s1", 1), replica("z3", F, "s1", 2)],
            ),
            (
                "UnitNumInconsistent",
                "Unit number is inconsistent, should be the same in all zones.",
            ),
        ),
        (
            "missing tenant",
            add("nope", &[replica("z2", F, "s1", 1)]),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
        (
            "restoring tenant",
            add("restoring", &[replica("z3", F, "s1", 1)]),
            (
                "TenantState",
                "tenant 'restoring' is RESTORE, the operation needs NORMAL",
            ),
        ),
        (
            "missing zone",
            add("t1", &[replica("z9", F, "s1", 1)]),
            ("ZoneNotFound", "zone 'z9' does not exist"),
        ),
        (
            "missing unit config",
            add("t1", &[replica("z2", F, "s9", 1)]),
            ("UnitConfigNotFound", "unit config 's9' does not exist"),
        ),
        (
            "more units than servers",
            add("t1", &[replica("z4", F, "s1", 2)]),
            (
                "UnitNumExceedsServers",
                "unit num '2' is bigger than server num '1' in zone 'z4'",
            ),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
}

#[test]
fn add_replicas_refusals_by_the_tenants_replicas_and_locality() {
    let fx = add_replicas_refusal_fixture();
    let before = snapshot(&fx.cluster);
    let add = |tenant: &str, specs: &[ReplicaSpec]| fx.cluster.add_replicas(tenant, specs, "dag-1");
    check_refusals(vec![
        (
            "zone has a replica",
            add("t1", &[replica("z2", F, "s1", 1), replica("z1", F, "s1", 1)]),
            ("ZoneAlreadyHasReplica", "Zone 'z1' already has a replica."),
        ),
        (
            "unit num other than the tenant's",
            add("t1", &[replica("z2", F, "s1", 2)]),
            ("UnitNumInconsistent", "Unit number is inconsistent, should be the same in all zones."),
        ),
        (
            "tenant has a pool in the zone",
            add("wide", &[replica("z2", F, "s1", 1)]),
            ("HasPoolOnZone", "Tenant already has a pool located in zone 'z2'."),
        ),
        (
            "new FULL zone changes RANDOM's first priority",
            add("calm", &[replica("z2", F, "s1", 1)]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "RANDOM over two regions",
            add("t1", &[replica("z4", F, "s1", 1)]),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'RANDOM' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "second region without 2 FULL in the first",
            add("east", &[replica("z4", F, "s1", 1)]),
            (
                "PrimaryRegionFullReplicaNotEnough",
                "The region hangzhou where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
            ),
        ),
        (
            "no server can hold the unit",
            add("t1", &[replica("z2", F, "s1", 1), replica("z5", F, "big", 1)]),
            ("MachineResourceNotEnough", "machine resource 'z5' is not enough to hold a new unit"),
        ),
    ]);
    // Nothing was created, granted or charged by any refusal (the last one had placed
    // z2's unit before z5 failed).
    assert_eq!(snapshot(&fx.cluster), before);
    // A READONLY replica leaves RANDOM's first priority alone: allowed with rebalance off.
    let calm = add("calm", &[replica("z2", R, "s1", 1)]).unwrap();
    assert_eq!(zone_list(&calm), pairs(&[("z1", F), ("z2", R)]));
}
