//! Storage behind a small trait: a sled implementation (durable) and an in-memory one
//! (`mem.rs`), typed reads of the records, retention (`retention.rs`), the engine's commit log that
//! makes a sled store's commit one write and one `fdatasync` (`commit_log.rs`), the
//! device sync that makes a sled flush durable on the device (`device.rs`), and with the
//! `failpoints` feature a store that fails chosen commits (`failing.rs`).
//!
//! The engine only needs point reads, prefix scans and an atomic, durable batch commit.

use std::path::Path;
use std::sync::Arc;

use crate::model::{Maintenance, State};
use crate::record::{
    codec, keys, Codec, Counters, DagRecord, DecodeError, LockRecord, LogRecord, NodeRecord,
    Record, TaskRecord, Typed, FORMAT_BINARY, RECORD_VERSION,
};

mod applier;
mod commit_log;
mod device;
#[cfg(any(test, feature = "failpoints"))]
mod failing;
mod key;
mod log_write;
mod mem;
pub(crate) mod retention;

pub use commit_log::CommitLog;
#[cfg(any(test, feature = "failpoints"))]
pub use commit_log::LogFault;
pub use device::DeviceSync;
pub use key::Key;
pub use mem::MemStore;

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
    #[error("record under key {key} has unsupported format version {version} (this build reads binary format {FORMAT_BINARY} and JSON records of version {RECORD_VERSION})")]
    UnsupportedVersion { key: String, version: u64 },
    #[error("store is poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// A store other than sled failed (e.g. etcd unreachable); the text says where.
    #[error("{store}: {message}")]
    Backend {
        store: &'static str,
        message: String,
    },
    /// The store refused the write because this process no longer holds the right to
    /// write (a deposed maintainer); nothing of the batch was written.
    #[error("fenced: {0}; nothing was written")]
    Fenced(String),
    /// The batch has more writes than the store applies atomically.
    #[error("batch of {writes} writes over the store's limit of {limit} writes per atomic commit")]
    BatchTooLarge { writes: usize, limit: usize },
}

/// Key-value pairs from a scan, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A value as the engine hands it to a store: bytes, or a typed record. A store that
/// persists writes [`Batch::into_encoded`] (records encoded then, once); a store that
/// does not persist keeps records as they are and never pays for encoding them.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Bytes(Vec<u8>),
    Record(Record),
}

impl Stored {
    /// The bytes a store that persists writes.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Stored::Bytes(bytes) => bytes,
            Stored::Record(record) => record.encode(),
        }
    }
}

/// One atomic group of writes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Key → new value, or `None` to delete. Later writes to one key replace earlier ones.
    /// Keys are held inline ([`Key`]): no allocation per write, word compares.
    pub writes: Writes,
}

/// The writes of a [`Batch`]: pushed as they come, read in key order with each key once
/// (its last write), as a sorted map of them would be. Most batches are written in key
/// order (the actor seals its records sorted), so they are a `Vec` with no search per
/// write; an out-of-order one is sorted once, when it is read in order. `MemStore`
/// applies them as they were pushed (a later write replaces an earlier one there too).
#[derive(Debug, Default, Clone)]
pub struct Writes {
    entries: Vec<(Key, Option<Stored>)>,
    /// Whether `entries` is sorted by key with each key once.
    normal: bool,
}

impl Writes {
    fn push(&mut self, key: Key, value: Option<Stored>) {
        match self.entries.last() {
            None => {
                // A chain's stage writes six keys: one allocation, not two or three.
                self.entries.reserve(8);
                self.normal = true;
            }
            Some((last, _)) if *last >= key => self.normal = false,
            Some(_) => {}
        }
        self.entries.push((key, value));
    }

    /// How many keys the writes change (a key written twice counts once).
    pub fn len(&self) -> usize {
        if self.normal || self.entries.len() < 2 {
            return self.entries.len();
        }
        let mut keys: Vec<&Key> = self.entries.iter().map(|(key, _)| key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Room for `additional` more writes without growing (a submit's batch writes a
    /// record per node and per sub-task).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// At least [`Writes::len`], counted without sorting (a key written twice counts
    /// twice).
    pub(crate) fn bound(&self) -> usize {
        self.entries.len()
    }

    /// Moves `other`'s writes after these (they replace earlier writes of their keys).
    pub fn append(&mut self, other: &mut Writes) {
        if other.entries.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        self.normal = self.normal
            && other.normal
            && self.entries.last().map(|(key, _)| key) < other.entries.first().map(|(key, _)| key);
        self.entries.append(&mut other.entries);
        other.normal = false;
    }

    /// Sorts the writes by key, each key keeping its last write.
    pub(crate) fn normalize(&mut self) {
        if self.normal {
            return;
        }
        // Stable: the writes of one key stay in the order they were pushed.
        self.entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        self.entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        self.normal = true;
    }

    /// The writes as pushed, a later write of a key after an earlier one (what a store
    /// that applies them one by one needs; `MemStore`).
    pub(crate) fn into_pushed(self) -> std::vec::IntoIter<(Key, Option<Stored>)> {
        self.entries.into_iter()
    }
}

impl IntoIterator for Writes {
    type Item = (Key, Option<Stored>);
    type IntoIter = std::vec::IntoIter<(Key, Option<Stored>)>;

    /// The writes in key order, each key once (its last write).
    fn into_iter(mut self) -> Self::IntoIter {
        self.normalize();
        self.entries.into_iter()
    }
}

impl Batch {
    pub fn put(&mut self, key: impl Into<Key>, value: Vec<u8>) {
        self.writes.push(key.into(), Some(Stored::Bytes(value)));
    }

    /// Puts a typed record under `key`; it is encoded only by a store that persists.
    pub fn put_record(&mut self, key: impl Into<Key>, record: impl Typed) {
        self.put_shared(key, record.into_record());
    }

    /// Puts a record the caller keeps too (one of the engine's mirror, `Arc`-shared: see
    /// [`Record`]); it is encoded only by a store that persists.
    pub fn put_shared(&mut self, key: impl Into<Key>, record: impl Into<Record>) {
        self.writes
            .push(key.into(), Some(Stored::Record(record.into())));
    }

    /// Puts a DAG record and, in the same batch, its entry in the index of DAGs that
    /// have not succeeded ([`keys::ACTIVE`]): present unless the DAG is SUCCEED.
    pub fn put_dag(&mut self, dag: impl Into<Arc<DagRecord>>) {
        let dag: Arc<DagRecord> = dag.into();
        let entry = keys::active_key(dag.id);
        if dag.state == State::Succeed {
            self.delete(entry);
        } else {
            self.put(entry, Vec::new());
        }
        self.put_shared(keys::dag_key(dag.id), dag);
    }

    /// Puts the id counters, with the mark that the [`keys::ACTIVE`] index covers every
    /// DAG (every DAG is created in a batch that writes the counters).
    pub fn put_counters(&mut self, counters: Counters) {
        self.put_record(keys::COUNTERS, counters);
        self.put(keys::ACTIVE_INDEX_BUILT, Vec::new());
    }

    pub fn delete(&mut self, key: impl Into<Key>) {
        self.writes.push(key.into(), None);
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The writes as bytes in key order, each key once, records encoded (what a store
    /// that persists writes).
    pub fn into_encoded(self) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> {
        self.writes
            .into_iter()
            .map(|(key, value)| (key.to_bytes(), value.map(Stored::into_bytes)))
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

    /// The most writes one [`KvStore::commit`] applies atomically, if the store has a
    /// limit (etcd's `--max-txn-ops`): the committer never merges batches past it.
    fn max_batch_writes(&self) -> Option<usize> {
        None
    }

    /// Reads one key as the store holds it. A store of bytes keeps this default; a
    /// store that keeps typed records (one that does not persist) returns them as they
    /// are, without encoding.
    ///
    /// # Errors
    /// As [`KvStore::get`].
    fn get_stored(&self, key: &[u8]) -> Result<Option<Stored>, StoreError> {
        Ok(self.get(key)?.map(Stored::Bytes))
    }

    /// [`KvStore::scan_prefix`] with values as the store holds them (see
    /// [`KvStore::get_stored`]).
    ///
    /// # Errors
    /// As [`KvStore::scan_prefix`].
    fn scan_stored(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
        Ok(self
            .scan_prefix(prefix)?
            .into_iter()
            .map(|(key, value)| (key, Stored::Bytes(value)))
            .collect())
    }
}

/// The durable store: one sled tree, every batch written to the engine's commit log
/// ([`CommitLog`]: one write and one `fdatasync`); `commit` returns once the record is
/// synced, and the log applies it to the tree afterwards, while reads see it (whole)
/// through the log's overlay of synced records. sled itself is made durable at the log's
/// checkpoints ([`DeviceSync`]), and by every other user of the database that flushes.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    log: Arc<CommitLog>,
}

/// Name of the sled tree the engine uses.
pub const SLED_TREE: &str = "obrestore-dag-v1";

/// How long [`open_sled`] waits for the file lock a closing handle still holds.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens a sled database, waiting up to [`SLED_LOCK_WAIT`] while its file lock is
/// still held: sled's background flusher keeps a database's lock for a moment after
/// its last handle is dropped, so a reopen in the same process right after a close
/// would fail. Another process holding the database still fails, after the wait.
///
/// # Errors
/// As `sled::Config::open`.
pub fn open_sled(config: &sled::Config) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(err))
                if err.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

impl SledStore {
    /// Opens (or creates) a sled database at `path`.
    ///
    /// # Errors
    /// sled could not open the directory, or the commit log could not be opened or
    /// replayed ([`SledStore::from_db`]).
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with_log(path, commit_log::DEFAULT_CAPACITY)
    }

    /// [`SledStore::open`], creating the commit log with `capacity` bytes if the
    /// database has none yet (an existing log keeps its size). A smaller log
    /// checkpoints more often.
    ///
    /// # Errors
    /// As [`SledStore::open`].
    pub fn open_with_log(path: impl AsRef<Path>, capacity: u64) -> Result<SledStore, StoreError> {
        let db = open_sled(&sled::Config::new().path(path.as_ref()))?;
        SledStore::with_log(&db, capacity)
    }

    /// Uses the engine's tree inside an existing database (shared with other components,
    /// which share its [`DeviceSync`] too). The first store of a database opens its
    /// commit log and replays the records sled does not hold yet.
    ///
    /// # Errors
    /// sled could not open the tree, the database's files could not be synced, or the
    /// commit log could not be opened or replayed ([`StoreError::Corrupt`] for a log
    /// whose records do not continue the tree's).
    pub fn from_db(db: &sled::Db) -> Result<SledStore, StoreError> {
        SledStore::with_log(db, commit_log::DEFAULT_CAPACITY)
    }

    fn with_log(db: &sled::Db, capacity: u64) -> Result<SledStore, StoreError> {
        let tree = db.open_tree(SLED_TREE)?;
        let device = DeviceSync::of(db)?;
        let log = CommitLog::of(db, &tree, &device, capacity)?;
        Ok(SledStore {
            db: db.clone(),
            log,
        })
    }

    /// The underlying database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The engine's commit log in this database.
    pub fn commit_log(&self) -> &CommitLog {
        &self.log
    }
}

impl KvStore for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.log.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.log.scan_prefix(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        // One log sync per commit: the committer merges the batches that queue up
        // during a sync into one commit (group commit).
        self.log.commit(batch.into_encoded().collect())
    }

    fn commit_blocks(&self) -> bool {
        true
    }
}

/// Decodes a record in either format (binary, or the JSON written before it; see
/// `record/codec.rs`).
///
/// # Errors
/// [`StoreError::Corrupt`] for bytes that are not such a record,
/// [`StoreError::UnsupportedVersion`] for a format this build does not read.
pub fn decode<T: Codec>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|err| match err {
        DecodeError::Corrupt(reason) => StoreError::Corrupt {
            key: show_key(key),
            reason,
        },
        DecodeError::UnsupportedVersion(version) => StoreError::UnsupportedVersion {
            key: show_key(key),
            version,
        },
    })
}

fn show_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// A record as a store holds it: decoded from bytes, or taken as it is.
fn typed<T: Typed>(key: &[u8], stored: Stored) -> Result<T, StoreError> {
    match stored {
        Stored::Bytes(bytes) => decode(key, &bytes),
        Stored::Record(record) => T::from_record(record).ok_or_else(|| StoreError::Corrupt {
            key: show_key(key),
            reason: "a record of another kind".to_string(),
        }),
    }
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

    fn get<T: Typed>(&self, key: Vec<u8>) -> Result<Option<T>, StoreError> {
        match self.kv.get_stored(&key)? {
            Some(stored) => typed(&key, stored).map(Some),
            None => Ok(None),
        }
    }

    fn scan<T: Typed>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.kv
            .scan_stored(prefix)?
            .into_iter()
            .map(|(key, stored)| typed(&key, stored).map(|record| (key, record)))
            .collect()
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
        let logs = self.scan(&keys::task_logs(task_id))?;
        Ok(logs.into_iter().map(|(_, log)| log).collect())
    }

    /// The id counters, if any DAG was ever submitted.
    pub fn counters(&self) -> Result<Option<Counters>, StoreError> {
        self.get(keys::COUNTERS.to_vec())
    }

    /// Every lock record, by lock key.
    pub fn locks(&self) -> Result<Vec<(Vec<u8>, LockRecord)>, StoreError> {
        self.scan(keys::LOCK)
    }

    /// Every DAG, oldest first. Reads the whole store's DAG records: prefer
    /// [`Records::active_dags`] when only DAGs that have not succeeded matter.
    pub fn all_dags(&self) -> Result<Vec<DagRecord>, StoreError> {
        let dags = self.scan(keys::DAG)?;
        Ok(dags.into_iter().map(|(_, dag)| dag).collect())
    }

    /// Whether the [`keys::ACTIVE`] index covers every DAG: its mark is there, or no DAG
    /// was ever created (no counters). A store written before the index has counters
    /// and no mark; [`crate::Engine::open`] builds the index then.
    pub fn active_index_built(&self) -> Result<bool, StoreError> {
        Ok(self.kv.get_stored(keys::ACTIVE_INDEX_BUILT)?.is_some()
            || self.kv.get_stored(keys::COUNTERS)?.is_none())
    }

    /// Every DAG that has not succeeded (running, or FAILED and waiting for an
    /// operator: the ones the engine keeps in memory), oldest first. Reads only those
    /// DAGs' records, through the index `a/<id>`; a store whose index was never built
    /// (written before it existed, and not opened by an engine since) is scanned.
    pub fn active_dags(&self) -> Result<Vec<DagRecord>, StoreError> {
        if !self.active_index_built()? {
            let mut dags = self.all_dags()?;
            dags.retain(|dag| dag.state != State::Succeed);
            return Ok(dags);
        }
        let mut dags = Vec::new();
        for (key, _) in self.kv.scan_stored(keys::ACTIVE)? {
            let Some(id) = keys::active_id(&key) else {
                return Err(StoreError::Corrupt {
                    key: show_key(&key),
                    reason: "not an index key".to_string(),
                });
            };
            // An index entry always comes with its DAG record (same batch); retention
            // deletes only SUCCEED DAGs, which have no entry.
            if let Some(dag) = self.dag(id)? {
                dags.push(dag);
            }
        }
        Ok(dags)
    }

    /// Nodes of a DAG in the DAG's node order.
    pub fn nodes_of(&self, dag: &DagRecord) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes = Vec::with_capacity(dag.node_ids.len());
        for id in dag.node_ids.iter() {
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

#[cfg(test)]
mod writes_tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn value(write: Option<u8>) -> Option<Stored> {
        write.map(|byte| Stored::Bytes(vec![byte]))
    }

    proptest! {
        /// Pushed in any order, appended in any split, the writes read (in order, as
        /// `MemStore` applies them, and counted) as a sorted map of the last write of each
        /// key, which is what a batch was before.
        #[test]
        fn writes_read_as_a_map_of_last_writes(
            writes in proptest::collection::vec((0u8..12, proptest::option::of(any::<u8>())), 0..30),
            split in 0usize..30,
        ) {
            let mut expected = BTreeMap::new();
            for (key, write) in &writes {
                expected.insert(Key::new(&[b't', b'/', *key]), value(*write));
            }
            let split = split.min(writes.len());
            let mut halves = [Batch::default(), Batch::default()];
            for (index, (key, write)) in writes.iter().enumerate() {
                let batch = &mut halves[usize::from(index >= split)];
                match write {
                    Some(byte) => batch.put(vec![b't', b'/', *key], vec![*byte]),
                    None => batch.delete(vec![b't', b'/', *key]),
                }
            }
            let [mut first, mut second] = halves;
            first.writes.append(&mut second.writes);
            prop_assert!(second.is_empty());
            prop_assert_eq!(first.writes.len(), expected.len());
            prop_assert!(first.writes.bound() >= expected.len());
            let mut applied = BTreeMap::new();
            for (key, write) in first.writes.clone().into_pushed() {
                applied.insert(key, write);
            }
            prop_assert_eq!(&applied, &expected);
            let in_order: Vec<(Key, Option<Stored>)> = first.writes.clone().into_iter().collect();
            prop_assert_eq!(in_order, expected.clone().into_iter().collect::<Vec<_>>());
            let encoded: Vec<_> = first.into_encoded().collect();
            let want: Vec<_> = expected
                .into_iter()
                .map(|(key, write)| (key.to_bytes(), write.map(Stored::into_bytes)))
                .collect();
            prop_assert_eq!(encoded, want);
        }
    }
}
