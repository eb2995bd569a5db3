//! The embedded cluster on sled.
//!
//! On-disk layout (format version 2, recorded under `format_version` in `cluster/meta`;
//! a store with another version is refused). The records live in the agent's single sled
//! database next to the DAG engine's trees, in trees prefixed `cluster/`; tenant rows
//! live in run files in the rows directory (`<data-dir>/obrestore.rows/`, see
//! [`super::rowstore`]):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `cluster/meta` | `format_version`, `seeded`, counters `next_*` | u64 big-endian |
//! | `cluster/zones` | zone name | JSON [`Zone`] |
//! | `cluster/servers` | `ip:port` | JSON [`Server`] (capacity and what units take) |
//! | `cluster/unit_configs` | name | JSON [`UnitConfig`] |
//! | `cluster/pools` | name | JSON [`ResourcePool`] with its units |
//! | `cluster/tenants` | tenant id (u64 BE) | JSON [`Tenant`] |
//! | `cluster/tenant_names` | tenant name | tenant id (u64 BE) |
//! | `cluster/restore_jobs` | job id (u64 BE) | JSON [`RestoreJob`] (unfinished) |
//! | `cluster/restore_active` | tenant name | job id (u64 BE) |
//! | `cluster/restore_history` | job id (u64 BE) | JSON [`RestoreJob`] (finished) |
//!
//! Every mutation except row batches is one multi-tree sled transaction, flushed before
//! it returns. A row batch is one run file, `fsync`ed and renamed into place before it
//! returns. Tenant ids are never reused, so rows of a dropped tenant can never show up in
//! a new one; at open, the row directories of tenants that no longer exist are removed.
//! Version 1 kept one sled entry per row in `cluster/rows`; it is not migrated.
//!
//! Tenant administration added fields to [`Tenant`] (mode, charset, collation, comment,
//! read_only, variables, parameters, the root-password verifier and whether it is
//! persisted) without a format change: each has a serde default, so a record written
//! before reads as a MySQL tenant with `utf8mb4`, nothing set and no password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use tracing::instrument;

use super::digest::RowDigest;
use super::error::{ClusterError, ClusterResult};
use super::model::*;
use super::password::ROOT_PASSWORD_KDF_ITERATIONS;
use super::rowstore::RowStore;
use super::service::{RowVisitor, TenantService};
use crate::clock::{Clock, SystemClock};

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

/// A server to seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSeed {
    pub ip: String,
    pub port: u16,
    pub cpu_capacity: f64,
    pub memory_capacity: u64,
}

/// A zone to seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSeed {
    pub name: String,
    pub region: String,
    pub servers: Vec<ServerSeed>,
}

/// What the embedded cluster is seeded with on first start (later starts ignore it).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    pub zones: Vec<ZoneSeed>,
    pub unit_configs: Vec<NewUnitConfig>,
}

/// Name of the unit config seeded by [`ClusterConfig::default`].
pub const DEFAULT_UNIT_CONFIG: &str = "s1";

impl ClusterConfig {
    /// Zones `z1..=zN` in region `default`, one server each at `127.0.0.1:2882`,
    /// `127.0.0.1:2883`, ..., with `cpu` cores and `memory` bytes, and the default unit
    /// config `s1` (2 CPU, 4 GiB memory, 12 GiB log disk, 10000 IOPS).
    pub fn uniform(zone_count: u16, cpu: f64, memory: u64) -> ClusterConfig {
        ClusterConfig {
            zones: (1..=zone_count)
                .map(|n| ZoneSeed {
                    name: format!("z{n}"),
                    region: "default".to_string(),
                    servers: vec![ServerSeed {
                        ip: "127.0.0.1".to_string(),
                        port: 2881 + n,
                        cpu_capacity: cpu,
                        memory_capacity: memory,
                    }],
                })
                .collect(),
            unit_configs: vec![NewUnitConfig {
                name: DEFAULT_UNIT_CONFIG.to_string(),
                memory_size: 4 * GIB,
                max_cpu: 2.0,
                min_cpu: None,
                log_disk_size: None,
                max_iops: None,
                min_iops: None,
            }],
        }
    }
}

impl Default for ClusterConfig {
    /// Zones z1..z3, one server each with 16 CPU and 64 GiB, unit config `s1`.
    fn default() -> ClusterConfig {
        ClusterConfig::uniform(3, 16.0, 64 * GIB)
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum T {
    Meta = 0,
    Zones,
    Servers,
    UnitConfigs,
    Pools,
    Tenants,
    TenantNames,
    Jobs,
    JobActive,
    History,
}

const TREE_NAMES: [&str; 10] = [
    "cluster/meta",
    "cluster/zones",
    "cluster/servers",
    "cluster/unit_configs",
    "cluster/pools",
    "cluster/tenants",
    "cluster/tenant_names",
    "cluster/restore_jobs",
    "cluster/restore_active",
    "cluster/restore_history",
];

type Abort = ConflictableTransactionError<ClusterError>;
pub(super) type TxResult<R> = Result<R, Abort>;

/// Whether an administration write is made or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    Apply,
    Preview,
}

pub(super) fn abort<R>(error: ClusterError) -> TxResult<R> {
    Err(ConflictableTransactionError::Abort(error))
}

pub(super) fn corrupt(tree: T, reason: impl Into<String>) -> ClusterError {
    ClusterError::Corrupt {
        tree: TREE_NAMES[tree as usize].to_string(),
        reason: reason.into(),
    }
}

fn decode<V: DeserializeOwned>(tree: T, bytes: &[u8]) -> ClusterResult<V> {
    serde_json::from_slice(bytes).map_err(|err| corrupt(tree, err.to_string()))
}

fn encode<V: Serialize>(tree: T, value: &V) -> ClusterResult<Vec<u8>> {
    // The records are plain structs of strings, numbers and maps with string/integer
    // keys, so this does not fail in practice; if it ever did, nothing is written.
    serde_json::to_vec(value).map_err(|err| corrupt(tree, format!("cannot encode record: {err}")))
}

fn decode_u64(tree: T, bytes: &[u8]) -> ClusterResult<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(tree, format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// A view of all non-row trees inside one transaction.
pub(super) struct Tx<'a> {
    trees: &'a [TransactionalTree],
}

impl Tx<'_> {
    pub(super) fn tree(&self, tree: T) -> &TransactionalTree {
        &self.trees[tree as usize]
    }

    pub(super) fn get<V: DeserializeOwned>(&self, tree: T, key: &[u8]) -> TxResult<Option<V>> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => match decode(tree, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(super) fn get_u64(&self, tree: T, key: &[u8]) -> TxResult<Option<u64>> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => match decode_u64(tree, &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(super) fn put<V: Serialize>(&self, tree: T, key: &[u8], value: &V) -> TxResult<()> {
        let bytes = match encode(tree, value) {
            Ok(bytes) => bytes,
            Err(err) => return abort(err),
        };
        self.tree(tree).insert(key, bytes)?;
        Ok(())
    }

    pub(super) fn put_u64(&self, tree: T, key: &[u8], value: u64) -> TxResult<()> {
        self.tree(tree).insert(key, &value.to_be_bytes())?;
        Ok(())
    }

    pub(super) fn remove(&self, tree: T, key: &[u8]) -> TxResult<()> {
        self.tree(tree).remove(key)?;
        Ok(())
    }

    /// Next value of counter `name`: `first`, then `first + step`, ...
    pub(super) fn next_id(&self, name: &str, first: u64, step: u64) -> TxResult<u64> {
        let key = format!("next_{name}");
        let id = self.get_u64(T::Meta, key.as_bytes())?.unwrap_or(first);
        self.put_u64(T::Meta, key.as_bytes(), id + step)?;
        Ok(id)
    }

    pub(super) fn tenant_by_id(&self, tenant_id: u64) -> TxResult<Option<Tenant>> {
        self.get(T::Tenants, &tenant_id.to_be_bytes())
    }

    pub(super) fn tenant_id_by_name(&self, name: &str) -> TxResult<Option<u64>> {
        self.get_u64(T::TenantNames, name.as_bytes())
    }

    /// The tenant, unless it is missing (`TenantIdNotFound`) or DROPPING (`TenantState`).
    fn live_tenant(&self, tenant_id: u64) -> TxResult<Tenant> {
        match self.tenant_by_id(tenant_id)? {
            None => abort(ClusterError::TenantIdNotFound(tenant_id)),
            Some(tenant) if tenant.status == TenantStatus::Dropping => {
                abort(ClusterError::TenantState {
                    name: tenant.name,
                    actual: TenantStatus::Dropping.to_string(),
                    expected: "NORMAL or RESTORE".to_string(),
                })
            }
            Some(tenant) => Ok(tenant),
        }
    }

    pub(super) fn put_tenant(&self, tenant: &Tenant) -> TxResult<()> {
        self.put(T::Tenants, &tenant.id.to_be_bytes(), tenant)
    }

    fn running_job(&self, job_id: u64) -> TxResult<RestoreJob> {
        let key = job_id.to_be_bytes();
        if let Some(job) = self.get(T::Jobs, &key)? {
            return Ok(job);
        }
        if self.tree(T::History).get(key)?.is_some() {
            return abort(ClusterError::RestoreJobFinished(job_id));
        }
        abort(ClusterError::RestoreJobNotFound(job_id))
    }

    fn put_job(&self, job: &RestoreJob) -> TxResult<()> {
        self.put(T::Jobs, &job.job_id.to_be_bytes(), job)
    }
}

/// The embedded cluster, stored in a sled database shared with the DAG engine.
#[derive(Debug, Clone)]
pub struct SledCluster {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    rows: Arc<RowStore>,
    pub(super) clock: Arc<dyn Clock>,
    /// PBKDF2 iterations of new root-password verifiers.
    pub(super) password_kdf_iterations: u32,
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
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let tenants = &trees[T::Tenants as usize];
        let mut existing = std::collections::HashSet::new();
        for key in tenants.iter().keys() {
            existing.insert(decode_u64(T::Tenants, &key?)?);
        }
        let cluster = SledCluster {
            db: db.clone(),
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

    /// Merges the tenant's row runs into one (what [`TenantService::apply_rows`] does by
    /// itself past [`crate::cluster::COMPACT_AT_RUNS`] runs). Returns how many runs were
    /// merged.
    ///
    /// # Errors
    /// I/O failures, a corrupt run.
    pub fn compact_rows(&self, tenant_id: u64) -> ClusterResult<usize> {
        self.rows.compact(tenant_id)
    }

    /// Runs and row versions stored for the tenant.
    pub fn row_stats(&self, tenant_id: u64) -> crate::cluster::RunStats {
        self.rows.stats(tenant_id)
    }

    /// The sled database (shared with the DAG engine).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn tree(&self, tree: T) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    /// Runs `f` as one transaction over all non-row trees, then flushes.
    pub(super) fn transact<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> ClusterResult<R> {
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        let result = trees[..].transaction(|view: &Vec<TransactionalTree>| f(&Tx { trees: view }));
        match result {
            Ok(value) => {
                self.db.flush()?;
                Ok(value)
            }
            Err(TransactionError::Abort(err)) => Err(err),
            Err(TransactionError::Storage(err)) => Err(err.into()),
        }
    }

    /// Runs `f` as [`SledCluster::transact`] would, every check included, but commits
    /// nothing: returns what `f` would have committed (an obshell pre-check).
    pub(super) fn preview<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> ClusterResult<R> {
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
            (_, Ok(())) => Err(corrupt(T::Meta, "a preview committed")),
        }
    }

    /// [`SledCluster::transact`], or [`SledCluster::preview`] for [`Write::Preview`].
    pub(super) fn write<R>(
        &self,
        write: Write,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> ClusterResult<R> {
        match write {
            Write::Apply => self.transact(f),
            Write::Preview => self.preview(f),
        }
    }

    fn init(&self, config: &ClusterConfig) -> ClusterResult<()> {
        let now = self.clock.now();
        if self.get_meta_u64(b"format_version")? == Some(2) {
            self.upgrade_from_format_2()?;
        }
        self.transact(|tx| {
            match tx.get_u64(T::Meta, b"format_version")? {
                Some(CLUSTER_FORMAT_VERSION) => return Ok(()),
                Some(found) => {
                    return abort(ClusterError::UnsupportedFormat {
                        found,
                        expected: CLUSTER_FORMAT_VERSION,
                    })
                }
                None => {}
            }
            tx.put_u64(T::Meta, b"format_version", CLUSTER_FORMAT_VERSION)?;
            for zone in &config.zones {
                insert_zone(tx, &zone.name, &zone.region, now)?;
                for server in &zone.servers {
                    insert_server(tx, &zone.name, server, now)?;
                }
            }
            for unit_config in &config.unit_configs {
                insert_unit_config(tx, unit_config, now)?;
            }
            tx.put_u64(T::Meta, b"seeded", 1)?;
            Ok(())
        })
    }

    /// Adds a zone.
    ///
    /// # Errors
    /// `ZoneExists`, storage failures.
    pub fn add_zone(&self, name: &str, region: &str) -> ClusterResult<Zone> {
        let now = self.clock.now();
        self.transact(|tx| insert_zone(tx, name, region, now))
    }

    /// Adds a server to an existing zone.
    ///
    /// # Errors
    /// `ZoneNotFound`, `ServerExists`, `InvalidServer`, storage failures.
    pub fn add_server(&self, zone: &str, server: &ServerSeed) -> ClusterResult<Server> {
        let now = self.clock.now();
        self.transact(|tx| insert_server(tx, zone, server, now))
    }

    fn get_meta_u64(&self, key: &[u8]) -> ClusterResult<Option<u64>> {
        self.tree(T::Meta)
            .get(key)?
            .map(|bytes| decode_u64(T::Meta, &bytes))
            .transpose()
    }

    /// Cluster format 2 → 3: every unit config gets an id (in name order); nothing
    /// else changed.
    fn upgrade_from_format_2(&self) -> ClusterResult<()> {
        let configs: Vec<UnitConfig> = self.scan(T::UnitConfigs)?;
        self.transact(|tx| {
            if tx.get_u64(T::Meta, b"format_version")? != Some(2) {
                return Ok(());
            }
            for config in &configs {
                let mut config = config.clone();
                if config.id == 0 {
                    config.id = tx.next_id("unit_config_id", FIRST_UNIT_CONFIG_ID, 1)?;
                    tx.put(T::UnitConfigs, config.name.as_bytes(), &config)?;
                }
            }
            tx.put_u64(T::Meta, b"format_version", CLUSTER_FORMAT_VERSION)?;
            Ok(())
        })
    }

    fn scan<V: DeserializeOwned>(&self, tree: T) -> ClusterResult<Vec<V>> {
        self.tree(tree)
            .iter()
            .values()
            .map(|value| decode(tree, &value?))
            .collect()
    }

    fn get<V: DeserializeOwned>(&self, tree: T, key: &[u8]) -> ClusterResult<Option<V>> {
        self.tree(tree)
            .get(key)?
            .map(|bytes| decode(tree, &bytes))
            .transpose()
    }
}

fn insert_zone(
    tx: &Tx<'_>,
    name: &str,
    region: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> TxResult<Zone> {
    if name.trim().is_empty() {
        return abort(ClusterError::InvalidZone {
            name: name.to_string(),
            reason: "name is empty".to_string(),
        });
    }
    if tx.tree(T::Zones).get(name.as_bytes())?.is_some() {
        return abort(ClusterError::ZoneExists(name.to_string()));
    }
    let zone = Zone {
        name: name.to_string(),
        region: region.to_string(),
        servers: Vec::new(),
        created_at: now,
    };
    tx.put(T::Zones, name.as_bytes(), &zone)?;
    Ok(zone)
}

fn insert_server(
    tx: &Tx<'_>,
    zone_name: &str,
    seed: &ServerSeed,
    now: chrono::DateTime<chrono::Utc>,
) -> TxResult<Server> {
    let address = server_address(&seed.ip, seed.port);
    if seed.ip.trim().is_empty() || !seed.cpu_capacity.is_finite() || seed.cpu_capacity <= 0.0 {
        return abort(ClusterError::InvalidServer {
            server: address,
            reason: "ip must be non-empty and cpu_capacity greater than 0".to_string(),
        });
    }
    let Some(mut zone) = tx.get::<Zone>(T::Zones, zone_name.as_bytes())? else {
        return abort(ClusterError::ZoneNotFound(zone_name.to_string()));
    };
    if tx.tree(T::Servers).get(address.as_bytes())?.is_some() {
        return abort(ClusterError::ServerExists(address));
    }
    let server = Server {
        zone: zone_name.to_string(),
        ip: seed.ip.clone(),
        port: seed.port,
        cpu_capacity: seed.cpu_capacity,
        memory_capacity: seed.memory_capacity,
        cpu_assigned: 0.0,
        memory_assigned: 0,
        unit_count: 0,
        created_at: now,
    };
    tx.put(T::Servers, address.as_bytes(), &server)?;
    zone.servers.push(address);
    tx.put(T::Zones, zone_name.as_bytes(), &zone)?;
    Ok(server)
}

/// Applies obshell's unit config rules and OceanBase's defaults.
fn build_unit_config(
    config: &NewUnitConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> ClusterResult<UnitConfig> {
    let invalid = |reason: &str| ClusterError::InvalidUnitConfig {
        name: config.name.clone(),
        reason: reason.to_string(),
    };
    if config.name.trim().is_empty() {
        return Err(invalid("name is empty"));
    }
    if config.memory_size < GIB {
        return Err(invalid("memory_size must be at least 1G"));
    }
    if !config.max_cpu.is_finite() || config.max_cpu <= 0.0 {
        return Err(invalid("max_cpu must be greater than 0"));
    }
    let min_cpu = config.min_cpu.unwrap_or(config.max_cpu);
    if !min_cpu.is_finite() || min_cpu <= 0.0 || min_cpu > config.max_cpu + CPU_EPSILON {
        return Err(invalid(
            "min_cpu must be greater than 0 and at most max_cpu",
        ));
    }
    let log_disk_size = config
        .log_disk_size
        .unwrap_or(config.memory_size.saturating_mul(3));
    if log_disk_size < 2 * GIB {
        return Err(invalid("log_disk_size must be at least 2G"));
    }
    let max_iops = config.max_iops.unwrap_or(10_000);
    let min_iops = config.min_iops.unwrap_or(max_iops);
    if max_iops < 1024 {
        return Err(invalid("max_iops must be at least 1024"));
    }
    if min_iops > max_iops {
        return Err(invalid("min_iops must be at most max_iops"));
    }
    Ok(UnitConfig {
        id: 0,
        name: config.name.clone(),
        memory_size: config.memory_size,
        max_cpu: round_cpu(config.max_cpu),
        min_cpu: round_cpu(min_cpu),
        log_disk_size,
        max_iops,
        min_iops,
        created_at: now,
        modified_at: None,
    })
}

/// First `UNIT_CONFIG_ID` (OceanBase numbers user unit configs from 1001).
const FIRST_UNIT_CONFIG_ID: u64 = 1001;

fn insert_unit_config(
    tx: &Tx<'_>,
    config: &NewUnitConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> TxResult<UnitConfig> {
    let mut unit_config = match build_unit_config(config, now) {
        Ok(unit_config) => unit_config,
        Err(err) => return abort(err),
    };
    if tx
        .tree(T::UnitConfigs)
        .get(unit_config.name.as_bytes())?
        .is_some()
    {
        return abort(ClusterError::UnitConfigExists(unit_config.name));
    }
    unit_config.id = tx.next_id("unit_config_id", FIRST_UNIT_CONFIG_ID, 1)?;
    tx.put(T::UnitConfigs, unit_config.name.as_bytes(), &unit_config)?;
    Ok(unit_config)
}

fn check_pool_spec(spec: &PoolSpec) -> ClusterResult<()> {
    let invalid = |reason: String| ClusterError::InvalidPool {
        name: spec.name.clone(),
        reason,
    };
    if spec.name.trim().is_empty() {
        return Err(invalid("name is empty".to_string()));
    }
    if spec.unit_num == 0 {
        return Err(invalid("unit_num must be greater than 0".to_string()));
    }
    if spec.zone_list.is_empty() {
        return Err(invalid("zone_list is empty".to_string()));
    }
    for (index, zone) in spec.zone_list.iter().enumerate() {
        if spec.zone_list[..index].contains(zone) {
            return Err(invalid(format!("zone '{zone}' is repeated")));
        }
    }
    Ok(())
}

pub(super) fn create_pool(
    tx: &Tx<'_>,
    spec: &PoolSpec,
    creator: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> TxResult<ResourcePool> {
    if let Err(err) = check_pool_spec(spec) {
        return abort(err);
    }
    if let Some(existing) = tx.get::<ResourcePool>(T::Pools, spec.name.as_bytes())? {
        if existing.creator.as_deref() == Some(creator) && existing.spec() == *spec {
            return Ok(existing);
        }
        return abort(ClusterError::PoolExists(spec.name.clone()));
    }
    let Some(unit_config) =
        tx.get::<UnitConfig>(T::UnitConfigs, spec.unit_config_name.as_bytes())?
    else {
        return abort(ClusterError::UnitConfigNotFound(
            spec.unit_config_name.clone(),
        ));
    };
    let mut units = Vec::new();
    for zone_name in &spec.zone_list {
        units.extend(place_units(
            tx,
            zone_name,
            &unit_config,
            spec.unit_num as usize,
            &[],
        )?);
    }
    let pool = ResourcePool {
        id: tx.next_id("pool_id", 1001, 1)?,
        name: spec.name.clone(),
        unit_config_name: spec.unit_config_name.clone(),
        unit_num: spec.unit_num,
        zone_list: spec.zone_list.clone(),
        tenant_id: None,
        creator: Some(creator.to_string()),
        units,
        created_at: now,
    };
    tx.put(T::Pools, spec.name.as_bytes(), &pool)?;
    Ok(pool)
}

/// Places `count` more units of `unit_config` in zone `zone_name` and charges their
/// servers: on the servers that can hold one and host none of `occupied` (the servers
/// of the pool's units already there), most free memory first, ties by address.
///
/// # Errors
/// `ZoneNotFound`; `UnitNumExceedsServers` when the zone has fewer servers than the
/// pool's units would then number; `MachineResourceNotEnough` when too few servers can
/// hold a unit.
pub(super) fn place_units(
    tx: &Tx<'_>,
    zone_name: &str,
    unit_config: &UnitConfig,
    count: usize,
    occupied: &[String],
) -> TxResult<Vec<Unit>> {
    let Some(zone) = tx.get::<Zone>(T::Zones, zone_name.as_bytes())? else {
        return abort(ClusterError::ZoneNotFound(zone_name.to_string()));
    };
    let total = occupied.len() + count;
    if zone.servers.len() < total {
        return abort(ClusterError::UnitNumExceedsServers {
            unit_num: u32::try_from(total).unwrap_or(u32::MAX),
            servers: zone.servers.len(),
            zone: zone_name.to_string(),
        });
    }
    let mut candidates = Vec::new();
    for address in zone
        .servers
        .iter()
        .filter(|address| !occupied.contains(address))
    {
        match tx.get::<Server>(T::Servers, address.as_bytes())? {
            Some(server) if server.can_hold(unit_config) => candidates.push(server),
            Some(_) => {}
            None => {
                return abort(corrupt(
                    T::Zones,
                    format!("zone '{zone_name}' lists missing server '{address}'"),
                ))
            }
        }
    }
    if candidates.len() < count {
        return abort(ClusterError::MachineResourceNotEnough {
            zone: zone_name.to_string(),
        });
    }
    candidates.sort_by(|a, b| {
        b.memory_free()
            .cmp(&a.memory_free())
            .then_with(|| a.address().cmp(&b.address()))
    });
    let mut units = Vec::with_capacity(count);
    for mut server in candidates.into_iter().take(count) {
        let unit_id = tx.next_id("unit_id", 1001, 1)?;
        server.cpu_assigned = round_cpu(server.cpu_assigned + unit_config.max_cpu);
        server.memory_assigned += unit_config.memory_size;
        server.unit_count += 1;
        tx.put(T::Servers, server.address().as_bytes(), &server)?;
        units.push(Unit {
            id: unit_id,
            zone: zone_name.to_string(),
            server: server.address(),
            max_cpu: unit_config.max_cpu,
            min_cpu: unit_config.min_cpu,
            memory_size: unit_config.memory_size,
        });
    }
    Ok(units)
}

/// Gives the resources of `unit` back to its server (a missing server is skipped).
pub(super) fn release_unit(tx: &Tx<'_>, unit: &Unit) -> TxResult<()> {
    let Some(mut server) = tx.get::<Server>(T::Servers, unit.server.as_bytes())? else {
        return Ok(());
    };
    server.cpu_assigned = round_cpu((server.cpu_assigned - unit.max_cpu).max(0.0));
    server.memory_assigned = server.memory_assigned.saturating_sub(unit.memory_size);
    server.unit_count = server.unit_count.saturating_sub(1);
    tx.put(T::Servers, unit.server.as_bytes(), &server)
}

impl TenantService for SledCluster {
    fn list_zones(&self) -> ClusterResult<Vec<Zone>> {
        self.scan(T::Zones)
    }

    fn zone(&self, name: &str) -> ClusterResult<Option<Zone>> {
        self.get(T::Zones, name.as_bytes())
    }

    fn servers_in_zone(&self, zone: &str) -> ClusterResult<Vec<Server>> {
        let Some(zone) = self.zone(zone)? else {
            return Ok(Vec::new());
        };
        let mut servers = Vec::with_capacity(zone.servers.len());
        for address in &zone.servers {
            match self.get(T::Servers, address.as_bytes())? {
                Some(server) => servers.push(server),
                None => {
                    return Err(corrupt(
                        T::Zones,
                        format!("zone '{}' lists missing server '{address}'", zone.name),
                    ))
                }
            }
        }
        Ok(servers)
    }

    fn list_servers(&self) -> ClusterResult<Vec<Server>> {
        self.scan(T::Servers)
    }

    fn unit_config(&self, name: &str) -> ClusterResult<Option<UnitConfig>> {
        self.get(T::UnitConfigs, name.as_bytes())
    }

    fn list_unit_configs(&self) -> ClusterResult<Vec<UnitConfig>> {
        self.scan(T::UnitConfigs)
    }

    #[instrument(skip(self), fields(name = %config.name))]
    fn create_unit_config(&self, config: &NewUnitConfig) -> ClusterResult<UnitConfig> {
        let now = self.clock.now();
        self.transact(|tx| insert_unit_config(tx, config, now))
    }

    #[instrument(skip(self))]
    fn drop_unit_config(&self, name: &str) -> ClusterResult<bool> {
        // Pools cannot be scanned inside a sled transaction; the check runs just before.
        if let Some(pool) = self
            .list_pools()?
            .into_iter()
            .find(|pool| pool.unit_config_name == name)
        {
            return Err(ClusterError::UnitConfigInUse {
                name: name.to_string(),
                pool: pool.name,
            });
        }
        self.transact(|tx| {
            let existed = tx.tree(T::UnitConfigs).get(name.as_bytes())?.is_some();
            tx.remove(T::UnitConfigs, name.as_bytes())?;
            Ok(existed)
        })
    }

    fn pool(&self, name: &str) -> ClusterResult<Option<ResourcePool>> {
        self.get(T::Pools, name.as_bytes())
    }

    fn list_pools(&self) -> ClusterResult<Vec<ResourcePool>> {
        self.scan(T::Pools)
    }

    #[instrument(skip(self, specs), fields(pools = specs.len()))]
    fn create_pools(&self, specs: &[PoolSpec], creator: &str) -> ClusterResult<Vec<ResourcePool>> {
        let now = self.clock.now();
        self.transact(|tx| {
            specs
                .iter()
                .map(|spec| create_pool(tx, spec, creator, now))
                .collect()
        })
    }

    #[instrument(skip(self))]
    fn drop_pools(&self, names: &[String]) -> ClusterResult<usize> {
        self.transact(|tx| {
            let mut dropped = 0;
            for name in names {
                let Some(pool) = tx.get::<ResourcePool>(T::Pools, name.as_bytes())? else {
                    continue;
                };
                if let Some(tenant_id) = pool.tenant_id {
                    if let Some(tenant) = tx.tenant_by_id(tenant_id)? {
                        return abort(ClusterError::PoolGranted {
                            pool: pool.name,
                            tenant: tenant.name,
                        });
                    }
                }
                for unit in &pool.units {
                    release_unit(tx, unit)?;
                }
                tx.remove(T::Pools, name.as_bytes())?;
                dropped += 1;
            }
            Ok(dropped)
        })
    }

    fn tenant(&self, name: &str) -> ClusterResult<Option<Tenant>> {
        match self.tree(T::TenantNames).get(name.as_bytes())? {
            None => Ok(None),
            Some(id) => self.tenant_by_id(decode_u64(T::TenantNames, &id)?),
        }
    }

    fn tenant_by_id(&self, tenant_id: u64) -> ClusterResult<Option<Tenant>> {
        self.get(T::Tenants, &tenant_id.to_be_bytes())
    }

    fn list_tenants(&self) -> ClusterResult<Vec<Tenant>> {
        self.scan(T::Tenants)
    }

    fn create_tenant(&self, tenant: &NewTenant, creator: &str) -> ClusterResult<Tenant> {
        self.create_tenant_with(tenant, &TenantOptions::default(), creator)
    }

    #[instrument(skip(self, tenant, options), fields(name = %tenant.name))]
    fn create_tenant_with(
        &self,
        tenant: &NewTenant,
        options: &TenantOptions,
        creator: &str,
    ) -> ClusterResult<Tenant> {
        let settings = super::admin::TenantSettings::new(options, self.password_kdf_iterations)?;
        let now = self.clock.now();
        self.transact(|tx| {
            let invalid = |reason: String| ClusterError::InvalidTenant {
                name: tenant.name.clone(),
                reason,
            };
            if tenant.name.trim().is_empty() {
                return abort(invalid("name is empty".to_string()));
            }
            if tenant.status == TenantStatus::Dropping {
                return abort(invalid("a tenant cannot be created DROPPING".to_string()));
            }
            if tenant.zone_list.is_empty() || tenant.pool_names.is_empty() {
                return abort(invalid(
                    "zone_list and pool_names must not be empty".to_string(),
                ));
            }
            if let Some(id) = tx.tenant_id_by_name(&tenant.name)? {
                if let Some(existing) = tx.tenant_by_id(id)? {
                    if existing.creator.as_deref() == Some(creator)
                        && existing.pool_names == tenant.pool_names
                        && existing.status != TenantStatus::Dropping
                    {
                        return Ok(existing);
                    }
                }
                return abort(ClusterError::TenantExists(tenant.name.clone()));
            }
            let mut pools = Vec::with_capacity(tenant.pool_names.len());
            for pool_name in &tenant.pool_names {
                let Some(pool) = tx.get::<ResourcePool>(T::Pools, pool_name.as_bytes())? else {
                    return abort(ClusterError::PoolNotFound(pool_name.clone()));
                };
                if let Some(owner_id) = pool.tenant_id {
                    if let Some(owner) = tx.tenant_by_id(owner_id)? {
                        return abort(ClusterError::PoolGranted {
                            pool: pool.name,
                            tenant: owner.name,
                        });
                    }
                }
                pools.push(pool);
            }
            for zone in &tenant.zone_list {
                if !pools.iter().any(|pool| pool.zone_list.contains(&zone.zone)) {
                    return abort(invalid(format!(
                        "zone '{}' has no resource pool",
                        zone.zone
                    )));
                }
            }
            let id = tx.next_id("tenant_id", 1002, 2)?;
            for mut pool in pools {
                pool.tenant_id = Some(id);
                tx.put(T::Pools, pool.name.as_bytes(), &pool)?;
            }
            let record = Tenant {
                id,
                name: tenant.name.clone(),
                status: tenant.status,
                role: tenant.role,
                data_version: tenant.data_version.clone(),
                sync_scn: 0,
                ls_sync_scn: Default::default(),
                primary_zone: tenant.primary_zone.clone(),
                zone_list: tenant.zone_list.clone(),
                pool_names: tenant.pool_names.clone(),
                creator: Some(creator.to_string()),
                created_at: now,
                updated_at: now,
                locked: false,
                recycled: None,
                mode: settings.mode,
                charset: settings.charset.clone(),
                collation: settings.collation.clone(),
                comment: settings.comment.clone(),
                read_only: settings.read_only,
                variables: settings.variables.clone(),
                parameters: settings.parameters.clone(),
                root_password: settings.root_password.clone(),
                root_password_persisted: settings.root_password.is_some(),
            };
            tx.put_tenant(&record)?;
            tx.put_u64(T::TenantNames, tenant.name.as_bytes(), id)?;
            Ok(record)
        })
    }

    #[instrument(skip(self))]
    fn rename_tenant(&self, name: &str, new_name: &str) -> ClusterResult<Tenant> {
        super::admin::rename_tenant(self, name, new_name)
    }

    #[instrument(skip(self))]
    fn set_primary_zone(&self, name: &str, primary_zone: &str) -> ClusterResult<Tenant> {
        super::admin::set_primary_zone(self, name, primary_zone, Write::Apply)
    }

    #[instrument(skip(self, zones), fields(zones = zones.len()))]
    fn add_replicas(
        &self,
        name: &str,
        zones: &[ReplicaSpec],
        creator: &str,
    ) -> ClusterResult<Tenant> {
        super::admin::add_replicas(self, name, zones, creator, Write::Apply)
    }

    #[instrument(skip(self))]
    fn remove_replicas(&self, name: &str, zones: &[String]) -> ClusterResult<Tenant> {
        super::admin::remove_replicas(self, name, zones, Write::Apply)
    }

    #[instrument(skip(self, zones), fields(zones = zones.len()))]
    fn modify_replicas(&self, name: &str, zones: &[ReplicaModify]) -> ClusterResult<Tenant> {
        super::admin::modify_replicas(self, name, zones, Write::Apply)
    }

    #[instrument(skip(self, variables), fields(variables = variables.len()))]
    fn set_variables(
        &self,
        name: &str,
        variables: &std::collections::BTreeMap<String, String>,
    ) -> ClusterResult<Tenant> {
        super::admin::set_variables(self, name, variables)
    }

    #[instrument(skip(self, parameters), fields(parameters = parameters.len()))]
    fn set_parameters(
        &self,
        name: &str,
        parameters: &std::collections::BTreeMap<String, String>,
    ) -> ClusterResult<Tenant> {
        super::admin::set_parameters(self, name, parameters)
    }

    #[instrument(skip(self, new, old))]
    fn set_root_password(&self, name: &str, new: &str, old: Option<&str>) -> ClusterResult<Tenant> {
        super::admin::set_root_password(self, name, new, old)
    }

    #[instrument(skip(self, password))]
    fn persist_root_password(&self, name: &str, password: &str) -> ClusterResult<Tenant> {
        super::admin::persist_root_password(self, name, password)
    }

    #[instrument(skip(self))]
    fn drop_tenant(&self, name: &str) -> ClusterResult<bool> {
        let now = self.clock.now();
        let marked = self.transact(|tx| {
            let Some(id) = tx.tenant_id_by_name(name)? else {
                return Ok(None);
            };
            let Some(mut tenant) = tx.tenant_by_id(id)? else {
                // A dangling name entry: remove it.
                tx.remove(T::TenantNames, name.as_bytes())?;
                return Ok(None);
            };
            tenant.status = TenantStatus::Dropping;
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            Ok(Some(id))
        })?;
        let Some(tenant_id) = marked else {
            return Ok(false);
        };
        self.rows.drop_tenant(tenant_id)?;
        self.transact(|tx| {
            let Some(tenant) = tx.tenant_by_id(tenant_id)? else {
                return Ok(());
            };
            for pool_name in &tenant.pool_names {
                if let Some(mut pool) = tx.get::<ResourcePool>(T::Pools, pool_name.as_bytes())? {
                    if pool.tenant_id == Some(tenant_id) {
                        pool.tenant_id = None;
                        tx.put(T::Pools, pool_name.as_bytes(), &pool)?;
                    }
                }
            }
            tx.remove(T::Tenants, &tenant_id.to_be_bytes())?;
            if tx.tenant_id_by_name(&tenant.name)? == Some(tenant_id) {
                tx.remove(T::TenantNames, tenant.name.as_bytes())?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    #[instrument(skip(self))]
    fn recycle_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(tenant_id)?;
            if tenant.in_recyclebin() {
                return Ok(tenant);
            }
            let object_name = format!("__recycle_$_{}_{}", tenant.id, now.timestamp_micros());
            if tx.tenant_id_by_name(&tenant.name)? == Some(tenant_id) {
                tx.remove(T::TenantNames, tenant.name.as_bytes())?;
            }
            tenant.recycled = Some(Recycled {
                original_name: std::mem::replace(&mut tenant.name, object_name.clone()),
                recycled_at: now,
            });
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            tx.put_u64(T::TenantNames, object_name.as_bytes(), tenant_id)?;
            Ok(tenant)
        })
    }

    fn recycled_tenant(&self, name: &str) -> ClusterResult<Option<Tenant>> {
        if let Some(tenant) = self.tenant(name)? {
            if tenant.in_recyclebin() {
                return Ok(Some(tenant));
            }
        }
        Ok(self
            .list_tenants()?
            .into_iter()
            .filter(|tenant| {
                tenant
                    .recycled
                    .as_ref()
                    .is_some_and(|recycled| recycled.original_name == name)
            })
            .max_by_key(|tenant| tenant.recycled.as_ref().map(|r| r.recycled_at)))
    }

    #[instrument(skip(self))]
    fn flashback_tenant(&self, name: &str, new_name: Option<&str>) -> ClusterResult<Tenant> {
        let Some(found) = self.recycled_tenant(name)? else {
            return Err(ClusterError::RecycledTenantNotFound(name.to_string()));
        };
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(found.id)?;
            let Some(recycled) = tenant.recycled.clone() else {
                return abort(ClusterError::RecycledTenantNotFound(name.to_string()));
            };
            let target = new_name.unwrap_or(&recycled.original_name).to_string();
            if tx.tenant_id_by_name(&target)?.is_some() {
                return abort(ClusterError::TenantExists(target));
            }
            if tx.tenant_id_by_name(&tenant.name)? == Some(tenant.id) {
                tx.remove(T::TenantNames, tenant.name.as_bytes())?;
            }
            tenant.name = target;
            tenant.recycled = None;
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            tx.put_u64(T::TenantNames, tenant.name.as_bytes(), tenant.id)?;
            Ok(tenant)
        })
    }

    #[instrument(skip(self))]
    fn set_tenant_locked(&self, name: &str, locked: bool) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let Some(id) = tx.tenant_id_by_name(name)? else {
                return abort(ClusterError::TenantNotFound(name.to_string()));
            };
            let mut tenant = tx.live_tenant(id)?;
            if tenant.locked != locked {
                tenant.locked = locked;
                tenant.updated_at = now;
                tx.put_tenant(&tenant)?;
            }
            Ok(tenant)
        })
    }

    fn set_ls_sync_scn(&self, tenant_id: u64, ls_id: u64, scn: u64) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(tenant_id)?;
            tenant.ls_sync_scn.insert(ls_id, scn);
            tenant.sync_scn = tenant.ls_sync_scn.values().copied().min().unwrap_or(0);
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            Ok(tenant)
        })
    }

    #[instrument(skip(self))]
    fn activate_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(tenant_id)?;
            if tenant.role != TenantRole::Primary || tenant.status != TenantStatus::Normal {
                tenant.role = TenantRole::Primary;
                tenant.status = TenantStatus::Normal;
                tenant.updated_at = now;
                tx.put_tenant(&tenant)?;
            }
            Ok(tenant)
        })
    }

    #[instrument(skip(self))]
    fn upgrade_tenant(&self, tenant_id: u64, data_version: &str) -> ClusterResult<Tenant> {
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx.live_tenant(tenant_id)?;
            if tenant.data_version != data_version {
                tenant.data_version = data_version.to_string();
                tenant.updated_at = now;
                tx.put_tenant(&tenant)?;
            }
            Ok(tenant)
        })
    }

    fn apply_batch(&self, tenant_id: u64, batch: &RowBatch) -> ClusterResult<()> {
        match self.tenant_by_id(tenant_id)? {
            None => return Err(ClusterError::TenantIdNotFound(tenant_id)),
            Some(tenant) if tenant.status == TenantStatus::Dropping => {
                return Err(ClusterError::TenantState {
                    name: tenant.name,
                    actual: TenantStatus::Dropping.to_string(),
                    expected: "NORMAL or RESTORE".to_string(),
                })
            }
            Some(_) => {}
        }
        self.rows.apply(tenant_id, batch)
    }

    fn row_count(&self, tenant_id: u64) -> ClusterResult<u64> {
        let mut count = 0;
        self.rows.for_each(tenant_id, &mut |_, _, _| count += 1)?;
        Ok(count)
    }

    fn tenant_digest(&self, tenant_id: u64) -> ClusterResult<TenantDigest> {
        let mut digest = RowDigest::new();
        self.for_each_row(tenant_id, &mut |tablet_id, key, value| {
            digest.update(tablet_id, key, value)
        })?;
        Ok(digest.finish())
    }

    fn for_each_row(&self, tenant_id: u64, visit: &mut RowVisitor<'_>) -> ClusterResult<()> {
        self.rows.for_each(tenant_id, visit)
    }

    #[instrument(skip(self))]
    fn drop_rows(&self, tenant_id: u64) -> ClusterResult<u64> {
        // A run that cannot be read is dropped all the same; then the count is the
        // number of stored versions (an upper bound).
        let count = self
            .row_count(tenant_id)
            .unwrap_or_else(|_| self.rows.stats(tenant_id).versions);
        self.rows.drop_tenant(tenant_id)?;
        Ok(count)
    }

    #[instrument(skip(self, job), fields(tenant = %job.restore_tenant_name))]
    fn start_restore_job(&self, job: &NewRestoreJob, creator: &str) -> ClusterResult<RestoreJob> {
        let now = self.clock.now();
        self.transact(|tx| {
            let tenant_key = job.restore_tenant_name.as_bytes();
            if let Some(active_id) = tx.get_u64(T::JobActive, tenant_key)? {
                if let Some(existing) = tx.get::<RestoreJob>(T::Jobs, &active_id.to_be_bytes())? {
                    if existing.creator == creator {
                        return Ok(existing);
                    }
                    return abort(ClusterError::RestoreJobConflict {
                        tenant: job.restore_tenant_name.clone(),
                        job_id: active_id,
                    });
                }
            }
            let record = RestoreJob {
                job_id: tx.next_id("restore_job_id", 1, 1)?,
                restore_tenant_name: job.restore_tenant_name.clone(),
                restore_tenant_id: None,
                creator: creator.to_string(),
                status: RestoreJobStatus::RestorePre,
                restore_scn: job.restore_scn,
                data_backup_uri: job.data_backup_uri.clone(),
                archive_log_uri: job.archive_log_uri.clone(),
                backup_tenant_name: job.backup_tenant_name.clone(),
                backup_tenant_id: job.backup_tenant_id,
                backup_cluster_version: job.backup_cluster_version.clone(),
                backup_cluster_name: job.backup_cluster_name.clone(),
                restore_option: job.restore_option.clone(),
                backup_set_list: job.backup_set_list.clone(),
                backup_piece_list: job.backup_piece_list.clone(),
                ls_count: job.ls_count,
                finish_ls_count: 0,
                finished_ls: Default::default(),
                tablet_count: job.tablet_count,
                finish_tablet_count: 0,
                total_bytes: job.total_bytes,
                finish_bytes: 0,
                parts: Default::default(),
                recover_scn: 0,
                comment: String::new(),
                start_time: now,
                finish_time: None,
            };
            tx.put_job(&record)?;
            tx.put_u64(T::JobActive, tenant_key, record.job_id)?;
            Ok(record)
        })
    }

    fn update_restore_job(
        &self,
        job_id: u64,
        patch: &RestoreJobPatch,
    ) -> ClusterResult<RestoreJob> {
        self.transact(|tx| {
            let mut job = tx.running_job(job_id)?;
            let patch = patch.clone();
            if let Some(status) = patch.status {
                job.status = status;
            }
            if let Some(id) = patch.restore_tenant_id {
                job.restore_tenant_id = Some(id);
            }
            if let Some(scn) = patch.restore_scn {
                job.restore_scn = scn;
            }
            if let Some(name) = patch.backup_tenant_name {
                job.backup_tenant_name = Some(name);
            }
            if let Some(id) = patch.backup_tenant_id {
                job.backup_tenant_id = Some(id);
            }
            if let Some(version) = patch.backup_cluster_version {
                job.backup_cluster_version = Some(version);
            }
            if let Some(sets) = patch.backup_set_list {
                job.backup_set_list = sets;
            }
            if let Some(pieces) = patch.backup_piece_list {
                job.backup_piece_list = pieces;
            }
            if let Some(count) = patch.ls_count {
                job.ls_count = count;
            }
            if let Some(count) = patch.tablet_count {
                job.tablet_count = count;
            }
            if let Some(bytes) = patch.total_bytes {
                job.total_bytes = bytes;
            }
            if let Some(scn) = patch.recover_scn {
                job.recover_scn = scn;
            }
            if let Some(comment) = patch.comment {
                job.comment = comment;
            }
            tx.put_job(&job)?;
            Ok(job)
        })
    }

    fn record_restore_part(
        &self,
        job_id: u64,
        part: &str,
        progress: PartProgress,
    ) -> ClusterResult<RestoreJob> {
        self.transact(|tx| {
            let mut job = tx.running_job(job_id)?;
            job.parts.insert(part.to_string(), progress);
            job.finish_bytes = job.parts.values().map(|part| part.bytes).sum();
            job.finish_tablet_count = job.parts.values().map(|part| part.tablets).sum();
            tx.put_job(&job)?;
            Ok(job)
        })
    }

    fn finish_restore_ls(&self, job_id: u64, ls_id: u64) -> ClusterResult<RestoreJob> {
        self.transact(|tx| {
            let mut job = tx.running_job(job_id)?;
            if job.finished_ls.insert(ls_id) {
                job.finish_ls_count = job.finished_ls.len() as u64;
                tx.put_job(&job)?;
            }
            Ok(job)
        })
    }

    #[instrument(skip(self))]
    fn finish_restore_job(
        &self,
        job_id: u64,
        outcome: RestoreOutcome,
        comment: Option<&str>,
    ) -> ClusterResult<RestoreJob> {
        let now = self.clock.now();
        self.transact(|tx| {
            let key = job_id.to_be_bytes();
            let Some(mut job) = tx.get::<RestoreJob>(T::Jobs, &key)? else {
                return match tx.get::<RestoreJob>(T::History, &key)? {
                    Some(job) => Ok(job),
                    None => abort(ClusterError::RestoreJobNotFound(job_id)),
                };
            };
            job.status = outcome.into();
            job.finish_time = Some(now);
            if let Some(comment) = comment {
                job.comment = comment.to_string();
            }
            tx.remove(T::Jobs, &key)?;
            let tenant_key = job.restore_tenant_name.as_bytes();
            if tx.get_u64(T::JobActive, tenant_key)? == Some(job_id) {
                tx.remove(T::JobActive, tenant_key)?;
            }
            tx.put(T::History, &key, &job)?;
            Ok(job)
        })
    }

    fn restore_job(&self, job_id: u64) -> ClusterResult<Option<RestoreJob>> {
        let key = job_id.to_be_bytes();
        match self.get(T::Jobs, &key)? {
            Some(job) => Ok(Some(job)),
            None => self.get(T::History, &key),
        }
    }

    fn active_restore_job(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>> {
        match self.tree(T::JobActive).get(tenant_name.as_bytes())? {
            None => Ok(None),
            Some(id) => self.get(T::Jobs, &id),
        }
    }

    fn running_restore_jobs(&self) -> ClusterResult<Vec<RestoreJob>> {
        self.scan(T::Jobs)
    }

    fn restore_history(&self, tenant_name: Option<&str>) -> ClusterResult<Vec<RestoreJob>> {
        let jobs: Vec<RestoreJob> = self.scan(T::History)?;
        Ok(jobs
            .into_iter()
            .filter(|job| match tenant_name {
                Some(name) => job.restore_tenant_name == name,
                None => true,
            })
            .collect())
    }
}
