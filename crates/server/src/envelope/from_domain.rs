//! `From` conversions of the engine's, the backup's, the cluster's and the restore's
//! typed errors (and the auth and binding errors) into [`AppError`]: the one table from
//! a domain refusal to obshell's status, `errCode` and text. Nothing a client causes
//! maps to a 5xx.

use axum::http::StatusCode;
use obrestore_backup::BackupError;
use obrestore_dag::{LockConflict, Maintenance, OperateError, QueryError, Refusal, SubmitError};
use obrestore_restore::agent::RestoreError;
use obrestore_restore::{ClusterError, RestoreParamError};

use super::{bad_request, AppError};
use crate::auth::AuthError;
use crate::bind::BindError;

/// A held lock: 409 (obshell answers 500 `known`; the client caused it).
pub fn lock_error(conflict: &LockConflict) -> AppError {
    match &conflict.lock {
        Maintenance::Tenant(tenant) => AppError::new(
            StatusCode::CONFLICT,
            "OB.Tenant.UnderMaintenance",
            format!("Tenant '{tenant}' is under maintenance, please try again later."),
        ),
        _ => AppError::new(
            StatusCode::CONFLICT,
            "OB.Cluster.UnderMaintenanceWithDag",
            format!(
                "OceanBase cluster is under maintenance by DAG: {}, please try again later",
                conflict.holder_name
            ),
        ),
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> AppError {
        let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let retry_after = match &err {
            AuthError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        AppError {
            status,
            code: Some(err.code()),
            err_code: err.err_code(),
            message: err.to_string(),
            field: None,
            retry_after,
        }
    }
}

impl From<BindError> for AppError {
    fn from(err: BindError) -> AppError {
        AppError::bind(&err)
    }
}

impl From<QueryError> for AppError {
    fn from(err: QueryError) -> AppError {
        match err {
            QueryError::InvalidId(invalid) => bad_request(
                "Task.GenericID.Invalid",
                format!("Invalid ID: {}: {}", invalid.id, invalid.reason),
            ),
            QueryError::ForeignId(_) | QueryError::NotFound { .. } => AppError::new(
                StatusCode::NOT_FOUND,
                "Task.NotFound",
                format!("Task not found: {err}"),
            ),
            other => AppError::internal(other),
        }
    }
}

impl From<OperateError> for AppError {
    fn from(err: OperateError) -> AppError {
        operate_error(err, false)
    }
}

pub(super) fn operate_error(err: OperateError, node: bool) -> AppError {
    let message = err.to_string();
    match err {
        OperateError::DagNotFound(_) | OperateError::NodeNotFound(_) => AppError::new(
            StatusCode::NOT_FOUND,
            "Task.NotFound",
            format!("Task not found: {message}"),
        ),
        OperateError::NotAllowed { reason, .. } => {
            bad_request(refusal_code(&reason, node), message)
        }
        OperateError::LockConflict(conflict) => lock_error(&conflict),
        OperateError::Expired { .. } => {
            AppError::new(StatusCode::CONFLICT, "Task.Expired", message)
        }
        OperateError::ShutDown => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Common.Unexpected",
            message,
        ),
        other => AppError::internal(other),
    }
}

/// obshell's errCode of an operator refusal.
fn refusal_code(reason: &Refusal, node: bool) -> &'static str {
    match reason {
        Refusal::NotSupported(_) if node => "Task.Node.Operator.NotSupport",
        Refusal::NotSupported(_) => "Task.Dag.Operator.NotSupport",
        Refusal::CancelFinishedDag => "Task.Dag.Operator.CancelFinishedDag",
        Refusal::CancelNotAllowed { .. } => "Task.Dag.Operator.CancelNotAllowed",
        Refusal::RollbackNotFailedDag => "Task.Dag.Operator.RollbackNotFailedDag",
        Refusal::RollbackNotAllowed { .. } => "Task.Dag.Operator.RollbackNotAllowed",
        Refusal::RetryNotFailedDag => "Task.Dag.Operator.RetryNotFailedDag",
        Refusal::RetryNotAllowed { .. } => "Task.Dag.Operator.RetryNotAllowed",
        Refusal::PassNotFailedDag => "Task.Dag.Operator.PassNotFailedDag",
        Refusal::PassNotAllowed { .. } => "Task.Dag.Operator.PassNotAllowed",
        Refusal::PassNodeNotFailedDag => "Task.Node.Operator.PassNotFailedDag",
        Refusal::PassNodeNotFailedNode { .. } => "Task.Node.Operator.PassNotFailedNode",
        Refusal::PassNodeNotAllowed { .. } => "Task.Node.Operator.PassNotAllowed",
        _ => "Task.Dag.State.Invalid",
    }
}

impl From<SubmitError> for AppError {
    fn from(err: SubmitError) -> AppError {
        match err {
            SubmitError::LockConflict(conflict) => lock_error(&conflict),
            SubmitError::ShutDown => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Common.Unexpected",
                err.to_string(),
            ),
            other => AppError::internal(other),
        }
    }
}

impl From<RestoreParamError> for AppError {
    fn from(err: RestoreParamError) -> AppError {
        use RestoreParamError::*;
        if let Cluster(cluster) = err {
            return cluster.into();
        }
        let err_code = match &err {
            Required { .. } => "Common.BindJsonFailed",
            SysTenant => "OB.Tenant.SysOperationNotAllowed",
            TenantExists { .. } => "OB.Tenant.Existed",
            ZoneListEmpty => "OB.Tenant.ZoneList.Empty",
            TimestampAndScn
            | TimestampOutOfRange { .. }
            | HaHighThreadScoreOutOfRange { .. }
            | ConcurrencyOutOfRange { .. } => "Common.IllegalArgument",
            ZoneRepeated { .. } => "OB.Tenant.Zone.Repeated",
            UnitConfigNameEmpty { .. } => "OB.Resource.UnitConfig.Name.Empty",
            ReplicaTypeInvalid { .. } => "OB.Tenant.Replica.InvalidType",
            UnitNumInvalid { .. } => "OB.Tenant.UnitNum.Invalid",
            UnitNumInconsistent { .. } => "OB.Tenant.UnitNum.Inconsistent",
            ZoneNotExist { .. } => "OB.Zone.NotExist",
            UnitConfigNotExist { .. } => "OB.Resource.UnitConfig.NotExist",
            UnitNumExceedsServers { .. } => "OB.Tenant.UnitNum.ExceedsLimit",
            NoFullReplica { .. } => "OB.Tenant.NoPaxosReplica",
            PrimaryZoneInvalid { .. } => "OB.Tenant.PrimaryZone.Invalid",
            PrimaryZoneCrossRegion { .. } => "OB.Tenant.PrimaryZone.CrossRegion",
            PrimaryRegionFullReplicaNotEnough { .. } => {
                "OB.Tenant.PrimaryRegion.FullReplica.NotEnough"
            }
            MachineResourceNotEnough { .. } => "OB.Tenant.ResourceNotEnough",
            TenantNameInvalid { .. } => "OB.Tenant.Name.Invalid",
            UriInvalid { .. } => "OB.Storage.URI.Invalid",
            TenantModeNotSupported { .. } => "OB.Tenant.Mode.NotSupported",
            _ => "Common.IllegalArgument",
        };
        let field = err.field();
        let error = bad_request(err_code, err.to_string());
        match field {
            Some(field) => error.with_field(field),
            None => error,
        }
    }
}

/// The embedded cluster's refusals: obshell's code and en.json text for each, at
/// obshell's status (400 for `badRequest`/`illegalArgument`, 404 for `notFound`), except
/// that nothing a client causes is a 5xx (obshell's `known`/`unexpected` kinds: a held
/// restore job is 409, a partial unit-num change 400). What obshell leaves to OceanBase
/// is OceanBase's refusal, `MySQL.Error`.
impl From<ClusterError> for AppError {
    fn from(err: ClusterError) -> AppError {
        if let Some(error) = cluster_error_off_400(&err) {
            return error;
        }
        if let Some((err_code, message)) = obshell_text(&err) {
            return bad_request(err_code, message);
        }
        match cluster_err_code(&err) {
            Some(err_code) => bad_request(err_code, err.to_string()),
            // Zones, servers, pools and unit configs in use: OceanBase's own refusals.
            None => AppError::mysql(&err),
        }
    }
}

/// The cluster errors not answered 400: faults (500), the cluster's store unreachable
/// or its maintainer replaced (503), missing pools and jobs (404), a held restore job
/// (409) and an unknown variable (404).
fn cluster_error_off_400(err: &ClusterError) -> Option<AppError> {
    use ClusterError::*;
    Some(match err {
        Storage(_) | Corrupt { .. } | UnsupportedFormat { .. } | RowFile { .. } => {
            AppError::internal(err)
        }
        InvalidClusterName { .. } => AppError::internal(err),
        // Cluster mode: etcd unreachable or busy, or this agent no longer the
        // maintainer. Nothing was written; the client may retry (through any agent).
        Etcd(_) | TooManyConflicts(_) | FenceLost | ReadOnly => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Common.ServiceUnavailable",
            format!("{err}; retry"),
        ),
        PoolNotFound(_) | RestoreJobNotFound(_) => AppError::not_found(err),
        RestoreJobConflict { tenant, .. } => AppError::new(
            StatusCode::CONFLICT,
            "OB.Tenant.UnderMaintenance",
            format!("Tenant '{tenant}' is under maintenance, please try again later."),
        ),
        VariableNotExist(_) => AppError::new(
            StatusCode::NOT_FOUND,
            "OB.Tenant.Variable.NotExist",
            err.to_string(),
        ),
        _ => return None,
    })
}

/// The 400 refusals whose text is obshell's en.json one rather than the cluster's.
fn obshell_text(err: &ClusterError) -> Option<(&'static str, String)> {
    use ClusterError::*;
    Some(match err {
        ZoneNotFound(zone) => ("OB.Zone.NotExist", format!("Zone '{zone}' does not exist")),
        UnitConfigNotFound(name) => (
            "OB.Resource.UnitConfig.NotExist",
            format!("Unit config '{name}' does not exist."),
        ),
        UnitConfigExists(name) => (
            "OB.Resource.UnitConfig.Existed",
            format!("Unit config '{name}' already exists"),
        ),
        PoolGranted { pool, .. } => (
            "OB.Resource.Pool.Granted",
            format!("Resource pool '{pool}' has already been granted to a tenant."),
        ),
        TenantNotFound(name) => ("OB.Tenant.NotExist", format!("Tenant '{name}' does not exist.")),
        TenantIdNotFound(id) => ("OB.Tenant.NotExist", format!("Tenant '{id}' does not exist.")),
        TenantExists(name) => ("OB.Tenant.Existed", format!("Tenant {name} already exists")),
        RecycledTenantNotFound(name) => (
            "OB.Recyclebin.Tenant.NotExist",
            format!("Tenant '{name}' does not exist in recyclebin"),
        ),
        UnitNumExceedsServers { unit_num, servers, zone } => (
            "OB.Tenant.UnitNum.ExceedsLimit",
            format!("Unit number '{unit_num}' is bigger than server number '{servers}' in zone '{zone}'."),
        ),
        TenantState { name, actual, .. } => (
            "OB.Tenant.StatusNotNormal",
            format!("Tenant '{name}' status is '{actual}'."),
        ),
        RestoreJobFinished(_) => (
            "OB.Restore.Task.AlreadySucceed",
            "restore task was succeed, can not cancel".to_string(),
        ),
        _ => return None,
    })
}

/// obshell's code of the 400 refusals that keep the cluster's own text; `None` for
/// what obshell leaves to OceanBase.
fn cluster_err_code(err: &ClusterError) -> Option<&'static str> {
    use ClusterError::*;
    Some(match err {
        MachineResourceNotEnough { .. } => "OB.Tenant.ResourceNotEnough",
        InvalidRow { .. }
        | InvalidUnitConfig { .. }
        | InvalidPool { .. }
        | InvalidTenant { .. }
        | ParameterInvalid { .. } => "Common.IllegalArgument",
        TenantNameEmpty => "OB.Tenant.Name.Empty",
        TenantNameInvalid { .. } => "OB.Tenant.Name.Invalid",
        TenantLocked(_) => "OB.Tenant.Locked",
        ZoneListEmpty => "OB.Tenant.ZoneList.Empty",
        ZoneRepeated(_) => "OB.Tenant.Zone.Repeated",
        UnitConfigNameEmpty => "OB.Resource.UnitConfig.Name.Empty",
        UnitNumInvalid { .. } => "OB.Tenant.UnitNum.Invalid",
        UnitNumInconsistent => "OB.Tenant.UnitNum.Inconsistent",
        ModifyUnitNumPartially => "OB.Tenant.ModifyUnitNumPartially",
        ZoneAlreadyHasReplica(_) => "OB.Tenant.ZoneAlreadyHasReplica",
        ZoneWithoutReplica(_) => "OB.Tenant.ZoneWithoutReplica",
        HasPoolOnZone(_) => "OB.Tenant.HasPoolOnZone",
        ReplicaOnlyOne(_) => "OB.Tenant.OnlyOneReplica",
        ReplicaDeleteAll => "OB.Tenant.Replica.DeleteAll",
        LocalityPrincipalNotAllowed => "OB.Tenant.Locality.PrincipalNotAllowed",
        PrimaryZoneInvalid { .. } => "OB.Tenant.PrimaryZone.Invalid",
        PrimaryZoneCrossRegion(_) => "OB.Tenant.PrimaryZone.CrossRegion",
        PrimaryRegionFullReplicaNotEnough { .. } => "OB.Tenant.PrimaryRegion.FullReplica.NotEnough",
        RebalanceDisabled { .. } => "OB.Tenant.RebalanceDisabled",
        RootPasswordIncorrect { .. } => "OB.Tenant.RootPasswordIncorrect",
        VariableEmpty => "OB.Tenant.Variable.Empty",
        VariableNameEmpty => "OB.Tenant.Variable.Name.Empty",
        VariableInvalid { .. } => "OB.Tenant.Variable.Invalid",
        ParameterEmpty => "OB.Tenant.Parameter.Empty",
        ParameterNameEmpty => "OB.Tenant.Parameter.Name.Empty",
        ParameterNotExist(_) => "OB.Tenant.Parameter.NotExist",
        CharsetCollationInvalid { .. } => "OB.Tenant.Collation.Invalid",
        _ => return None,
    })
}

impl From<BackupError> for AppError {
    fn from(err: BackupError) -> AppError {
        // Everything about the backup the caller pointed at (missing files, no usable
        // set, not enough log, corrupt blocks, a wrong password) is a 400.
        let err_code = match &err {
            BackupError::InvalidPassword { .. } => "OB.Backup.PasswordInvalid",
            _ => "Common.IllegalArgument",
        };
        bad_request(err_code, err.to_string())
    }
}

impl From<RestoreError> for AppError {
    fn from(err: RestoreError) -> AppError {
        let message = err.to_string();
        match err {
            RestoreError::Param(param) => param.into(),
            RestoreError::Backup(backup) => backup.into(),
            RestoreError::UnderMaintenance(conflict) => lock_error(&conflict),
            RestoreError::SysTenant => bad_request("OB.Tenant.SysOperationNotAllowed", message),
            RestoreError::TenantNotFound(_) => bad_request("OB.Tenant.NotExist", message),
            RestoreError::NoRestore { .. } => AppError::not_found("restore task"),
            RestoreError::NotRecovering(_) => bad_request("OB.Restore.NotRecovering", message),
            RestoreError::NotRestoreDag(_) => bad_request("OB.Restore.Task.NotExist", message),
            RestoreError::AlreadySucceed => bad_request("OB.Restore.Task.AlreadySucceed", message),
            RestoreError::NotInRecyclebin(_) => {
                bad_request("OB.Recyclebin.Tenant.NotExist", message)
            }
            RestoreError::Cluster(cluster) => cluster.into(),
            RestoreError::Submit(submit) => submit.into(),
            RestoreError::Operate(operate) => operate.into(),
            RestoreError::Query(query) => query.into(),
            other => AppError::internal(other),
        }
    }
}

impl From<sled::Error> for AppError {
    fn from(err: sled::Error) -> AppError {
        AppError::internal(format!("storage: {err}"))
    }
}
