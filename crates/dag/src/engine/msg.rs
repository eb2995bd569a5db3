//! What travels to the scheduler actor ([`Msg`]) and back to callers ([`Reply`]).
//!
//! Requests come from the [`crate::Engine`] handle, results and reports from running
//! sub-tasks, wake-ups from retry timers. Every message names the attempt it belongs to
//! ([`Attempt`]), so a late message of an earlier attempt is recognised and dropped.

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::error::{OperateError, SubmitError};
use crate::model::{DagSpec, Operator};
use crate::store::StoreError;
use crate::task::{Report, ReportSink};

/// One run of a sub-task: its id and how many times it had been started then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) task_id: u64,
    pub(crate) execute_times: u32,
}

/// How a sub-task run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed(String),
    TimedOut,
    Cancelled,
}

impl Outcome {
    /// The log line recording this outcome.
    pub(crate) fn log_line(&self) -> String {
        match self {
            Outcome::Succeeded => "sub task succeeded".to_string(),
            Outcome::Failed(message) => format!("ERROR: {message}"),
            Outcome::TimedOut => "sub task timeout".to_string(),
            Outcome::Cancelled => "sub task cancelled".to_string(),
        }
    }
}

/// The result of one sub-task run, as reported to the actor.
pub(crate) struct RunResult {
    pub(crate) attempt: Attempt,
    /// Whether the run was a rollback (ROLLBACK) rather than an execution.
    pub(crate) rollback: bool,
    pub(crate) outcome: Outcome,
    pub(crate) output: Map<String, Value>,
}

/// A retry timer: `attempt` may be queued again after `delay`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryTimer {
    pub(crate) attempt: Attempt,
    pub(crate) delay: std::time::Duration,
}

/// Messages to the scheduler actor.
pub(crate) enum Msg {
    Submit {
        spec: DagSpec,
        reply: oneshot::Sender<Result<u64, SubmitError>>,
    },
    Operate {
        dag_id: u64,
        operator: Operator,
        reply: oneshot::Sender<Result<(), OperateError>>,
    },
    PassNode {
        node_id: u64,
        reply: oneshot::Sender<Result<(), OperateError>>,
    },
    Finished(RunResult),
    /// A log line or data a running sub-task reported.
    Report {
        attempt: Attempt,
        report: Report,
    },
    /// A retry timer expired.
    Wake(Attempt),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The engine's channel is where running sub-tasks report to.
impl ReportSink for mpsc::UnboundedSender<Msg> {
    fn report(&self, task_id: u64, execute_times: u32, report: Report) {
        // The actor is gone only once the engine stopped, when nothing is persisted any
        // more.
        let _ = self.send(Msg::Report {
            attempt: Attempt {
                task_id,
                execute_times,
            },
            report,
        });
    }
}

/// An answer to a caller, held back until the batch that decided it is durable.
pub(crate) enum Reply {
    Submit {
        to: oneshot::Sender<Result<u64, SubmitError>>,
        result: Result<u64, SubmitError>,
    },
    Operate {
        to: oneshot::Sender<Result<(), OperateError>>,
        result: Result<(), OperateError>,
    },
}

impl Reply {
    /// Sends the decided answer (the batch is durable).
    pub(crate) fn send(self) {
        match self {
            Reply::Submit { to, result } => {
                let _ = to.send(result);
            }
            Reply::Operate { to, result } => {
                let _ = to.send(result);
            }
        }
    }

    /// Answers with the store failure instead (the batch is not durable).
    pub(crate) fn fail(self, reason: &str) {
        let poisoned = || StoreError::Poisoned(reason.to_string());
        match self {
            Reply::Submit { to, .. } => {
                let _ = to.send(Err(SubmitError::Store(poisoned())));
            }
            Reply::Operate { to, .. } => {
                let _ = to.send(Err(OperateError::Store(poisoned())));
            }
        }
    }
}
