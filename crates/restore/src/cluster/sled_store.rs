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
//! The records live in a backend ([`records`]): the agent's sled trees described below
//! ([`SledCluster::new`]), or etcd for a cluster of agents ([`etcd`],
//! [`SledCluster::open_etcd`]; same trees and keys under `/obrestore/<cluster>/`). The
//! record files see only the transaction view [`Tx`] and the scans, never the backend.
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

mod etcd;
mod pools;
mod records;
mod restore_jobs;
mod rows;
mod seed;
mod tenant_service;
mod tenants;
mod topology;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use obrestore_dag::store::DeviceSync;
use obrestore_etcd::{Etcd, Fence};
use serde::de::DeserializeOwned;

use super::error::{ClusterError, ClusterResult};
use super::model::UnitConfig;
use super::password::ROOT_PASSWORD_KDF_ITERATIONS;
use super::rowstore::RowStore;
use crate::clock::{Clock, SystemClock};

use etcd::EtcdRecords;
pub(in crate::cluster) use pools::{create_pool, place_units, release_unit};
pub(in crate::cluster) use records::{abort, corrupt, Tree, Tx, TxResult};
use records::{decode, decode_u64, Records};
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

/// Whether an administration write is made or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cluster) enum Write {
    Apply,
    Preview,
}

/// The embedded cluster: its records in the agent's sled database (shared with the DAG
/// engine) or in etcd (shared by the agents of a cluster), its rows in run files.
#[derive(Debug, Clone)]
pub struct SledCluster {
    /// The agent's database: the cluster's records on the sled backend; on etcd only
    /// what stays per agent (the server's trees, the engine's on sled).
    db: sled::Db,
    /// Makes each transaction durable on the device after sled's flush.
    device: Arc<DeviceSync>,
    /// Where the records live.
    records: Arc<Records>,
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
        SledCluster::with_records(db, Records::sled(db)?, rows_dir.into(), config, clock)
    }

    /// Opens the cluster named `cluster` in etcd (records under
    /// `/obrestore/<cluster>/cluster/<tree>/<key>`) with its tenant rows in `rows_dir`,
    /// seeding it from `config` if no agent has (when several start at once, one seeds
    /// and the others find its records). `db` is the agent's own database, which
    /// [`SledCluster::db`] returns and [`SledCluster::sync_to_device`] syncs; no cluster
    /// record goes there.
    ///
    /// With a `fence` (the maintainer's), every transaction commits only while the
    /// fence holds and a row write checks it first: a lost fence is
    /// [`ClusterError::FenceLost`] and nothing is written. Without one the handle may
    /// still write (tests, tools) but a cluster of agents gives one only to its
    /// maintainer.
    ///
    /// `rows_dir` is the directory shared by the agents (`--shared-dir`); only the
    /// maintainer may open it, as opening removes unfinished writes: see
    /// `ARCHITECTURE.md` ("Cluster state on etcd") for what must hold.
    ///
    /// # Errors
    /// `InvalidClusterName` for an empty name or one with `/`; `Backend` when etcd
    /// cannot be reached; `FenceLost`; as [`SledCluster::new`] otherwise.
    pub fn open_etcd(
        db: &sled::Db,
        etcd: Etcd,
        cluster: &str,
        fence: Option<Fence>,
        rows_dir: impl Into<PathBuf>,
        config: &ClusterConfig,
        clock: Arc<dyn Clock>,
    ) -> ClusterResult<SledCluster> {
        let records = Records::Etcd(EtcdRecords::new(etcd, cluster, fence)?);
        SledCluster::with_records(db, records, rows_dir.into(), config, clock)
    }

    /// A reader of the cluster named `cluster` in etcd, for an agent of a cluster of
    /// agents that is not its maintainer: every read goes to etcd at the time of the
    /// call (linearizable), every write (a transaction with writes, a row write) fails
    /// with [`ClusterError::ReadOnly`] and writes nothing. It seeds nothing and opens no
    /// shared row: its rows are an empty directory of its own, `private_rows_dir` (no
    /// API read serves rows; the maintainer's restores write and read them).
    ///
    /// # Errors
    /// `InvalidClusterName`; `Etcd` when etcd cannot be reached; as
    /// [`SledCluster::new`] otherwise.
    pub fn open_etcd_reader(
        db: &sled::Db,
        etcd: Etcd,
        cluster: &str,
        private_rows_dir: impl Into<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> ClusterResult<SledCluster> {
        let records = Records::Etcd(EtcdRecords::reader(etcd, cluster)?);
        let rows = RowStore::open(private_rows_dir.into(), |_| false)?;
        SledCluster::assemble(db, records, rows, clock)
    }

    fn assemble(
        db: &sled::Db,
        records: Records,
        rows: RowStore,
        clock: Arc<dyn Clock>,
    ) -> ClusterResult<SledCluster> {
        Ok(SledCluster {
            db: db.clone(),
            device: DeviceSync::of(db)?,
            records: Arc::new(records),
            rows: Arc::new(rows),
            clock,
            password_kdf_iterations: ROOT_PASSWORD_KDF_ITERATIONS,
        })
    }

    fn with_records(
        db: &sled::Db,
        records: Records,
        rows_dir: PathBuf,
        config: &ClusterConfig,
        clock: Arc<dyn Clock>,
    ) -> ClusterResult<SledCluster> {
        let mut existing = std::collections::HashSet::new();
        for (key, _) in records.scan(Tree::Tenants)? {
            existing.insert(decode_u64(Tree::Tenants, &key)?);
        }
        let rows = RowStore::open(rows_dir, |id| existing.contains(&id))?;
        let cluster = SledCluster::assemble(db, records, rows, clock)?;
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
        let db = obrestore_dag::store::open_sled(&sled::Config::new().path(path))?;
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

    /// The agent's sled database (shared with the DAG engine on one agent; on etcd it
    /// holds none of the cluster's records).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes everything written to the agent's database (by any component) and syncs
    /// it to the device, as every transaction on the sled backend does. Blocking.
    ///
    /// # Errors
    /// sled's flush or the device sync failed.
    pub fn sync_to_device(&self) -> ClusterResult<()> {
        Ok(self.device.flush(&self.db)?)
    }

    /// Runs `f` as one transaction over all non-row trees and makes it durable (sled:
    /// flushed and synced to the device; etcd: one etcd transaction) before it returns.
    /// Each one is a hit of the crash point [`CLUSTER_WRITE`].
    pub(in crate::cluster) fn transact<R>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        let value = self.records.transact(f)?;
        obrestore_dag::crash_point::hit(CLUSTER_WRITE);
        Ok(value)
    }

    /// Runs `f` as [`SledCluster::transact`] would, every check included, but commits
    /// nothing: returns what `f` would have committed (an obshell pre-check).
    pub(in crate::cluster) fn preview<R>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        self.records.preview(f)
    }

    /// Before a row write: on etcd with a fence, fails with `FenceLost` once the fence
    /// no longer holds (nothing to check otherwise).
    pub(in crate::cluster) fn check_row_writer(&self) -> ClusterResult<()> {
        match &*self.records {
            Records::Sled { .. } => Ok(()),
            Records::Etcd(etcd) => etcd.check_fence(),
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
        if self.get_u64(Tree::Meta, b"format_version")? == Some(2) {
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
        self.records
            .scan(tree)?
            .iter()
            .map(|(_, value)| decode(tree, value))
            .collect()
    }

    /// The record of `tree` under `key`, outside a transaction.
    fn get<V: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> ClusterResult<Option<V>> {
        self.records
            .get(tree, key)?
            .map(|bytes| decode(tree, &bytes))
            .transpose()
    }

    /// The `u64` record of `tree` under `key`, outside a transaction.
    fn get_u64(&self, tree: Tree, key: &[u8]) -> ClusterResult<Option<u64>> {
        self.records
            .get(tree, key)?
            .map(|bytes| decode_u64(tree, &bytes))
            .transpose()
    }
}
