//! The in-memory store ([`MemStore`]): for tests and benchmarks; nothing survives the
//! process. It keeps records typed, as the engine hands them over: nothing is encoded
//! unless a caller asks for bytes ([`KvStore::get`], [`KvStore::scan_prefix`]).
//!
//! The engine's own records (`a/`, `d/`, `n/`, `t/` and an 8-byte big-endian id: the
//! index of unfinished DAGs, DAG, node and sub-task records, which every transition
//! writes) sit in one slot per id, in a `Vec` per prefix (the engine's ids are
//! counters: a write is an index, no search and no key compare); every other key, and
//! an id past [`DENSE_IDS`], in a B-tree keyed by the batches' own inline keys
//! ([`Key`]). A scan merges the two in key order.
//!
//! Invariant: a key is in exactly one of the two places, decided by the key alone
//! ([`slot_of`]); reads and scans answer as one map of keys in byte order would
//! (`tests::answers_as_one_ordered_map`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Batch, Key, KvStore, Pairs, StoreError, Stored};

/// The prefixes whose keys have a slot per id, in key order.
const DENSE: [&[u8; 2]; 4] = [b"a/", b"d/", b"n/", b"t/"];

/// Ids from this one on go to the B-tree: a slot `Vec` is as long as its largest id, and
/// an id this large is not one of a counter's.
const DENSE_IDS: u64 = 1 << 22;

/// The in-memory store; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    tables: Arc<RwLock<Tables>>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Per prefix of [`DENSE`], the value of `<prefix><id>` at index `id`.
    dense: [Vec<Option<Stored>>; 4],
    /// Every other key.
    other: BTreeMap<Key, Stored>,
}

/// The table and id of a key that has a slot per id: two bytes of a [`DENSE`] prefix
/// and an 8-byte big-endian id below [`DENSE_IDS`], nothing more.
fn slot_of(key: &Key) -> Option<(usize, usize)> {
    let bytes = key.inline_ten()?;
    let table = DENSE.iter().position(|prefix| bytes[..2] == prefix[..])?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[2..]);
    let id = u64::from_be_bytes(id);
    (id < DENSE_IDS).then_some((table, usize::try_from(id).ok()?))
}

/// The key of slot `id` of table `table`.
fn slot_key(table: usize, id: usize) -> Vec<u8> {
    let mut key = DENSE[table].to_vec();
    key.extend_from_slice(&(id as u64).to_be_bytes());
    key
}

impl Tables {
    fn get(&self, key: &Key) -> Option<&Stored> {
        match slot_of(key) {
            Some((table, id)) => self.dense[table].get(id).and_then(Option::as_ref),
            None => self.other.get(key),
        }
    }

    fn write(&mut self, key: Key, value: Option<Stored>) {
        let Some((table, id)) = slot_of(&key) else {
            match value {
                Some(value) => self.other.insert(key, value),
                None => self.other.remove(&key),
            };
            return;
        };
        let slots = &mut self.dense[table];
        if id >= slots.len() {
            if value.is_none() {
                return;
            }
            slots.resize_with(id + 1, || None);
        }
        slots[id] = value;
    }

    /// The slots whose keys start with `prefix`, in key order.
    fn dense_under(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Stored)> {
        let mut found = Vec::new();
        for (table, name) in DENSE.iter().enumerate() {
            let slots = &self.dense[table];
            let (low, high) = if prefix.len() <= 2 {
                if !name.starts_with(prefix) {
                    continue;
                }
                (0, slots.len())
            } else {
                // The id's first bytes are the prefix's rest: ids from the rest padded
                // with 0x00 to it padded with 0xff.
                let rest = &prefix[2..];
                if prefix[..2] != name[..] || rest.len() > 8 {
                    continue;
                }
                let (mut low, mut high) = ([0u8; 8], [0xffu8; 8]);
                low[..rest.len()].copy_from_slice(rest);
                high[..rest.len()].copy_from_slice(rest);
                let bound = |bytes: [u8; 8]| {
                    usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX)
                };
                (
                    bound(low).min(slots.len()),
                    bound(high).saturating_add(1).min(slots.len()),
                )
            };
            for (id, value) in slots.iter().enumerate().take(high).skip(low) {
                if let Some(value) = value {
                    found.push((slot_key(table, id), value.clone()));
                }
            }
        }
        found
    }

    /// Every key under `prefix` and its value, in key order.
    fn scan(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Stored)> {
        let dense = self.dense_under(prefix);
        let other = self
            .other
            .range(Key::new(prefix)..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.to_bytes(), value.clone()));
        let mut merged = Vec::with_capacity(dense.len());
        let mut dense = dense.into_iter().peekable();
        for (key, value) in other {
            while let Some(next) = dense.next_if(|(slot, _)| *slot < key) {
                merged.push(next);
            }
            merged.push((key, value));
        }
        merged.extend(dense);
        merged
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_stored(key)?.map(Stored::into_bytes))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        Ok(self
            .scan_stored(prefix)?
            .into_iter()
            .map(|(key, value)| (key, value.into_bytes()))
            .collect())
    }

    fn get_stored(&self, key: &[u8]) -> Result<Option<Stored>, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(tables.get(&Key::new(key)).cloned())
    }

    fn scan_stored(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(tables.scan(prefix))
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut tables = self
            .tables
            .write()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        // As pushed: a later write of a key replaces an earlier one here too.
        for (key, value) in batch.writes.into_pushed() {
            tables.write(key, value);
        }
        Ok(())
    }

    fn commit_blocks(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Keys around the slots' edges: every dense prefix and a neighbour of one, ids at
    /// 0, small, at and past [`DENSE_IDS`] and at `u64::MAX`, the ten-byte key cut
    /// short or extended by a byte, and short keys that sort between the prefixes.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let prefix = prop_oneof![
            Just(b"a/".to_vec()),
            Just(b"d/".to_vec()),
            Just(b"n/".to_vec()),
            Just(b"t/".to_vec()),
            Just(b"m/".to_vec()),
            Just(b"n0".to_vec()),
        ];
        let id = prop_oneof![
            0u64..4,
            250u64..260,
            Just(DENSE_IDS - 1),
            Just(DENSE_IDS),
            Just(u64::MAX),
        ];
        let shape = prop_oneof![Just(0usize), Just(1), Just(2), Just(3)];
        (prefix, id, shape, any::<u8>()).prop_map(|(prefix, id, shape, byte)| {
            let mut key = prefix;
            key.extend_from_slice(&id.to_be_bytes());
            match shape {
                0 | 1 => {}
                2 => key.truncate(2 + usize::from(byte % 8)),
                _ => key.push(byte % 3),
            }
            key
        })
    }

    /// Scan prefixes: empty, one byte, a whole prefix, and any cut of a key.
    fn prefix() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(Vec::new()),
            Just(b"n".to_vec()),
            Just(b"t/".to_vec()),
            (key(), 0usize..12).prop_map(|(mut key, cut)| {
                key.truncate(cut);
                key
            }),
        ]
    }

    proptest! {
        /// Gets and scans answer as one map of keys in byte order (a `BTreeMap` of the
        /// last write of each key) after any batches of puts and deletes.
        #[test]
        fn answers_as_one_ordered_map(
            batches in proptest::collection::vec(
                proptest::collection::vec((key(), any::<bool>()), 0..12), 1..6),
            prefixes in proptest::collection::vec(prefix(), 1..8),
        ) {
            let store = MemStore::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut seen = Vec::new();
            for (round, writes) in batches.iter().enumerate() {
                let mut batch = Batch::default();
                for (key, put) in writes {
                    seen.push(key.clone());
                    if *put {
                        let value = [key.as_slice(), &[round as u8]].concat();
                        batch.put(key.clone(), value.clone());
                        model.insert(key.clone(), value);
                    } else {
                        batch.delete(key.clone());
                        model.remove(key);
                    }
                }
                store.commit(batch).unwrap();
            }
            for key in &seen {
                prop_assert_eq!(store.get(key).unwrap(), model.get(key).cloned());
            }
            for prefix in &prefixes {
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(prefix))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                prop_assert_eq!(store.scan_prefix(prefix).unwrap(), expected, "prefix {:?}", prefix);
            }
        }
    }

    #[test]
    fn scans_see_exactly_the_keys_under_a_prefix() {
        let store = MemStore::new();
        let mut batch = Batch::default();
        for key in [
            &b"t/"[..],
            b"t/\x00",
            b"t/\x00\x01",
            b"t0",
            b"s/\xff",
            b"t/long key past the inline words",
        ] {
            batch.put(key.to_vec(), key.to_vec());
        }
        store.commit(batch).unwrap();
        let keys: Vec<Vec<u8>> = store
            .scan_prefix(b"t/")
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(k, v);
                k
            })
            .collect();
        let expected: Vec<Vec<u8>> = vec![
            b"t/".to_vec(),
            b"t/\x00".to_vec(),
            b"t/\x00\x01".to_vec(),
            b"t/long key past the inline words".to_vec(),
        ];
        assert_eq!(keys, expected);
        let mut batch = Batch::default();
        batch.delete(b"t/\x00".to_vec());
        store.commit(batch).unwrap();
        assert_eq!(store.get(b"t/\x00").unwrap(), None);
        assert_eq!(
            store.get(b"t/\x00\x01").unwrap(),
            Some(b"t/\x00\x01".to_vec())
        );
    }
}
