//! Where the cluster's records live ([`Records`]: the agent's sled trees, or etcd for a
//! cluster of agents) and the view of them one transaction gets ([`Tx`]). The record
//! files only see [`Tx`] and [`Records`]' reads, so every record works on both
//! backends unchanged.

use std::sync::Arc;

use obrestore_dag::store::DeviceSync;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use super::etcd::{EtcdRecords, EtcdTx};
use crate::cluster::error::{ClusterError, ClusterResult};

/// The trees of the cluster's records (the table in the module docs of
/// [`super`]). A variant's discriminant is its index in [`Tree::ALL`] and in the open
/// sled trees; on etcd a tree is a key prefix ([`EtcdRecords`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::cluster) enum Tree {
    /// `cluster/meta`: the format version, the `seeded` mark and the id counters.
    Meta = 0,
    /// `cluster/zones`: zone name → [`Zone`](crate::cluster::Zone) with the addresses
    /// of its servers.
    Zones,
    /// `cluster/servers`: `ip:port` → [`Server`](crate::cluster::Server) with its
    /// capacity and what units take of it.
    Servers,
    /// `cluster/unit_configs`: name → [`UnitConfig`](crate::cluster::UnitConfig).
    UnitConfigs,
    /// `cluster/pools`: name → [`ResourcePool`](crate::cluster::ResourcePool) with its
    /// units.
    Pools,
    /// `cluster/tenants`: tenant id → [`Tenant`](crate::cluster::Tenant).
    Tenants,
    /// `cluster/tenant_names`: tenant name (or recycle-bin object name) → tenant id.
    TenantNames,
    /// `cluster/restore_jobs`: job id → unfinished
    /// [`RestoreJob`](crate::cluster::RestoreJob).
    RestoreJobs,
    /// `cluster/restore_active`: tenant name → id of its unfinished restore job.
    ActiveRestoreJobs,
    /// `cluster/restore_history`: job id → finished
    /// [`RestoreJob`](crate::cluster::RestoreJob).
    RestoreHistory,
}

impl Tree {
    /// Every tree, in discriminant order.
    pub(super) const ALL: [Tree; 10] = [
        Tree::Meta,
        Tree::Zones,
        Tree::Servers,
        Tree::UnitConfigs,
        Tree::Pools,
        Tree::Tenants,
        Tree::TenantNames,
        Tree::RestoreJobs,
        Tree::ActiveRestoreJobs,
        Tree::RestoreHistory,
    ];

    /// The sled tree name (on etcd, the middle of the key).
    pub(super) fn name(self) -> &'static str {
        match self {
            Tree::Meta => "cluster/meta",
            Tree::Zones => "cluster/zones",
            Tree::Servers => "cluster/servers",
            Tree::UnitConfigs => "cluster/unit_configs",
            Tree::Pools => "cluster/pools",
            Tree::Tenants => "cluster/tenants",
            Tree::TenantNames => "cluster/tenant_names",
            Tree::RestoreJobs => "cluster/restore_jobs",
            Tree::ActiveRestoreJobs => "cluster/restore_active",
            Tree::RestoreHistory => "cluster/restore_history",
        }
    }
}

type Abort = ConflictableTransactionError<ClusterError>;
/// The result of work inside a transaction: an `Err` aborts (or retries) it.
pub(in crate::cluster) type TxResult<R> = Result<R, Abort>;

/// Aborts the transaction with `error`.
pub(in crate::cluster) fn abort<R>(error: ClusterError) -> TxResult<R> {
    Err(ConflictableTransactionError::Abort(error))
}

/// A record of `tree` that cannot be what it should be.
pub(in crate::cluster) fn corrupt(tree: Tree, reason: impl Into<String>) -> ClusterError {
    ClusterError::Corrupt {
        tree: tree.name().to_string(),
        reason: reason.into(),
    }
}

pub(super) fn decode<V: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> ClusterResult<V> {
    serde_json::from_slice(bytes).map_err(|err| corrupt(tree, err.to_string()))
}

fn encode<V: Serialize>(tree: Tree, value: &V) -> ClusterResult<Vec<u8>> {
    // The records are plain structs of strings, numbers and maps with string/integer
    // keys, so this does not fail in practice; if it ever did, nothing is written.
    serde_json::to_vec(value).map_err(|err| corrupt(tree, format!("cannot encode record: {err}")))
}

pub(super) fn decode_u64(tree: Tree, bytes: &[u8]) -> ClusterResult<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(tree, format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// The record backend of a [`super::SledCluster`].
pub(super) enum Records {
    /// The cluster's trees in the agent's sled database (indexed by [`Tree`]); a
    /// transaction is sled's multi-tree transaction, then the device sync.
    Sled {
        trees: Vec<sled::Tree>,
        device: Arc<DeviceSync>,
        db: sled::Db,
    },
    /// The cluster's records in etcd, shared by the agents of one cluster.
    Etcd(EtcdRecords),
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Records::Sled { .. } => f.write_str("Records::Sled"),
            Records::Etcd(etcd) => write!(f, "Records::Etcd({etcd:?})"),
        }
    }
}

impl Records {
    /// Opens the cluster's trees in `db`.
    pub(super) fn sled(db: &sled::Db) -> ClusterResult<Records> {
        let trees = Tree::ALL
            .iter()
            .map(|tree| db.open_tree(tree.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Records::Sled {
            trees,
            device: DeviceSync::of(db)?,
            db: db.clone(),
        })
    }

    /// The raw value of `tree` under `key`, outside a transaction.
    pub(super) fn get(&self, tree: Tree, key: &[u8]) -> ClusterResult<Option<Vec<u8>>> {
        match self {
            Records::Sled { trees, .. } => {
                Ok(trees[tree as usize].get(key)?.map(|value| value.to_vec()))
            }
            Records::Etcd(etcd) => etcd.get(tree, key),
        }
    }

    /// Every `(key, value)` of `tree`, in key order, outside a transaction.
    pub(super) fn scan(&self, tree: Tree) -> ClusterResult<Vec<(Vec<u8>, Vec<u8>)>> {
        match self {
            Records::Sled { trees, .. } => trees[tree as usize]
                .iter()
                .map(|entry| {
                    let (key, value) = entry?;
                    Ok((key.to_vec(), value.to_vec()))
                })
                .collect(),
            Records::Etcd(etcd) => etcd.scan(tree),
        }
    }

    /// Runs `f` as one transaction over all trees and makes it durable before it
    /// returns: sled's transaction then the device sync, or one etcd transaction.
    /// Conflicts re-run `f`.
    pub(super) fn transact<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> ClusterResult<R> {
        match self {
            Records::Sled { trees, device, db } => {
                let trees: Vec<&sled::Tree> = trees.iter().collect();
                let result = trees[..].transaction(|view: &Vec<TransactionalTree>| {
                    f(&Tx {
                        view: View::Sled(view),
                    })
                });
                let value = transaction_result(result)?;
                device.flush(db)?;
                Ok(value)
            }
            Records::Etcd(etcd) => etcd.transact(|tx| {
                f(&Tx {
                    view: View::Etcd(tx),
                })
            }),
        }
    }

    /// Runs `f` as [`Records::transact`] would, every check included, but commits
    /// nothing: returns what `f` would have committed.
    pub(super) fn preview<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> ClusterResult<R> {
        match self {
            Records::Sled { trees, .. } => {
                let trees: Vec<&sled::Tree> = trees.iter().collect();
                let previewed = std::cell::RefCell::new(None);
                let result: Result<(), TransactionError<ClusterError>> =
                    trees[..].transaction(|view: &Vec<TransactionalTree>| {
                        // A conflict retries the closure: only the last attempt's value
                        // counts.
                        *previewed.borrow_mut() = None;
                        let value = f(&Tx {
                            view: View::Sled(view),
                        })?;
                        *previewed.borrow_mut() = Some(value);
                        // Any abort undoes the writes; `previewed` tells it from a
                        // refusal.
                        abort(ClusterError::TenantNameEmpty)
                    });
                match (previewed.into_inner(), result) {
                    (Some(value), Err(TransactionError::Abort(_))) => Ok(value),
                    (_, Err(TransactionError::Abort(err))) => Err(err),
                    (_, Err(TransactionError::Storage(err))) => Err(err.into()),
                    (_, Ok(())) => Err(corrupt(Tree::Meta, "a preview committed")),
                }
            }
            Records::Etcd(etcd) => etcd.preview(|tx| {
                f(&Tx {
                    view: View::Etcd(tx),
                })
            }),
        }
    }
}

/// The value of a finished sled transaction, or its error.
fn transaction_result<R>(result: Result<R, TransactionError<ClusterError>>) -> ClusterResult<R> {
    match result {
        Ok(value) => Ok(value),
        Err(TransactionError::Abort(err)) => Err(err),
        Err(TransactionError::Storage(err)) => Err(err.into()),
    }
}

/// The backend side of a [`Tx`].
enum View<'a> {
    Sled(&'a [TransactionalTree]),
    Etcd(&'a EtcdTx<'a>),
}

/// A view of all non-row trees inside one transaction. The record files add typed
/// helpers for their records (`tenant_by_id`, `running_job`, ...).
pub(in crate::cluster) struct Tx<'a> {
    view: View<'a>,
}

impl Tx<'_> {
    fn get_bytes(&self, tree: Tree, key: &[u8]) -> TxResult<Option<Vec<u8>>> {
        match &self.view {
            View::Sled(trees) => Ok(trees[tree as usize].get(key)?.map(|value| value.to_vec())),
            View::Etcd(tx) => tx.get(tree, key),
        }
    }

    fn put_bytes(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> TxResult<()> {
        match &self.view {
            View::Sled(trees) => {
                trees[tree as usize].insert(key, value)?;
            }
            View::Etcd(tx) => tx.put(tree, key, value),
        }
        Ok(())
    }

    /// Whether `tree` has a record under `key`.
    pub(in crate::cluster) fn contains(&self, tree: Tree, key: &[u8]) -> TxResult<bool> {
        Ok(self.get_bytes(tree, key)?.is_some())
    }

    pub(in crate::cluster) fn get<V: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> TxResult<Option<V>> {
        match self.get_bytes(tree, key)? {
            None => Ok(None),
            Some(bytes) => match decode(tree, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(in crate::cluster) fn get_u64(&self, tree: Tree, key: &[u8]) -> TxResult<Option<u64>> {
        match self.get_bytes(tree, key)? {
            None => Ok(None),
            Some(bytes) => match decode_u64(tree, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(in crate::cluster) fn put<V: Serialize>(
        &self,
        tree: Tree,
        key: &[u8],
        value: &V,
    ) -> TxResult<()> {
        match encode(tree, value) {
            Ok(bytes) => self.put_bytes(tree, key, bytes),
            Err(err) => abort(err),
        }
    }

    pub(in crate::cluster) fn put_u64(&self, tree: Tree, key: &[u8], value: u64) -> TxResult<()> {
        self.put_bytes(tree, key, value.to_be_bytes().to_vec())
    }

    pub(in crate::cluster) fn remove(&self, tree: Tree, key: &[u8]) -> TxResult<()> {
        match &self.view {
            View::Sled(trees) => {
                trees[tree as usize].remove(key)?;
            }
            View::Etcd(tx) => tx.remove(tree, key),
        }
        Ok(())
    }

    /// Next value of counter `name`: `first`, then `first + step`, ...
    pub(in crate::cluster) fn next_id(&self, name: &str, first: u64, step: u64) -> TxResult<u64> {
        let key = format!("next_{name}");
        let id = self.get_u64(Tree::Meta, key.as_bytes())?.unwrap_or(first);
        self.put_u64(Tree::Meta, key.as_bytes(), id + step)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    #[test]
    fn tree_discriminants_are_their_index_and_names_are_unique() {
        for (index, tree) in Tree::ALL.iter().enumerate() {
            assert_eq!(*tree as usize, index, "{tree:?}");
            assert!(tree.name().starts_with("cluster/"));
        }
        let mut names: Vec<&str> = Tree::ALL.iter().map(|tree| tree.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Tree::ALL.len());
    }
}
