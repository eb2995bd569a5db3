//! The envelope's error table: every refusal of the embedded cluster at obshell's
//! status and code (`ob/agent/errors/errorcode.go`: badRequest and illegalArgument are
//! 400, notFound 404), 409 instead of obshell's 500 for a held restore job, and
//! `MySQL.Error` where obshell leaves the refusal to OceanBase's SQL. Each test is a
//! table of cases run by [`check`].

use obrestore_restore::ClusterError::{self, *};

use super::AppError;

/// One refusal and the status and `errCode` it must answer.
type Case = (ClusterError, u16, &'static str);

/// Asserts every case's status and code, and that each carries a message.
#[track_caller]
fn check(cases: Vec<Case>) {
    for (err, status, code) in cases {
        let shown = format!("{err:?}");
        let error = AppError::from(err);
        assert_eq!(
            (error.status.as_u16(), error.err_code),
            (status, code),
            "{shown}"
        );
        assert!(!error.message.is_empty(), "{shown}");
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn unit_config_pool_and_zone_refusals() {
    check(vec![
        (ZoneNotFound(s("z9")), 400, "OB.Zone.NotExist"),
        (
            UnitConfigNotFound(s("u")),
            400,
            "OB.Resource.UnitConfig.NotExist",
        ),
        (
            UnitConfigExists(s("u")),
            400,
            "OB.Resource.UnitConfig.Existed",
        ),
        (
            UnitConfigInUse {
                name: s("u"),
                pool: s("p"),
            },
            400,
            "MySQL.Error",
        ),
        (PoolNotFound(s("p")), 404, "Common.NotFound"),
        (PoolExists(s("p")), 400, "MySQL.Error"),
        (
            PoolGranted {
                pool: s("p"),
                tenant: s("t"),
            },
            400,
            "OB.Resource.Pool.Granted",
        ),
        (ZoneExists(s("z")), 400, "MySQL.Error"),
        (
            InvalidUnitConfig {
                name: s("u"),
                reason: s("why"),
            },
            400,
            "Common.IllegalArgument",
        ),
        (
            UnitConfigNameEmpty,
            400,
            "OB.Resource.UnitConfig.Name.Empty",
        ),
        (
            Corrupt {
                tree: s("t"),
                reason: s("r"),
            },
            500,
            "Common.Unexpected",
        ),
    ]);
}

#[test]
fn tenant_and_restore_job_refusals() {
    check(vec![
        (TenantNotFound(s("t")), 400, "OB.Tenant.NotExist"),
        (TenantIdNotFound(7), 400, "OB.Tenant.NotExist"),
        (TenantExists(s("t")), 400, "OB.Tenant.Existed"),
        (
            RecycledTenantNotFound(s("t")),
            400,
            "OB.Recyclebin.Tenant.NotExist",
        ),
        (
            TenantState {
                name: s("t"),
                actual: s("RESTORE"),
                expected: s("NORMAL"),
            },
            400,
            "OB.Tenant.StatusNotNormal",
        ),
        (RestoreJobNotFound(1), 404, "Common.NotFound"),
        (
            RestoreJobConflict {
                tenant: s("t"),
                job_id: 1,
            },
            409,
            "OB.Tenant.UnderMaintenance",
        ),
        (RestoreJobFinished(1), 400, "OB.Restore.Task.AlreadySucceed"),
        (TenantNameEmpty, 400, "OB.Tenant.Name.Empty"),
        (
            TenantNameInvalid {
                name: s("a$"),
                reason: s("why"),
            },
            400,
            "OB.Tenant.Name.Invalid",
        ),
        (TenantLocked(s("t")), 400, "OB.Tenant.Locked"),
        (
            RootPasswordIncorrect { tenant: s("t") },
            400,
            "OB.Tenant.RootPasswordIncorrect",
        ),
        (
            CharsetCollationInvalid {
                charset: Some(s("c")),
                collation: None,
            },
            400,
            "OB.Tenant.Collation.Invalid",
        ),
    ]);
}

#[test]
fn replica_locality_and_primary_zone_refusals() {
    check(vec![
        (
            UnitNumExceedsServers {
                unit_num: 2,
                servers: 1,
                zone: s("z1"),
            },
            400,
            "OB.Tenant.UnitNum.ExceedsLimit",
        ),
        (
            MachineResourceNotEnough { zone: s("z1") },
            400,
            "OB.Tenant.ResourceNotEnough",
        ),
        (ZoneListEmpty, 400, "OB.Tenant.ZoneList.Empty"),
        (ZoneRepeated(s("z1")), 400, "OB.Tenant.Zone.Repeated"),
        (
            UnitNumInvalid {
                unit_num: 0,
                reason: s("why"),
            },
            400,
            "OB.Tenant.UnitNum.Invalid",
        ),
        (UnitNumInconsistent, 400, "OB.Tenant.UnitNum.Inconsistent"),
        (
            ModifyUnitNumPartially,
            400,
            "OB.Tenant.ModifyUnitNumPartially",
        ),
        (
            ZoneAlreadyHasReplica(s("z1")),
            400,
            "OB.Tenant.ZoneAlreadyHasReplica",
        ),
        (
            ZoneWithoutReplica(s("z9")),
            400,
            "OB.Tenant.ZoneWithoutReplica",
        ),
        (HasPoolOnZone(s("z1")), 400, "OB.Tenant.HasPoolOnZone"),
        (ReplicaOnlyOne(s("t")), 400, "OB.Tenant.OnlyOneReplica"),
        (ReplicaDeleteAll, 400, "OB.Tenant.Replica.DeleteAll"),
        (
            LocalityPrincipalNotAllowed,
            400,
            "OB.Tenant.Locality.PrincipalNotAllowed",
        ),
        (
            PrimaryZoneInvalid {
                primary_zone: s("z9"),
                reason: s("why"),
            },
            400,
            "OB.Tenant.PrimaryZone.Invalid",
        ),
        (
            PrimaryZoneCrossRegion(s("z1,z4")),
            400,
            "OB.Tenant.PrimaryZone.CrossRegion",
        ),
        (
            PrimaryRegionFullReplicaNotEnough {
                region: s("r"),
                full_replicas: 1,
            },
            400,
            "OB.Tenant.PrimaryRegion.FullReplica.NotEnough",
        ),
        (
            RebalanceDisabled { operation: s("X") },
            400,
            "OB.Tenant.RebalanceDisabled",
        ),
    ]);
}

#[test]
fn variable_and_parameter_refusals() {
    check(vec![
        (VariableEmpty, 400, "OB.Tenant.Variable.Empty"),
        (VariableNameEmpty, 400, "OB.Tenant.Variable.Name.Empty"),
        (VariableNotExist(s("v")), 404, "OB.Tenant.Variable.NotExist"),
        (
            VariableInvalid {
                name: s("v"),
                reason: s("why"),
            },
            400,
            "OB.Tenant.Variable.Invalid",
        ),
        (ParameterEmpty, 400, "OB.Tenant.Parameter.Empty"),
        (ParameterNameEmpty, 400, "OB.Tenant.Parameter.Name.Empty"),
        (
            ParameterNotExist(s("p")),
            400,
            "OB.Tenant.Parameter.NotExist",
        ),
        (
            ParameterInvalid {
                name: s("p"),
                reason: s("why"),
            },
            400,
            "Common.IllegalArgument",
        ),
    ]);
}

/// obshell's en.json texts where the cluster's own differ.
#[test]
fn cluster_refusals_use_obshells_texts() {
    let text = |err: ClusterError| AppError::from(err).message;
    assert_eq!(text(TenantNotFound(s("t"))), "Tenant 't' does not exist.");
    assert_eq!(
        text(TenantState {
            name: s("t"),
            actual: s("RESTORE"),
            expected: s("NORMAL")
        }),
        "Tenant 't' status is 'RESTORE'."
    );
    assert_eq!(
        text(UnitNumExceedsServers {
            unit_num: 2,
            servers: 1,
            zone: s("z1")
        }),
        "Unit number '2' is bigger than server number '1' in zone 'z1'."
    );
}
