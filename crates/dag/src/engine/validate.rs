//! Checks a [`DagSpec`] before anything of it is created, and computes each node's
//! layer (stage).
//!
//! Invariant: a spec that passes has at least one node, edges between existing distinct
//! nodes and no cycle, registered task types, declared pools of non-zero capacity, at
//! least one sub-task per static node and non-zero timeouts.

use std::collections::HashSet;

use crate::error::SubmitError;
use crate::model::{DagSpec, FanOut, NodeSpec};
use crate::task::TaskRegistry;

/// Checks a spec and returns each node's layer (longest path from a root, 1-based).
///
/// # Errors
/// [`SubmitError::Invalid`] saying what is wrong, or [`SubmitError::UnknownTaskType`].
pub(crate) fn validate(spec: &DagSpec, registry: &TaskRegistry) -> Result<Vec<u32>, SubmitError> {
    if spec.nodes.is_empty() {
        return Err(invalid("a dag needs at least one node".to_string()));
    }
    check_edges(spec)?;
    for (name, capacity) in &spec.pools {
        if *capacity == 0 {
            return Err(invalid(format!("pool '{name}' has capacity 0")));
        }
    }
    for node in &spec.nodes {
        check_node(spec, node, registry)?;
    }
    layers(spec)
}

fn invalid(reason: String) -> SubmitError {
    SubmitError::Invalid(reason)
}

fn check_edges(spec: &DagSpec) -> Result<(), SubmitError> {
    let count = spec.nodes.len();
    for (from, to) in &spec.edges {
        if *from >= count || *to >= count {
            return Err(invalid(format!(
                "edge {from}->{to} names a node that does not exist"
            )));
        }
        if from == to {
            return Err(invalid(format!(
                "node '{}' depends on itself",
                spec.nodes[*from].name
            )));
        }
    }
    Ok(())
}

fn check_node(spec: &DagSpec, node: &NodeSpec, registry: &TaskRegistry) -> Result<(), SubmitError> {
    if registry.get(&node.task_type).is_none() {
        return Err(SubmitError::UnknownTaskType(node.task_type.clone()));
    }
    if let Some(pool) = &node.pool {
        if !spec.pools.contains_key(pool) {
            return Err(invalid(format!(
                "node '{}' uses undeclared pool '{pool}'",
                node.name
            )));
        }
    }
    if let FanOut::Static(params) = &node.fan_out {
        if params.is_empty() {
            return Err(invalid(format!("node '{}' has no sub-tasks", node.name)));
        }
    }
    if node.timeout.is_zero() {
        return Err(invalid(format!("node '{}' has a zero timeout", node.name)));
    }
    Ok(())
}

/// Each node's layer, or the cycle that keeps the graph from having layers.
fn layers(spec: &DagSpec) -> Result<Vec<u32>, SubmitError> {
    let count = spec.nodes.len();
    let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
    let indices: Vec<_> = (0..count).map(|i| graph.add_node(i)).collect();
    let mut seen = HashSet::new();
    for (from, to) in &spec.edges {
        if seen.insert((*from, *to)) {
            graph.add_edge(indices[*from], indices[*to], ());
        }
    }
    let order = petgraph::algo::toposort(&graph, None).map_err(|cycle| {
        let name = &spec.nodes[graph[cycle.node_id()]].name;
        invalid(format!("the graph has a cycle through node '{name}'"))
    })?;
    let mut layers = vec![1u32; count];
    for index in order {
        let node = graph[index];
        let layer = graph
            .neighbors_directed(index, petgraph::Direction::Incoming)
            .map(|up| layers[graph[up]] + 1)
            .max()
            .unwrap_or(1);
        layers[node] = layer;
    }
    Ok(layers)
}
