//! Checks a [`DagSpec`] before anything of it is created, and computes each node's
//! layer (stage).
//!
//! Invariant: a spec that passes has at least one node, edges between existing distinct
//! nodes and no cycle, registered task types, declared pools of non-zero capacity, at
//! least one sub-task per static node and non-zero timeouts.

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
///
/// Kahn's order over the deduplicated edges, sorted by their source (one allocation per
/// table, no graph structure): each node's layer is one more than its highest parent's.
fn layers(spec: &DagSpec) -> Result<Vec<u32>, SubmitError> {
    let count = spec.nodes.len();
    let mut edges = spec.edges.clone();
    edges.sort_unstable();
    edges.dedup();
    // `first[n]..first[n + 1]` are the edges out of node `n`.
    let mut first = vec![0usize; count + 1];
    let mut parents = vec![0usize; count];
    for &(from, to) in &edges {
        first[from + 1] += 1;
        parents[to] += 1;
    }
    for node in 0..count {
        first[node + 1] += first[node];
    }
    let mut layers = vec![1u32; count];
    let mut ready: Vec<usize> = (0..count).filter(|&node| parents[node] == 0).collect();
    let mut placed = 0;
    while let Some(node) = ready.pop() {
        placed += 1;
        for &(_, to) in &edges[first[node]..first[node + 1]] {
            layers[to] = layers[to].max(layers[node] + 1);
            parents[to] -= 1;
            if parents[to] == 0 {
                ready.push(to);
            }
        }
    }
    if placed < count {
        let node = on_a_cycle(&edges, &parents);
        let name = &spec.nodes[node].name;
        return Err(invalid(format!(
            "the graph has a cycle through node '{name}'"
        )));
    }
    Ok(layers)
}

/// A node on a cycle, given the parents Kahn's order left unplaced per node (some are
/// non-zero). Every unplaced node has an unplaced parent, so walking up from one through
/// unplaced parents repeats a node, and that node is on a cycle.
fn on_a_cycle(edges: &[(usize, usize)], unplaced_parents: &[usize]) -> usize {
    let mut parent_of = vec![None; unplaced_parents.len()];
    for &(from, to) in edges {
        if unplaced_parents[from] > 0 && unplaced_parents[to] > 0 {
            parent_of[to] = Some(from);
        }
    }
    let mut seen = vec![false; unplaced_parents.len()];
    let mut node = unplaced_parents
        .iter()
        .position(|&count| count > 0)
        .unwrap_or_default();
    while !seen[node] {
        seen[node] = true;
        match parent_of[node] {
            Some(parent) => node = parent,
            None => break,
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::layers;
    use crate::model::{DagSpec, NodeSpec};

    /// Each node's layer by relaxing every edge until nothing changes, or `None` if
    /// that never ends (a cycle): the definition, with no order.
    fn relaxed(count: usize, edges: &[(usize, usize)]) -> Option<Vec<u32>> {
        let mut layers = vec![1u32; count];
        for _ in 0..=count {
            let mut changed = false;
            for &(from, to) in edges {
                if layers[to] < layers[from] + 1 {
                    layers[to] = layers[from] + 1;
                    changed = true;
                }
            }
            if !changed {
                return Some(layers);
            }
        }
        None
    }

    /// Whether `node` reaches itself along the edges.
    fn on_cycle(node: usize, count: usize, edges: &[(usize, usize)]) -> bool {
        let mut seen = vec![false; count];
        let mut stack = vec![node];
        while let Some(at) = stack.pop() {
            for &(from, to) in edges {
                if from == at && !seen[to] {
                    if to == node {
                        return true;
                    }
                    seen[to] = true;
                    stack.push(to);
                }
            }
        }
        false
    }

    proptest! {
        /// Any graph (repeated edges, several roots, cycles or not): the layers are the
        /// longest-path ones, and a graph with a cycle is refused naming a node on one.
        #[test]
        fn layers_are_longest_paths_and_a_cycle_names_its_node(
            count in 1usize..12,
            raw in proptest::collection::vec((0usize..12, 0usize..12, proptest::bool::weighted(0.1)), 0..30),
            shuffled in Just((0..12).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            // Most edges point forward in a random order of the nodes (mostly acyclic
            // graphs, and a node after a cycle may come first); a few may point back.
            let order: Vec<usize> = shuffled.into_iter().filter(|&node| node < count).collect();
            let edges: Vec<(usize, usize)> = raw
                .into_iter()
                .map(|(a, b, back)| (a % count, b % count, back))
                .filter(|(a, b, _)| a != b)
                .map(|(a, b, back)| if back == (a < b) { (b, a) } else { (a, b) })
                .map(|(a, b)| (order[a], order[b]))
                .collect();
            let mut spec = DagSpec::new("g");
            let nodes: Vec<_> = (0..count)
                .map(|index| spec.add_node(NodeSpec::new(format!("n{index}"), "t")))
                .collect();
            for &(from, to) in &edges {
                spec.add_edge(nodes[from], nodes[to]);
            }
            match (layers(&spec), relaxed(count, &edges)) {
                (Ok(got), Some(expected)) => prop_assert_eq!(got, expected),
                (Err(error), None) => {
                    let text = error.to_string();
                    let named = (0..count)
                        .find(|index| text.contains(&format!("node 'n{index}'")));
                    prop_assert!(named.is_some_and(|node| on_cycle(node, count, &edges)), "{}", text);
                }
                (got, expected) => prop_assert!(false, "{:?} against {:?}", got, expected),
            }
        }
    }
}
