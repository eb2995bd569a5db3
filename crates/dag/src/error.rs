//! Errors of the engine's operations, one enum per operation family. Refusals are typed
//! ([`Refusal`]) so that callers map them to their own codes without reading the text.

use crate::id::InvalidGenericId;
use crate::model::{Maintenance, Operator};
use crate::store::StoreError;

/// Why a DAG was not submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The spec is malformed; the message says how.
    #[error("invalid dag: {0}")]
    Invalid(String),
    /// A node names a task type that is not registered.
    #[error("unknown task type '{0}'")]
    UnknownTaskType(String),
    /// Another DAG holds a maintenance lock the new one needs.
    #[error("{0}")]
    LockConflict(LockConflict),
    /// The store failed; nothing was created.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine is shutting down.
    #[error("engine is shut down")]
    ShutDown,
}

/// A maintenance lock that is held by another DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance lock '{}' is held by dag {holder} ({holder_name})", lock_name(.lock))]
pub struct LockConflict {
    /// The lock that is held: GLOBAL, or TENANT with its key.
    pub lock: Maintenance,
    /// The DAG holding it.
    pub holder: u64,
    /// That DAG's name.
    pub holder_name: String,
}

/// `GLOBAL` or `TENANT:<key>`.
pub fn lock_name(lock: &Maintenance) -> String {
    match lock {
        Maintenance::None => String::new(),
        Maintenance::Global => "GLOBAL".to_string(),
        Maintenance::Tenant(name) => format!("TENANT:{name}"),
    }
}

/// Why an operator was refused, with obshell's refusal rules and messages
/// (`ob/agent/service/task/dag.go`, `node.go`; texts from `assets/i18n/error/en.json`).
/// Nothing changed when an operator is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// RUN is applied at submit; it is not an operator a caller can apply.
    #[error("Operator {0} is not supported")]
    NotSupported(Operator),
    /// CANCEL of a SUCCEED or FAILED DAG.
    #[error("Failed to cancel DAG: DAG is finished")]
    CancelFinishedDag,
    /// CANCEL while a node up to the running one cannot be cancelled.
    #[error("Failed to cancel DAG: node {node} cannot cancel")]
    CancelNotAllowed { node: String },
    /// ROLLBACK of a DAG that is not FAILED.
    #[error("Failed to set DAG rollback: DAG state is not failed")]
    RollbackNotFailedDag,
    /// ROLLBACK while a node that ran cannot be rolled back.
    #[error("Failed to set DAG rollback: node {node} cannot rollback")]
    RollbackNotAllowed { node: String },
    /// RETRY of a DAG that is not FAILED.
    #[error("Failed to set DAG retry: DAG state is not failed")]
    RetryNotFailedDag,
    /// RETRY while a failed node cannot be retried.
    #[error("Failed to set DAG retry: node {node} cannot retry")]
    RetryNotAllowed { node: String },
    /// PASS of a DAG that is not FAILED.
    #[error("Failed to pass DAG: DAG is not failed")]
    PassNotFailedDag,
    /// PASS while an unfinished node cannot be passed.
    #[error("Failed to pass DAG: node {node} cannot pass")]
    PassNotAllowed { node: String },
    /// PASS of a node whose DAG is not FAILED.
    #[error("Failed to pass node: assigned DAG is not failed")]
    PassNodeNotFailedDag,
    /// PASS of a node that is not FAILED.
    #[error("Failed to pass node: node {node} is not failed")]
    PassNodeNotFailedNode { node: String },
    /// PASS of a node that cannot be passed.
    #[error("Failed to pass node: node {node} cannot pass")]
    PassNodeNotAllowed { node: String },
}

/// Why an operator was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperateError {
    /// No DAG has this id.
    #[error("dag {0} not found")]
    DagNotFound(u64),
    /// No node has this id.
    #[error("node {0} not found")]
    NodeNotFound(u64),
    /// The operator does not apply to the DAG or node as it is now.
    #[error("{reason}")]
    NotAllowed { operator: Operator, reason: Refusal },
    /// The operator must take the DAG's maintenance lock back (its failure released
    /// it) and another DAG holds it now.
    #[error("{0}")]
    LockConflict(LockConflict),
    /// The operator must take the DAG's maintenance lock back, and a newer DAG has
    /// taken that lock since: this DAG's work is stale (obshell's `Task.Expired`).
    #[error("{lock_key} has already executed task {holder}. '{dag}: {dag_name}' cannot be executed. Please submit a new request")]
    Expired {
        /// The lock's key (the tenant name, or GLOBAL).
        lock_key: String,
        /// Generic id of the newer DAG that took the lock.
        holder: String,
        /// Generic id of the refused DAG.
        dag: String,
        /// Name of the refused DAG.
        dag_name: String,
    },
    /// The store failed; nothing was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine is shutting down.
    #[error("engine is shut down")]
    ShutDown,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No object of this kind has this id (or it lives in another scope than the
    /// generic id says).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: u64 },
    /// The generic id is malformed.
    #[error(transparent)]
    InvalidId(#[from] InvalidGenericId),
    /// The generic id names an object of another agent.
    #[error("generic id '{0}' names another agent")]
    ForeignId(String),
    /// The store failed. A commit failure that stopped the engine while the query
    /// waited is [`StoreError::Poisoned`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine stopped (shut down or aborted) while the query waited.
    #[error("engine is shut down")]
    ShutDown,
}

/// Why the engine could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored DAG needs a task type the registry lacks.
    #[error("dag {dag} uses task type '{task_type}', which is not registered")]
    UnknownTaskType { dag: u64, task_type: String },
}
