//! The scheduler actor: one tokio task owns the in-memory mirror of every unfinished
//! DAG and decides every transition.
//!
//! # The commit protocol, actor side
//!
//! Every transition is durable before anyone can observe it, and operators are
//! compare-and-set. The actor gets there by deciding in batches and letting the
//! committer (`committer.rs`) release a batch's effects only once it is on disk. One
//! turn of [`Actor::run`]:
//!
//! 1. **Receive.** Wait for one message, then drain every message already waiting (up
//!    to 8192, and with a store that commits a limited number of writes at once, etcd,
//!    until the batch has half of them): requests from the handle (`submit`, `operate`, `pass_node`,
//!    `shutdown`), results and reports of running sub-tasks, expired retry timers. The
//!    very first turn receives nothing: it carries the restart transitions of
//!    recovery. Before it waits while sub-tasks run (more than one), the actor yields
//!    once, so that jobs queued on its own thread report first and one turn takes all
//!    their results. Results of light attempts the actor ran itself (started early in
//!    step 5, or by a commit it ran itself in step 6: a chain's next stage) need no
//!    message: it does not wait for one then, and decides them after the messages
//!    drained (an attempt's reports before its result).
//! 2. **Decide.** Apply each message to the mirror, one at a time, against the state it
//!    changes: an operator is checked and applied in one step, so two operators on one
//!    DAG can never both win, and a refusal changes nothing. A result of an attempt that
//!    is no longer current is dropped. Every change marks its record dirty in the batch
//!    ([`Txn`]) and queues its event; every answer to a caller is queued as a reply, not
//!    sent.
//! 3. **Schedule.** Every DAG moves on according to its mode (`progress.rs`): nodes
//!    whose upstream succeeded start, rollbacks advance, a failing DAG with nothing
//!    running settles FAILED. Then READY sub-tasks are dispatched within the worker
//!    limit and the DAGs' pools: each becomes RUNNING in the mirror and its job is queued
//!    in the batch.
//! 4. **Seal.** Every dirty record goes into one [`Batch`], typed: only a store that
//!    persists encodes it, at commit. A DAG record brings its entry in the index of DAGs
//!    that have not succeeded. Events get the stage the DAG has after the whole batch.
//!    The batch gets the next sequence number.
//! 5. **Start early what may start early.** A sub-task that can continue after a crash
//!    (`can_continue`), going forward, whose node's RUNNING is already durable (an
//!    earlier batch, known from the committer's durable sequence number) starts now,
//!    before its own RUNNING is durable: if the engine dies before the commit, recovery
//!    finds it READY or RUNNING under the same id and simply runs it again. Every other
//!    sub-task (non-continuable ones, rollbacks, sub-tasks of a node started in this
//!    very batch, whose records may not exist on disk yet) starts only after the
//!    commit.
//! 6. **Hand off.** The batch goes to the committer with its replies, events, jobs,
//!    retry timers and shutdown acknowledgements ([`Pending`]). With a blocking store
//!    the committer is its own thread and the actor goes straight on deciding the next
//!    batch while this one flushes (pipelining), unless nothing could arrive meanwhile
//!    (no sub-task runs but those this batch starts, and the committer has released
//!    every earlier batch): then, as with a store that does not block, the actor
//!    commits inline.
//!    Replies and events are released by the committer only after durability.
//! 7. **Evict.** DAGs that reached SUCCEED leave the mirror (their final records are in
//!    the batch); FAILED ones stay, waiting for an operator.
//!
//! # What recovery relies on
//!
//! Because of steps 5 and 6: every reply, event and non-continuable start happened
//! after its transition was durable; a continuable sub-task may have run without its
//! RUNNING being durable, so recovery runs continuable sub-tasks again
//! (`recovery.rs`). A commit applies a whole batch or nothing, so the store always
//! holds the state after some batch. If a commit fails, the engine stops (see
//! `committer.rs`) and the next open recovers from the last durable batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::committer::{Committer, Health, Pending, Pipeline, StopGuard};
use super::config::EngineConfig;
use super::dag_state::ActiveDag;
use super::msg::{Attempt, Msg, Reply, RunResult};
use super::operators::{not_failed, refuse};
use super::recovery::Loaded;
use super::runner::Runner;
use super::txn::{BatchClock, IdMap, Sched, Txn, FIXED_WRITES};
use super::validate::validate;
use crate::clock::Clock;
use crate::dto::DtoBuilder;
use crate::error::{OperateError, Refusal, SubmitError};
use crate::event::Subject;
use crate::model::{DagSpec, FanOut, Operator, State};
use crate::record::{keys, Counters, TaskRecord};
use crate::store::{retention, Batch, KvStore, Records, StoreError};
use crate::task::{Report, TaskRegistry};

/// Messages drained into one batch at most.
const MAX_MESSAGES_PER_BATCH: usize = 8192;

/// Where the actor's batches are committed.
pub(crate) enum Commit {
    /// By the committer's own thread (stores whose commit blocks), pipelined with the
    /// decisions, or by the actor when there is nothing to overlap (`committer.rs`).
    Pipelined(Pipeline),
    /// By the actor itself (stores whose commit does not block, where a hand-off would
    /// only add a wake-up).
    Inline(Committer),
}

/// The scheduler actor; see the module documentation.
pub(crate) struct Actor {
    kv: Arc<dyn KvStore>,
    registry: Arc<TaskRegistry>,
    runner: Runner,
    counters: Counters,
    dags: BTreeMap<u64, ActiveDag>,
    /// The DAG of every sub-task of an active DAG.
    task_dag: IdMap<u64>,
    /// The DAG of every node of an active DAG.
    node_dag: IdMap<u64>,
    sched: Sched,
    clock: Arc<dyn Clock>,
    retention: Option<Duration>,
    last_prune: Option<DateTime<Utc>>,
    /// Callers of `shutdown` waiting for the running sub-tasks to end.
    shutdown: Vec<oneshot::Sender<()>>,
    /// Transitions decided before the first turn (recovery).
    pending: Txn,
    /// Results of light attempts that finished where this actor started them, decided
    /// in the next turn after the messages waiting then (no channel, no wake-up).
    inline: Vec<RunResult>,
    health: Arc<Health>,
    _alive: Arc<StopGuard>,
}

/// Whatever way the actor stops (shutdown, failed commit, abort), no sub-task it
/// started keeps running: an engine that decides nothing more must not leave work
/// behind that nobody will record.
impl Drop for Actor {
    fn drop(&mut self) {
        self.runner.abort_all();
    }
}

/// The DAG holding `id` according to `index` (sub-task or node index).
fn dag_of<'a>(
    dags: &'a mut BTreeMap<u64, ActiveDag>,
    index: &IdMap<u64>,
    id: u64,
) -> Option<&'a mut ActiveDag> {
    index.get(&id).and_then(|dag_id| dags.get_mut(dag_id))
}

impl Actor {
    pub(crate) fn new(
        config: &EngineConfig,
        kv: Arc<dyn KvStore>,
        runner: Runner,
        loaded: Loaded,
        health: Arc<Health>,
        alive: Arc<StopGuard>,
    ) -> Actor {
        let Loaded {
            counters,
            dags,
            task_dag,
            node_dag,
            locks,
        } = loaded;
        let max_batch_writes = kv.max_batch_writes();
        Actor {
            kv,
            registry: runner.registry(),
            runner,
            counters,
            dags,
            task_dag,
            node_dag,
            sched: Sched {
                now: config.clock.now(),
                running_total: 0,
                worker_limit: config.worker_limit.max(1),
                locks,
                ids: DtoBuilder {
                    agent: config.agent.clone(),
                },
                batches: BatchClock::new(),
                max_batch_writes,
            },
            clock: Arc::clone(&config.clock),
            retention: config.retention,
            last_prune: None,
            shutdown: Vec::new(),
            pending: Txn::default(),
            inline: Vec::new(),
            health,
            _alive: alive,
        }
    }

    /// Where the committer records the highest durable batch.
    pub(crate) fn committed(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.sched.batches.committed()
    }

    /// Applies the restart rules to every loaded DAG; the transitions go into the first
    /// batch.
    pub(crate) fn recover(&mut self) {
        self.sched.now = self.clock.now();
        let mut txn = std::mem::take(&mut self.pending);
        for dag in self.dags.values_mut() {
            dag.recover(&mut txn, &mut self.sched);
        }
        self.pending = txn;
    }

    /// The actor's task: turns of receive, decide, schedule, seal, hand off, until the
    /// handle is gone, a shutdown completes, or a commit fails.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, mut commit: Commit) {
        let mut first = true;
        loop {
            if self.health.poisoned().is_some() {
                return;
            }
            let mut txn = std::mem::take(&mut self.pending);
            if !first {
                let msg = if self.inline.is_empty() {
                    let Some(msg) = self.next_message(&mut rx).await else {
                        return;
                    };
                    Some(msg)
                } else {
                    // Results are here already: no wait, but still a point where the
                    // runtime may run others, as a receive is.
                    tokio::task::consume_budget().await;
                    None
                };
                if self.health.poisoned().is_some() {
                    // The committer failed while this actor waited: decide nothing more
                    // (and start nothing early).
                    return;
                }
                self.sched.now = self.clock.now();
                self.receive(&mut txn, msg, &mut rx);
            }
            first = false;
            let finished = self.schedule(&mut txn);
            let stop = !self.shutdown.is_empty() && self.sched.running_total == 0;
            let pending = self.close_batch(txn, stop);
            // No sub-task runs but those waiting for this batch: nothing can arrive
            // while it flushes.
            let alone = self.sched.running_total == pending.spawns.len();
            let mut spent = None;
            let handed = pending.is_empty()
                || hand_off(&mut commit, pending, alone, &mut self.inline, &mut spent).await;
            if let Some(spent) = spent {
                self.pending.recycle(spent);
            }
            if !handed {
                return;
            }
            self.evict(finished);
            if stop {
                return;
            }
        }
    }

    /// The next message. When none is waiting while sub-tasks run, the actor first lets
    /// the other tasks of its thread run once (the jobs it just started are often among
    /// them): their results then arrive together, and one wake-up and one batch carry
    /// them all instead of one each. With one sub-task running there is nothing to
    /// gather: the actor just waits, and its job (queued on this thread) runs next and
    /// wakes it on this thread; a yield would also wake an idle worker, which then
    /// takes the actor from this thread's queue (a chain's stage paid for that hop).
    async fn next_message(&self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Option<Msg> {
        if self.sched.running_total > 1 && rx.is_empty() {
            tokio::task::yield_now().await;
        }
        rx.recv().await
    }

    /// Decides `first`, every message already waiting behind it, then the results of
    /// the light attempts it ran itself (after the messages: a report such an attempt
    /// sent is decided before its result); with a store that commits at most so many
    /// writes at once, only until the batch has half of them (the other half is room
    /// for what scheduling adds), the rest in the next turn.
    fn receive(
        &mut self,
        txn: &mut Txn,
        first: Option<Msg>,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
    ) {
        if let Some(first) = first {
            self.handle(txn, first);
        }
        let budget = self
            .sched
            .max_batch_writes
            .map_or(usize::MAX, |limit| limit / 2);
        let mut drained = 1;
        while drained < MAX_MESSAGES_PER_BATCH && txn.writes_hint() < budget {
            match rx.try_recv() {
                Ok(msg) => self.handle(txn, msg),
                Err(_) => break,
            }
            drained += 1;
        }
        let mut inline = std::mem::take(&mut self.inline);
        let mut results = inline.drain(..);
        for result in results.by_ref() {
            if txn.writes_hint() >= budget {
                self.inline.push(result);
                break;
            }
            // Never spawned: not in the runner's table of running jobs.
            self.decide_result(txn, result);
        }
        self.inline.extend(results);
        if self.inline.is_empty() {
            // Its allocation serves the next turn.
            self.inline = inline;
        }
    }

    /// Seals the batch, starts its early jobs, and packs what waits for durability.
    fn close_batch(&mut self, mut txn: Txn, stop: bool) -> Pending {
        let batch = self.seal(&mut txn);
        // Continuable sub-tasks whose node start is durable run now; their RUNNING
        // becomes durable with this batch (a crash before that re-runs them anyway).
        for job in txn.early.drain(..) {
            if let Some(result) = self.runner.start(job) {
                self.inline.push(result);
            }
        }
        let pending = Pending {
            seq: self.sched.batches.seal(),
            batch,
            replies: std::mem::take(&mut txn.replies),
            events: std::mem::take(&mut txn.events),
            spawns: std::mem::take(&mut txn.spawns),
            timers: std::mem::take(&mut txn.timers),
            done: if stop {
                std::mem::take(&mut self.shutdown)
            } else {
                Vec::new()
            },
        };
        self.pending.reuse(txn);
        pending
    }

    fn handle(&mut self, txn: &mut Txn, msg: Msg) {
        match msg {
            Msg::Submit { spec, reply } => {
                let result = self.submit(txn, spec);
                txn.replies.push(Reply::Submit { to: reply, result });
            }
            Msg::Operate {
                dag_id,
                operator,
                reply,
            } => {
                let result = self.operate(txn, dag_id, operator);
                txn.replies.push(Reply::Operate { to: reply, result });
            }
            Msg::PassNode { node_id, reply } => {
                let result = self.pass_node(txn, node_id);
                txn.replies.push(Reply::Operate { to: reply, result });
            }
            Msg::Finished(result) => self.finished(txn, result),
            Msg::Report { attempt, report } => self.report(txn, attempt, report),
            Msg::Wake(attempt) => {
                if let Some(dag) = dag_of(&mut self.dags, &self.task_dag, attempt.task_id) {
                    dag.handle_wake(attempt);
                }
            }
            Msg::Shutdown { reply } => self.shutdown.push(reply),
        }
    }

    fn operate(
        &mut self,
        txn: &mut Txn,
        dag_id: u64,
        operator: Operator,
    ) -> Result<(), OperateError> {
        match self.dags.get_mut(&dag_id) {
            Some(dag) => dag.operate(txn, &mut self.sched, operator),
            None => self.refuse_inactive(dag_id, operator),
        }
    }

    fn pass_node(&mut self, txn: &mut Txn, node_id: u64) -> Result<(), OperateError> {
        match dag_of(&mut self.dags, &self.node_dag, node_id) {
            Some(dag) => dag.pass_node(txn, &mut self.sched, node_id),
            None => self.refuse_inactive_node(node_id),
        }
    }

    fn finished(&mut self, txn: &mut Txn, result: RunResult) {
        self.runner.forget(result.attempt.task_id);
        self.decide_result(txn, result);
    }

    /// Decides a result (of a job that is not, or no longer, in the runner's table).
    fn decide_result(&mut self, txn: &mut Txn, result: RunResult) {
        if let Some(dag) = dag_of(&mut self.dags, &self.task_dag, result.attempt.task_id) {
            dag.handle_finished(txn, &mut self.sched, result);
            dag.settle(txn, &mut self.sched);
        }
    }

    /// A report of a running sub-task: kept only from its current attempt.
    fn report(&mut self, txn: &mut Txn, attempt: Attempt, report: Report) {
        match report {
            Report::Log(content) => {
                let Some(dag) = dag_of(&mut self.dags, &self.task_dag, attempt.task_id) else {
                    return;
                };
                let current = dag.tasks.get(&attempt.task_id).map(|t| t.execute_times);
                if current == Some(attempt.execute_times) {
                    dag.log(txn, &self.sched, attempt.task_id, content);
                }
            }
            Report::SetLocal { key, value } => self.update_task_data(txn, attempt, |task| {
                task.local.insert(key, value);
            }),
            Report::SetAdditional { key, value } => self.update_task_data(txn, attempt, |task| {
                task.additional_data.insert(key, value);
            }),
        }
    }

    /// Applies `update` to a RUNNING sub-task's record if `attempt` is its current one.
    fn update_task_data(
        &mut self,
        txn: &mut Txn,
        attempt: Attempt,
        update: impl FnOnce(&mut TaskRecord),
    ) {
        let Some(dag) = dag_of(&mut self.dags, &self.task_dag, attempt.task_id) else {
            return;
        };
        let dag_id = dag.id();
        let Some(task) = dag.tasks.get_mut(&attempt.task_id) else {
            return;
        };
        if task.execute_times != attempt.execute_times || task.state != State::Running {
            return;
        }
        update(Arc::make_mut(task));
        txn.touch_task(dag_id, attempt.task_id);
    }

    fn refuse_inactive(&self, dag_id: u64, operator: Operator) -> Result<(), OperateError> {
        let records = Records::new(Arc::clone(&self.kv));
        match records.dag(dag_id)? {
            None => Err(OperateError::DagNotFound(dag_id)),
            // Only SUCCEED DAGs leave the actor: every operator finds a finished DAG.
            Some(_) => Err(refuse(operator, not_failed(operator))),
        }
    }

    fn refuse_inactive_node(&self, node_id: u64) -> Result<(), OperateError> {
        let records = Records::new(Arc::clone(&self.kv));
        match records.node(node_id)? {
            None => Err(OperateError::NodeNotFound(node_id)),
            Some(_) => Err(refuse(Operator::Pass, Refusal::PassNodeNotFailedDag)),
        }
    }

    /// Creates a DAG and takes its maintenance lock, in this batch.
    fn submit(&mut self, txn: &mut Txn, spec: DagSpec) -> Result<u64, SubmitError> {
        let layers = validate(&spec, &self.registry)?;
        if let Some(limit) = self.sched.max_batch_writes {
            // Its creation writes one record per node plus the DAG's own (DAG, index
            // entry, counters, lock); a node's start one per static sub-task plus the
            // node's and the DAG's. A DAG either of which cannot be one atomic commit is
            // refused here, before anything of it exists, instead of failing a commit.
            let widest = spec.nodes.iter().map(|node| match &node.fan_out {
                FanOut::Static(params) => params.len(),
                FanOut::Dynamic(_) => 0,
            });
            let writes = spec.nodes.len().max(widest.max().unwrap_or(0)) + FIXED_WRITES;
            if writes > limit {
                let too_large = StoreError::BatchTooLarge { writes, limit };
                return Err(SubmitError::Invalid(format!(
                    "its creation is a {too_large}"
                )));
            }
        }
        if let Some(conflict) = self.sched.locks.conflict(&spec.maintenance, None) {
            return Err(SubmitError::LockConflict(conflict));
        }
        let registry = &self.registry;
        let type_flags =
            |task_type: &str| registry.get(task_type).map(|t| t.flags).unwrap_or_default();
        let mut dag = ActiveDag::create(
            txn,
            &self.sched,
            &mut self.counters,
            &spec,
            &layers,
            type_flags,
        );
        let dag_id = dag.id();
        // Sized once for the new DAG, not grown (and rehashed) id by id.
        self.node_dag.reserve(dag.nodes.len());
        self.task_dag.reserve(dag.tasks.len());
        for node_id in dag.nodes.keys() {
            self.node_dag.insert(*node_id, dag_id);
        }
        for task_id in dag.tasks.keys() {
            self.task_dag.insert(*task_id, dag_id);
        }
        if let Some(key) = keys::lock(&spec.maintenance) {
            self.sched.locks.take(txn, key, &dag.rec);
            Arc::make_mut(&mut dag.rec).lock_held = true;
        }
        txn.dirty_dags.push(dag_id);
        dag.event(txn, Subject::Dag, State::Ready, Operator::Run);
        tracing::info!(dag_id, name = %spec.name, nodes = spec.nodes.len(), "dag submitted");
        self.dags.insert(dag_id, dag);
        Ok(dag_id)
    }

    /// Advances every DAG and dispatches ready sub-tasks within the limits. Returns the
    /// DAGs that finished in this batch.
    fn schedule(&mut self, txn: &mut Txn) -> Vec<u64> {
        let mut finished = Vec::new();
        for dag in self.dags.values_mut() {
            dag.advance(txn, &mut self.sched, &mut self.counters, &mut finished);
            dag.advance_rollback(txn, &mut self.sched, &mut finished);
            dag.settle(txn, &mut self.sched);
        }
        // New task ids (dynamic fan-out).
        for task in txn.new_tasks.drain(..) {
            self.task_dag.insert(task.id, task.dag_id);
        }
        if self.shutdown.is_empty() {
            self.dispatch_ready(txn);
        }
        finished
    }

    /// Dispatches READY sub-tasks, one per DAG in turn, until the worker limit is
    /// reached or nothing more fits.
    fn dispatch_ready(&mut self, txn: &mut Txn) {
        let sched = &mut self.sched;
        loop {
            let mut progressed = false;
            for dag in self.dags.values_mut() {
                if sched.running_total >= sched.worker_limit {
                    break;
                }
                if !dag.mode.dispatches() {
                    continue;
                }
                if let Some(task_id) = dag.pop_dispatchable() {
                    dag.dispatch(txn, sched, task_id);
                    progressed = true;
                }
            }
            if !progressed || sched.running_total >= sched.worker_limit {
                break;
            }
        }
    }

    /// Puts every record the batch touched into its batch (typed: encoded only by a
    /// store that persists).
    fn seal(&mut self, txn: &mut Txn) -> Batch {
        for &dag_id in &txn.stage_dirty {
            if let Some(dag) = self.dags.get_mut(&dag_id) {
                let before = dag.rec.stage;
                dag.recompute_stage();
                if dag.rec.stage != before {
                    txn.dirty_dags.push(dag_id);
                }
            }
        }
        txn.sort_dirty();
        let records = 2 * txn.dirty_dags.len() + txn.dirty_nodes.len() + txn.dirty_tasks.len();
        txn.batch.writes.reserve(records + 2);
        for dag_id in &txn.dirty_dags {
            if let Some(dag) = self.dags.get_mut(dag_id) {
                dag.recompute_stage();
                txn.batch.put_dag(Arc::clone(&dag.rec));
            }
        }
        // Events carry the stage after the whole batch.
        for event in &mut txn.events {
            if let Some(dag) = self.dags.get(&event.dag_id) {
                event.stage = dag.rec.stage;
            }
        }
        for node in &txn.dirty_nodes {
            if let Some(record) = self
                .dags
                .get(&node.dag_id)
                .and_then(|d| d.nodes.get(&node.id))
            {
                txn.batch
                    .put_shared(keys::node_key(node.id), Arc::clone(record));
            }
        }
        for task in &txn.dirty_tasks {
            if let Some(record) = self
                .dags
                .get(&task.dag_id)
                .and_then(|d| d.tasks.get(&task.id))
            {
                txn.batch
                    .put_shared(keys::task_key(task.id), Arc::clone(record));
            }
        }
        if txn.counters_dirty {
            txn.batch.put_counters(self.counters);
        }
        // In key order once here (already so unless the decisions wrote logs or locks),
        // so the committer counts its writes without sorting.
        txn.batch.writes.normalize();
        std::mem::take(&mut txn.batch)
    }

    /// Forgets DAGs that finished in the last batch (their records are in the batch).
    fn evict(&mut self, finished: Vec<u64>) {
        let any_finished = !finished.is_empty();
        for dag_id in finished {
            if let Some(dag) = self.dags.remove(&dag_id) {
                for task_id in dag.tasks.keys() {
                    self.task_dag.remove(task_id);
                }
                for node_id in dag.nodes.keys() {
                    self.node_dag.remove(node_id);
                }
                tracing::info!(dag_id, state = %dag.rec.state, operator = %dag.rec.operator, "dag finished");
            }
        }
        if any_finished {
            self.maybe_prune();
        }
    }

    /// Prunes old finished DAGs, at most once a minute, off the async threads.
    fn maybe_prune(&mut self) {
        let Some(retention) = self.retention else {
            return;
        };
        let now = self.clock.now();
        if self
            .last_prune
            .is_some_and(|last| now - last < chrono::Duration::seconds(60))
        {
            return;
        }
        self.last_prune = Some(now);
        let records = Records::new(Arc::clone(&self.kv));
        tokio::task::spawn_blocking(move || {
            if let Err(err) = retention::prune(&records, now, retention) {
                tracing::warn!(error = %err, "pruning finished dags failed");
            }
        });
    }
}

/// Hands a sealed batch to the committer. Returns false when the engine must stop (the
/// committer is gone, or the commit failed). A batch the actor commits itself hands the
/// results of the light attempts its effects finished at once to `inline`.
async fn hand_off(
    commit: &mut Commit,
    pending: Pending,
    alone: bool,
    inline: &mut Vec<RunResult>,
    spent: &mut Option<Pending>,
) -> bool {
    match commit {
        Commit::Pipelined(pipeline) => pipeline.hand_off(pending, alone, inline, spent).await,
        Commit::Inline(committer) => committer.process_one(pending, inline, spent),
    }
}
