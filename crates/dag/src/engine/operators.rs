//! The operators a caller applies to a DAG: CANCEL, RETRY, ROLLBACK, PASS, and PASS of
//! one node. RUN is applied at submit.
//!
//! obshell's rules (`ob/agent/service/task/dag.go`, `node.go`): every operator but
//! CANCEL needs a FAILED DAG, whatever its operator (a failed rollback and a cancelled
//! DAG included); CANCEL needs an unfinished one. One method per operator; each checks
//! everything before it changes anything, so a refusal changes nothing. The actor
//! decides operators one at a time against the state they change, which makes them
//! compare-and-set.

use std::sync::Arc;

use super::dag_state::{ActiveDag, Mode};
use super::txn::{Sched, Txn};
use crate::error::{OperateError, Refusal};
use crate::model::{Operator, State};
use crate::record::{keys, NodeRecord};

impl ActiveDag {
    pub(crate) fn operate(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        operator: Operator,
    ) -> Result<(), OperateError> {
        match operator {
            Operator::Run => Err(refuse(Operator::Run, Refusal::NotSupported(Operator::Run))),
            Operator::Cancel => self.cancel(txn, sched),
            Operator::Retry => self.retry(txn, sched),
            Operator::Rollback => self.rollback(txn, sched),
            Operator::Pass => self.pass(txn, sched),
        }
    }

    /// Nodes in stage order: by layer, then id.
    fn nodes_in_stage_order(&self) -> Vec<&NodeRecord> {
        let mut nodes: Vec<&NodeRecord> = self.nodes.values().map(Arc::as_ref).collect();
        nodes.sort_by_key(|node| (node.layer, node.id));
        nodes
    }

    /// Whether any node carries ROLLBACK: the DAG was (partly) rolled back.
    fn rolled_back_any(&self) -> bool {
        self.nodes
            .values()
            .any(|node| node.operator == Operator::Rollback)
    }

    /// CANCEL: running sub-tasks are told to stop; the DAG settles FAILED+CANCEL.
    fn cancel(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        match self.mode {
            Mode::Settled => return Err(refuse(Operator::Cancel, Refusal::CancelFinishedDag)),
            // Already being cancelled: obshell's compare-and-set on the current state
            // succeeds again; nothing more to do.
            Mode::Cancelling => return Ok(()),
            Mode::Forward | Mode::Failing | Mode::RollingBack | Mode::RollbackFailing => {}
        }
        if let Some(node) = self.node_blocking_cancel() {
            return Err(refuse(
                Operator::Cancel,
                Refusal::CancelNotAllowed {
                    node: node.name.to_string(),
                },
            ));
        }
        // A rollback in progress is cancelled too: its running sub-tasks stop and the
        // DAG ends FAILED+CANCEL; RETRY or ROLLBACK continue it later.
        self.begin_cancel(txn);
        for token in self.running.values() {
            token.cancel();
        }
        self.ready.clear();
        self.settle(txn, sched);
        Ok(())
    }

    /// The node that cannot be cancelled, if any. obshell checks the nodes in stage
    /// order up to the first unfinished one; with parallel branches every node that is
    /// running is checked as well.
    fn node_blocking_cancel(&self) -> Option<&NodeRecord> {
        for node in self.nodes_in_stage_order() {
            if !self.node_flags(node).can_cancel {
                return Some(node);
            }
            if !node.state.is_finished() {
                break;
            }
        }
        self.nodes.values().map(Arc::as_ref).find(|node| {
            let runs = node.task_ids.iter().any(|id| self.running.contains_key(id));
            runs && !self.node_flags(node).can_cancel
        })
    }

    /// RETRY: failed nodes run again (their failed sub-tasks only), and so do the nodes
    /// a rollback undid.
    fn retry(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Retry, Refusal::RetryNotFailedDag));
        }
        let failed: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.state == State::Failed)
            .map(|n| n.id)
            .collect();
        for id in &failed {
            if let Some(node) = self.nodes.get(id) {
                if !self.node_flags(node).can_retry {
                    return Err(refuse(
                        Operator::Retry,
                        Refusal::RetryNotAllowed {
                            node: node.name.to_string(),
                        },
                    ));
                }
            }
        }
        self.reacquire_lock(txn, sched)?;
        for node_id in failed {
            self.reset_failed_node(txn, sched, node_id);
        }
        // After a (failed or cancelled) rollback, the nodes it undid run again.
        self.reset_rolled_back(txn, sched);
        // As obshell: the DAG runs again (RUN), the retried nodes carry RETRY, so a
        // retried DAG ends SUCCEED+RUN.
        self.set_dag(txn, sched, State::Ready, Operator::Run);
        self.rescan();
        Ok(())
    }

    /// A FAILED node goes back to READY+RETRY with its failed sub-tasks PENDING (a node
    /// that failed before its dynamic sub-tasks existed goes back to PENDING).
    fn reset_failed_node(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        let Some(node) = self.nodes.get(&node_id).cloned() else {
            return;
        };
        if !node.expanded {
            self.forget_tasks(txn, sched, &node);
            return;
        }
        for task_id in &node.task_ids {
            let Some(task) = self.tasks.get_mut(task_id) else {
                continue;
            };
            let undone = task.operator == Operator::Rollback;
            if task.state == State::Failed || undone {
                // Copied only if it changes (a batch or the store may hold it).
                let task = Arc::make_mut(task);
                task.auto_retries = 0;
                if undone {
                    // Its rollback ran (or failed): execute it afresh.
                    task.rollback_before_retry = false;
                }
                self.set_task(txn, sched, *task_id, State::Pending, Operator::Retry);
            }
        }
        self.set_node(txn, sched, node_id, State::Ready, Operator::Retry);
    }

    /// A dynamic node that failed before its sub-tasks existed: the stand-in sub-task
    /// is deleted and the node goes back to PENDING+RETRY, to expand again.
    fn forget_tasks(&mut self, txn: &mut Txn, sched: &mut Sched, node: &NodeRecord) {
        for task_id in &node.task_ids {
            self.tasks.remove(task_id);
            txn.batch.delete(keys::task(*task_id));
        }
        if let Some(n) = self.nodes.get_mut(&node.id).map(Arc::make_mut) {
            n.task_ids.clear();
        }
        self.unfinished_tasks.insert(node.id, 0);
        self.inputs.remove(&node.id);
        self.set_node(txn, sched, node.id, State::Pending, Operator::Retry);
    }

    /// Every node a rollback undid (or was undoing) goes back to PENDING+RUN with its
    /// sub-tasks PENDING, so that the DAG executes it again going forward.
    fn reset_rolled_back(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if !self.rolled_back_any() {
            return;
        }
        let undone: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.operator == Operator::Rollback)
            .map(|n| n.id)
            .collect();
        for node_id in undone {
            for task_id in self.task_ids(node_id) {
                if let Some(task) = self.tasks.get_mut(&task_id).map(Arc::make_mut) {
                    task.auto_retries = 0;
                    task.rollback_before_retry = false;
                }
                self.set_task(txn, sched, task_id, State::Pending, Operator::Run);
            }
            self.set_node(txn, sched, node_id, State::Pending, Operator::Run);
        }
        // Upstream outputs will be produced again.
        self.inputs.clear();
    }

    /// ROLLBACK: every node that ran is undone, downstream nodes first.
    fn rollback(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Rollback, Refusal::RollbackNotFailedDag));
        }
        for node in self.nodes_in_stage_order() {
            if ActiveDag::node_ran(node)
                && !ActiveDag::rolled_back(node)
                && !self.node_flags(node).can_rollback
            {
                return Err(refuse(
                    Operator::Rollback,
                    Refusal::RollbackNotAllowed {
                        node: node.name.to_string(),
                    },
                ));
            }
        }
        self.reacquire_lock(txn, sched)?;
        self.set_dag(txn, sched, State::Running, Operator::Rollback);
        Ok(())
    }

    /// PASS of the DAG: every unfinished node becomes SUCCEED+PASS, and so does the DAG.
    fn pass(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Pass, Refusal::PassNotFailedDag));
        }
        for node in self.nodes_in_stage_order() {
            if node.state != State::Succeed && !self.node_flags(node).can_pass {
                return Err(refuse(
                    Operator::Pass,
                    Refusal::PassNotAllowed {
                        node: node.name.to_string(),
                    },
                ));
            }
        }
        let node_ids: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.state != State::Succeed)
            .map(|n| n.id)
            .collect();
        for node_id in node_ids {
            self.pass_node_tasks(txn, sched, node_id);
        }
        self.set_dag(txn, sched, State::Succeed, Operator::Pass);
        self.release_lock(txn, sched);
        Ok(())
    }

    fn pass_node_tasks(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        for task_id in self.task_ids(node_id) {
            if self
                .tasks
                .get(&task_id)
                .is_some_and(|t| t.state != State::Succeed)
            {
                self.set_task(txn, sched, task_id, State::Succeed, Operator::Pass);
            }
        }
        self.set_node(txn, sched, node_id, State::Succeed, Operator::Pass);
    }

    /// PASS of one FAILED node: it becomes SUCCEED+PASS; when it was the only failed
    /// node, the DAG runs again from it.
    pub(crate) fn pass_node(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        node_id: u64,
    ) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Pass, Refusal::PassNodeNotFailedDag));
        }
        let Some(node) = self.nodes.get(&node_id) else {
            return Err(OperateError::NodeNotFound(node_id));
        };
        if node.state != State::Failed {
            return Err(refuse(
                Operator::Pass,
                Refusal::PassNodeNotFailedNode {
                    node: node.name.to_string(),
                },
            ));
        }
        if !self.node_flags(node).can_pass {
            return Err(refuse(
                Operator::Pass,
                Refusal::PassNodeNotAllowed {
                    node: node.name.to_string(),
                },
            ));
        }
        let others_failed = self
            .nodes
            .values()
            .any(|n| n.id != node_id && n.state == State::Failed);
        if !others_failed {
            self.reacquire_lock(txn, sched)?;
        }
        self.pass_node_tasks(txn, sched, node_id);
        if !others_failed {
            // As obshell: the DAG runs again from the passed node (after a rollback, the
            // nodes it undid run again too).
            self.reset_rolled_back(txn, sched);
            self.set_dag(txn, sched, State::Ready, Operator::Run);
            self.rescan();
        }
        Ok(())
    }
}

pub(crate) fn refuse(operator: Operator, reason: Refusal) -> OperateError {
    OperateError::NotAllowed { operator, reason }
}

/// The refusal of `operator` on a DAG that is not FAILED (nor running, for CANCEL).
pub(crate) fn not_failed(operator: Operator) -> Refusal {
    match operator {
        Operator::Run => Refusal::NotSupported(Operator::Run),
        Operator::Cancel => Refusal::CancelFinishedDag,
        Operator::Retry => Refusal::RetryNotFailedDag,
        Operator::Rollback => Refusal::RollbackNotFailedDag,
        Operator::Pass => Refusal::PassNotFailedDag,
    }
}
