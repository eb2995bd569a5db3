//! obshell's response envelope and the one [`AppError`] that maps domain errors to it.
//!
//! `{successful, timestamp, duration, status, traceId, data?, error?{code, errCode,
//! message, subErrors}}`. The trace id and start time of the request live in a
//! task-local set by the [`crate::app`] middleware, so handlers only return data.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use obrestore_backup::BackupError;
use obrestore_dag::{OperateError, Operator, QueryError};
use obrestore_restore::agent::RestoreError;
use obrestore_restore::ClusterError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;

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

/// `error` of a failed response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    /// obshell's numeric code where it has one, else the HTTP status.
    pub code: i64,
    /// obshell's dotted code, e.g. `Task.GenericID.Invalid`.
    #[serde(rename = "errCode")]
    pub err_code: String,
    pub message: String,
    #[serde(rename = "subErrors")]
    pub sub_errors: Vec<serde_json::Value>,
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

/// A successful reply: 200 with `data`, or 204 with no body ("nothing to do").
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    NoContent,
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self {
            Reply::Ok(data) => envelope_response(StatusCode::OK, Some(data), None),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// A handler result.
pub type ApiResult<T> = Result<Reply<T>, AppError>;

/// Every way a request fails, mapped to status, codes and a message in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Operate(#[from] OperateError),
    /// An operator on a node (`POST /api/v1/task/node/:id`), with node codes.
    #[error("{0}")]
    NodeOperate(OperateError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The body is not the JSON the endpoint takes.
    #[error("{0}")]
    BindJson(String),
    /// A value is invalid; the message names it.
    #[error("{message}")]
    IllegalArgument {
        err_code: &'static str,
        message: String,
    },
    /// A name or id is unknown.
    #[error("{message}")]
    NotFound {
        err_code: &'static str,
        message: String,
    },
    /// The request conflicts with the state (a maintenance, a use).
    #[error("{message}")]
    Conflict {
        err_code: &'static str,
        message: String,
    },
    /// A real internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// 400 `Common.IllegalArgument` with `message`.
    pub fn illegal(message: impl Into<String>) -> AppError {
        AppError::IllegalArgument {
            err_code: "Common.IllegalArgument",
            message: message.into(),
        }
    }

    /// (status, code, errCode) of the error.
    pub fn classify(&self) -> (StatusCode, i64, &'static str) {
        let status =
            |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let plain = |code: u16, err_code: &'static str| (status(code), i64::from(code), err_code);
        match self {
            AppError::Auth(err) => (status(err.http_status()), err.code(), err.err_code()),
            AppError::Query(err) => query_parts(err),
            AppError::Operate(err) => operate_parts(err, false),
            AppError::NodeOperate(err) => operate_parts(err, true),
            AppError::Restore(err) => match err {
                RestoreError::Query(query) => query_parts(query),
                RestoreError::Operate(operate) => operate_parts(operate, false),
                other => plain(other.http_status(), other.err_code()),
            },
            AppError::Cluster(err) => plain(err.http_status(), err.err_code()),
            AppError::Backup(BackupError::InvalidPassword { .. }) => {
                plain(400, "OB.Backup.PasswordInvalid")
            }
            AppError::Backup(err) if is_backup_internal(err) => plain(500, "Common.Unexpected"),
            AppError::Backup(_) => plain(400, "Common.IllegalArgument"),
            AppError::BindJson(_) => plain(400, "Common.BindJsonFailed"),
            AppError::IllegalArgument { err_code, .. } => plain(400, err_code),
            AppError::NotFound { err_code, .. } => plain(404, err_code),
            AppError::Conflict { err_code, .. } => plain(409, err_code),
            AppError::Internal(_) => plain(500, "Common.Unexpected"),
        }
    }

    /// Like [`From<OperateError>`] but for the node endpoint (its codes differ).
    pub fn node_operate(err: OperateError) -> AppError {
        AppError::NodeOperate(err)
    }
}

/// Backup errors that are faults of the agent rather than of the request. Everything
/// else (missing files, no usable set, not enough log, corrupt blocks) is about the
/// backup the caller pointed at, hence 400.
fn is_backup_internal(_err: &BackupError) -> bool {
    false
}

fn query_parts(err: &QueryError) -> (StatusCode, i64, &'static str) {
    match err {
        QueryError::InvalidId(_) => (StatusCode::BAD_REQUEST, 400, "Task.GenericID.Invalid"),
        QueryError::ForeignId(_) => (StatusCode::NOT_FOUND, 404, "Task.NotFound"),
        QueryError::NotFound { .. } => (StatusCode::NOT_FOUND, 404, "Task.NotFound"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, 500, "Common.Unexpected"),
    }
}

/// obshell's operator codes, chosen from the operator and the engine's reason.
fn operate_parts(err: &OperateError, node: bool) -> (StatusCode, i64, &'static str) {
    let conflict = |code| (StatusCode::CONFLICT, 409, code);
    match err {
        OperateError::DagNotFound(_) | OperateError::NodeNotFound(_) => {
            (StatusCode::NOT_FOUND, 404, "Task.NotFound")
        }
        OperateError::LockConflict { .. } => conflict("OB.Tenant.UnderMaintenance"),
        OperateError::NotAllowed { operator, reason } => {
            // The engine's reasons: "dag N is S, not FAILED", "dag N is already finished
            // (S+O)", "the dag of node 'x' is already finished", "node 'x' is S, not FAILED".
            let not_failed = reason.contains("not FAILED") || reason.contains("already finished");
            let about_dag = reason.starts_with("dag") || reason.starts_with("the dag");
            conflict(match (operator, node) {
                (Operator::Pass, true) if about_dag && not_failed => {
                    "Task.Node.Operator.PassNotFailedDag"
                }
                (Operator::Pass, true) if not_failed => "Task.Node.Operator.PassNotFailedNode",
                (Operator::Pass, true) => "Task.Node.Operator.PassNotAllowed",
                (Operator::Cancel, _) if reason.contains("finished") => {
                    "Task.Dag.Operator.CancelFinishedDag"
                }
                (Operator::Cancel, _) => "Task.Dag.Operator.CancelNotAllowed",
                (Operator::Rollback, _) if not_failed => "Task.Dag.Operator.RollbackNotFailedDag",
                (Operator::Rollback, _) => "Task.Dag.Operator.RollbackNotAllowed",
                (Operator::Retry, _) if not_failed => "Task.Dag.Operator.RetryNotFailedDag",
                (Operator::Retry, _) => "Task.Dag.Operator.RetryNotAllowed",
                (Operator::Pass, false) if not_failed => "Task.Dag.Operator.PassNotFailedDag",
                (Operator::Pass, false) => "Task.Dag.Operator.PassNotAllowed",
                (Operator::Run, _) => "Task.Dag.Operator.NotSupport",
            })
        }
        OperateError::ShutDown => (StatusCode::SERVICE_UNAVAILABLE, 503, "Common.Unexpected"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, 500, "Common.Unexpected"),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, err_code) = self.classify();
        let message = self.to_string();
        let mut response = envelope_response::<()>(
            status,
            None,
            Some(ApiError {
                code,
                err_code: err_code.to_string(),
                message,
                sub_errors: Vec::new(),
            }),
        );
        if let AppError::Auth(AuthError::RateLimited { retry_after_secs }) = &self {
            if let Ok(value) = retry_after_secs.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}
