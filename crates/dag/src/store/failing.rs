//! [`FailingStore`]: a [`KvStore`] test double that fails chosen commits with an I/O
//! error, as a full or broken disk would, to test what the engine does and tells its
//! callers then. Compiled for this crate's own tests and with the `failpoints` feature
//! only, as sled's failpoints are.
//!
//! Invariant: a failing commit applies nothing of its batch (the store keeps the state
//! after the last successful commit), which is one of the two outcomes
//! [`KvStore::commit`] allows on failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Batch, KvStore, Pairs, StoreError, Stored};

/// Which commits fail, by their number since the store was created (the first is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FailingRange {
    first: u64,
    last: u64,
}

/// A store that passes reads through and fails the commits it is told to fail.
pub struct FailingStore {
    inner: Arc<dyn KvStore>,
    blocks: bool,
    failing: Mutex<Option<FailingRange>>,
    commits: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for FailingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailingStore")
            .field("blocks", &self.blocks)
            .field("commits", &self.commits())
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl FailingStore {
    /// Passes everything through to `inner` until told to fail; its commits block when
    /// `inner`'s do.
    pub fn new(inner: Arc<dyn KvStore>) -> FailingStore {
        let blocks = inner.commit_blocks();
        FailingStore::with_blocking(inner, blocks)
    }

    /// Like [`FailingStore::new`], but its commits count as blocking, so that the
    /// engine commits from its own committer task (pipelined), whatever `inner` is.
    pub fn blocking(inner: Arc<dyn KvStore>) -> FailingStore {
        FailingStore::with_blocking(inner, true)
    }

    fn with_blocking(inner: Arc<dyn KvStore>, blocks: bool) -> FailingStore {
        FailingStore {
            inner,
            blocks,
            failing: Mutex::new(None),
            commits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The `n`-th commit from now fails (1: the next one), and only that one.
    pub fn fail_commit(&self, n: u64) {
        let first = self.commits() + n.max(1);
        self.set_failing(Some(FailingRange { first, last: first }));
    }

    /// The `n`-th commit from now (1: the next one) and every later one fail.
    pub fn fail_commits_from(&self, n: u64) {
        let first = self.commits() + n.max(1);
        self.set_failing(Some(FailingRange {
            first,
            last: u64::MAX,
        }));
    }

    /// No commit fails any more.
    pub fn heal(&self) {
        self.set_failing(None);
    }

    /// Commits attempted so far, failed ones included.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Commits that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The store underneath: what is durable, to reopen an engine on.
    pub fn inner(&self) -> Arc<dyn KvStore> {
        Arc::clone(&self.inner)
    }

    fn set_failing(&self, range: Option<FailingRange>) {
        if let Ok(mut failing) = self.failing.lock() {
            *failing = range;
        }
    }

    fn fails(&self, commit: u64) -> bool {
        self.failing
            .lock()
            .ok()
            .and_then(|failing| *failing)
            .is_some_and(|range| (range.first..=range.last).contains(&commit))
    }
}

impl KvStore for FailingStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn get_stored(&self, key: &[u8]) -> Result<Option<Stored>, StoreError> {
        self.inner.get_stored(key)
    }

    fn scan_stored(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
        self.inner.scan_stored(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let commit = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fails(commit) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            let error = std::io::Error::other(format!("failpoint: commit {commit} fails"));
            return Err(StoreError::Sled(sled::Error::Io(error)));
        }
        self.inner.commit(batch)
    }

    fn commit_blocks(&self) -> bool {
        self.blocks
    }

    fn max_batch_writes(&self) -> Option<usize> {
        self.inner.max_batch_writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn put(store: &FailingStore, key: &str) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(key.as_bytes().to_vec(), b"v".to_vec());
        store.commit(batch)
    }

    #[test]
    fn the_chosen_commit_fails_and_applies_nothing() {
        let store = FailingStore::new(Arc::new(MemStore::new()));
        store.fail_commit(2);
        assert!(put(&store, "a").is_ok());
        let err = put(&store, "b").unwrap_err();
        assert_eq!(err.to_string(), "sled: IO error: failpoint: commit 2 fails");
        assert!(put(&store, "c").is_ok());
        assert_eq!((store.commits(), store.failures()), (3, 1));
        assert!(store.get(b"b").unwrap().is_none());
        assert!(store.get(b"c").unwrap().is_some());
    }

    #[test]
    fn failing_from_a_commit_on_fails_every_later_one_until_healed() {
        let store = FailingStore::blocking(Arc::new(MemStore::new()));
        assert!(store.commit_blocks());
        store.fail_commits_from(1);
        assert!(put(&store, "a").is_err());
        assert!(put(&store, "b").is_err());
        store.heal();
        assert!(put(&store, "c").is_ok());
        assert_eq!(store.inner().scan_prefix(b"").unwrap().len(), 1);
    }
}
