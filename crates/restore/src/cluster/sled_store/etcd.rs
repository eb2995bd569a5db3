//! The cluster's records in etcd, shared by the agents of one cluster: a record of
//! tree `cluster/<t>` under key `k` is the etcd key `/obrestore/<cluster>/cluster/<t>/<k>`
//! (keys and values as on sled, so the key order of a scan is the same).
//!
//! **Transactions are optimistic.** The closure runs against an [`EtcdTx`]: a read goes
//! to etcd and remembers the key's `mod_revision` (or that it was absent), a write is
//! buffered (and read back by later reads of the same closure). The commit is one etcd
//! transaction: a compare per key read (still at that revision, or still absent), the
//! maintainer's fence compare if the handle has a [`Fence`], and the buffered writes.
//! If a compare fails the closure runs again on fresh reads, as sled re-runs a
//! conflicting transaction; if the fence is what failed, the commit is
//! [`ClusterError::FenceLost`] at once and nothing is written. A closure that reads
//! and writes nothing commits nothing; one that only reads still commits its compares,
//! so what it returns was true at one revision. A preview runs the closure the same
//! way and validates its reads but writes nothing.
//!
//! A transaction's compares and writes count against etcd's `--max-txn-ops` (default
//! 128; the documented setup raises it): the largest cluster transaction is seeding,
//! about three keys per zone and server; etcd refuses a larger one and the commit
//! fails with [`ClusterError::Etcd`], writing nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;

use obrestore_etcd::{retry_transient, Compare, Etcd, Fence, Op};
use sled::transaction::ConflictableTransactionError;

use super::records::{Tree, TxResult};
use crate::cluster::error::{ClusterError, ClusterResult};

/// Commits tried before a transaction that keeps conflicting fails with
/// [`ClusterError::TooManyConflicts`]. One maintainer writes at a time, so conflicts
/// are rare; the bound only stops a livelock.
const MAX_ATTEMPTS: u32 = 64;

/// The etcd record backend of one cluster.
pub(in crate::cluster) struct EtcdRecords {
    etcd: Etcd,
    /// `/obrestore/<cluster>/`.
    prefix: Vec<u8>,
    fence: Option<Fence>,
    /// A reader (an agent that is not the maintainer): every write fails with
    /// [`ClusterError::ReadOnly`].
    read_only: bool,
}

impl std::fmt::Debug for EtcdRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRecords")
            .field("etcd", &self.etcd)
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("fenced", &self.fence.is_some())
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Refuses a cluster name that is empty, has `/`, or has characters other than
/// ASCII letters, digits, `-`, `_` and `.` (it becomes part of every key).
fn check_cluster_name(name: &str) -> ClusterResult<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 128 {
        "it is longer than 128 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "only ASCII letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(ClusterError::InvalidClusterName {
        name: name.to_string(),
        reason: reason.to_string(),
    })
}

impl EtcdRecords {
    pub(super) fn new(etcd: Etcd, cluster: &str, fence: Option<Fence>) -> ClusterResult<Self> {
        check_cluster_name(cluster)?;
        Ok(EtcdRecords {
            etcd,
            prefix: format!("/obrestore/{cluster}/").into_bytes(),
            fence,
            read_only: false,
        })
    }

    /// A handle that only reads: a transaction with writes, and [`Self::check_fence`]
    /// before a row write, fail with [`ClusterError::ReadOnly`].
    pub(super) fn reader(etcd: Etcd, cluster: &str) -> ClusterResult<Self> {
        let mut records = EtcdRecords::new(etcd, cluster, None)?;
        records.read_only = true;
        Ok(records)
    }

    /// The etcd key prefix of `tree`: `/obrestore/<cluster>/<tree name>/`.
    fn tree_prefix(&self, tree: Tree) -> Vec<u8> {
        let mut prefix = self.prefix.clone();
        prefix.extend_from_slice(tree.name().as_bytes());
        prefix.push(b'/');
        prefix
    }

    /// The etcd key of `key` in `tree`.
    fn key(&self, tree: Tree, key: &[u8]) -> Vec<u8> {
        let mut full = self.tree_prefix(tree);
        full.extend_from_slice(key);
        full
    }

    pub(super) fn get(&self, tree: Tree, key: &[u8]) -> ClusterResult<Option<Vec<u8>>> {
        let key = self.key(tree, key);
        Ok(retry_transient(|| self.etcd.get(&key))?.map(|kv| kv.value))
    }

    /// Every `(key, value)` of `tree` in key order, read at one revision.
    pub(super) fn scan(&self, tree: Tree) -> ClusterResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = self.tree_prefix(tree);
        Ok(retry_transient(|| self.etcd.scan_prefix(&prefix))?
            .into_iter()
            .map(|kv| (kv.key[prefix.len()..].to_vec(), kv.value))
            .collect())
    }

    /// `FenceLost` once this handle's fence no longer holds, `ReadOnly` for a reader;
    /// `Ok` without a fence.
    pub(super) fn check_fence(&self) -> ClusterResult<()> {
        if self.read_only {
            return Err(ClusterError::ReadOnly);
        }
        match &self.fence {
            Some(fence)
                if !retry_transient(|| self.etcd.txn(vec![fence.compare()], Vec::new()))? =>
            {
                Err(ClusterError::FenceLost)
            }
            _ => Ok(()),
        }
    }

    /// Runs `f` and commits its writes in one etcd transaction guarded by its reads and
    /// the fence (module docs); re-runs it when a read changed meanwhile.
    pub(super) fn transact<R>(&self, f: impl Fn(&EtcdTx<'_>) -> TxResult<R>) -> ClusterResult<R> {
        self.run(f, true)
    }

    /// Runs `f` as [`EtcdRecords::transact`] would but writes nothing.
    pub(super) fn preview<R>(&self, f: impl Fn(&EtcdTx<'_>) -> TxResult<R>) -> ClusterResult<R> {
        self.run(f, false)
    }

    fn run<R>(&self, f: impl Fn(&EtcdTx<'_>) -> TxResult<R>, apply: bool) -> ClusterResult<R> {
        for _ in 0..MAX_ATTEMPTS {
            let tx = EtcdTx {
                records: self,
                reads: RefCell::new(BTreeMap::new()),
                writes: RefCell::new(BTreeMap::new()),
            };
            let value = match f(&tx) {
                Ok(value) => value,
                Err(ConflictableTransactionError::Abort(err)) => {
                    // Reads are not one snapshot: a refusal decided on keys that changed
                    // meanwhile (another agent's commit between two reads) is a conflict,
                    // and `f` runs again on what is there now.
                    let (compares, _) = tx.into_txn();
                    if !compares.is_empty()
                        && !retry_transient(|| self.etcd.txn(compares.clone(), Vec::new()))?
                    {
                        continue;
                    }
                    return Err(err);
                }
                Err(ConflictableTransactionError::Storage(err)) => return Err(err.into()),
                Err(ConflictableTransactionError::Conflict) => continue,
            };
            let (mut compares, mut ops) = tx.into_txn();
            if !apply {
                ops.clear();
            } else if let Some(fence) = &self.fence {
                compares.push(fence.compare());
            }
            if compares.is_empty() && ops.is_empty() {
                return Ok(value);
            }
            if self.read_only && !ops.is_empty() {
                return Err(ClusterError::ReadOnly);
            }
            // A repeat after a lost answer fails its compares (the first attempt
            // changed what it read) and re-runs `f` on what is there now.
            if retry_transient(|| self.etcd.txn(compares.clone(), ops.clone()))? {
                return Ok(value);
            }
            if apply {
                self.check_fence()?;
            }
        }
        Err(ClusterError::TooManyConflicts(MAX_ATTEMPTS))
    }
}

/// A key as one attempt read it: its value (`None`: absent) and `mod_revision` (0:
/// absent).
type Read = (Option<Vec<u8>>, i64);

/// One attempt of an etcd transaction: the keys read with their revision, the writes
/// buffered.
pub(in crate::cluster) struct EtcdTx<'a> {
    records: &'a EtcdRecords,
    /// etcd key → value read and its `mod_revision` (0: absent).
    reads: RefCell<BTreeMap<Vec<u8>, Read>>,
    /// etcd key → value to put, or `None` to delete.
    writes: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl EtcdTx<'_> {
    /// The value under `key`: this attempt's own write, else what it read before, else
    /// etcd's (remembered with its revision).
    pub(super) fn get(&self, tree: Tree, key: &[u8]) -> TxResult<Option<Vec<u8>>> {
        let full = self.records.key(tree, key);
        if let Some(written) = self.writes.borrow().get(&full) {
            return Ok(written.clone());
        }
        if let Some((value, _)) = self.reads.borrow().get(&full) {
            return Ok(value.clone());
        }
        let read = retry_transient(|| self.records.etcd.get(&full))
            .map_err(|err| ConflictableTransactionError::Abort(err.into()))?;
        let (value, revision) = match read {
            Some(kv) => (Some(kv.value), kv.mod_revision),
            None => (None, 0),
        };
        self.reads
            .borrow_mut()
            .insert(full, (value.clone(), revision));
        Ok(value)
    }

    pub(super) fn put(&self, tree: Tree, key: &[u8], value: Vec<u8>) {
        let full = self.records.key(tree, key);
        self.writes.borrow_mut().insert(full, Some(value));
    }

    pub(super) fn remove(&self, tree: Tree, key: &[u8]) {
        let full = self.records.key(tree, key);
        self.writes.borrow_mut().insert(full, None);
    }

    /// The compares of the keys read and the buffered writes.
    fn into_txn(self) -> (Vec<Compare>, Vec<Op>) {
        let compares = self
            .reads
            .into_inner()
            .into_iter()
            .map(|(key, (value, revision))| match value {
                Some(_) => Compare::ModRevision(key, revision),
                None => Compare::Absent(key),
            })
            .collect();
        let ops = self
            .writes
            .into_inner()
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Op::Put(key, value),
                None => Op::Delete(key),
            })
            .collect();
        (compares, ops)
    }
}

#[cfg(test)]
#[path = "etcd_tests.rs"]
mod tests;
