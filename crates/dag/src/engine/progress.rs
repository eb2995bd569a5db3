//! How a DAG moves on its own, between operators: forward progress (start nodes whose
//! upstream succeeded, finish the DAG), dispatch of READY sub-tasks within the pools,
//! the results of sub-task runs (with automatic retries), rollback progress (undo nodes
//! downstream first), and settling a failing or cancelled DAG once nothing of it runs.
//!
//! Invariant: which of these apply is decided by the DAG's [`Mode`] alone; a step that
//! does not apply to the mode does nothing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::dag_state::{ActiveDag, Mode};
use super::msg::{Attempt, Outcome, RetryTimer, RunResult};
use super::runner::{Job, Phase};
use super::txn::{Sched, Txn, FIXED_WRITES};
use crate::model::{FanOut, Operator, State};
use crate::record::{Counters, NodeRecord};
use crate::store::StoreError;

impl ActiveDag {
    /// Forward progress: start nodes whose upstream succeeded, resume interrupted ones,
    /// finish the DAG when every node succeeded.
    pub(crate) fn advance(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        counters: &mut Counters,
        finished: &mut Vec<u64>,
    ) {
        if self.mode != Mode::Forward {
            return;
        }
        // Starting a node may finish it at once (no sub-tasks), which adds its downstream
        // nodes to the candidates, so this runs until the worklist is empty.
        while let Some(std::cmp::Reverse(node_id)) = self.candidates.pop() {
            if self.mode != Mode::Forward {
                break;
            }
            if self.startable(node_id) {
                self.start_node(txn, sched, counters, node_id);
            }
        }
        if self.mode == Mode::Forward && self.succeeded_nodes == self.nodes.len() {
            let operator = self.rec.operator;
            self.set_dag(txn, sched, State::Succeed, operator);
            self.release_lock(txn, sched);
            finished.push(self.id());
        }
    }

    /// A PENDING node whose upstream all succeeded, or an interrupted (READY) one.
    fn startable(&self, node_id: u64) -> bool {
        let Some(node) = self.nodes.get(&node_id) else {
            return false;
        };
        match node.state {
            State::Pending => node.upstream.iter().all(|up| {
                self.nodes
                    .get(up)
                    .is_some_and(|u| u.state == State::Succeed)
            }),
            State::Ready => true,
            _ => false,
        }
    }

    fn start_node(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        counters: &mut Counters,
        node_id: u64,
    ) {
        let Some(expanded) = self.nodes.get(&node_id).map(|node| node.expanded) else {
            return;
        };
        if !expanded {
            // Only a dynamic node not yet expanded needs its record while it changes.
            let Some(node) = self.nodes.get(&node_id).cloned() else {
                return;
            };
            if !self.expand(txn, sched, counters, &node) {
                return;
            }
        }
        let operator = self.node_operator(node_id, Operator::Run);
        if self.rec.state == State::Ready {
            let dag_operator = self.rec.operator;
            self.set_dag(txn, sched, State::Running, dag_operator);
        }
        self.set_node(txn, sched, node_id, State::Running, operator);
        self.input_of(node_id);
        let mut pending = false;
        // The ids are borrowed out of the node for the loop (nothing in it reads them),
        // not copied: a wide node's start copies no list.
        let task_ids = self
            .nodes
            .get_mut(&node_id)
            .map(|node| std::mem::take(&mut Arc::make_mut(node).task_ids))
            .unwrap_or_default();
        let pool = self
            .nodes
            .get(&node_id)
            .and_then(|n| n.pool.clone())
            .unwrap_or_default();
        for &task_id in &task_ids {
            let Some(task) = self.tasks.get(&task_id) else {
                continue;
            };
            if task.state == State::Pending {
                let op = task.operator;
                self.set_task(txn, sched, task_id, State::Ready, op);
                self.enqueue_in(&pool, task_id);
                pending = true;
            } else if task.state != State::Succeed {
                pending = true;
            }
        }
        if let Some(node) = self.nodes.get_mut(&node_id).map(Arc::make_mut) {
            node.task_ids = task_ids;
        }
        if !pending {
            self.set_node(txn, sched, node_id, State::Succeed, operator);
        }
    }

    /// Creates a dynamic node's sub-tasks from the array under its key in the node's
    /// input. Returns whether the node can start; a missing or non-array value fails
    /// the node with a log saying why.
    fn expand(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        counters: &mut Counters,
        node: &NodeRecord,
    ) -> bool {
        let FanOut::Dynamic(key) = &node.fan_out else {
            return false;
        };
        let input = self.input_of(node.id);
        let items = match input.get(key) {
            Some(Value::Array(items)) => items,
            other => {
                let found = match other {
                    None => "nothing".to_string(),
                    Some(value) => format!("{value}"),
                };
                let why = format!("input key '{key}' must be an array, found {found}");
                self.fail_expansion(txn, sched, counters, node, &why);
                return false;
            }
        };
        // As at submit for a static fan-out: the node's start writes one record per
        // sub-task plus the node's and the DAG's, in one commit. More than the store
        // takes at once would fail that commit and stop the engine; the node fails.
        let writes = items.len() + FIXED_WRITES;
        if let Some(limit) = sched.max_batch_writes.filter(|limit| writes > *limit) {
            let why = format!(
                "{} items under input key '{key}' are more sub-tasks than one commit of \
                 this store can create (a {})",
                items.len(),
                StoreError::BatchTooLarge { writes, limit }
            );
            self.fail_expansion(txn, sched, counters, node, &why);
            return false;
        }
        let items: Vec<Arc<Value>> = items.iter().cloned().map(Arc::new).collect();
        let ids = self.create_tasks(txn, sched, &mut counters.next_task, node, &items);
        if let Some(n) = self.nodes.get_mut(&node.id).map(Arc::make_mut) {
            n.task_ids = ids;
            n.expanded = true;
        }
        txn.touch_node(self.rec.id, node.id);
        true
    }

    /// A dynamic node that cannot be expanded (no array under its key, or too many
    /// items for one commit): one FAILED sub-task logs `why`, the node fails.
    fn fail_expansion(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        counters: &mut Counters,
        node: &NodeRecord,
        why: &str,
    ) {
        let null = [Arc::new(Value::Null)];
        let ids = self.create_tasks(txn, sched, &mut counters.next_task, node, &null);
        if let Some(n) = self.nodes.get_mut(&node.id).map(Arc::make_mut) {
            n.task_ids = ids.clone();
        }
        for id in ids {
            self.set_task(txn, sched, id, State::Failed, node.operator);
            let line = format!("ERROR: dynamic sub-tasks: {why}");
            self.log(txn, sched, id, line);
        }
        self.set_node(txn, sched, node.id, State::Failed, node.operator);
        self.fail();
    }

    /// Takes the next task that fits the pools, if any.
    pub(crate) fn pop_dispatchable(&mut self) -> Option<u64> {
        let (pools, running) = (&self.rec.pools, &self.pool_running);
        self.ready.pop_first(|pool| {
            let capacity = pools.get(pool).copied().unwrap_or(0);
            running.get(pool).copied().unwrap_or(0) < capacity
        })
    }

    /// Starts an attempt of a READY sub-task: RUNNING, a worker slot and a pool unit
    /// taken, and the job to run queued in the batch (early when it may run before its
    /// RUNNING is durable).
    pub(crate) fn dispatch(&mut self, txn: &mut Txn, sched: &mut Sched, task_id: u64) {
        let Some(job) = self.begin_attempt(sched, task_id) else {
            return;
        };
        let operator = self
            .tasks
            .get(&task_id)
            .map_or(Operator::Run, |t| t.operator);
        self.set_task(txn, sched, task_id, State::Running, operator);
        self.running.insert(task_id, job.cancel.clone());
        let pool = self.nodes.get(&job.node_id).and_then(|n| n.pool.clone());
        if let Some(pool) = pool {
            *self.pool_running.entry(pool).or_default() += 1;
        }
        sched.running_total += 1;
        let node_durable = self
            .node_start_seq
            .get(&job.node_id)
            .is_none_or(|seq| sched.batches.is_durable(*seq));
        let continuable = self
            .tasks
            .get(&task_id)
            .is_some_and(|t| t.flags.can_continue);
        if continuable && job.phase != Phase::Rollback && node_durable {
            txn.early.push(job);
        } else {
            txn.spawns.push(job);
        }
    }

    /// Counts a new attempt of a READY sub-task and captures what its run needs.
    fn begin_attempt(&mut self, sched: &Sched, task_id: u64) -> Option<Job> {
        let task = self.tasks.get(&task_id)?;
        if task.state != State::Ready {
            return None;
        }
        let node = self.nodes.get(&task.node_id)?;
        let timeout = Duration::from_millis(node.timeout_ms);
        let node_id = node.id;
        let rolling_back = task.operator == Operator::Rollback;
        let phase = if rolling_back {
            Phase::Rollback
        } else {
            Phase::Execute {
                rollback_first: task.rollback_before_retry,
            }
        };
        let input = self.input_of(node_id);
        let dag_params = Arc::clone(&self.dag_params);
        let task = self.tasks.get_mut(&task_id).map(Arc::make_mut)?;
        task.execute_times += 1;
        if !rolling_back {
            task.ran = true;
        }
        task.start_time = Some(sched.now);
        task.end_time = None;
        Some(Job {
            dag_id: task.dag_id,
            node_id,
            task_id,
            index: task.index,
            name: Arc::clone(&task.name),
            task_type: Arc::clone(&task.task_type),
            execute_times: task.execute_times,
            phase,
            params: Arc::clone(&task.params),
            dag_params,
            input,
            local: task.local.clone(),
            timeout,
            cancel: CancellationToken::new(),
        })
    }

    fn release_slot(&mut self, sched: &mut Sched, task_id: u64) {
        if self.running.remove(&task_id).is_none() {
            return;
        }
        sched.running_total = sched.running_total.saturating_sub(1);
        let pool = self
            .tasks
            .get(&task_id)
            .and_then(|t| self.nodes.get(&t.node_id))
            .and_then(|n| n.pool.clone());
        if let Some(pool) = pool {
            if let Some(used) = self.pool_running.get_mut(&pool) {
                *used = used.saturating_sub(1);
            }
        }
    }

    /// The result of a sub-task run. Results of an attempt that is no longer current
    /// (the sub-task was retried, cancelled or reset since) are discarded.
    pub(crate) fn handle_finished(&mut self, txn: &mut Txn, sched: &mut Sched, result: RunResult) {
        let RunResult {
            attempt,
            rollback,
            outcome,
            output,
        } = result;
        let task_id = attempt.task_id;
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let current = task.state == State::Running
            && task.execute_times == attempt.execute_times
            && (task.operator == Operator::Rollback) == rollback;
        if !current {
            tracing::debug!(
                task_id,
                execute_times = attempt.execute_times,
                "discarding result of a stale attempt"
            );
            return;
        }
        let node_id = task.node_id;
        let operator = task.operator;
        self.release_slot(sched, task_id);
        if rollback {
            self.finish_rollback(txn, sched, task_id, node_id, &outcome);
            return;
        }
        // A sub-task that gives up with an error once its DAG is being cancelled was
        // cancelled, whatever it says.
        let outcome = if self.mode == Mode::Cancelling && outcome != Outcome::Succeeded {
            Outcome::Cancelled
        } else {
            outcome
        };
        match outcome {
            Outcome::Succeeded => {
                self.finish_success(txn, sched, task_id, node_id, operator, output)
            }
            Outcome::Cancelled => self.finish_cancelled(txn, sched, task_id, node_id),
            failure => self.finish_failure(txn, sched, attempt, node_id, operator, &failure),
        }
    }

    fn finish_rollback(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        task_id: u64,
        node_id: u64,
        outcome: &Outcome,
    ) {
        if *outcome == Outcome::Succeeded {
            self.set_task(txn, sched, task_id, State::Succeed, Operator::Rollback);
        } else {
            self.log(txn, sched, task_id, outcome.log_line());
            self.set_task(txn, sched, task_id, State::Failed, Operator::Rollback);
        }
        self.settle_rollback_node(txn, sched, node_id);
    }

    fn finish_success(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        task_id: u64,
        node_id: u64,
        operator: Operator,
        output: Map<String, Value>,
    ) {
        self.has_outputs |= !output.is_empty();
        if let Some(task) = self.tasks.get_mut(&task_id).map(Arc::make_mut) {
            task.output = output;
            task.rollback_before_retry = false;
        }
        self.set_task(txn, sched, task_id, State::Succeed, operator);
        let all_done = self.unfinished_tasks.get(&node_id).copied().unwrap_or(0) == 0;
        if all_done {
            let node_operator = self.node_operator(node_id, operator);
            self.set_node(txn, sched, node_id, State::Succeed, node_operator);
        }
    }

    fn finish_cancelled(&mut self, txn: &mut Txn, sched: &mut Sched, task_id: u64, node_id: u64) {
        self.log(txn, sched, task_id, Outcome::Cancelled.log_line());
        self.mark_rollback_first(task_id);
        self.set_task(txn, sched, task_id, State::Failed, Operator::Cancel);
        self.set_node(txn, sched, node_id, State::Failed, Operator::Cancel);
    }

    fn finish_failure(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        attempt: Attempt,
        node_id: u64,
        operator: Operator,
        failure: &Outcome,
    ) {
        let task_id = attempt.task_id;
        self.log(txn, sched, task_id, failure.log_line());
        if self.mode == Mode::Forward && self.retry_automatically(txn, sched, attempt, node_id) {
            return;
        }
        self.mark_rollback_first(task_id);
        self.set_task(txn, sched, task_id, State::Failed, operator);
        let node_operator = self.node_operator(node_id, operator);
        self.set_node(txn, sched, node_id, State::Failed, node_operator);
        self.fail();
    }

    /// Puts a failed sub-task back to READY behind a backoff timer when its node's
    /// retry policy has attempts left. Returns whether it did.
    fn retry_automatically(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        attempt: Attempt,
        node_id: u64,
    ) -> bool {
        let task_id = attempt.task_id;
        let Some(policy) = self.nodes.get(&node_id).and_then(|n| n.retry) else {
            return false;
        };
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return false;
        };
        if task.auto_retries >= policy.attempts {
            return false;
        }
        let task = Arc::make_mut(task);
        let retry = task.auto_retries + 1;
        task.auto_retries = retry;
        task.rollback_before_retry = true;
        let operator = task.operator;
        let delay = policy.backoff(retry);
        let line = format!(
            "WARN: automatic retry {retry}/{} in {} ms",
            policy.attempts,
            delay.as_millis()
        );
        self.log(txn, sched, task_id, line);
        self.set_task(txn, sched, task_id, State::Ready, operator);
        txn.timers.push(RetryTimer { attempt, delay });
        true
    }

    /// A retry timer expired: the sub-task is queued again if it still waits for it.
    pub(crate) fn handle_wake(&mut self, attempt: Attempt) {
        let waiting = self
            .tasks
            .get(&attempt.task_id)
            .is_some_and(|t| t.state == State::Ready && t.execute_times == attempt.execute_times);
        if waiting && self.mode.dispatches() {
            self.enqueue(attempt.task_id);
        }
    }

    /// Settles a DAG that is failing, cancelling or failing its rollback once nothing
    /// of it runs: FAILED with its operator.
    pub(crate) fn settle(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if !self.mode.settles_when_idle() || !self.running.is_empty() {
            return;
        }
        let rolling_back = self.mode == Mode::RollbackFailing;
        // Nothing queued survives a settle: queued forward sub-tasks go back to PENDING
        // (whatever their node's state) and interrupted nodes to READY, so the next
        // operator restarts them explicitly.
        self.ready.clear();
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            if !rolling_back {
                self.unqueue_tasks(txn, sched, node_id);
            }
            if let Some(node) = self.nodes.get(&node_id) {
                if node.state == State::Running {
                    let operator = node.operator;
                    self.set_node(txn, sched, node_id, State::Ready, operator);
                }
            }
        }
        let operator = self.rec.operator;
        self.set_dag(txn, sched, State::Failed, operator);
        let exit = self
            .nodes
            .values()
            .any(|n| n.state == State::Failed && n.failure_exit_maintenance);
        if exit {
            self.release_lock(txn, sched);
        }
    }

    /// A node's READY sub-tasks go back to PENDING.
    fn unqueue_tasks(&mut self, txn: &mut Txn, sched: &Sched, node_id: u64) {
        for task_id in self.task_ids(node_id) {
            if let Some(task) = self.tasks.get(&task_id) {
                if task.state == State::Ready {
                    let op = task.operator;
                    self.set_task(txn, sched, task_id, State::Pending, op);
                }
            }
        }
    }

    pub(crate) fn node_ran(node: &NodeRecord) -> bool {
        node.state != State::Pending
    }

    pub(crate) fn rolled_back(node: &NodeRecord) -> bool {
        !ActiveDag::node_ran(node)
            || (node.state == State::Succeed && node.operator == Operator::Rollback)
    }

    /// Rollback progress: undo every node whose downstream nodes are undone; finish the
    /// DAG SUCCEED+ROLLBACK when every node is.
    pub(crate) fn advance_rollback(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        finished: &mut Vec<u64>,
    ) {
        if self.mode != Mode::RollingBack {
            return;
        }
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            if self.rollback_startable(node_id) {
                self.start_rollback(txn, sched, node_id);
            }
        }
        if self.nodes.values().all(|node| ActiveDag::rolled_back(node)) {
            self.set_dag(txn, sched, State::Succeed, Operator::Rollback);
            self.release_lock(txn, sched);
            finished.push(self.id());
        }
    }

    /// A node that ran, is not undone nor being undone, and whose downstream nodes are.
    fn rollback_startable(&self, node_id: u64) -> bool {
        let Some(node) = self.nodes.get(&node_id) else {
            return false;
        };
        if ActiveDag::rolled_back(node)
            || (node.state == State::Running && node.operator == Operator::Rollback)
        {
            return false;
        }
        node.downstream.iter().all(|d| {
            self.nodes
                .get(d)
                .is_none_or(|node| ActiveDag::rolled_back(node))
        })
    }

    /// RUNNING+ROLLBACK: sub-tasks that ran are queued to undo; those that never ran are
    /// undone at once.
    fn start_rollback(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        self.set_node(txn, sched, node_id, State::Running, Operator::Rollback);
        for task_id in self.task_ids(node_id) {
            let Some(task) = self.tasks.get(&task_id) else {
                continue;
            };
            if task.state == State::Succeed && task.operator == Operator::Rollback {
                continue;
            }
            if task.ran {
                self.set_task(txn, sched, task_id, State::Ready, Operator::Rollback);
                self.enqueue(task_id);
            } else {
                self.set_task(txn, sched, task_id, State::Succeed, Operator::Rollback);
            }
        }
        self.settle_rollback_node(txn, sched, node_id);
    }

    /// Once none of a node's rollbacks is queued or running: SUCCEED+ROLLBACK, or
    /// FAILED+ROLLBACK (and the DAG fails its rollback) when one failed.
    pub(crate) fn settle_rollback_node(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        let Some(node) = self.nodes.get(&node_id) else {
            return;
        };
        let mut in_progress = false;
        let mut failed = false;
        for id in &node.task_ids {
            if let Some(task) = self.tasks.get(id) {
                match (task.state, task.operator) {
                    (State::Ready | State::Running, Operator::Rollback) => in_progress = true,
                    (State::Failed, Operator::Rollback) => failed = true,
                    _ => {}
                }
            }
        }
        if in_progress {
            return;
        }
        if failed {
            self.set_node(txn, sched, node_id, State::Failed, Operator::Rollback);
            self.fail();
        } else {
            self.set_node(txn, sched, node_id, State::Succeed, Operator::Rollback);
        }
    }
}
