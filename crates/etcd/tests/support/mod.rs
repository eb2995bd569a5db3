//! Shared by the etcd crate's tests: a continuable sleeping task type and DAG shapes.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::{DagSpec, Flags, NodeSpec, Task, TaskContext, TaskError, TaskRegistry};
use serde_json::{json, Value};

/// Sleeps `sleep_ms` (a parameter), counting executions; can continue after a crash.
struct Sleep {
    ms: u64,
    executions: Arc<AtomicUsize>,
}

#[async_trait]
impl Task for Sleep {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.executions.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        Ok(())
    }
}

/// A registry with the type "sleep"; `executions` counts its attempts.
pub fn registry(executions: &Arc<AtomicUsize>) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    let executions = Arc::clone(executions);
    registry.register("sleep", Flags::ALL, move |params: &Value| {
        let ms = params.get("sleep_ms").and_then(Value::as_u64).unwrap_or(0);
        Ok(Box::new(Sleep {
            ms,
            executions: Arc::clone(&executions),
        }) as Box<dyn Task>)
    });
    registry
}

/// A chain of `chain` one-task nodes, then a node fanning out to `fan_out` sub-tasks,
/// every sub-task sleeping `sleep_ms`.
pub fn dag(name: &str, chain: usize, fan_out: usize, sleep_ms: u64) -> DagSpec {
    let mut spec = DagSpec::new(name);
    let mut nodes: Vec<NodeSpec> = (0..chain)
        .map(|i| {
            NodeSpec::new(format!("step{i}"), "sleep").sub_tasks(vec![
                json!({"name": format!("step{i}"), "sleep_ms": sleep_ms}),
            ])
        })
        .collect();
    if fan_out > 0 {
        nodes.push(
            NodeSpec::new("fan", "sleep").sub_tasks(
                (0..fan_out)
                    .map(|i| json!({"name": format!("fan{i}"), "sleep_ms": sleep_ms}))
                    .collect(),
            ),
        );
    }
    spec.chain(None, nodes);
    spec
}
