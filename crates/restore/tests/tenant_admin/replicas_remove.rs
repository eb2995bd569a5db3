//! Scale in: pools dropped or split, capacity freed, idempotency, refusals.

use chrono::Duration;
use obrestore_restore::cluster::{TenantOptions, TenantStatus, GIB};
use obrestore_restore::TenantService;

use crate::fixture::*;

#[test]
fn remove_replicas_drops_pools_frees_capacity_and_is_idempotent() {
    let fx = fixture();
    let tenant = fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    let z3_server = "127.0.0.1:2831";
    assert_eq!(usage(&fx.cluster, z3_server), (2.0, 4 * GIB, 1));
    fx.clock.advance(Duration::seconds(3));
    let removed = fx
        .cluster
        .remove_replicas("t1", &zones(&["z3", "z4"]))
        .unwrap();
    assert_eq!(zone_list(&removed), pairs(&[("z1", F), ("z2", F)]));
    assert_eq!(removed.pool_names, tenant.pool_names[..2]);
    assert_eq!(removed.updated_at, start() + Duration::seconds(3));
    assert_eq!(fx.cluster.pool("t1_z3").unwrap(), None);
    assert_eq!(usage(&fx.cluster, z3_server), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));

    // Again, and zones without a replica: nothing to do.
    let before = snapshot(&fx.cluster);
    assert_eq!(
        fx.cluster.remove_replicas("t1", &zones(&["z3"])).unwrap(),
        removed
    );
    assert_eq!(
        fx.cluster
            .remove_replicas("t1", &zones(&["z4", "z9"]))
            .unwrap(),
        removed
    );
    assert_eq!(fx.cluster.remove_replicas("t1", &[]).unwrap(), removed);
    assert_eq!(snapshot(&fx.cluster), before);

    // A READONLY replica does not count for the FULL rule.
    fx.tenant("t2", &[("z1", F), ("z2", F), ("z3", R)]);
    let t2 = fx.cluster.remove_replicas("t2", &zones(&["z3"])).unwrap();
    assert_eq!(zone_list(&t2), pairs(&[("z1", F), ("z2", F)]));
}

#[test]
fn remove_replicas_splits_a_pool_shared_with_kept_zones() {
    let fx = fixture();
    fx.cluster
        .create_pools(&[pool_spec("shared", "s1", &["z1", "z2", "z3"])], "setup")
        .unwrap();
    let tenant = fx
        .cluster
        .create_tenant(
            &new_tenant(
                "t1",
                &[("z1", F), ("z2", F), ("z3", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["shared".into()],
            ),
            "setup",
        )
        .unwrap();
    let shared = fx.cluster.pool("shared").unwrap().unwrap();
    fx.clock.advance(Duration::seconds(10));
    let now = (start() + Duration::seconds(10)).timestamp();
    let removed = fx.cluster.remove_replicas("t1", &zones(&["z2"])).unwrap();
    let z1 = format!("{}_z1_{now}", tenant.id);
    let z3 = format!("{}_z3_{now}", tenant.id);
    assert_eq!(removed.pool_names, [z1.clone(), z3.clone()]);
    assert_eq!(fx.cluster.pool("shared").unwrap(), None);
    for (name, zone) in [(&z1, "z1"), (&z3, "z3")] {
        let part = fx.cluster.pool(name).unwrap().unwrap();
        assert_eq!(part.zone_list, [zone]);
        assert_eq!(part.tenant_id, Some(tenant.id));
        assert_eq!(part.creator.as_deref(), Some("setup"));
        assert_eq!(part.unit_config_name, "s1");
        // The units stay where they were.
        let kept: Vec<_> = shared
            .units
            .iter()
            .filter(|unit| unit.zone == zone)
            .cloned()
            .collect();
        assert_eq!(part.units, kept);
    }
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
}

#[test]
fn remove_replicas_refusals() {
    let fx = fixture();
    fx.tenant("one", &[("z1", F)]);
    fx.tenant("t3", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.tenant("fr", &[("z1", F), ("z2", R)]);
    fx.tenant_with(
        "pz",
        &[("z1", F), ("z2", F), ("z3", F)],
        "z3;z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant("calm", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    fx.tenant_with(
        "restoring",
        &[("z4", F), ("z5", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let before = snapshot(&fx.cluster);
    let remove = |tenant: &str, names: &[&str]| fx.cluster.remove_replicas(tenant, &zones(names));
    check_refusals(vec![
        ("missing tenant", remove("nope", &["z1"]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "restoring tenant",
            remove("restoring", &["z5"]),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        ("the only replica", remove("one", &["z1"]), ("ReplicaOnlyOne", "Tenant 'one' only has one replica")),
        ("every replica", remove("t3", &["z3", "z1", "z2"]), ("ReplicaDeleteAll", "Cannot delete all replicas")),
        (
            "three FULL to one",
            remove("t3", &["z1", "z2"]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "no FULL left",
            remove("fr", &["z1"]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "primary zone names the zone",
            remove("pz", &["z3"]),
            ("PrimaryZoneInvalid", "Primary zone 'z3;z1' is invalid: Zone 'z3' is not in zone_list."),
        ),
        (
            "RANDOM's first priority shrinks",
            remove("calm", &["z3"]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Two FULL to one is refused as well (the next step after three to two).
    fx.cluster.remove_replicas("t3", &zones(&["z3"])).unwrap();
    check_refusals(vec![(
        "two FULL to one",
        remove("t3", &["z2"]),
        (
            "LocalityPrincipalNotAllowed",
            "Violate locality principal not allowed.",
        ),
    )]);
}
