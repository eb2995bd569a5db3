//! A DAG's READY sub-tasks waiting for a worker slot, per pool ([`ReadyQueues`]).
//!
//! Most sub-tasks are in no pool: their queue is a field of its own, so queueing one
//! (every stage of a chain does) is a push, not a search of a map of pool names.
//!
//! Invariant: the queues are visited as a map of pool names in name order would be,
//! the unpooled queue (the empty name, which sorts first) before every pool.

use std::collections::{BTreeMap, VecDeque};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueues {
    /// Sub-tasks of nodes in no pool.
    unpooled: VecDeque<u64>,
    /// Per pool name (never empty), its sub-tasks.
    pooled: BTreeMap<String, VecDeque<u64>>,
}

impl ReadyQueues {
    /// Queues `task_id` last in `pool` ("" for none).
    pub(crate) fn push(&mut self, pool: &str, task_id: u64) {
        if pool.is_empty() {
            self.unpooled.push_back(task_id);
        } else if let Some(queue) = self.pooled.get_mut(pool) {
            queue.push_back(task_id);
        } else {
            self.pooled
                .insert(pool.to_string(), VecDeque::from([task_id]));
        }
    }

    /// Takes the first sub-task of the first queue, in pool name order ("" first), whose
    /// pool `admits` one more.
    pub(crate) fn pop_first(&mut self, admits: impl Fn(&str) -> bool) -> Option<u64> {
        if let Some(task_id) = self.unpooled.pop_front() {
            return Some(task_id);
        }
        self.pooled
            .iter_mut()
            .find(|(pool, queue)| !queue.is_empty() && admits(pool))
            .and_then(|(_, queue)| queue.pop_front())
    }

    pub(crate) fn clear(&mut self) {
        self.unpooled.clear();
        self.pooled.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Pushes and pops answer as the map of pool names ("" for none) to queues did:
        /// the first non-empty queue in name order whose pool admits one more.
        #[test]
        fn pops_as_a_map_of_pool_names(
            steps in proptest::collection::vec((0usize..4, any::<bool>(), 0u64..100), 1..60),
            full in proptest::collection::vec(any::<bool>(), 4),
        ) {
            let pools = ["", "a", "b", "ab"];
            let admits = |pool: &str| {
                pools.iter().position(|p| *p == pool).is_none_or(|at| !full[at])
            };
            let mut queues = ReadyQueues::default();
            let mut model: BTreeMap<String, VecDeque<u64>> = BTreeMap::new();
            for (pool, push, task_id) in steps {
                if push {
                    queues.push(pools[pool], task_id);
                    model.entry(pools[pool].to_string()).or_default().push_back(task_id);
                } else {
                    let expected = model
                        .iter_mut()
                        .find(|(pool, queue)| {
                            !queue.is_empty() && (pool.is_empty() || admits(pool))
                        })
                        .and_then(|(_, queue)| queue.pop_front());
                    prop_assert_eq!(queues.pop_first(admits), expected);
                }
            }
        }
    }
}
