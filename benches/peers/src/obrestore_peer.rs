//! obrestore's engine, driven as `benches/stage_throughput.rs` drives it: a fresh store
//! and engine per run, only `submit` to `wait_settled` timed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use async_trait::async_trait;
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, MemStore, NodeSpec, SledStore, State, SyncTask,
    Task, TaskContext, TaskError, TaskRegistry,
};
use serde_json::json;

use crate::shape::Shape;
use crate::Run;

/// The no-op task: counts its executions.
struct Counting(Arc<AtomicUsize>);

#[async_trait]
impl Task for Counting {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The same no-op as a synchronous task (`SyncTask`): called where its attempt starts.
impl SyncTask for Counting {
    fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// How the no-op is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An async `Task`, each attempt a tokio task.
    Spawned,
    /// An async `Task` of a light type (`TaskRegistry::set_light`: polled once where
    /// it starts, spawned only if it did not finish).
    Light,
    /// A `SyncTask` (`TaskRegistry::register_shared_sync`): called where its attempt
    /// starts, no future.
    Sync,
}

/// The DAG of `shape` (as in `benches/stage_throughput.rs`): a fan-out is one node with
/// one sub-task per task, every other node has one sub-task.
pub fn spec(shape: Shape) -> DagSpec {
    let mut spec = DagSpec::new(shape.to_string());
    match shape {
        Shape::Chain(length) => {
            let nodes = (0..length)
                .map(|position| {
                    NodeSpec::new(format!("step {position}"), "noop")
                        .sub_tasks(vec![json!({ "position": position })])
                })
                .collect();
            spec.chain(None, nodes);
        }
        Shape::FanOut(width) => {
            let params = (0..width)
                .map(|position| json!({ "position": position }))
                .collect();
            spec.add_node(NodeSpec::new("fan out", "noop").sub_tasks(params));
        }
        Shape::Layers { layers, width } => {
            let mut previous = Vec::new();
            for layer in 0..layers {
                let mut current = Vec::with_capacity(width);
                for column in 0..width {
                    let name = format!("layer {layer} node {column}");
                    let node = spec.add_node(NodeSpec::new(name, "noop"));
                    if layer > 0 {
                        for parent in Shape::layer_parents(width, column) {
                            spec.add_edge(previous[parent], node);
                        }
                    }
                    current.push(node);
                }
                previous = current;
            }
        }
    }
    spec
}

/// Runs `shape` once; `durable_in` is the directory for a durable `SledStore` (every
/// commit flushed and synced to the device, as in production), `None` for `MemStore`.
/// `kind` says how the no-op is registered.
pub async fn run(shape: Shape, durable_in: Option<&Path>, kind: Kind) -> anyhow::Result<Run> {
    let executed = Arc::new(AtomicUsize::new(0));
    let directory = match durable_in {
        Some(parent) => Some(tempfile::tempdir_in(parent).context("store directory")?),
        None => None,
    };
    let store: Arc<dyn KvStore> = match &directory {
        Some(directory) => Arc::new(SledStore::open(directory.path()).context("sled opens")?),
        None => Arc::new(MemStore::new()),
    };
    let mut registry = TaskRegistry::new();
    let counting = Arc::new(Counting(Arc::clone(&executed)));
    match kind {
        Kind::Sync => registry.register_shared_sync("noop", Flags::ALL, counting),
        Kind::Spawned | Kind::Light => registry.register_shared("noop", Flags::ALL, counting),
    }
    if kind == Kind::Light {
        ensure!(registry.set_light("noop"), "noop is registered");
    }
    let engine = Engine::open(EngineConfig::default(), store, registry)
        .await
        .context("engine opens")?;
    let spec = spec(shape);
    let started = Instant::now();
    let dag_id = engine.submit(spec).await.context("submit")?;
    let dag = engine.wait_settled(dag_id).await.context("wait_settled")?;
    let elapsed = started.elapsed();
    engine.shutdown(Duration::from_secs(5)).await;
    ensure!(
        dag.state == State::Succeed,
        "{shape}: DAG ended {:?}",
        dag.state
    );
    Ok(Run {
        elapsed,
        executed: executed.load(Ordering::Relaxed),
    })
}
