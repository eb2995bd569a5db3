//! Transition events, broadcast after the transition is durable.

use serde::Serialize;

use crate::model::{Operator, State};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Dag,
    Node { node_id: u64 },
    SubTask { node_id: u64, task_id: u64 },
}

/// One durable transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub dag_id: u64,
    pub subject: Subject,
    pub state: State,
    pub operator: Operator,
    /// The DAG's stage after the transition.
    pub stage: u32,
    pub max_stage: u32,
}
