//! The primary zone: normalized and checked; first-priority changes need rebalance
//! and one region.

use obrestore_restore::cluster::{TenantOptions, TenantStatus};
use obrestore_restore::TenantService;

use crate::fixture::*;

#[test]
fn primary_zone_is_set_normalized_and_checked() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", R)]);
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("z1;z2", Ok("z1;z2")),
        ("z1,z2;z3", Ok("z1,z2;z3")),
        ("random", Ok("RANDOM")),
        ("", Ok("RANDOM")),
        ("z2", Ok("z2")),
        (
            "z9",
            Err("Primary zone 'z9' is invalid: Zone 'z9' is not in zone_list."),
        ),
        (
            "z1;z4",
            Err("Primary zone 'z1;z4' is invalid: Zone 'z4' is not in zone_list."),
        ),
        (
            "z1;z1",
            Err("Primary zone 'z1;z1' is invalid: Zone 'z1' is repeated in primary_zone."),
        ),
        (
            "z1;;z2",
            Err("Primary zone 'z1;;z2' is invalid: Zone '' is not in zone_list."),
        ),
    ];
    for (input, expected) in cases {
        match expected {
            Ok(stored) => {
                let tenant = fx.cluster.set_primary_zone("t1", input).unwrap();
                assert_eq!(tenant.primary_zone, *stored, "{input}");
                // Idempotent.
                assert_eq!(fx.cluster.set_primary_zone("t1", input).unwrap(), tenant);
            }
            Err(message) => {
                let before = fx.get("t1");
                let (variant, got) = refusal(fx.cluster.set_primary_zone("t1", input));
                assert_eq!(
                    (variant.as_str(), got.as_str()),
                    ("PrimaryZoneInvalid", *message)
                );
                assert_eq!(fx.get("t1"), before);
            }
        }
    }
}

#[test]
fn primary_zone_changes_of_first_priority_need_rebalance() {
    let fx = fixture();
    fx.tenant_with(
        "t1",
        &[("z1", F), ("z2", F), ("z3", R)],
        "z1;z2",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.set_parameter("t1", "enable_rebalance", "False");
    // The first-priority FULL zones stay {z1}: allowed with rebalance off. z3 is
    // READONLY, so "z3;z1" still has first priority {z1}.
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z1;z3")
            .unwrap()
            .primary_zone,
        "z1;z3"
    );
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z3;z1")
            .unwrap()
            .primary_zone,
        "z3;z1"
    );
    check_refusals(vec![(
        "first priority {z1} -> {z2}",
        fx.cluster.set_primary_zone("t1", "z2;z1"),
        (
            "RebalanceDisabled",
            "Change first priority zone of primary zone is not allowed when tenant 'enable_rebalance' is disabled.",
        ),
    )]);
    fx.set_parameter("t1", "enable_rebalance", "True");
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z2;z1")
            .unwrap()
            .primary_zone,
        "z2;z1"
    );
}

#[test]
fn primary_zone_first_priority_must_stay_in_one_region() {
    let fx = fixture();
    // Regions: z4 is in shanghai.
    fx.tenant_with(
        "t2",
        &[("z1", F), ("z2", F), ("z4", F)],
        "z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant_with(
        "t3",
        &[("z3", F), ("z4", F)],
        "z3",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    check_refusals(vec![
        (
            "first priority across regions",
            fx.cluster.set_primary_zone("t2", "z1,z4"),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'z1,z4' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "RANDOM over two regions",
            fx.cluster.set_primary_zone("t2", "RANDOM"),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'RANDOM' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "one FULL replica in the primary region",
            fx.cluster.set_primary_zone("t3", "z4"),
            (
                "PrimaryRegionFullReplicaNotEnough",
                "The region shanghai where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
            ),
        ),
    ]);
    // Two FULL replicas in hangzhou: z1 or z2 first is fine.
    assert_eq!(
        fx.cluster
            .set_primary_zone("t2", "z2;z1")
            .unwrap()
            .primary_zone,
        "z2;z1"
    );
}
