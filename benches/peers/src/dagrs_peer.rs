//! dagrs: one `DefaultNode` per task in a `Graph`, run by `Graph::async_start` on the
//! caller's tokio runtime. dagrs starts every node of a graph at once and orders them by
//! their channels, so each no-op receives from all its parents before it counts, then
//! broadcasts to its children (as dagrs's own examples do). Timed: building the graph
//! and running it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use dagrs::{
    Action, CompletionStatus, Content, DefaultNode, EnvVar, Graph, InChannels, Node, NodeId,
    NodeTable, OutChannels, Output,
};

use crate::shape::Shape;
use crate::Run;

/// The no-op action: waits for its parents, counts, signals its children.
struct Noop(Arc<AtomicUsize>);

#[dagrs::async_trait::async_trait]
impl Action for Noop {
    async fn run(
        &self,
        input: &mut InChannels,
        output: &mut OutChannels,
        _env: Arc<EnvVar>,
    ) -> Output {
        input.map(|_| ()).await;
        self.0.fetch_add(1, Ordering::Relaxed);
        output.broadcast(Content::new(())).await;
        Output::empty()
    }
}

/// The graph of `shape` and its node count.
fn build(shape: Shape, executed: &Arc<AtomicUsize>) -> anyhow::Result<Graph> {
    let mut table = NodeTable::new();
    let mut graph = Graph::new();
    let mut ids: Vec<NodeId> = Vec::with_capacity(shape.tasks());
    for index in 0..shape.tasks() {
        let node =
            DefaultNode::with_action(format!("t{index}"), Noop(Arc::clone(executed)), &mut table);
        ids.push(node.id());
        graph.add_node(node).map_err(dagrs_error)?;
    }
    match shape {
        Shape::Chain(length) => {
            for position in 1..length {
                graph
                    .add_edge(ids[position - 1], [ids[position]])
                    .map_err(dagrs_error)?;
            }
        }
        Shape::FanOut(_) => {}
        Shape::Layers { layers, width } => {
            // One `add_edge` per parent with all its children.
            for layer in 1..layers {
                let mut children = vec![Vec::new(); width];
                for column in 0..width {
                    for parent in Shape::layer_parents(width, column) {
                        children[parent].push(ids[layer * width + column]);
                    }
                }
                for (parent, children) in children.into_iter().enumerate() {
                    let from = ids[(layer - 1) * width + parent];
                    graph.add_edge(from, children).map_err(dagrs_error)?;
                }
            }
        }
    }
    graph.set_env(EnvVar::new(table));
    Ok(graph)
}

fn dagrs_error(error: dagrs::DagrsError) -> anyhow::Error {
    anyhow::anyhow!("dagrs: {error}")
}

/// Runs `shape` once.
pub async fn run(shape: Shape) -> anyhow::Result<Run> {
    let executed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut graph = build(shape, &executed)?;
    let report = graph.async_start().await.map_err(dagrs_error)?;
    let elapsed = started.elapsed();
    ensure!(
        matches!(report.status, CompletionStatus::Succeeded),
        "dagrs {shape}: {:?}",
        report.status
    );
    Ok(Run {
        elapsed,
        executed: executed.load(Ordering::Relaxed),
    })
}
