//! [`EtcdStore`]: the engine's [`KvStore`] on etcd, fenced by the maintainer's claim,
//! and the etcd setup it needs.
//!
//! # Layout
//! Every record of cluster `C` lives under `/obrestore/C/dag/` followed by the key the
//! engine uses (`crates/dag/src/record/keys.rs`); the maintainer key is
//! `/obrestore/C/maintainer` (`election.rs`).
//!
//! # One commit, one transaction
//! [`KvStore::commit`] is one etcd transaction: `if create_revision(maintainer key) ==
//! fence then <every write of the batch>`. etcd applies it whole or not at all, and
//! answers only once a quorum has it in its fsynced log, so the engine's "durable
//! before observable" holds as on sled. A deposed maintainer's commit fails the
//! compare and writes nothing ([`StoreError::Fenced`]); the engine is then poisoned and
//! stops deciding at once (`crates/dag/src/engine/committer.rs`).
//!
//! # Batches larger than etcd's limits
//! etcd refuses a transaction with more than `--max-txn-ops` operations (default 128)
//! or a request over `--max-request-bytes` (default 1.5 MiB). Splitting a batch over
//! several transactions would break atomicity (a crash between them leaves half a
//! transition), and laying records out so that a transition is always a handful of
//! keys would change the record model every other store shares. So the documented
//! setup raises both limits ([`SETUP_MAX_TXN_OPS`], [`SETUP_MAX_REQUEST_BYTES`]: etcd
//! flags `--max-txn-ops 8192 --max-request-bytes 16777216`), and the store states its
//! limit ([`KvStore::max_batch_writes`]): the committer never merges batches past it,
//! the actor stops draining messages at half of it, and a DAG whose creation or whose
//! widest static fan-out would exceed it is refused at submit, before anything of it
//! exists. A batch over the limit that still reaches the store (a dynamic fan-out
//! wider than the limit) fails with [`StoreError::BatchTooLarge`] and writes nothing.

use obrestore_dag::store::{Batch, KvStore, Pairs, StoreError};

use crate::client::{retry_transient, show_key, Etcd, EtcdError, Fence, Op};

/// `--max-txn-ops` of the documented setup.
pub const SETUP_MAX_TXN_OPS: usize = 8192;
/// `--max-request-bytes` of the documented setup (16 MiB).
pub const SETUP_MAX_REQUEST_BYTES: usize = 16 << 20;
/// Room in a request for the compare and the gRPC framing of each operation.
const REQUEST_MARGIN_BYTES: usize = 64 << 10;
const OP_OVERHEAD_BYTES: usize = 16;

/// The key prefix of cluster `cluster`'s engine records.
pub fn dag_prefix(cluster: &str) -> Vec<u8> {
    format!("/obrestore/{cluster}/dag/").into_bytes()
}

/// A cluster name: non-empty, letters, digits, `-`, `_`, `.` (it is part of keys).
///
/// # Errors
/// [`StoreError::Backend`] naming what is wrong.
pub fn check_cluster_name(cluster: &str) -> Result<(), StoreError> {
    let ok = !cluster.is_empty()
        && cluster.len() <= 64
        && cluster
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend {
            store: "etcd",
            message: format!(
                "cluster name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
                cluster
            ),
        })
    }
}

/// Runs `request` with the crate's retry policy ([`retry_transient`]). Safe for
/// commits too: the committer commits one batch at a time, so a commit retried is the
/// same puts and deletes of the same values under the same fence; applied twice, it
/// leaves what applying it once leaves.
fn retrying<T>(request: impl FnMut() -> Result<T, EtcdError>) -> Result<T, StoreError> {
    retry_transient(request).map_err(backend)
}

fn backend(err: EtcdError) -> StoreError {
    StoreError::Backend {
        store: "etcd",
        message: err.to_string(),
    }
}

/// The engine's records of one cluster in etcd.
#[derive(Debug, Clone)]
pub struct EtcdStore {
    etcd: Etcd,
    prefix: Vec<u8>,
    /// `None`: a reader (an agent that is not the maintainer); it never writes.
    fence: Option<Fence>,
    max_ops: usize,
    max_bytes: usize,
}

impl EtcdStore {
    /// The maintainer's store of `cluster`: every commit is guarded by `fence`.
    ///
    /// # Errors
    /// A cluster name that cannot be part of a key.
    pub fn new(etcd: Etcd, cluster: &str, fence: Fence) -> Result<EtcdStore, StoreError> {
        let mut store = EtcdStore::read_only(etcd, cluster)?;
        store.fence = Some(fence);
        Ok(store)
    }

    /// A reader of `cluster`'s records (an agent that is not the maintainer): every
    /// commit is refused as [`StoreError::Fenced`].
    ///
    /// # Errors
    /// A cluster name that cannot be part of a key.
    pub fn read_only(etcd: Etcd, cluster: &str) -> Result<EtcdStore, StoreError> {
        check_cluster_name(cluster)?;
        Ok(EtcdStore {
            etcd,
            prefix: dag_prefix(cluster),
            fence: None,
            max_ops: SETUP_MAX_TXN_OPS,
            max_bytes: SETUP_MAX_REQUEST_BYTES,
        })
    }

    /// The etcd limits this store commits within, when etcd runs with other values
    /// than the documented setup's.
    pub fn with_limits(mut self, max_txn_ops: usize, max_request_bytes: usize) -> EtcdStore {
        self.max_ops = max_txn_ops.max(1);
        self.max_bytes = max_request_bytes;
        self
    }

    fn full_key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key);
        full
    }
}

impl KvStore for EtcdStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.full_key(key);
        let found = retrying(|| self.etcd.get(&key))?;
        Ok(found.map(|kv| kv.value))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let prefix = self.full_key(prefix);
        let found = retrying(|| self.etcd.scan_prefix(&prefix))?;
        // etcd answers only keys of the range asked; a key outside it is skipped, not
        // sliced.
        Ok(found
            .into_iter()
            .filter_map(|kv| {
                let key = kv.key.strip_prefix(self.prefix.as_slice())?.to_vec();
                Some((key, kv.value))
            })
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let Some(fence) = &self.fence else {
            return Err(StoreError::Fenced(format!(
                "the etcd store of {} is read-only (this agent is not the maintainer)",
                show_key(&self.prefix)
            )));
        };
        let writes = batch.writes.len();
        if writes > self.max_ops {
            return Err(StoreError::BatchTooLarge {
                writes,
                limit: self.max_ops,
            });
        }
        let mut bytes = 0;
        let ops: Vec<Op> = batch
            .into_encoded()
            .map(|(key, value)| {
                let key = self.full_key(&key);
                bytes += key.len() + value.as_ref().map_or(0, Vec::len) + OP_OVERHEAD_BYTES;
                match value {
                    Some(value) => Op::Put(key, value),
                    None => Op::Delete(key),
                }
            })
            .collect();
        let budget = self.max_bytes.saturating_sub(REQUEST_MARGIN_BYTES);
        if bytes > budget {
            return Err(StoreError::Backend {
                store: "etcd",
                message: format!(
                    "batch of {bytes} bytes over the {budget} bytes one transaction may carry \
                     (--max-request-bytes {})",
                    self.max_bytes
                ),
            });
        }
        if retrying(|| self.etcd.txn(vec![fence.compare()], ops.clone()))? {
            Ok(())
        } else {
            Err(StoreError::Fenced(format!(
                "maintainer key {} no longer holds the claim created at revision {} \
                 (lease lost or another maintainer elected)",
                show_key(fence.key()),
                fence.create_revision()
            )))
        }
    }

    fn commit_blocks(&self) -> bool {
        true
    }

    fn max_batch_writes(&self) -> Option<usize> {
        Some(self.max_ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_that_would_change_the_key_layout_are_refused() {
        for good in ["c1", "prod-east_2.a"] {
            assert!(check_cluster_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(check_cluster_name(bad).is_err(), "{bad}");
        }
        assert_eq!(dag_prefix("c1"), b"/obrestore/c1/dag/".to_vec());
    }
}
