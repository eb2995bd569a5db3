//! What [`crate::Engine::open`] reads from the store, and the restart rules for the
//! DAGs it finds unfinished. Open reads only the DAGs that have not succeeded, through
//! their index (`keys::ACTIVE`); a store written before the index gets it built here,
//! once.
//!
//! Recovery relies on the commit protocol (see `actor.rs`): whatever a caller was told
//! is durable; a non-continuable sub-task starts only once its RUNNING is durable, so a
//! RUNNING non-continuable sub-task found here may have run and fails ("interrupted and
//! cannot continue"); a continuable one may have run with or without its RUNNING being
//! durable, and runs again. The restart transitions form the actor's first batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::dag_state::{ActiveDag, Mode};
use super::locks::LockTable;
use super::msg::Outcome;
use super::txn::{IdMap, Sched, Txn};
use crate::error::OpenError;
use crate::model::{Operator, State};
use crate::record::{keys, Counters, DagRecord, TaskRecord, RECORD_VERSION};
use crate::store::{Batch, KvStore, Records, StoreError};
use crate::task::TaskRegistry;

/// Log line of a non-continuable sub-task found RUNNING at open.
const INTERRUPTED: &str = "ERROR: task unexpectedly interrupted and cannot continue";

/// What the store holds for the actor: every DAG not SUCCEED, the id counters and the
/// lock table.
pub(crate) struct Loaded {
    pub(crate) counters: Counters,
    pub(crate) dags: BTreeMap<u64, ActiveDag>,
    /// The DAG of every sub-task of a loaded DAG.
    pub(crate) task_dag: IdMap<u64>,
    /// The DAG of every node of a loaded DAG.
    pub(crate) node_dag: IdMap<u64>,
    pub(crate) locks: LockTable,
}

/// Reads what the actor needs from the store.
///
/// # Errors
/// The store could not be read, or a stored DAG uses an unregistered task type.
pub(crate) fn load(kv: &Arc<dyn KvStore>, registry: &TaskRegistry) -> Result<Loaded, OpenError> {
    let records = Records::new(Arc::clone(kv));
    let counters = match records.counters()? {
        Some(counters) => counters,
        None => Counters {
            v: RECORD_VERSION,
            ..Counters::default()
        },
    };
    let mut loaded = Loaded {
        counters,
        dags: BTreeMap::new(),
        task_dag: IdMap::default(),
        node_dag: IdMap::default(),
        locks: LockTable::load(&records)?,
    };
    let index_built = records.active_index_built()?;
    let active = records.active_dags()?;
    if !index_built {
        build_active_index(kv.as_ref(), &active)?;
    }
    for dag in active {
        let nodes = records.nodes_of(&dag)?;
        let mut tasks = Vec::new();
        for node in &nodes {
            if registry.get(&node.task_type).is_none() {
                return Err(OpenError::UnknownTaskType {
                    dag: dag.id,
                    task_type: node.task_type.to_string(),
                });
            }
            loaded.node_dag.insert(node.id, dag.id);
            for task in records.tasks_of(node)? {
                loaded.task_dag.insert(task.id, dag.id);
                tasks.push(task);
            }
        }
        loaded
            .dags
            .insert(dag.id, ActiveDag::from_records(dag, nodes, tasks));
    }
    Ok(loaded)
}

/// Builds the index of DAGs that have not succeeded in a store written before it
/// existed, in one commit with its mark (see `Records::active_index_built`).
fn build_active_index(kv: &dyn KvStore, active: &[DagRecord]) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    for dag in active {
        batch.put(keys::active(dag.id), Vec::new());
    }
    batch.put(keys::ACTIVE_INDEX_BUILT.to_vec(), Vec::new());
    kv.commit(batch)
}

impl ActiveDag {
    /// Restart rules for a DAG found unfinished at open: in every RUNNING node,
    /// continuable sub-tasks go back to PENDING (READY+ROLLBACK when rolling back) and
    /// the node to READY; non-continuable RUNNING ones fail; a DAG being cancelled
    /// cancels its RUNNING ones. A failing DAG then settles.
    pub(crate) fn recover(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if self.mode == Mode::Settled {
            return;
        }
        let rolling_back = matches!(self.mode, Mode::RollingBack | Mode::RollbackFailing);
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            let Some(node) = self.nodes.get(&node_id).cloned() else {
                continue;
            };
            if node.state != State::Running {
                continue;
            }
            for task_id in &node.task_ids {
                let Some(task) = self.tasks.get(task_id).cloned() else {
                    continue;
                };
                self.recover_task(txn, sched, &task, node.operator, rolling_back);
            }
            let still_running = self
                .nodes
                .get(&node_id)
                .is_some_and(|n| n.state == State::Running);
            if !rolling_back && still_running {
                self.set_node(txn, sched, node_id, State::Ready, node.operator);
            }
        }
        self.settle(txn, sched);
    }

    fn recover_task(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        task: &TaskRecord,
        node_operator: Operator,
        rolling_back: bool,
    ) {
        let (task_id, node_id) = (task.id, task.node_id);
        match task.state {
            State::Running if self.mode == Mode::Cancelling => {
                self.log(txn, sched, task_id, Outcome::Cancelled.log_line());
                self.mark_rollback_first(task_id);
                self.set_task(txn, sched, task_id, State::Failed, Operator::Cancel);
                self.set_node(txn, sched, node_id, State::Failed, Operator::Cancel);
            }
            State::Running if !task.flags.can_continue => {
                self.log(txn, sched, task_id, INTERRUPTED.to_string());
                self.mark_rollback_first(task_id);
                self.set_task(txn, sched, task_id, State::Failed, task.operator);
                if rolling_back {
                    self.settle_rollback_node(txn, sched, node_id);
                } else {
                    self.set_node(txn, sched, node_id, State::Failed, node_operator);
                    self.fail();
                }
            }
            State::Running | State::Ready if rolling_back => {
                self.set_task(txn, sched, task_id, State::Ready, Operator::Rollback);
                self.enqueue(task_id);
            }
            State::Running | State::Ready => {
                self.set_task(txn, sched, task_id, State::Pending, task.operator);
            }
            _ => {}
        }
    }
}
