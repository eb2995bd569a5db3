//! Persisted records. These are the on-disk format (see `docs/engine-store.md`); DTOs are
//! built from them at the boundary and are separate types. `codec.rs` encodes them
//! (binary, format 2) and reads both formats (format 1 was JSON).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{FanOut, Flags, Maintenance, Operator, RetryPolicy, Scope, State};

pub mod codec;

pub use codec::{Codec, DecodeError, FORMAT_BINARY};

/// Version of the records' fields (the `v` of JSON records; the binary format's first
/// byte, [`FORMAT_BINARY`], names its layout).
pub const RECORD_VERSION: u32 = 1;

/// One typed record on its way to a store (see [`crate::store::Batch`]): a store that
/// persists encodes it at commit ([`Record::encode`]); one that does not keeps it as is.
///
/// DAG, node and sub-task records are shared ([`Arc`]) with the engine's mirror of the
/// DAG: sealing one into a batch is a reference count, and the mirror copies a record
/// (`Arc::make_mut`) only when it changes one that a batch or a store still holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Dag(Arc<DagRecord>),
    Node(Arc<NodeRecord>),
    Task(Arc<TaskRecord>),
    Log(Box<LogRecord>),
    Lock(LockRecord),
    Counters(Counters),
}

impl Record {
    /// The binary form (format 2).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Dag(record) => codec::encode(record.as_ref()),
            Record::Node(record) => codec::encode(record.as_ref()),
            Record::Task(record) => codec::encode(record.as_ref()),
            Record::Log(record) => codec::encode(record.as_ref()),
            Record::Lock(record) => codec::encode(record),
            Record::Counters(record) => codec::encode(record),
        }
    }

    /// The JSON form (format 1, what this engine wrote before format 2).
    pub fn to_json(&self) -> Vec<u8> {
        let json = match self {
            Record::Dag(record) => serde_json::to_vec(record.as_ref()),
            Record::Node(record) => serde_json::to_vec(record.as_ref()),
            Record::Task(record) => serde_json::to_vec(record.as_ref()),
            Record::Log(record) => serde_json::to_vec(record),
            Record::Lock(record) => serde_json::to_vec(record),
            Record::Counters(record) => serde_json::to_vec(record),
        };
        // Our record types contain no maps with non-string keys and no fallible
        // Serialize impls.
        json.unwrap_or_default()
    }
}

/// A record type as one variant of [`Record`].
pub trait Typed: Codec {
    fn into_record(self) -> Record;
    /// The record if it is of this type.
    fn from_record(record: Record) -> Option<Self>;
}

macro_rules! typed {
    ($type:ty, $variant:ident, shared) => {
        impl Typed for $type {
            fn into_record(self) -> Record {
                Record::$variant(Arc::new(self))
            }
            fn from_record(record: Record) -> Option<Self> {
                match record {
                    Record::$variant(record) => Some(Arc::unwrap_or_clone(record)),
                    _ => None,
                }
            }
        }

        impl From<Arc<$type>> for Record {
            fn from(record: Arc<$type>) -> Record {
                Record::$variant(record)
            }
        }
    };
    ($type:ty, $variant:ident, boxed) => {
        impl Typed for $type {
            fn into_record(self) -> Record {
                Record::$variant(Box::new(self))
            }
            fn from_record(record: Record) -> Option<Self> {
                match record {
                    Record::$variant(record) => Some(*record),
                    _ => None,
                }
            }
        }
    };
    ($type:ty, $variant:ident) => {
        impl Typed for $type {
            fn into_record(self) -> Record {
                Record::$variant(self)
            }
            fn from_record(record: Record) -> Option<Self> {
                match record {
                    Record::$variant(record) => Some(record),
                    _ => None,
                }
            }
        }
    };
}

typed!(DagRecord, Dag, shared);
typed!(NodeRecord, Node, shared);
typed!(TaskRecord, Task, shared);
typed!(LogRecord, Log, boxed);
typed!(LockRecord, Lock);
typed!(Counters, Counters);

/// Serde of a record field held in an [`Arc`]: written and read as the value itself,
/// so the JSON form (format 1) is unchanged.
pub(crate) mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, T>(value: &Arc<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize + ?Sized,
    {
        T::serialize(value, serializer)
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Arc<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: ?Sized,
        Box<T>: Deserialize<'de>,
    {
        Box::<T>::deserialize(deserializer).map(Arc::from)
    }
}

/// Serde of a list of shared values (a static fan-out's parameters): written and read
/// as a plain list of values, so the JSON form (format 1) is unchanged.
pub(crate) mod shared_values {
    use std::sync::Arc;

    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    pub fn serialize<S>(values: &Arc<[Arc<Value>]>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        let mut seq = serializer.serialize_seq(Some(values.len()))?;
        for value in values.iter() {
            seq.serialize_element(value.as_ref())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D>(deserializer: D) -> Result<Arc<[Arc<Value>]>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let values = Vec::<Value>::deserialize(deserializer)?;
        Ok(values.into_iter().map(Arc::new).collect())
    }
}

/// A DAG as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRecord {
    pub v: u32,
    pub id: u64,
    pub name: String,
    /// Agent-local or cluster DAG (records written before scopes existed are agent DAGs).
    #[serde(default)]
    pub scope: Scope,
    pub state: State,
    pub operator: Operator,
    pub stage: u32,
    pub max_stage: u32,
    pub maintenance: Maintenance,
    /// Whether the maintenance lock is currently held by this DAG.
    pub lock_held: bool,
    pub params: Value,
    pub pools: BTreeMap<String, u32>,
    /// Shared by every copy of the record (the actor's, a batch's, the in-memory
    /// store's): a new stage costs no copy of the DAG's node list.
    #[serde(with = "shared")]
    pub node_ids: Arc<[u64]>,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

impl DagRecord {
    /// obshell's `is_finished = false`: not SUCCEED, and not FAILED without a
    /// maintenance lock (a FAILED maintenance DAG waits for an operator).
    pub fn is_unfinished(&self) -> bool {
        match self.state {
            State::Succeed => false,
            State::Failed => self.maintenance.is_maintenance(),
            _ => true,
        }
    }
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub v: u32,
    pub id: u64,
    pub dag_id: u64,
    /// Name, type and links are shared by every copy of the record: a
    /// transition of the node copies none of them.
    #[serde(with = "shared")]
    pub name: Arc<str>,
    #[serde(with = "shared")]
    pub task_type: Arc<str>,
    /// Longest-path layer from a root, 1-based.
    pub layer: u32,
    #[serde(with = "shared")]
    pub upstream: Arc<[u64]>,
    #[serde(with = "shared")]
    pub downstream: Arc<[u64]>,
    pub state: State,
    pub operator: Operator,
    pub fan_out: FanOut,
    /// Whether the sub-tasks exist yet (dynamic fan-out creates them at node start).
    pub expanded: bool,
    pub task_ids: Vec<u64>,
    pub pool: Option<String>,
    pub timeout_ms: u64,
    pub retry: Option<RetryPolicy>,
    pub flags: Option<Flags>,
    pub failure_exit_maintenance: bool,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

/// A sub-task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub v: u32,
    pub id: u64,
    pub dag_id: u64,
    pub node_id: u64,
    pub index: u32,
    /// Name, type and parameters are shared by every copy of the record and by the
    /// attempts: a transition of the sub-task copies none of them.
    #[serde(with = "shared")]
    pub name: Arc<str>,
    #[serde(with = "shared")]
    pub task_type: Arc<str>,
    #[serde(with = "shared")]
    pub params: Arc<Value>,
    pub flags: Flags,
    pub state: State,
    pub operator: Operator,
    pub execute_times: u32,
    /// Automatic retries used in the current run (reset by a manual RETRY).
    pub auto_retries: u32,
    /// The sub-task failed and must run its rollback before it executes again.
    pub rollback_before_retry: bool,
    /// The sub-task has executed at least once (so ROLLBACK must undo it).
    pub ran: bool,
    pub local: Map<String, Value>,
    pub output: Map<String, Value>,
    pub additional_data: Map<String, Value>,
    pub log_count: u64,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

/// One log line of a sub-task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub v: u32,
    pub task_id: u64,
    pub execute_times: u32,
    pub time: DateTime<Utc>,
    pub content: String,
}

/// A maintenance lock: the DAG that took it last, and whether that DAG still holds it.
/// Kept after release (as obshell's lock row is), so that an operator on an older DAG
/// can tell that a newer one took the lock in between (`Task.Expired`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    pub v: u32,
    /// The DAG that took the lock last.
    pub dag_id: u64,
    /// Whether it still holds the lock. Records written before release was recorded
    /// only existed while held.
    #[serde(default = "held_by_default")]
    pub held: bool,
}

fn held_by_default() -> bool {
    true
}

/// Id counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub v: u32,
    pub next_dag: u64,
    pub next_node: u64,
    pub next_task: u64,
}

/// Key layout. Numbers are big-endian so prefix scans come out in id order.
pub mod keys {
    /// Key of the id counters.
    pub const COUNTERS: &[u8] = b"m/counters";
    /// Prefix of DAG records.
    pub const DAG: &[u8] = b"d/";
    /// Prefix of node records.
    pub const NODE: &[u8] = b"n/";
    /// Prefix of sub-task records.
    pub const TASK: &[u8] = b"t/";
    /// Prefix of sub-task log lines.
    pub const LOG: &[u8] = b"l/";
    /// Prefix of maintenance locks.
    pub const LOCK: &[u8] = b"k/";
    /// Prefix of the index of DAGs that have not succeeded (the ones the engine keeps
    /// in memory): `a/<id>` → empty, written in the batch that writes the DAG record.
    pub const ACTIVE: &[u8] = b"a/";
    /// Present once the [`ACTIVE`] index covers every DAG (stores written before the
    /// index get it built at open).
    pub const ACTIVE_INDEX_BUILT: &[u8] = b"m/active-index";

    use crate::store::Key;

    /// `prefix` (two bytes) then the big-endian id, on the stack.
    fn id_bytes(prefix: &[u8], id: u64) -> [u8; 10] {
        let mut key = [0u8; 10];
        key[..2].copy_from_slice(&prefix[..2]);
        key[2..].copy_from_slice(&id.to_be_bytes());
        key
    }

    fn with_id(prefix: &[u8], id: u64) -> Vec<u8> {
        id_bytes(prefix, id).to_vec()
    }

    pub fn dag(id: u64) -> Vec<u8> {
        with_id(DAG, id)
    }

    /// [`dag`] as a batch's key, built without an allocation (as [`node_key`],
    /// [`task_key`], [`active_key`]: what a seal writes for every dirty record).
    pub fn dag_key(id: u64) -> Key {
        Key::new(&id_bytes(DAG, id))
    }

    pub fn active(id: u64) -> Vec<u8> {
        with_id(ACTIVE, id)
    }

    pub fn active_key(id: u64) -> Key {
        Key::new(&id_bytes(ACTIVE, id))
    }

    /// The DAG id of an [`ACTIVE`] index key.
    pub fn active_id(key: &[u8]) -> Option<u64> {
        let id = key.strip_prefix(ACTIVE)?;
        Some(u64::from_be_bytes(id.try_into().ok()?))
    }

    pub fn node(id: u64) -> Vec<u8> {
        with_id(NODE, id)
    }

    pub fn node_key(id: u64) -> Key {
        Key::new(&id_bytes(NODE, id))
    }

    pub fn task(id: u64) -> Vec<u8> {
        with_id(TASK, id)
    }

    pub fn task_key(id: u64) -> Key {
        Key::new(&id_bytes(TASK, id))
    }

    /// Prefix of one sub-task's log lines.
    pub fn task_logs(task_id: u64) -> Vec<u8> {
        with_id(LOG, task_id)
    }

    pub fn log(task_id: u64, seq: u64) -> Vec<u8> {
        let mut key = task_logs(task_id);
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// Lock key: `k/GLOBAL` or `k/T/<tenant>`.
    pub fn lock(maintenance: &crate::model::Maintenance) -> Option<Vec<u8>> {
        match maintenance {
            crate::model::Maintenance::None => None,
            crate::model::Maintenance::Global => Some(b"k/GLOBAL".to_vec()),
            crate::model::Maintenance::Tenant(name) => {
                let mut key = b"k/T/".to_vec();
                key.extend_from_slice(name.as_bytes());
                Some(key)
            }
        }
    }

    /// The lock a key of [`lock`] names (the inverse of [`lock`]).
    pub fn lock_of(key: &[u8]) -> crate::model::Maintenance {
        match key.strip_prefix(b"k/T/") {
            Some(name) => {
                crate::model::Maintenance::Tenant(String::from_utf8_lossy(name).into_owned())
            }
            None if key == b"k/GLOBAL" => crate::model::Maintenance::Global,
            None => crate::model::Maintenance::None,
        }
    }
}
