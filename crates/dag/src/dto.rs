//! obshell's DTOs (JSON names exact), built from records at the boundary, and the
//! views the engine's queries return (records read from the store, turned into DTOs).
//!
//! `additional_data` is shown where obshell shows it (`engine/task/task_dto.go`,
//! `SetVisible`): a DAG detail carries the merge of all its sub-tasks' data and its
//! nodes and sub-tasks carry none; a node detail carries the merge of its sub-tasks';
//! only a sub-task detail shows the sub-task's own. Without details a DAG has neither
//! nodes nor additional data.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::{GenericId, IdOrigin};
use crate::model::Scope;
use crate::record::{DagRecord, LogRecord, NodeRecord, TaskRecord};
use crate::store::{Records, StoreError};
use crate::AgentInfo;

/// `DagDetailDTO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagDetailDto {
    pub id: String,
    pub dag_id: u64,
    pub name: String,
    pub stage: u32,
    pub max_stage: u32,
    pub maintenance_type: i32,
    pub maintenance_key: String,
    pub state: String,
    pub operator: String,
    pub start_time: String,
    pub end_time: String,
    pub additional_data: Option<Map<String, Value>>,
    pub nodes: Option<Vec<NodeDetailDto>>,
}

/// `NodeDetailDTO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDetailDto {
    pub id: String,
    pub node_id: u64,
    pub name: String,
    pub state: String,
    pub operator: String,
    pub start_time: String,
    pub end_time: String,
    pub additional_data: Option<Map<String, Value>>,
    pub sub_tasks: Option<Vec<TaskDetailDto>>,
}

/// `TaskDetailDTO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDetailDto {
    pub id: String,
    pub task_id: u64,
    pub name: String,
    pub state: String,
    pub operator: String,
    pub start_time: String,
    pub end_time: String,
    pub additional_data: Option<Map<String, Value>>,
    pub execute_times: u32,
    pub execute_agent: AgentInfo,
    pub task_logs: Vec<String>,
}

/// One row of `GET /api/v1/task/sub_task/:id/logs` (obshell's `bo.SubTaskLog`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLogDto {
    /// The row's sequence number within its sub-task, from 1.
    pub id: u64,
    pub sub_task_id: u64,
    pub execute_times: u32,
    pub log_content: String,
    /// Whether the row reached the agent that owns the DAG; always true here, where
    /// every sub-task runs on that agent.
    pub is_sync: bool,
    pub create_time: String,
    pub update_time: String,
}

/// Formats a time as RFC 3339 with an offset.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn times(
    create: DateTime<Utc>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> (String, String) {
    let start = start.unwrap_or(create);
    (format_time(start), format_time(end.unwrap_or(start)))
}

/// Merges `from` into `into` the way obshell merges additional data: maps merge,
/// arrays append, anything else is replaced by the later value.
pub fn merge_additional(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(left)), Value::Object(right)) => merge_additional(left, right),
            (Some(Value::Array(left)), Value::Array(right)) => left.extend(right.iter().cloned()),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Merges `from` into `into` the way contexts merge: maps merge, anything else is
/// replaced by the later value.
pub fn merge_context(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(left)), Value::Object(right)) => merge_context(left, right),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Merges the additional data of `items` in order.
fn merged<'a>(items: impl IntoIterator<Item = &'a Map<String, Value>>) -> Map<String, Value> {
    let mut merged = Map::new();
    for data in items {
        merge_additional(&mut merged, data);
    }
    merged
}

/// A node with its sub-tasks, each with its log rows: what a detailed DAG DTO shows.
pub type NodeWithTasks = (NodeRecord, Vec<(TaskRecord, Vec<LogRecord>)>);

/// Builds DTOs for one agent.
#[derive(Debug, Clone)]
pub struct DtoBuilder {
    pub agent: AgentInfo,
}

impl DtoBuilder {
    /// The generic id of an object of a DAG of `scope`.
    pub fn generic_id(&self, id: u64, scope: Scope) -> String {
        match scope {
            Scope::Agent => GenericId::agent(self.agent.ip, self.agent.port, id).encode(),
            Scope::Cluster => GenericId {
                origin: IdOrigin::Cluster,
                id,
            }
            .encode(),
        }
    }

    /// A sub-task's DTO with its logs and its own additional data (a sub-task detail).
    pub fn task(&self, task: &TaskRecord, logs: &[LogRecord], scope: Scope) -> TaskDetailDto {
        let (start_time, end_time) = times(task.create_time, task.start_time, task.end_time);
        TaskDetailDto {
            id: self.generic_id(task.id, scope),
            task_id: task.id,
            name: task.name.to_string(),
            state: task.state.to_string(),
            operator: task.operator.to_string(),
            start_time,
            end_time,
            additional_data: Some(task.additional_data.clone()),
            execute_times: task.execute_times,
            execute_agent: self.agent.clone(),
            task_logs: logs.iter().map(|log| log.content.clone()).collect(),
        }
    }

    /// A node's DTO (a node detail): its additional data is the merge of its
    /// sub-tasks', which carry none themselves. `tasks` pairs each sub-task with its
    /// logs; `None` leaves `sub_tasks` and the data out.
    pub fn node(
        &self,
        node: &NodeRecord,
        tasks: Option<&[(TaskRecord, Vec<LogRecord>)]>,
        scope: Scope,
    ) -> NodeDetailDto {
        let (start_time, end_time) = times(node.create_time, node.start_time, node.end_time);
        let additional_data =
            tasks.map(|tasks| merged(tasks.iter().map(|(task, _)| &task.additional_data)));
        let sub_tasks = tasks.map(|tasks| {
            tasks
                .iter()
                .map(|(task, logs)| TaskDetailDto {
                    additional_data: None,
                    ..self.task(task, logs, scope)
                })
                .collect()
        });
        NodeDetailDto {
            id: self.generic_id(node.id, scope),
            node_id: node.id,
            name: node.name.to_string(),
            state: node.state.to_string(),
            operator: node.operator.to_string(),
            start_time,
            end_time,
            additional_data,
            sub_tasks,
        }
    }

    /// A DAG's DTO. With details, `nodes` pairs each node with its sub-tasks and logs:
    /// the DAG carries the merge of every sub-task's additional data and the nodes carry
    /// none. Without (`None`), `nodes` and `additional_data` are null.
    pub fn dag(&self, dag: &DagRecord, nodes: Option<&[NodeWithTasks]>) -> DagDetailDto {
        let (start_time, end_time) = times(dag.create_time, dag.start_time, dag.end_time);
        let additional_data = nodes.map(|nodes| {
            merged(
                nodes
                    .iter()
                    .flat_map(|(_, tasks)| tasks.iter().map(|(task, _)| &task.additional_data)),
            )
        });
        let nodes = nodes.map(|nodes| {
            nodes
                .iter()
                .map(|(node, tasks)| NodeDetailDto {
                    additional_data: None,
                    ..self.node(node, Some(tasks), dag.scope)
                })
                .collect()
        });
        DagDetailDto {
            id: self.generic_id(dag.id, dag.scope),
            dag_id: dag.id,
            name: dag.name.clone(),
            stage: dag.stage,
            max_stage: dag.max_stage,
            maintenance_type: dag.maintenance.type_code(),
            maintenance_key: dag.maintenance.key().to_string(),
            state: dag.state.to_string(),
            operator: dag.operator.to_string(),
            start_time,
            end_time,
            additional_data,
            nodes,
        }
    }

    /// Log rows of a sub-task.
    pub fn logs(&self, logs: &[LogRecord]) -> Vec<TaskLogDto> {
        logs.iter()
            .enumerate()
            .map(|(index, log)| TaskLogDto {
                id: index as u64 + 1,
                sub_task_id: log.task_id,
                execute_times: log.execute_times,
                log_content: log.content.clone(),
                is_sync: true,
                create_time: format_time(log.time),
                update_time: format_time(log.time),
            })
            .collect()
    }
}

/// Views read from the store: what the engine's detail queries return.
impl DtoBuilder {
    /// `DagDetailDTO` of a DAG; with `show_details`, its nodes and sub-tasks too.
    pub(crate) fn dag_view(
        &self,
        records: &Records,
        dag: &DagRecord,
        show_details: bool,
    ) -> Result<DagDetailDto, StoreError> {
        if !show_details {
            return Ok(self.dag(dag, None));
        }
        let mut nodes = Vec::new();
        for node in records.nodes_of(dag)? {
            let tasks = tasks_with_logs(records, &node)?;
            nodes.push((node, tasks));
        }
        Ok(self.dag(dag, Some(&nodes)))
    }

    /// `NodeDetailDTO` of a node of a DAG of `scope`; with `show_details`, its
    /// sub-tasks too.
    pub(crate) fn node_view(
        &self,
        records: &Records,
        node: &NodeRecord,
        scope: Scope,
        show_details: bool,
    ) -> Result<NodeDetailDto, StoreError> {
        let tasks = if show_details {
            Some(tasks_with_logs(records, node)?)
        } else {
            None
        };
        Ok(self.node(node, tasks.as_deref(), scope))
    }

    /// `TaskDetailDTO` of a sub-task of a DAG of `scope`, with its logs.
    pub(crate) fn task_view(
        &self,
        records: &Records,
        task: &TaskRecord,
        scope: Scope,
    ) -> Result<TaskDetailDto, StoreError> {
        let logs = records.logs(task.id)?;
        Ok(self.task(task, &logs, scope))
    }
}

/// A node's sub-tasks, each with its log rows.
fn tasks_with_logs(
    records: &Records,
    node: &NodeRecord,
) -> Result<Vec<(TaskRecord, Vec<LogRecord>)>, StoreError> {
    let mut tasks = Vec::new();
    for task in records.tasks_of(node)? {
        let logs = records.logs(task.id)?;
        tasks.push((task, logs));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn additional_data_merges_maps_appends_arrays_replaces_scalars() {
        let mut into = map(json!({"a": {"x": 1}, "list": [1], "n": 1}));
        merge_additional(&mut into, &map(json!({"a": {"y": 2}, "list": [2], "n": 2})));
        assert_eq!(
            Value::Object(into),
            json!({"a": {"x": 1, "y": 2}, "list": [1, 2], "n": 2})
        );
    }

    #[test]
    fn context_merge_replaces_arrays() {
        let mut into = map(json!({"a": {"x": 1}, "list": [1]}));
        merge_context(&mut into, &map(json!({"a": {"y": 2}, "list": [2]})));
        assert_eq!(
            Value::Object(into),
            json!({"a": {"x": 1, "y": 2}, "list": [2]})
        );
    }
}
