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
use obrestore_dag::OperateError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::bind::BindError;

mod from_domain;
#[cfg(test)]
mod tests;

pub use from_domain::lock_error;
use from_domain::operate_error;

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
