//! The upstream and downstream node ids of every node of a new DAG ([`Links`]), for its
//! node records.
//!
//! Computed in one pass over the edges (a scan of all edges per node made submitting a
//! DAG of N nodes and E edges cost N × E). Each node's list is built straight into its
//! record's shared slice from one sorted list of all edges: no list per node on the
//! way, and every node without links shares one empty slice.
//!
//! Invariant: a node's lists are the ids of the nodes at the other end of its edges,
//! sorted and each once (`tests::lists_are_each_nodes_linked_ids`).

use std::sync::Arc;

/// See the module documentation.
pub(super) struct Links {
    upstream: Vec<Arc<[u64]>>,
    downstream: Vec<Arc<[u64]>>,
    empty: Arc<[u64]>,
}

/// One node's upstream and downstream node ids.
pub(super) struct NodeLinks {
    pub(super) upstream: Arc<[u64]>,
    pub(super) downstream: Arc<[u64]>,
}

impl Links {
    /// The links of `count` nodes joined by `edges` (from, to: node indexes), the node
    /// at index `i` having id `node_ids[i]` (ids ascending with the index, as a
    /// submit assigns them).
    pub(super) fn of(count: usize, edges: &[(usize, usize)], node_ids: &[u64]) -> Links {
        let empty: Arc<[u64]> = Arc::from(&[][..]);
        let into = edges.iter().map(|&(from, to)| (to, node_ids[from]));
        let out_of = edges.iter().map(|&(from, to)| (from, node_ids[to]));
        Links {
            upstream: per_node(into.collect(), count, &empty),
            downstream: per_node(out_of.collect(), count, &empty),
            empty,
        }
    }

    /// Node `index`'s links (each is taken once, when its record is built).
    pub(super) fn take(&mut self, index: usize) -> NodeLinks {
        NodeLinks {
            upstream: std::mem::replace(&mut self.upstream[index], Arc::clone(&self.empty)),
            downstream: std::mem::replace(&mut self.downstream[index], Arc::clone(&self.empty)),
        }
    }
}

/// Groups `(node index, linked id)` pairs into one sorted list without repeats per node
/// of `count`; a node with none gets `empty`.
fn per_node(mut pairs: Vec<(usize, u64)>, count: usize, empty: &Arc<[u64]>) -> Vec<Arc<[u64]>> {
    // A chain's and most specs' edges come in order: the sort is one pass then.
    pairs.sort_unstable();
    pairs.dedup();
    let ids: Vec<u64> = pairs.iter().map(|&(_, id)| id).collect();
    let mut lists = Vec::with_capacity(count);
    let mut at = 0;
    for index in 0..count {
        let start = at;
        while pairs.get(at).is_some_and(|&(node, _)| node == index) {
            at += 1;
        }
        lists.push(if start == at {
            Arc::clone(empty)
        } else {
            Arc::from(&ids[start..at])
        });
    }
    lists
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every node's lists equal the sorted, deduplicated ids at the other end of
        /// its edges, whatever the edges' order and repeats.
        #[test]
        fn lists_are_each_nodes_linked_ids(
            count in 1usize..12,
            edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30),
            gaps in proptest::collection::vec(1u64..4, 12),
        ) {
            let edges: Vec<(usize, usize)> =
                edges.into_iter().map(|(from, to)| (from % count, to % count)).collect();
            let node_ids: Vec<u64> = gaps[..count]
                .iter()
                .scan(100, |id, gap| {
                    *id += gap;
                    Some(*id)
                })
                .collect();
            let mut links = Links::of(count, &edges, &node_ids);
            for index in 0..count {
                let linked = |end: fn(&(usize, usize)) -> (usize, usize)| {
                    let mut ids: Vec<u64> = edges
                        .iter()
                        .map(end)
                        .filter(|&(at, _)| at == index)
                        .map(|(_, other)| node_ids[other])
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                };
                let node = links.take(index);
                prop_assert_eq!(&node.upstream[..], &linked(|&(from, to)| (to, from))[..]);
                prop_assert_eq!(&node.downstream[..], &linked(|&(from, to)| (from, to))[..]);
            }
        }
    }
}
