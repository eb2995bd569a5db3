//! The in-memory store ([`MemStore`]): for tests and benchmarks; nothing survives the
//! process. It keeps records typed, as the engine hands them over: nothing is encoded
//! unless a caller asks for bytes ([`KvStore::get`], [`KvStore::scan_prefix`]).
//!
//! It is keyed by the batches' own inline keys ([`Key`]): a commit moves them in as they
//! are.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Batch, Key, KvStore, Pairs, StoreError, Stored};

/// The in-memory store; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    map: Arc<RwLock<BTreeMap<Key, Stored>>>,
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
        let map = self
            .map
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(map.get(&Key::new(key)).cloned())
    }

    fn scan_stored(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
        let map = self
            .map
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(map
            .range(Key::new(prefix)..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.to_bytes(), value.clone()))
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self
            .map
            .write()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        // As pushed: a later write of a key replaces an earlier one here too.
        for (key, value) in batch.writes.into_pushed() {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn commit_blocks(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
