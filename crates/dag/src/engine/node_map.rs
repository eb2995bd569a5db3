//! A DAG's nodes by id ([`NodeMap`]), in id order, found by position.
//!
//! A DAG's node ids are assigned in one run when it is submitted, so they are
//! consecutive: the node with id `id` sits at position `id - first id`, and a lookup is
//! an index and one compare instead of a B-tree descent (a chain's stage looked its
//! node map up ~8 times, issue 12). Ids that are not consecutive (records read from a
//! store written otherwise) are still found, by binary search.
//!
//! Invariant: the entries are sorted by id, each id once, so every iteration is in id
//! order (the rollback and settle paths and `detail` rely on it), as the `BTreeMap` it
//! replaced.

use std::sync::Arc;

use crate::record::NodeRecord;

/// A DAG's node records by id; see the module documentation.
#[derive(Debug, Default, Clone)]
pub(crate) struct NodeMap {
    entries: Vec<(u64, Arc<NodeRecord>)>,
}

impl NodeMap {
    /// Where `id` is, if present: its position when the ids are consecutive from the
    /// first, else a binary search.
    fn position(&self, id: u64) -> Option<usize> {
        let first = self.entries.first()?.0;
        let guess = usize::try_from(id.wrapping_sub(first)).ok();
        if let Some(index) =
            guess.filter(|&index| self.entries.get(index).is_some_and(|(at, _)| *at == id))
        {
            return Some(index);
        }
        self.entries.binary_search_by_key(&id, |(at, _)| *at).ok()
    }

    pub(crate) fn get(&self, id: &u64) -> Option<&Arc<NodeRecord>> {
        self.position(*id).map(|index| &self.entries[index].1)
    }

    pub(crate) fn get_mut(&mut self, id: &u64) -> Option<&mut Arc<NodeRecord>> {
        self.position(*id).map(|index| &mut self.entries[index].1)
    }

    /// Puts `record` under `id`, replacing (and returning) the one there.
    pub(crate) fn insert(&mut self, id: u64, record: Arc<NodeRecord>) -> Option<Arc<NodeRecord>> {
        if self.entries.last().is_none_or(|(last, _)| *last < id) {
            self.entries.push((id, record));
            return None;
        }
        match self.entries.binary_search_by_key(&id, |(at, _)| *at) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, record)),
            Err(index) => {
                self.entries.insert(index, (id, record));
                None
            }
        }
    }

    /// Room for `additional` more records without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ids, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &u64> {
        self.entries.iter().map(|(id, _)| id)
    }

    /// The records, in id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<NodeRecord>> {
        self.entries.iter().map(|(_, record)| record)
    }
}

impl FromIterator<(u64, Arc<NodeRecord>)> for NodeMap {
    /// As a `BTreeMap` collects: sorted by id, a later record of an id replacing an
    /// earlier one.
    fn from_iter<I: IntoIterator<Item = (u64, Arc<NodeRecord>)>>(iter: I) -> NodeMap {
        let mut map = NodeMap::default();
        for (id, record) in iter {
            map.insert(id, record);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::{FanOut, Operator, State};
    use crate::record::RECORD_VERSION;

    fn record(id: u64, layer: u32) -> Arc<NodeRecord> {
        Arc::new(NodeRecord {
            v: RECORD_VERSION,
            id,
            dag_id: 1,
            name: "n".into(),
            task_type: "t".into(),
            layer,
            upstream: Arc::new([]),
            downstream: Arc::new([]),
            state: State::Pending,
            operator: Operator::Run,
            fan_out: FanOut::Static(Arc::new([])),
            expanded: true,
            task_ids: Vec::new(),
            pool: None,
            timeout_ms: 0,
            retry: None,
            flags: None,
            failure_exit_maintenance: false,
            create_time: chrono::DateTime::UNIX_EPOCH,
            start_time: None,
            end_time: None,
        })
    }

    proptest! {
        /// Whatever ids come in whatever order (consecutive, gaps, repeats, near the
        /// ends of u64), the map answers as a `BTreeMap` built the same way.
        #[test]
        fn answers_as_a_btree_map(
            start in prop_oneof![Just(0u64), Just(u64::MAX - 40), 0u64..1_000],
            steps in proptest::collection::vec((0u64..4, any::<bool>()), 0..40),
            probes in proptest::collection::vec(0u64..60, 0..20),
        ) {
            let mut ids = Vec::new();
            let mut id = start;
            for (gap, back) in steps {
                id = if back { id.saturating_sub(gap) } else { id.saturating_add(gap) };
                ids.push(id);
            }
            let mut map = NodeMap::default();
            let mut expected = BTreeMap::new();
            for (layer, &id) in ids.iter().enumerate() {
                let layer = u32::try_from(layer).unwrap_or(u32::MAX);
                let old = map.insert(id, record(id, layer)).map(|r| r.layer);
                let want = expected.insert(id, layer);
                prop_assert_eq!(old, want);
            }
            let collected: NodeMap =
                ids.iter().enumerate().map(|(layer, &id)| (id, record(id, layer as u32))).collect();
            for map in [&map, &collected] {
                prop_assert_eq!(map.len(), expected.len());
                prop_assert!(map.keys().copied().eq(expected.keys().copied()));
                prop_assert!(map.values().map(|r| r.layer).eq(expected.values().copied()));
                for probe in probes.iter().map(|p| start.wrapping_add(*p).wrapping_sub(20)) {
                    prop_assert_eq!(map.get(&probe).map(|r| r.layer), expected.get(&probe).copied());
                }
            }
            if let Some(&id) = ids.first() {
                Arc::make_mut(map.get_mut(&id).expect("present")).layer = 999;
                prop_assert_eq!(map.get(&id).map(|r| r.layer), Some(999));
            }
        }
    }
}
