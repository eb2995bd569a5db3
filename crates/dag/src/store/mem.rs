//! The in-memory store ([`MemStore`]): for tests and benchmarks; nothing survives the
//! process. It keeps records typed, as the engine hands them over: nothing is encoded
//! unless a caller asks for bytes ([`KvStore::get`], [`KvStore::scan_prefix`]).
//!
//! Its keys are held inline ([`MemKey`]): the engine's keys are a two-byte prefix and one
//! or two big-endian ids, so comparing two of them is comparing a few machine words, not
//! a `memcmp` through two heap pointers, and the map holds no key allocation.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Batch, KvStore, Pairs, StoreError, Stored};

/// Bytes of a key held in its words; the rest, if any, is in `tail`.
const INLINE: usize = 24;

/// A key of the in-memory store, ordered as its bytes are (lexicographically).
///
/// The first [`INLINE`] bytes are three big-endian words, zero-padded; longer keys keep
/// their remaining bytes in `tail`. Ordering by `(words, tail, len)` is the bytes' order:
/// words that differ differ in the first differing byte (padding compares as a zero
/// byte, and a shorter key that is a prefix then compares below, through `tail`, which
/// is empty for it, or through `len`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MemKey {
    words: [u64; 3],
    tail: Option<Box<[u8]>>,
    len: usize,
}

impl MemKey {
    fn new(bytes: &[u8]) -> MemKey {
        let mut padded = [0u8; INLINE];
        let head = bytes.len().min(INLINE);
        padded[..head].copy_from_slice(&bytes[..head]);
        let word = |index: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&padded[index * 8..index * 8 + 8]);
            u64::from_be_bytes(word)
        };
        MemKey {
            words: [word(0), word(1), word(2)],
            tail: (bytes.len() > INLINE).then(|| bytes[INLINE..].into()),
            len: bytes.len(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len);
        for word in self.words {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.truncate(self.len.min(INLINE));
        if let Some(tail) = &self.tail {
            bytes.extend_from_slice(tail);
        }
        bytes
    }

    /// Whether the key's bytes start with `prefix`, without building them (a scan asks
    /// it of every key it passes).
    fn starts_with(&self, prefix: &[u8]) -> bool {
        if self.len < prefix.len() {
            return false;
        }
        let head = prefix.len().min(INLINE);
        let words = self.words.map(u64::to_be_bytes);
        words.as_flattened()[..head] == prefix[..head]
            && (prefix.len() <= INLINE
                || self
                    .tail
                    .as_deref()
                    .is_some_and(|tail| tail.starts_with(&prefix[INLINE..])))
    }
}

/// The in-memory store; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    map: Arc<RwLock<BTreeMap<MemKey, Stored>>>,
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
        Ok(map.get(&MemKey::new(key)).cloned())
    }

    fn scan_stored(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
        let map = self
            .map
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(map
            .range(MemKey::new(prefix)..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.to_bytes(), value.clone()))
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self
            .map
            .write()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        for (key, value) in batch.writes {
            let key = MemKey::new(&key);
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
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Keys order, round-trip and match prefixes exactly as their bytes do, short
        /// or long, with zero bytes where the padding is.
        #[test]
        fn keys_order_as_their_bytes(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..40),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..40),
        ) {
            let (ka, kb) = (MemKey::new(&a), MemKey::new(&b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka.to_bytes(), a.clone());
            prop_assert_eq!(ka.starts_with(&b), a.starts_with(&b));
        }
    }

    #[test]
    fn a_key_and_its_zero_extension_are_distinct_and_ordered() {
        for len in [0usize, 7, 8, 23, 24, 25] {
            let short = vec![7u8; len];
            let mut long = short.clone();
            long.push(0);
            assert_eq!(MemKey::new(&short).cmp(&MemKey::new(&long)), Ordering::Less);
            assert_ne!(MemKey::new(&short), MemKey::new(&long));
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
