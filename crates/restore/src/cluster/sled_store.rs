//! The embedded cluster on sled: [`SledCluster`], its trees, and the transaction every
//! change runs in. One file per kind of record holds the operations on it:
//!
//! | file | records | operations |
//! |---|---|---|
//! | [`seed`] | — | [`ClusterConfig`]: what a new store is seeded with |
//! | [`topology`] | zones, servers | add and list zones and servers |
//! | [`pools`] | unit configs, resource pools | create and drop them; place units on servers |
//! | [`tenants`] | tenants, tenant names | create, drop, recycle, flash back, lock, restore state |
//! | [`rows`] | tenant rows (in [`super::rowstore`]) | apply batches, scan, digest, drop |
//! | [`restore_jobs`] | restore jobs, restore history | start, update, finish, read |
//! | [`tenant_service`] | — | `impl TenantService for SledCluster`, one line per method |
//!
//! Tenant administration (rename, primary zone, replicas, variables, root password)
//! changes tenant and pool records too; it lives in [`super::admin`].
//!
//! On-disk layout (format version 3, recorded under `format_version` in `cluster/meta`;
//! a store of version 2 is upgraded at open, any other version is refused). The records
//! live in the agent's single sled database next to the DAG engine's trees, in trees
//! prefixed `cluster/` ([`Tree`]); tenant rows live in run files in the rows directory
//! (`<data-dir>/obrestore.rows/`, see [`super::rowstore`]):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `cluster/meta` | `format_version`, `seeded`, counters `next_*` | u64 big-endian |
//! | `cluster/zones` | zone name | JSON [`Zone`](super::Zone) |
//! | `cluster/servers` | `ip:port` | JSON [`Server`](super::Server) (capacity, units' share) |
//! | `cluster/unit_configs` | name | JSON [`UnitConfig`] |
//! | `cluster/pools` | name | JSON [`ResourcePool`](super::ResourcePool) with its units |
//! | `cluster/tenants` | tenant id (u64 BE) | JSON [`Tenant`](super::Tenant) |
//! | `cluster/tenant_names` | tenant name | tenant id (u64 BE) |
//! | `cluster/restore_jobs` | job id (u64 BE) | [`RestoreJob`](super::RestoreJob), unfinished |
//! | `cluster/restore_active` | tenant name | job id (u64 BE) |
//! | `cluster/restore_history` | job id (u64 BE) | [`RestoreJob`](super::RestoreJob), finished |
//!
//! Every mutation except row batches is one multi-tree sled transaction
//! ([`SledCluster::transact`]), flushed and synced to the device (`fdatasync`, through
//! the engine's [`DeviceSync`], shared with the engine's commits) before it returns. A
//! row batch is one run file,
//! `fsync`ed and renamed into place before it returns. Tenant ids are never reused, so
//! rows of a dropped tenant can never show up in a new one; at open, the row directories
//! of tenants that no longer exist are removed. Version 1 kept one sled entry per row in
//! `cluster/rows`; it is not migrated.
//!
//! Tenant administration added fields to [`Tenant`](super::Tenant) (mode, charset,
//! collation, comment, read_only, variables, parameters, the root-password verifier and
//! whether it is persisted) without a format change: each has a serde default, so a
//! record written before reads as a MySQL tenant with `utf8mb4`, nothing set and no
//! password.

mod pools;
mod restore_jobs;
mod rows;
mod seed;
mod tenant_service;
mod tenants;
mod topology;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use obrestore_dag::store::DeviceSync;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use super::error::{ClusterError, ClusterResult};
use super::model::UnitConfig;
use super::password::ROOT_PASSWORD_KDF_ITERATIONS;
use super::rowstore::RowStore;
use crate::clock::{Clock, SystemClock};

pub(in crate::cluster) use pools::{create_pool, place_units, release_unit};
pub use seed::{ClusterConfig, ServerSeed, ZoneSeed, DEFAULT_UNIT_CONFIG};

/// The crash point hit right after every durable cluster write (a transaction, a row
/// batch, a tenant's rows dropped), whoever makes it. The restore steps name a point of
/// their own after each of theirs (`executors/failpoint.rs`), as does a cluster
/// operation that writes more than once (`cluster:drop tenant:…`); counting every write
/// lets a test check that no write of a step goes without one.
pub(crate) const CLUSTER_WRITE: &str = "cluster:write";

/// Version of the on-disk format described in the module docs.
pub const CLUSTER_FORMAT_VERSION: u64 = 3;

/// File name of the agent's sled database inside its data directory: `D/obrestore.sled`.
pub const AGENT_DB_FILE: &str = "obrestore.sled";

/// Directory of the agent's tenant rows inside its data directory: `D/obrestore.rows`.
pub const AGENT_ROWS_DIR: &str = "obrestore.rows";

/// The agent's single sled database path for data directory `data_dir`.
pub fn agent_db_path(data_dir: impl AsRef<Path>) -> PathBuf {
    data_dir.as_ref().join(AGENT_DB_FILE)
}

/// The agent's tenant rows directory for data directory `data_dir`.
pub fn agent_rows_path(data_dir: impl AsRef<Path>) -> PathBuf {
    data_dir.as_ref().join(AGENT_ROWS_DIR)
}

/// The sled trees of the cluster's records (the table in the module docs). A variant's
/// discriminant is its index in [`Tree::ALL`] and in [`SledCluster`]'s open trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::cluster) enum Tree {
    /// `cluster/meta`: the format version, the `seeded` mark and the id counters.
    Meta = 0,
    /// `cluster/zones`: zone name → [`Zone`](super::Zone) with the addresses of its servers.
    Zones,
    /// `cluster/servers`: `ip:port` → [`Server`](super::Server) with its capacity and
    /// what units take of it.
    Servers,
    /// `cluster/unit_configs`: name → [`UnitConfig`].
    UnitConfigs,
    /// `cluster/pools`: name → [`ResourcePool`](super::ResourcePool) with its units.
    Pools,
    /// `cluster/tenants`: tenant id → [`Tenant`](super::Tenant).
    Tenants,
    /// `cluster/tenant_names`: tenant name (or recycle-bin object name) → tenant id.
    TenantNames,
    /// `cluster/restore_jobs`: job id → unfinished [`RestoreJob`](super::RestoreJob).
    RestoreJobs,
    /// `cluster/restore_active`: tenant name → id of its unfinished restore job.
    ActiveRestoreJobs,
    /// `cluster/restore_history`: job id → finished [`RestoreJob`](super::RestoreJob).
    RestoreHistory,
}

impl Tree {
    /// Every tree, in discriminant order.
    const ALL: [Tree; 10] = [
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

    /// The sled tree name.
    fn name(self) -> &'static str {
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

/// Whether an administration write is made or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cluster) enum Write {
    Apply,
    Preview,
}

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

fn decode<V: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> ClusterResult<V> {
    serde_json::from_slice(bytes).map_err(|err| corrupt(tree, err.to_string()))
}

fn encode<V: Serialize>(tree: Tree, value: &V) -> ClusterResult<Vec<u8>> {
    // The records are plain structs of strings, numbers and maps with string/integer
    // keys, so this does not fail in practice; if it ever did, nothing is written.
    serde_json::to_vec(value).map_err(|err| corrupt(tree, format!("cannot encode record: {err}")))
}

fn decode_u64(tree: Tree, bytes: &[u8]) -> ClusterResult<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(tree, format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// A view of all non-row trees inside one transaction. The record files add typed
/// helpers for their records (`tenant_by_id`, `running_job`, ...).
pub(in crate::cluster) struct Tx<'a> {
    trees: &'a [TransactionalTree],
}

impl Tx<'_> {
    pub(in crate::cluster) fn tree(&self, tree: Tree) -> &TransactionalTree {
        &self.trees[tree as usize]
    }

    pub(in crate::cluster) fn get<V: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> TxResult<Option<V>> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => match decode(tree, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(in crate::cluster) fn get_u64(&self, tree: Tree, key: &[u8]) -> TxResult<Option<u64>> {
        match self.tree(tree).get(key)? {
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
        let bytes = match encode(tree, value) {
            Ok(bytes) => bytes,
            Err(err) => return abort(err),
        };
        self.tree(tree).insert(key, bytes)?;
        Ok(())
    }

    pub(in crate::cluster) fn put_u64(&self, tree: Tree, key: &[u8], value: u64) -> TxResult<()> {
        self.tree(tree).insert(key, &value.to_be_bytes())?;
        Ok(())
    }

    pub(in crate::cluster) fn remove(&self, tree: Tree, key: &[u8]) -> TxResult<()> {
        self.tree(tree).remove(key)?;
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

/// The embedded cluster, stored in a sled database shared with the DAG engine.
#[derive(Debug, Clone)]
pub struct SledCluster {
    db: sled::Db,
    /// Makes each transaction durable on the device after sled's flush.
    device: Arc<DeviceSync>,
    /// The open trees, indexed by [`Tree`].
    trees: Vec<sled::Tree>,
    rows: Arc<RowStore>,
    pub(in crate::cluster) clock: Arc<dyn Clock>,
    /// PBKDF2 iterations of new root-password verifiers.
    pub(in crate::cluster) password_kdf_iterations: u32,
}

impl SledCluster {
    /// Opens the cluster's trees in `db` and its tenant rows in `rows_dir`, seeding the
    /// trees from `config` on first start. Only one `SledCluster` may use `rows_dir` at a
    /// time (the agent's sled lock on `db` ensures it for an agent's data directory).
    ///
    /// # Errors
    /// `UnsupportedFormat` for a store of another format version; storage failures;
    /// invalid seed data (`InvalidUnitConfig`, `ZoneExists`, `ServerExists`, ...); a row
    /// file that cannot be read or is not a valid run (`RowFile`).
    pub fn new(
        db: &sled::Db,
        rows_dir: impl Into<PathBuf>,
        config: &ClusterConfig,
        clock: Arc<dyn Clock>,
    ) -> ClusterResult<SledCluster> {
        let trees = Tree::ALL
            .iter()
            .map(|tree| db.open_tree(tree.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let tenants = &trees[Tree::Tenants as usize];
        let mut existing = std::collections::HashSet::new();
        for key in tenants.iter().keys() {
            existing.insert(decode_u64(Tree::Tenants, &key?)?);
        }
        let cluster = SledCluster {
            db: db.clone(),
            device: DeviceSync::of(db)?,
            trees,
            rows: Arc::new(RowStore::open(rows_dir, |id| existing.contains(&id))?),
            clock,
            password_kdf_iterations: ROOT_PASSWORD_KDF_ITERATIONS,
        };
        cluster.init(config)?;
        Ok(cluster)
    }

    /// Opens (creating if needed) the sled database at `path` and the cluster in it, with
    /// the tenant rows in `path` with the extension `rows` (`D/obrestore.sled` →
    /// `D/obrestore.rows`, as for an agent) and the system clock.
    ///
    /// # Errors
    /// As [`SledCluster::new`]; sled refuses a database another process has open.
    pub fn open(path: impl AsRef<Path>, config: &ClusterConfig) -> ClusterResult<SledCluster> {
        let path = path.as_ref();
        let db = sled::open(path)?;
        SledCluster::new(
            &db,
            path.with_extension("rows"),
            config,
            Arc::new(SystemClock),
        )
    }

    /// The same cluster, deriving new root-password verifiers with `iterations` rounds
    /// of PBKDF2 instead of [`ROOT_PASSWORD_KDF_ITERATIONS`] (clamped to 1..=10 000 000).
    /// Verifiers already stored keep their own count. Meant for tests and small
    /// devices, where 100 000 rounds take seconds in an unoptimized build.
    pub fn with_password_kdf_iterations(mut self, iterations: u32) -> SledCluster {
        self.password_kdf_iterations = iterations;
        self
    }

    /// The sled database (shared with the DAG engine).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes everything written to the database (by any component) and syncs it to
    /// the device, as every transaction does. Blocking.
    ///
    /// # Errors
    /// sled's flush or the device sync failed.
    pub fn sync_to_device(&self) -> ClusterResult<()> {
        Ok(self.device.flush(&self.db)?)
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    /// Runs `f` as one transaction over all non-row trees, then flushes it and syncs it
    /// to the device. Each one is a hit of the crash point [`CLUSTER_WRITE`].
    pub(in crate::cluster) fn transact<R>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        let result = trees[..].transaction(|view: &Vec<TransactionalTree>| f(&Tx { trees: view }));
        match result {
            Ok(value) => {
                self.device.flush(&self.db)?;
                obrestore_dag::crash_point::hit(CLUSTER_WRITE);
                Ok(value)
            }
            Err(TransactionError::Abort(err)) => Err(err),
            Err(TransactionError::Storage(err)) => Err(err.into()),
        }
    }

    /// Runs `f` as [`SledCluster::transact`] would, every check included, but commits
    /// nothing: returns what `f` would have committed (an obshell pre-check).
    pub(in crate::cluster) fn preview<R>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        let previewed = std::cell::RefCell::new(None);
        let result: Result<(), TransactionError<ClusterError>> =
            trees[..].transaction(|view: &Vec<TransactionalTree>| {
                // A conflict retries the closure: only the last attempt's value counts.
                *previewed.borrow_mut() = None;
                let value = f(&Tx { trees: view })?;
                *previewed.borrow_mut() = Some(value);
                // Any abort undoes the writes; `previewed` tells it from a refusal.
                abort(ClusterError::TenantNameEmpty)
            });
        match (previewed.into_inner(), result) {
            (Some(value), Err(TransactionError::Abort(_))) => Ok(value),
            (_, Err(TransactionError::Abort(err))) => Err(err),
            (_, Err(TransactionError::Storage(err))) => Err(err.into()),
            (_, Ok(())) => Err(corrupt(Tree::Meta, "a preview committed")),
        }
    }

    /// [`SledCluster::transact`], or [`SledCluster::preview`] for [`Write::Preview`].
    pub(in crate::cluster) fn write<R>(
        &self,
        write: Write,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        match write {
            Write::Apply => self.transact(f),
            Write::Preview => self.preview(f),
        }
    }

    /// Checks the format version (upgrading version 2), or seeds a new store.
    fn init(&self, config: &ClusterConfig) -> ClusterResult<()> {
        let now = self.clock.now();
        if self.get_meta_u64(b"format_version")? == Some(2) {
            self.upgrade_from_format_2()?;
        }
        self.transact(|tx| {
            match tx.get_u64(Tree::Meta, b"format_version")? {
                Some(CLUSTER_FORMAT_VERSION) => return Ok(()),
                Some(found) => {
                    return abort(ClusterError::UnsupportedFormat {
                        found,
                        expected: CLUSTER_FORMAT_VERSION,
                    })
                }
                None => {}
            }
            tx.put_u64(Tree::Meta, b"format_version", CLUSTER_FORMAT_VERSION)?;
            seed::seed(tx, config, now)?;
            tx.put_u64(Tree::Meta, b"seeded", 1)?;
            Ok(())
        })
    }

    fn get_meta_u64(&self, key: &[u8]) -> ClusterResult<Option<u64>> {
        self.tree(Tree::Meta)
            .get(key)?
            .map(|bytes| decode_u64(Tree::Meta, &bytes))
            .transpose()
    }

    /// Cluster format 2 → 3: every unit config gets an id (in name order); nothing
    /// else changed.
    fn upgrade_from_format_2(&self) -> ClusterResult<()> {
        let configs: Vec<UnitConfig> = self.scan(Tree::UnitConfigs)?;
        self.transact(|tx| {
            if tx.get_u64(Tree::Meta, b"format_version")? != Some(2) {
                return Ok(());
            }
            for config in &configs {
                let mut config = config.clone();
                if config.id == 0 {
                    config.id = pools::next_unit_config_id(tx)?;
                    tx.put(Tree::UnitConfigs, config.name.as_bytes(), &config)?;
                }
            }
            tx.put_u64(Tree::Meta, b"format_version", CLUSTER_FORMAT_VERSION)?;
            Ok(())
        })
    }

    /// Every record of `tree`, in key order.
    fn scan<V: DeserializeOwned>(&self, tree: Tree) -> ClusterResult<Vec<V>> {
        self.tree(tree)
            .iter()
            .values()
            .map(|value| decode(tree, &value?))
            .collect()
    }

    /// The record of `tree` under `key`, outside a transaction.
    fn get<V: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> ClusterResult<Option<V>> {
        self.tree(tree)
            .get(key)?
            .map(|bytes| decode(tree, &bytes))
            .transpose()
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
