//! A store key held inline ([`Key`]): the engine's keys are a two-byte prefix and one or
//! two big-endian ids, so comparing two of them is comparing a few machine words, not a
//! `memcmp` through two heap pointers, and a map of them holds no key allocation. Both
//! a [`super::Batch`] and the in-memory store are keyed by it.

/// Bytes of a key held in its words; the rest, if any, is in `tail`.
const INLINE: usize = 24;

/// A key, ordered as its bytes are (lexicographically).
///
/// The first [`INLINE`] bytes are three big-endian words, zero-padded; longer keys keep
/// their remaining bytes in `tail`. Ordering by `(words, tail, len)` is the bytes' order:
/// words that differ differ in the first differing byte (padding compares as a zero
/// byte, and a shorter key that is a prefix then compares below, through `tail`, which
/// is empty for it, or through `len`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    words: [u64; 3],
    tail: Option<Box<[u8]>>,
    len: usize,
}

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        let mut padded = [0u8; INLINE];
        let head = bytes.len().min(INLINE);
        padded[..head].copy_from_slice(&bytes[..head]);
        let word = |index: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&padded[index * 8..index * 8 + 8]);
            u64::from_be_bytes(word)
        };
        Key {
            words: [word(0), word(1), word(2)],
            tail: (bytes.len() > INLINE).then(|| bytes[INLINE..].into()),
            len: bytes.len(),
        }
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
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

    /// The key's bytes if it is exactly ten bytes long (a prefix of two and an id of
    /// eight: the engine's record keys), read from its words.
    pub fn inline_ten(&self) -> Option<[u8; 10]> {
        if self.len != 10 {
            return None;
        }
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.words[0].to_be_bytes());
        bytes[8..].copy_from_slice(&self.words[1].to_be_bytes()[..2]);
        Some(bytes)
    }

    /// Whether the key's bytes start with `prefix`, without building them (a scan asks
    /// it of every key it passes).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
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

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        Key::new(bytes)
    }
}

impl From<Vec<u8>> for Key {
    fn from(bytes: Vec<u8>) -> Key {
        Key::new(&bytes)
    }
}

impl PartialEq<[u8]> for Key {
    fn eq(&self, bytes: &[u8]) -> bool {
        self.len == bytes.len() && self.starts_with(bytes)
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
            let (ka, kb) = (Key::new(&a), Key::new(&b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka.to_bytes(), a.clone());
            prop_assert_eq!(ka.starts_with(&b), a.starts_with(&b));
            prop_assert_eq!(ka == *b.as_slice(), a == b);
        }
    }

    #[test]
    fn a_key_and_its_zero_extension_are_distinct_and_ordered() {
        for len in [0usize, 7, 8, 23, 24, 25] {
            let short = vec![7u8; len];
            let mut long = short.clone();
            long.push(0);
            assert_eq!(Key::new(&short).cmp(&Key::new(&long)), Ordering::Less);
            assert_ne!(Key::new(&short), Key::new(&long));
        }
    }

    /// A seal's keys, built on the stack, are exactly the bytes the readers look up.
    #[test]
    fn the_engine_keys_built_inline_are_their_bytes() {
        use crate::record::keys;
        for id in [0u64, 1, 255, 256, 1 << 40, u64::MAX] {
            assert_eq!(keys::dag_key(id).to_bytes(), keys::dag(id));
            assert_eq!(keys::active_key(id).to_bytes(), keys::active(id));
            assert_eq!(keys::node_key(id).to_bytes(), keys::node(id));
            assert_eq!(keys::task_key(id).to_bytes(), keys::task(id));
            assert_eq!(keys::task_key(id), Key::from(keys::task(id)));
        }
    }
}
