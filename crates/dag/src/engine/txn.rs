//! What the actor's decisions of one batch read and write.
//!
//! [`Txn`] collects what a batch produces: the records it touched, the writes, the
//! events, the replies, the sub-tasks to start and the retry timers to arm. None of it
//! is visible to anyone until the committer has made the batch durable. [`Sched`] holds
//! what every DAG shares while the actor decides: the time of the batch, the worker
//! slots, the lock table and the batch sequence numbers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::committer::Pending;
use super::locks::LockTable;
use super::msg::{Reply, RetryTimer};
use super::runner::Job;
use crate::dto::DtoBuilder;
use crate::event::Event;
use crate::store::Batch;

/// A map keyed by the engine's own ids (DAG, node, sub-task). The ids are counters the
/// engine assigns, never input, so they need no protection against chosen collisions:
/// one multiply instead of SipHash, which cost ~4 % of an in-memory chain.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: the id times an odd constant (a bijection, so distinct ids
/// never collide in the full hash; the high bits mix every bit of the id).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed (`write_u64`); any other input still hashes.
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(ID_MULTIPLIER);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(ID_MULTIPLIER);
    }
}

const ID_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// A node or sub-task touched by a batch, with its DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    pub(crate) dag_id: u64,
    pub(crate) id: u64,
}

/// What one batch of decisions produces.
#[derive(Default)]
pub(crate) struct Txn {
    pub(crate) batch: Batch,
    /// DAGs, nodes and sub-tasks touched, as touched (one may appear several times): a
    /// push per transition, sorted and deduplicated once, at seal ([`Txn::sort_dirty`]).
    pub(crate) dirty_dags: Vec<u64>,
    pub(crate) dirty_nodes: Vec<Member>,
    pub(crate) dirty_tasks: Vec<Member>,
    /// Sub-tasks created in this batch, not yet in the actor's index of sub-tasks.
    pub(crate) new_tasks: Vec<Member>,
    pub(crate) counters_dirty: bool,
    /// DAGs whose stage may have changed (one may appear several times).
    pub(crate) stage_dirty: Vec<u64>,
    pub(crate) events: Vec<Event>,
    /// Sub-tasks that start once the batch is durable.
    pub(crate) spawns: Vec<Job>,
    /// Sub-tasks that may run before their RUNNING transition is durable: they can
    /// continue after a crash and their node's start is already durable.
    pub(crate) early: Vec<Job>,
    pub(crate) replies: Vec<Reply>,
    /// Automatic retries waiting for their backoff.
    pub(crate) timers: Vec<RetryTimer>,
}

impl Txn {
    /// About how many writes the batch will seal to so far, at most (a DAG record
    /// brings its index entry; a few fixed keys on top; a record touched twice counts
    /// twice).
    pub(crate) fn writes_hint(&self) -> usize {
        self.batch.writes.bound()
            + 2 * self.dirty_dags.len()
            + self.dirty_nodes.len()
            + self.dirty_tasks.len()
            + 4
    }

    pub(crate) fn touch_node(&mut self, dag_id: u64, node_id: u64) {
        self.dirty_nodes.push(Member {
            dag_id,
            id: node_id,
        });
    }

    pub(crate) fn touch_task(&mut self, dag_id: u64, task_id: u64) {
        self.dirty_tasks.push(Member {
            dag_id,
            id: task_id,
        });
    }

    /// Sorts the DAGs, nodes and sub-tasks touched, each once, in order.
    pub(crate) fn sort_dirty(&mut self) {
        self.dirty_dags.sort_unstable();
        self.dirty_dags.dedup();
        for members in [&mut self.dirty_nodes, &mut self.dirty_tasks] {
            members.sort_unstable();
            members.dedup();
        }
    }

    /// Takes over the buffers of `used`, a sealed batch's, for the next batch (when it
    /// has none yet): the lists a batch fills and empties, not allocated per batch.
    pub(crate) fn reuse(&mut self, mut used: Txn) {
        reuse_list(&mut self.dirty_dags, &mut used.dirty_dags);
        reuse_list(&mut self.stage_dirty, &mut used.stage_dirty);
        reuse_list(&mut self.dirty_nodes, &mut used.dirty_nodes);
        reuse_list(&mut self.dirty_tasks, &mut used.dirty_tasks);
        reuse_list(&mut self.new_tasks, &mut used.new_tasks);
        // Jobs are never dropped here: the seal has drained them.
        if self.early.capacity() == 0 && used.early.is_empty() {
            std::mem::swap(&mut self.early, &mut used.early);
        }
    }

    /// Takes back the emptied lists of a batch the actor committed itself (their
    /// buffers: a chain's stage then allocates none for its events and its job).
    pub(crate) fn recycle(&mut self, mut spent: Pending) {
        reuse_list(&mut self.events, &mut spent.events);
        reuse_list(&mut self.spawns, &mut spent.spawns);
        reuse_list(&mut self.replies, &mut spent.replies);
        reuse_list(&mut self.timers, &mut spent.timers);
    }
}

/// Gives `mine` the emptied buffer of `theirs` when it has none of its own yet.
fn reuse_list<T>(mine: &mut Vec<T>, theirs: &mut Vec<T>) {
    if mine.capacity() == 0 {
        theirs.clear();
        std::mem::swap(mine, theirs);
    }
}

/// Sequence numbers of batches: the one being decided, and the highest one durable.
pub(crate) struct BatchClock {
    /// Sequence number of the batch being decided.
    pub(crate) deciding: u64,
    /// Highest batch sequence number known durable (written by the committer).
    committed: Arc<AtomicU64>,
}

impl BatchClock {
    pub(crate) fn new() -> BatchClock {
        BatchClock {
            deciding: 1,
            committed: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn is_durable(&self, seq: u64) -> bool {
        self.committed.load(Ordering::Acquire) >= seq
    }

    /// The committer's side: where it records the highest durable sequence number.
    pub(crate) fn committed(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.committed)
    }

    /// Closes the batch being decided and returns its sequence number.
    pub(crate) fn seal(&mut self) -> u64 {
        let seq = self.deciding;
        self.deciding += 1;
        seq
    }
}

/// The writes a DAG's creation or a node's start makes beside one per node or sub-task
/// (the node's and the DAG's records, its index entry, counters, lock), with room: the
/// bound both submit and a dynamic node's expansion check against the store's limit.
pub(crate) const FIXED_WRITES: usize = 8;

/// Resources shared by all DAGs while the actor decides.
pub(crate) struct Sched {
    /// The time of the batch being decided.
    pub(crate) now: DateTime<Utc>,
    pub(crate) running_total: usize,
    pub(crate) worker_limit: usize,
    pub(crate) locks: LockTable,
    /// Generic ids (for messages that name DAGs).
    pub(crate) ids: DtoBuilder,
    pub(crate) batches: BatchClock,
    /// The store's limit of writes per commit ([`crate::store::KvStore::max_batch_writes`]).
    pub(crate) max_batch_writes: Option<usize>,
}
