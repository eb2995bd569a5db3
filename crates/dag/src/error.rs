//! Errors of the engine's operations, one enum per operation family.

use crate::id::InvalidGenericId;
use crate::store::StoreError;

/// Why a DAG was not submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error("invalid dag: {0}")]
    Invalid(String),
    #[error("unknown task type '{0}'")]
    UnknownTaskType(String),
    #[error("maintenance lock '{lock}' is held by dag {holder}")]
    LockConflict { lock: String, holder: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("engine is shut down")]
    ShutDown,
}

/// Why an operator was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperateError {
    #[error("dag {0} not found")]
    DagNotFound(u64),
    #[error("node {0} not found")]
    NodeNotFound(u64),
    #[error("{operator} is not allowed: {reason}")]
    NotAllowed {
        operator: crate::model::Operator,
        reason: String,
    },
    #[error("maintenance lock '{lock}' is held by dag {holder}")]
    LockConflict { lock: String, holder: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("engine is shut down")]
    ShutDown,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: u64 },
    #[error(transparent)]
    InvalidId(#[from] InvalidGenericId),
    #[error("generic id '{0}' names another agent")]
    ForeignId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the engine could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("dag {dag} uses task type '{task_type}', which is not registered")]
    UnknownTaskType { dag: u64, task_type: String },
}
