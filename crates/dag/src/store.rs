//! Storage behind a small trait: a sled implementation (durable) and an in-memory one,
//! typed reads of the records, retention (`retention.rs`), the device sync that makes a
//! sled flush durable on the device (`device.rs`), and with the `failpoints` feature a
//! store that fails chosen commits (`failing.rs`).
//!
//! The engine only needs point reads, prefix scans and an atomic, durable batch commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::Maintenance;
use crate::record::{
    keys, DagRecord, LockRecord, LogRecord, NodeRecord, TaskRecord, RECORD_VERSION,
};

mod device;
#[cfg(any(test, feature = "failpoints"))]
mod failing;
pub(crate) mod retention;

pub use device::DeviceSync;

#[cfg(any(test, feature = "failpoints"))]
pub use failing::FailingStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record under key {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("record under key {key} has unsupported format version {version} (this build reads {RECORD_VERSION})")]
    UnsupportedVersion { key: String, version: u64 },
    #[error("store is poisoned by an earlier failure: {0}")]
    Poisoned(String),
}

/// Key-value pairs from a scan, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One atomic group of writes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Key → new value, or `None` to delete. Later writes to one key replace earlier ones.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Serializes `record` as JSON under `key`.
    pub fn put_json<T: Serialize>(&mut self, key: Vec<u8>, record: &T) {
        // Serializing our own record types cannot fail: they contain no maps with
        // non-string keys and no fallible Serialize impls.
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.put(key, bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// The storage the engine runs on.
pub trait KvStore: Send + Sync + 'static {
    /// Reads one key.
    ///
    /// # Errors
    /// An I/O failure of the underlying store.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All pairs whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// An I/O failure of the underlying store.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError>;

    /// Applies `batch` atomically and returns only once it is durable.
    ///
    /// # Errors
    /// An I/O failure; the batch may then be applied or not, but never partly.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;

    /// Whether [`KvStore::commit`] blocks on I/O (then the engine runs it off the
    /// async threads).
    fn commit_blocks(&self) -> bool;
}

/// The in-memory store: for tests and benchmarks; nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    map: Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self
            .map
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let map = self
            .map
            .read()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self
            .map
            .write()
            .map_err(|e| StoreError::Poisoned(e.to_string()))?;
        for (key, value) in batch.writes {
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

/// The durable store: one sled tree, every batch applied atomically, flushed and synced
/// to the device ([`DeviceSync`]) before `commit` returns.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    device: Arc<DeviceSync>,
}

/// Name of the sled tree the engine uses.
pub const SLED_TREE: &str = "obrestore-dag-v1";

impl SledStore {
    /// Opens (or creates) a sled database at `path`.
    ///
    /// # Errors
    /// sled could not open the directory.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(path.as_ref()).open()?;
        SledStore::from_db(&db)
    }

    /// Uses the engine's tree inside an existing database (shared with other components,
    /// which share its [`DeviceSync`] too).
    ///
    /// # Errors
    /// sled could not open the tree, or the database's files could not be synced.
    pub fn from_db(db: &sled::Db) -> Result<SledStore, StoreError> {
        let tree = db.open_tree(SLED_TREE)?;
        Ok(SledStore {
            db: db.clone(),
            tree,
            device: DeviceSync::of(db)?,
        })
    }

    /// The underlying database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }
}

impl KvStore for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|value| value.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch.writes {
            match value {
                Some(value) => sled_batch.insert(key, value),
                None => sled_batch.remove(key),
            }
        }
        self.tree.apply_batch(sled_batch)?;
        // One device sync per commit: the committer merges the batches that queue up
        // during a sync into one commit (group commit).
        self.device.flush(&self.db)?;
        Ok(())
    }

    fn commit_blocks(&self) -> bool {
        true
    }
}

/// Decodes a JSON record and checks its version field.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad JSON, [`StoreError::UnsupportedVersion`] for a version
/// this build does not read.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let show_key = || String::from_utf8_lossy(key).into_owned();
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            key: show_key(),
            reason: e.to_string(),
        })?;
    let version = value
        .get("v")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version != u64::from(RECORD_VERSION) {
        return Err(StoreError::UnsupportedVersion {
            key: show_key(),
            version,
        });
    }
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        key: show_key(),
        reason: e.to_string(),
    })
}

/// Typed reads over a [`KvStore`].
#[derive(Clone)]
pub struct Records {
    pub(crate) kv: Arc<dyn KvStore>,
}

impl Records {
    pub fn new(kv: Arc<dyn KvStore>) -> Records {
        Records { kv }
    }

    fn get<T: DeserializeOwned>(&self, key: Vec<u8>) -> Result<Option<T>, StoreError> {
        match self.kv.get(&key)? {
            Some(bytes) => decode(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub fn dag(&self, id: u64) -> Result<Option<DagRecord>, StoreError> {
        self.get(keys::dag(id))
    }

    /// The DAG that took the maintenance lock `lock` last, if its record still exists
    /// (obshell's lock row `dag_id`), and whether it still holds the lock. The one
    /// reader of lock records outside the actor: the engine's queries and the offline
    /// agent (state opened without an engine) both use it.
    pub fn lock_taker(&self, lock: &Maintenance) -> Result<Option<(DagRecord, bool)>, StoreError> {
        let Some(key) = keys::lock(lock) else {
            return Ok(None);
        };
        let Some(record) = self.get::<LockRecord>(key)? else {
            return Ok(None);
        };
        Ok(self.dag(record.dag_id)?.map(|dag| (dag, record.held)))
    }

    pub fn node(&self, id: u64) -> Result<Option<NodeRecord>, StoreError> {
        self.get(keys::node(id))
    }

    pub fn task(&self, id: u64) -> Result<Option<TaskRecord>, StoreError> {
        self.get(keys::task(id))
    }

    pub fn logs(&self, task_id: u64) -> Result<Vec<LogRecord>, StoreError> {
        self.kv
            .scan_prefix(&keys::task_logs(task_id))?
            .into_iter()
            .map(|(key, value)| decode(&key, &value))
            .collect()
    }

    pub fn all_dags(&self) -> Result<Vec<DagRecord>, StoreError> {
        self.kv
            .scan_prefix(keys::DAG)?
            .into_iter()
            .map(|(key, value)| decode(&key, &value))
            .collect()
    }

    /// Nodes of a DAG in the DAG's node order.
    pub fn nodes_of(&self, dag: &DagRecord) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes = Vec::with_capacity(dag.node_ids.len());
        for id in &dag.node_ids {
            if let Some(node) = self.node(*id)? {
                nodes.push(node);
            }
        }
        Ok(nodes)
    }

    /// Sub-tasks of a node in index order.
    pub fn tasks_of(&self, node: &NodeRecord) -> Result<Vec<TaskRecord>, StoreError> {
        let mut tasks = Vec::with_capacity(node.task_ids.len());
        for id in &node.task_ids {
            if let Some(task) = self.task(*id)? {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }
}
