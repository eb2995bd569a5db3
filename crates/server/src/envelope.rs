//! obshell's response envelope and [`AppError`], the one place where the typed errors
//! of the engine, the backup, the cluster and the restore map to an HTTP status,
//! obshell's `errCode` and a message (texts from obshell's
//! `ob/agent/assets/i18n/error/en.json` where obshell has the error).
//!
//! `{successful, timestamp, duration, status, traceId, data?, error?{code?, errCode,
//! message, subErrors?}}`. The trace id and start time of the request live in a
//! task-local set by the [`crate::app`] middleware, so handlers only return data.
//!
//! Status codes are obshell's (most refusals are 400), except that a maintenance-lock
//! conflict, which obshell answers 500 although the client caused it, is 409 here.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use obrestore_backup::BackupError;
use obrestore_dag::{LockConflict, Maintenance, OperateError, QueryError, Refusal, SubmitError};
use obrestore_restore::agent::RestoreError;
use obrestore_restore::{ClusterError, RestoreParamError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::bind::BindError;

/// Per-request data the envelope needs.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub trace_id: String,
    pub start: Instant,
}

tokio::task_local! {
    /// Set around each request by the envelope middleware.
    pub static REQUEST_META: RequestMeta;
}

/// A fresh 16-hex-digit trace id.
pub fn new_trace_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn meta() -> (String, u64) {
    REQUEST_META
        .try_with(|meta| {
            (
                meta.trace_id.clone(),
                meta.start.elapsed().as_millis() as u64,
            )
        })
        .unwrap_or_else(|_| (new_trace_id(), 0))
}

/// The response envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub successful: bool,
    /// RFC 3339 with offset.
    pub timestamp: String,
    /// Milliseconds spent on the request.
    pub duration: u64,
    /// The HTTP status.
    pub status: u16,
    #[serde(rename = "traceId")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// `error` of a failed response (obshell's `ApiError`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    /// obshell's old numeric code, only for authentication errors (1, 10008).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// obshell's dotted code, e.g. `Task.GenericID.Invalid`.
    #[serde(rename = "errCode")]
    pub err_code: String,
    pub message: String,
    /// For a refused parameter: `[{tag, field, message}]` naming the field.
    #[serde(rename = "subErrors", skip_serializing_if = "Vec::is_empty")]
    pub sub_errors: Vec<FieldError>,
}

/// obshell's `ApiFieldError`: the field a refusal is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The errCode of the rule.
    pub tag: String,
    /// The request field, e.g. `zone_list[1].unit_num`.
    pub field: String,
    pub message: String,
}

/// `data` of a listing: `{contents: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Contents<T> {
    pub contents: Vec<T>,
}

fn envelope_response<T: Serialize>(
    status: StatusCode,
    data: Option<T>,
    error: Option<ApiError>,
) -> Response {
    let (trace_id, duration) = meta();
    let envelope = Envelope {
        successful: error.is_none(),
        timestamp: obrestore_dag::dto::format_time(chrono::Utc::now()),
        duration,
        status: status.as_u16(),
        trace_id,
        data,
        error,
    };
    (status, axum::Json(envelope)).into_response()
}

/// A successful reply: 200 with `data`, 200 without (obshell's `SendResponse(c, nil,
/// nil)`), or 204 with no body ("nothing to do").
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    Done,
    NoContent,
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self {
            Reply::Ok(data) => envelope_response(StatusCode::OK, Some(data), None),
            Reply::Done => envelope_response::<()>(StatusCode::OK, None, None),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// A handler result.
pub type ApiResult<T> = Result<Reply<T>, AppError>;

/// A refused or failed request: status, obshell's codes and the message.
#[derive(Debug, Clone)]
pub struct AppError {
    pub status: StatusCode,
    /// obshell's old numeric code (authentication errors only).
    pub code: Option<i64>,
    pub err_code: &'static str,
    pub message: String,
    /// The request field the error is about.
    pub field: Option<String>,
    /// `Retry-After` seconds (429).
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.err_code, self.message)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    /// An error with `status`, `err_code` and `message`.
    pub fn new(status: StatusCode, err_code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code: None,
            err_code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same error about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> AppError {
        self.field = Some(field.into());
        self
    }

    /// 400 `Common.IllegalArgument`: "The input parameter '<field>' is illegal: <why>".
    pub fn illegal(field: &str, why: impl std::fmt::Display) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "Common.IllegalArgument",
            format!("The input parameter '{field}' is illegal: {why}"),
        )
        .with_field(field)
    }

    /// 400 `Common.BindJsonFailed`.
    pub fn bind(err: &BindError) -> AppError {
        let error = AppError::new(
            StatusCode::BAD_REQUEST,
            "Common.BindJsonFailed",
            format!("Bind JSON failed: {err}"),
        );
        match err.path() {
            path if path.is_empty() => error,
            path => error.with_field(path),
        }
    }

    /// 404 `Common.NotFound` ("Element not found: ...").
    pub fn not_found(what: impl std::fmt::Display) -> AppError {
        AppError::new(
            StatusCode::NOT_FOUND,
            "Common.NotFound",
            format!("Element not found: {what}"),
        )
    }

    /// 500 `Common.Unexpected`: a real internal fault.
    pub fn internal(what: impl std::fmt::Display) -> AppError {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Common.Unexpected",
            format!("Unexpected error: {what}"),
        )
    }

    /// 400 `MySQL.Error`: what OceanBase would refuse in SQL (the embedded cluster's
    /// refusals that obshell has no code of its own for).
    fn mysql(what: impl std::fmt::Display) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "MySQL.Error",
            format!("MySQL error: {what}"),
        )
    }

    /// An operator on a node (`POST /api/v1/task/node/:id`): obshell's node codes.
    pub fn node_operate(err: OperateError) -> AppError {
        operate_error(err, true)
    }
}

fn bad_request(err_code: &'static str, message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::BAD_REQUEST, err_code, message)
}

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

fn operate_error(err: OperateError, node: bool) -> AppError {
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
        use ClusterError::*;
        let message = err.to_string();
        let (err_code, message) = match &err {
            Storage(_) | Corrupt { .. } | UnsupportedFormat { .. } | RowFile { .. } => {
                return AppError::internal(err)
            }
            PoolNotFound(_) | RestoreJobNotFound(_) => return AppError::not_found(&err),
            RestoreJobConflict { tenant, .. } => {
                return AppError::new(
                    StatusCode::CONFLICT,
                    "OB.Tenant.UnderMaintenance",
                    format!("Tenant '{tenant}' is under maintenance, please try again later."),
                )
            }
            VariableNotExist(_) => {
                return AppError::new(StatusCode::NOT_FOUND, "OB.Tenant.Variable.NotExist", message)
            }
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
            MachineResourceNotEnough { .. } => ("OB.Tenant.ResourceNotEnough", message),
            TenantState { name, actual, .. } => (
                "OB.Tenant.StatusNotNormal",
                format!("Tenant '{name}' status is '{actual}'."),
            ),
            RestoreJobFinished(_) => (
                "OB.Restore.Task.AlreadySucceed",
                "restore task was succeed, can not cancel".to_string(),
            ),
            InvalidRow { .. }
            | InvalidUnitConfig { .. }
            | InvalidPool { .. }
            | InvalidTenant { .. }
            | ParameterInvalid { .. } => ("Common.IllegalArgument", message),
            TenantNameEmpty => ("OB.Tenant.Name.Empty", message),
            TenantNameInvalid { .. } => ("OB.Tenant.Name.Invalid", message),
            TenantLocked(_) => ("OB.Tenant.Locked", message),
            ZoneListEmpty => ("OB.Tenant.ZoneList.Empty", message),
            ZoneRepeated(_) => ("OB.Tenant.Zone.Repeated", message),
            UnitConfigNameEmpty => ("OB.Resource.UnitConfig.Name.Empty", message),
            UnitNumInvalid { .. } => ("OB.Tenant.UnitNum.Invalid", message),
            UnitNumInconsistent => ("OB.Tenant.UnitNum.Inconsistent", message),
            ModifyUnitNumPartially => ("OB.Tenant.ModifyUnitNumPartially", message),
            ZoneAlreadyHasReplica(_) => ("OB.Tenant.ZoneAlreadyHasReplica", message),
            ZoneWithoutReplica(_) => ("OB.Tenant.ZoneWithoutReplica", message),
            HasPoolOnZone(_) => ("OB.Tenant.HasPoolOnZone", message),
            ReplicaOnlyOne(_) => ("OB.Tenant.OnlyOneReplica", message),
            ReplicaDeleteAll => ("OB.Tenant.Replica.DeleteAll", message),
            LocalityPrincipalNotAllowed => ("OB.Tenant.Locality.PrincipalNotAllowed", message),
            PrimaryZoneInvalid { .. } => ("OB.Tenant.PrimaryZone.Invalid", message),
            PrimaryZoneCrossRegion(_) => ("OB.Tenant.PrimaryZone.CrossRegion", message),
            PrimaryRegionFullReplicaNotEnough { .. } => {
                ("OB.Tenant.PrimaryRegion.FullReplica.NotEnough", message)
            }
            RebalanceDisabled { .. } => ("OB.Tenant.RebalanceDisabled", message),
            RootPasswordIncorrect { .. } => ("OB.Tenant.RootPasswordIncorrect", message),
            VariableEmpty => ("OB.Tenant.Variable.Empty", message),
            VariableNameEmpty => ("OB.Tenant.Variable.Name.Empty", message),
            VariableInvalid { .. } => ("OB.Tenant.Variable.Invalid", message),
            ParameterEmpty => ("OB.Tenant.Parameter.Empty", message),
            ParameterNameEmpty => ("OB.Tenant.Parameter.Name.Empty", message),
            ParameterNotExist(_) => ("OB.Tenant.Parameter.NotExist", message),
            CharsetCollationInvalid { .. } => ("OB.Tenant.Collation.Invalid", message),
            // Zones, servers, pools and unit configs in use: OceanBase's own refusals.
            _ => return AppError::mysql(&err),
        };
        bad_request(err_code, message)
    }
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let sub_errors = self
            .field
            .iter()
            .map(|field| FieldError {
                tag: self.err_code.to_string(),
                field: field.clone(),
                message: self.message.clone(),
            })
            .collect();
        let mut response = envelope_response::<()>(
            self.status,
            None,
            Some(ApiError {
                code: self.code,
                err_code: self.err_code.to_string(),
                message: self.message,
                sub_errors,
            }),
        );
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal of the embedded cluster: obshell's code at obshell's status
    /// (`ob/agent/errors/errorcode.go`: badRequest and illegalArgument are 400,
    /// notFound 404), 409 instead of obshell's 500 for a held restore job, and
    /// `MySQL.Error` where obshell leaves the refusal to OceanBase's SQL.
    #[test]
    fn cluster_refusals_carry_obshells_codes_and_statuses() {
        use ClusterError::*;
        let s = String::from;
        let cases: Vec<(ClusterError, u16, &str)> = vec![
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
            (
                InvalidUnitConfig {
                    name: s("u"),
                    reason: s("why"),
                },
                400,
                "Common.IllegalArgument",
            ),
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
            (ZoneListEmpty, 400, "OB.Tenant.ZoneList.Empty"),
            (ZoneRepeated(s("z1")), 400, "OB.Tenant.Zone.Repeated"),
            (
                UnitConfigNameEmpty,
                400,
                "OB.Resource.UnitConfig.Name.Empty",
            ),
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
            (
                RootPasswordIncorrect { tenant: s("t") },
                400,
                "OB.Tenant.RootPasswordIncorrect",
            ),
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
            (
                CharsetCollationInvalid {
                    charset: Some(s("c")),
                    collation: None,
                },
                400,
                "OB.Tenant.Collation.Invalid",
            ),
            (
                Corrupt {
                    tree: s("t"),
                    reason: s("r"),
                },
                500,
                "Common.Unexpected",
            ),
        ];
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
        // obshell's en.json texts where the cluster's own differ.
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
}
