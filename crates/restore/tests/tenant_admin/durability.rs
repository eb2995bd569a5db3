//! Administration survives a reopen; new errors carry obshell's texts.

use obrestore_restore::cluster::{ReplicaModify, TenantOptions, TenantStatus, GIB};
use obrestore_restore::{ClusterError, Secret, TenantService};

use crate::fixture::*;

/// Tenant t1 renamed `orders`, scaled out to z3, modified (z1 to s2, 2 units
/// everywhere, z3 FULL), scaled in from z2, with primary zone z3;z1, a variable, a
/// parameter and root password pw-2, persisted.
fn administered_tenant(fx: &Fixture) {
    let options = TenantOptions {
        root_password: Some(Secret::new("pw-1")),
        ..TenantOptions::default()
    };
    fx.tenant_with(
        "t1",
        &[("z1", F), ("z2", F)],
        "RANDOM",
        TenantStatus::Normal,
        &options,
    );
    fx.cluster.rename_tenant("t1", "orders").unwrap();
    fx.cluster
        .add_replicas("orders", &[replica("z3", R, "s1", 1)], "dag-1")
        .unwrap();
    fx.cluster
        .modify_replicas(
            "orders",
            &[
                ReplicaModify {
                    unit_config_name: Some("s2".into()),
                    unit_num: Some(2),
                    ..modify("z1")
                },
                ReplicaModify {
                    unit_num: Some(2),
                    ..modify("z2")
                },
                ReplicaModify {
                    unit_num: Some(2),
                    replica_type: Some(F),
                    ..modify("z3")
                },
            ],
        )
        .unwrap();
    fx.cluster
        .remove_replicas("orders", &zones(&["z2"]))
        .unwrap();
    fx.cluster.set_primary_zone("orders", "z3;z1").unwrap();
    fx.cluster
        .set_variables("orders", &map(&[("ob_query_timeout", "30000000")]))
        .unwrap();
    fx.cluster
        .set_parameters("orders", &map(&[("undo_retention", "900")]))
        .unwrap();
    fx.cluster
        .set_root_password("orders", "pw-2", Some("pw-1"))
        .unwrap();
    fx.cluster.persist_root_password("orders", "pw-2").unwrap();
}

#[test]
fn administration_survives_reopen() {
    let fx = fixture();
    administered_tenant(&fx);
    let before = snapshot(&fx.cluster);

    let fx = fx.reopened();
    assert_eq!(snapshot(&fx.cluster), before);
    let tenant = fx.get("orders");
    assert_eq!(tenant.locality(), "FULL{1}@z1, FULL{1}@z3");
    assert_eq!(tenant.primary_zone, "z3;z1");
    assert_eq!(
        fx.cluster
            .variable("orders", "ob_query_timeout")
            .unwrap()
            .value,
        "30000000"
    );
    assert_eq!(
        fx.cluster
            .parameter("orders", "undo_retention")
            .unwrap()
            .value,
        "900"
    );
    assert!(tenant.root_password_persisted);
    assert!(fx.cluster.check_root_password("orders", "pw-2").unwrap());
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
    // z1's pool holds 2 units of s2, z3's 2 of s1; z2 gave everything back.
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2812"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2822"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2832"), (2.0, 4 * GIB, 1));
}

// ---- error texts ----

#[test]
fn new_errors_carry_obshell_texts() {
    use ClusterError::*;
    let cases: Vec<(ClusterError, &str)> = vec![
        (TenantNameEmpty, "Tenant name is empty"),
        (TenantNameInvalid { name: "a b".into(), reason: "why".into() }, "Tenant name 'a b' is invalid: why"),
        (TenantLocked("t".into()), "Tenant t is locked"),
        (ZoneListEmpty, "Zone list is empty."),
        (ZoneRepeated("z".into()), "Zone 'z' is repeated."),
        (UnitConfigNameEmpty, "Unit config name is empty."),
        (UnitNumInvalid { unit_num: 0, reason: "why".into() }, "Unit number '0' is invalid: why"),
        (UnitNumInconsistent, "Unit number is inconsistent, should be the same in all zones."),
        (ModifyUnitNumPartially, "Cannot modify unit number partially."),
        (ZoneAlreadyHasReplica("z".into()), "Zone 'z' already has a replica."),
        (ZoneWithoutReplica("z".into()), "Zone 'z' does not have a replica."),
        (HasPoolOnZone("z".into()), "Tenant already has a pool located in zone 'z'."),
        (ReplicaOnlyOne("t".into()), "Tenant 't' only has one replica"),
        (ReplicaDeleteAll, "Cannot delete all replicas"),
        (LocalityPrincipalNotAllowed, "Violate locality principal not allowed."),
        (
            PrimaryZoneInvalid { primary_zone: "z9".into(), reason: "why".into() },
            "Primary zone 'z9' is invalid: why.",
        ),
        (
            PrimaryZoneCrossRegion("z1,z4".into()),
            "Primary zone 'z1,z4' crosses regions, please check tenant's primary zone.",
        ),
        (
            PrimaryRegionFullReplicaNotEnough { region: "r".into(), full_replicas: 1 },
            "The region r where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
        ),
        (
            RebalanceDisabled { operation: "X".into() },
            "X is not allowed when tenant 'enable_rebalance' is disabled.",
        ),
        (
            RootPasswordIncorrect { tenant: "t".into() },
            "The provided password is unable to connect to the tenant",
        ),
        (VariableEmpty, "Tenant variable name or value is empty."),
        (VariableNameEmpty, "Tenant variable name is empty."),
        (VariableNotExist("v".into()), "Tenant variable 'v' does not exist."),
        (VariableInvalid { name: "v".into(), reason: "why".into() }, "Tenant variable 'v' is invalid: why."),
        (ParameterEmpty, "Tenant parameter name or value is empty."),
        (ParameterNameEmpty, "Tenant parameter name is empty."),
        (ParameterNotExist("p".into()), "Tenant parameter 'p' does not exist."),
        (
            ParameterInvalid { name: "p".into(), reason: "why".into() },
            "The input parameter 'p' is illegal: why",
        ),
        (
            CharsetCollationInvalid { charset: None, collation: Some("c".into()) },
            "Collation 'c' is not exist.",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message, "{err:?}");
    }
}
