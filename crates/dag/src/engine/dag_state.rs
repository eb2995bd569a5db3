//! One unfinished DAG as the actor holds it ([`ActiveDag`]): its records, the indexes
//! derived from them, and its [`Mode`].
//!
//! Invariants: every change to a record goes through [`ActiveDag::set_dag`],
//! [`ActiveDag::set_node`], [`ActiveDag::set_task`] or [`ActiveDag::log`], which mark
//! the record dirty in the batch and queue its event, and keep the derived counters
//! (unfinished sub-tasks per node, unfinished nodes per layer) equal to what
//! [`ActiveDag::reindex`] would compute. The mode is decided in one place: from the
//! records at load ([`Mode::at_load`]), by every DAG transition ([`ActiveDag::set_dag`]),
//! by a failure ([`ActiveDag::fail`]) and by CANCEL.
//!
//! How a DAG moves on its own is in `progress.rs`, the operators in `operators.rs`, the
//! restart rules in `recovery.rs`.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::links::{Links, NodeLinks};
use super::node_map::NodeMap;
use super::ready::ReadyQueues;
use super::txn::{IdMap, Member, Sched, Txn};
use crate::dto::merge_context;
use crate::error::OperateError;
use crate::event::{Event, Subject};
use crate::model::{DagSpec, FanOut, Flags, NodeSpec, Operator, State};
use crate::record::{keys, Counters, DagRecord, LogRecord, NodeRecord, TaskRecord, RECORD_VERSION};

/// What a DAG is doing; decides which of the actor's steps apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// READY or RUNNING going forward (RUN): nodes start, sub-tasks are dispatched.
    Forward,
    /// A node failed going forward: nothing new starts; the DAG settles FAILED once
    /// nothing of it runs.
    Failing,
    /// CANCEL was applied: running sub-tasks are told to stop and nothing new starts;
    /// the DAG settles FAILED+CANCEL once nothing of it runs.
    Cancelling,
    /// ROLLBACK: nodes are undone, downstream ones first.
    RollingBack,
    /// A rollback failed: nothing new starts; the DAG settles FAILED+ROLLBACK once
    /// nothing of it runs.
    RollbackFailing,
    /// SUCCEED or FAILED: waits for an operator (FAILED) or leaves the actor (SUCCEED).
    Settled,
}

impl Mode {
    /// The mode a DAG in `state` after `operator` is in while none of its nodes failed.
    fn of(state: State, operator: Operator) -> Mode {
        if state.is_finished() {
            return Mode::Settled;
        }
        match operator {
            Operator::Cancel => Mode::Cancelling,
            Operator::Rollback => Mode::RollingBack,
            Operator::Run | Operator::Retry | Operator::Pass => Mode::Forward,
        }
    }

    /// The mode of a DAG read from the store: a DAG that was failing when the engine
    /// stopped (a FAILED node going forward, a FAILED rollback rolling back) is failing
    /// still, and settles once nothing of it runs.
    fn at_load(dag: &DagRecord, nodes: &NodeMap) -> Mode {
        let mode = Mode::of(dag.state, dag.operator);
        let failed = |rollback: bool| {
            nodes.values().any(|node| {
                node.state == State::Failed && (node.operator == Operator::Rollback) == rollback
            })
        };
        match mode {
            Mode::Forward if failed(false) => mode.after_failure(),
            Mode::RollingBack if failed(true) => mode.after_failure(),
            _ => mode,
        }
    }

    /// The mode once a node failed (a sub-task, a rollback, or a node that could not
    /// start). A DAG being cancelled stays cancelling.
    fn after_failure(self) -> Mode {
        match self {
            Mode::Forward => Mode::Failing,
            Mode::RollingBack => Mode::RollbackFailing,
            other => other,
        }
    }

    /// Whether sub-tasks may be dispatched, and retry timers queue theirs again.
    pub(crate) fn dispatches(self) -> bool {
        matches!(self, Mode::Forward | Mode::RollingBack)
    }

    /// Whether the DAG settles FAILED once nothing of it runs.
    pub(crate) fn settles_when_idle(self) -> bool {
        matches!(
            self,
            Mode::Failing | Mode::Cancelling | Mode::RollbackFailing
        )
    }
}

/// An unfinished DAG: its records and what the actor derives from them.
///
/// The records are shared with the batches and the store they were sealed into
/// ([`crate::record::Record`]): a change goes through `Arc::make_mut`, which copies a
/// record only while a batch or an in-memory store still holds the previous version.
pub(crate) struct ActiveDag {
    pub(crate) rec: Arc<DagRecord>,
    pub(crate) nodes: NodeMap,
    pub(crate) tasks: IdMap<Arc<TaskRecord>>,
    pub(crate) mode: Mode,
    /// Merged upstream output per node, computed when first needed.
    pub(crate) inputs: IdMap<Arc<Map<String, Value>>>,
    /// The input of every node while no sub-task has produced output (one shared map).
    pub(crate) no_input: Arc<Map<String, Value>>,
    pub(crate) dag_params: Arc<Value>,
    /// Sub-tasks running now, with their cancellation tokens.
    pub(crate) running: IdMap<CancellationToken>,
    /// Units of each pool in use.
    pub(crate) pool_running: HashMap<String, u32>,
    /// Sub-tasks ready to run, per pool ("" for none).
    pub(crate) ready: ReadyQueues,
    /// Per node, how many of its sub-tasks are not SUCCEED.
    pub(crate) unfinished_tasks: IdMap<usize>,
    /// Per layer (index = layer), how many nodes are not SUCCEED.
    pub(crate) unfinished_per_layer: Vec<u32>,
    /// Every layer below this one has no unfinished node: where the forward stage's
    /// search starts, so a chain of N layers costs N steps in all, not N per batch.
    pub(crate) first_unfinished_layer: usize,
    pub(crate) succeeded_nodes: usize,
    /// Nodes that may have become startable, smallest id first. A heap, not a set: it
    /// keeps its buffer while empty (a chain's stage adds and takes one node), and a
    /// node in it twice is only checked twice (once started, it is no longer startable).
    pub(crate) candidates: BinaryHeap<Reverse<u64>>,
    /// Whether any sub-task produced output (otherwise every input is empty).
    pub(crate) has_outputs: bool,
    /// Batch in which each node last started (absent: started before this process).
    pub(crate) node_start_seq: IdMap<u64>,
}

impl ActiveDag {
    pub(crate) fn from_records(
        rec: DagRecord,
        nodes: Vec<NodeRecord>,
        tasks: Vec<TaskRecord>,
    ) -> ActiveDag {
        let dag_params = Arc::new(rec.params.clone());
        let nodes: NodeMap = nodes.into_iter().map(|n| (n.id, Arc::new(n))).collect();
        let mode = Mode::at_load(&rec, &nodes);
        let mut dag = ActiveDag {
            rec: Arc::new(rec),
            nodes,
            tasks: tasks.into_iter().map(|t| (t.id, Arc::new(t))).collect(),
            mode,
            inputs: IdMap::default(),
            no_input: Arc::new(Map::new()),
            dag_params,
            running: IdMap::default(),
            pool_running: HashMap::new(),
            ready: ReadyQueues::default(),
            unfinished_tasks: IdMap::default(),
            unfinished_per_layer: Vec::new(),
            first_unfinished_layer: 0,
            succeeded_nodes: 0,
            candidates: BinaryHeap::new(),
            has_outputs: false,
            node_start_seq: IdMap::default(),
        };
        dag.reindex();
        dag
    }

    /// A new DAG (READY+RUN) from a checked spec: its nodes (PENDING) and the sub-tasks
    /// of its static nodes (PENDING), with fresh ids, every record dirty in the batch.
    /// `layers` are the nodes' layers; `type_flags` the flags of a task type.
    pub(crate) fn create(
        txn: &mut Txn,
        sched: &Sched,
        counters: &mut Counters,
        spec: &DagSpec,
        layers: &[u32],
        type_flags: impl Fn(&str) -> Flags,
    ) -> ActiveDag {
        counters.next_dag += 1;
        let dag_id = counters.next_dag;
        let node_ids: Vec<u64> = spec
            .nodes
            .iter()
            .map(|_| {
                counters.next_node += 1;
                counters.next_node
            })
            .collect();
        txn.counters_dirty = true;
        let rec = new_dag_record(spec, dag_id, &node_ids, layers, sched);
        let mut dag = ActiveDag::from_records(rec, Vec::new(), Vec::new());
        // The mirror's map of sub-tasks sized once, not grown (and rehashed) node by node.
        let static_tasks = spec.nodes.iter().map(|node| match &node.fan_out {
            FanOut::Static(params) => params.len(),
            FanOut::Dynamic(_) => 0,
        });
        let static_tasks: usize = static_tasks.sum();
        dag.tasks.reserve(static_tasks);
        // So are the lists the submit's batch is sealed from.
        dag.unfinished_tasks.reserve(spec.nodes.len());
        dag.nodes.reserve(spec.nodes.len());
        txn.dirty_nodes.reserve(spec.nodes.len());
        txn.dirty_tasks.reserve(static_tasks);
        txn.new_tasks.reserve(static_tasks);
        let mut links = Links::of(spec.nodes.len(), &spec.edges, &node_ids);
        // Nodes of one type share one copy of its name (and its flags' lookup).
        let mut types: HashMap<&str, (Arc<str>, Flags)> = HashMap::new();
        for (index, node_spec) in spec.nodes.iter().enumerate() {
            let (task_type, flags) =
                types
                    .entry(node_spec.task_type.as_str())
                    .or_insert_with(|| {
                        (
                            node_spec.task_type.as_str().into(),
                            type_flags(&node_spec.task_type),
                        )
                    });
            let node_type = (Arc::clone(task_type), *flags);
            let (id, layer) = (node_ids[index], layers[index]);
            let node_links = links.take(index);
            let mut node =
                new_node_record(node_spec, id, dag_id, node_links, layer, node_type, sched);
            txn.touch_node(dag_id, node.id);
            if let FanOut::Static(params) = &node_spec.fan_out {
                let ids = dag.create_tasks(txn, sched, &mut counters.next_task, &node, params);
                node.task_ids = ids;
            }
            dag.nodes.insert(node.id, Arc::new(node));
        }
        dag.reindex();
        dag
    }

    /// Recomputes the derived counters from the records.
    pub(crate) fn reindex(&mut self) {
        self.unfinished_tasks.clear();
        self.has_outputs = false;
        for task in self.tasks.values() {
            self.has_outputs |= !task.output.is_empty();
            if task.state != State::Succeed {
                *self.unfinished_tasks.entry(task.node_id).or_default() += 1;
            }
        }
        self.unfinished_per_layer = vec![0u32; self.rec.max_stage as usize + 2];
        self.first_unfinished_layer = 0;
        self.succeeded_nodes = 0;
        for node in self.nodes.values() {
            if node.state == State::Succeed {
                self.succeeded_nodes += 1;
            } else if let Some(count) = self.unfinished_per_layer.get_mut(node.layer as usize) {
                *count += 1;
            }
        }
        self.rescan();
    }

    /// Every node becomes a start candidate (after submit, RETRY, PASS, recovery).
    pub(crate) fn rescan(&mut self) {
        // Every node: those already in are among them.
        self.candidates.clear();
        self.candidates
            .extend(self.nodes.keys().copied().map(Reverse));
    }

    pub(crate) fn id(&self) -> u64 {
        self.rec.id
    }

    /// A node failed: the DAG stops starting work and settles once nothing runs.
    pub(crate) fn fail(&mut self) {
        self.mode = self.mode.after_failure();
    }

    /// The sub-task ids of a node (empty for an unknown node).
    pub(crate) fn task_ids(&self, node_id: u64) -> Vec<u64> {
        self.nodes
            .get(&node_id)
            .map(|n| n.task_ids.clone())
            .unwrap_or_default()
    }

    /// The operator a node carries (`fallback` for an unknown node).
    pub(crate) fn node_operator(&self, node_id: u64, fallback: Operator) -> Operator {
        self.nodes
            .get(&node_id)
            .map(|n| n.operator)
            .unwrap_or(fallback)
    }

    pub(crate) fn event(&self, txn: &mut Txn, subject: Subject, state: State, operator: Operator) {
        // A chain's stage has four transitions: one allocation, not two.
        if txn.events.capacity() == 0 {
            txn.events.reserve(8);
        }
        txn.events.push(Event {
            dag_id: self.rec.id,
            subject,
            state,
            operator,
            stage: self.rec.stage,
            max_stage: self.rec.max_stage,
        });
    }

    pub(crate) fn set_dag(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        state: State,
        operator: Operator,
    ) {
        let rec = Arc::make_mut(&mut self.rec);
        rec.state = state;
        rec.operator = operator;
        self.mode = Mode::of(state, operator);
        if state == State::Running && rec.start_time.is_none() {
            rec.start_time = Some(sched.now);
        }
        rec.end_time = state.is_finished().then_some(sched.now);
        self.recompute_stage();
        txn.dirty_dags.push(self.id());
        self.event(txn, Subject::Dag, state, operator);
    }

    /// CANCEL: the DAG keeps its state and carries CANCEL until it settles.
    pub(crate) fn begin_cancel(&mut self, txn: &mut Txn) {
        Arc::make_mut(&mut self.rec).operator = Operator::Cancel;
        self.mode = Mode::Cancelling;
        txn.dirty_dags.push(self.id());
        self.event(txn, Subject::Dag, self.rec.state, Operator::Cancel);
    }

    pub(crate) fn set_node(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        node_id: u64,
        state: State,
        operator: Operator,
    ) {
        let Some(node) = self.nodes.get_mut(&node_id).map(Arc::make_mut) else {
            return;
        };
        let was_succeed = node.state == State::Succeed;
        let is_succeed = state == State::Succeed;
        if was_succeed != is_succeed {
            let layer = node.layer as usize;
            if let Some(count) = self.unfinished_per_layer.get_mut(layer) {
                if is_succeed {
                    *count = count.saturating_sub(1);
                } else {
                    *count += 1;
                    self.first_unfinished_layer = self.first_unfinished_layer.min(layer);
                }
            }
            if is_succeed {
                self.succeeded_nodes += 1;
                self.candidates
                    .extend(node.downstream.iter().copied().map(Reverse));
            } else {
                self.succeeded_nodes = self.succeeded_nodes.saturating_sub(1);
            }
        }
        node.state = state;
        node.operator = operator;
        if state == State::Running {
            self.node_start_seq.insert(node_id, sched.batches.deciding);
            node.start_time = Some(sched.now);
            node.end_time = None;
        }
        if state.is_finished() {
            node.end_time = Some(sched.now);
        }
        txn.touch_node(self.rec.id, node_id);
        txn.stage_dirty.push(self.rec.id);
        self.event(txn, Subject::Node { node_id }, state, operator);
    }

    pub(crate) fn set_task(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        task_id: u64,
        state: State,
        operator: Operator,
    ) {
        let Some(task) = self.tasks.get_mut(&task_id).map(Arc::make_mut) else {
            return;
        };
        let was_succeed = task.state == State::Succeed;
        if was_succeed != (state == State::Succeed) {
            let count = self.unfinished_tasks.entry(task.node_id).or_default();
            if was_succeed {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
            }
        }
        task.state = state;
        task.operator = operator;
        if state.is_finished() {
            task.end_time = Some(sched.now);
        }
        let node_id = task.node_id;
        txn.touch_task(self.rec.id, task_id);
        self.event(txn, Subject::SubTask { node_id, task_id }, state, operator);
    }

    /// Marks a sub-task to run its rollback before it executes again.
    pub(crate) fn mark_rollback_first(&mut self, task_id: u64) {
        if let Some(task) = self.tasks.get_mut(&task_id).map(Arc::make_mut) {
            task.rollback_before_retry = true;
        }
    }

    pub(crate) fn log(&mut self, txn: &mut Txn, sched: &Sched, task_id: u64, content: String) {
        let Some(task) = self.tasks.get_mut(&task_id).map(Arc::make_mut) else {
            return;
        };
        let record = LogRecord {
            v: RECORD_VERSION,
            task_id,
            execute_times: task.execute_times,
            time: sched.now,
            content,
        };
        txn.batch
            .put_record(keys::log(task_id, task.log_count), record);
        task.log_count += 1;
        txn.touch_task(self.rec.id, task_id);
    }

    /// The AND of the flags of a node's sub-tasks.
    pub(crate) fn node_flags(&self, node: &NodeRecord) -> Flags {
        node.task_ids
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .fold(Flags::ALL, |acc, task| acc.and(task.flags))
    }

    /// The DAG's stage: the first layer with an unfinished node going forward; while
    /// rolling back, the highest layer not yet undone. It follows the record's
    /// operator, not the mode, so a FAILED+ROLLBACK DAG shows its rollback's stage.
    pub(crate) fn recompute_stage(&mut self) {
        let rolling_back = self.rec.operator == Operator::Rollback;
        let stage = if rolling_back {
            self.nodes
                .values()
                .filter(|n| {
                    n.state != State::Pending
                        && !(n.state == State::Succeed && n.operator == Operator::Rollback)
                })
                .map(|n| n.layer)
                .max()
                .unwrap_or(1)
        } else {
            let counts = &self.unfinished_per_layer;
            let mut layer = self.first_unfinished_layer;
            while counts.get(layer).is_some_and(|count| *count == 0) {
                layer += 1;
            }
            self.first_unfinished_layer = layer;
            if layer < counts.len() {
                u32::try_from(layer).unwrap_or(self.rec.max_stage)
            } else {
                self.rec.max_stage
            }
        };
        // Unchanged, the record is not copied (a batch or the store may hold it).
        if self.rec.stage != stage {
            Arc::make_mut(&mut self.rec).stage = stage;
        }
    }

    /// The merged output of every ancestor of a node, in layer order.
    pub(crate) fn input_of(&mut self, node_id: u64) -> Arc<Map<String, Value>> {
        if let Some(input) = self.inputs.get(&node_id) {
            return Arc::clone(input);
        }
        if !self.has_outputs {
            // Not cached: a later upstream output must still be seen.
            return Arc::clone(&self.no_input);
        }
        let mut ancestors = BTreeSet::new();
        let mut stack: Vec<u64> = self
            .nodes
            .get(&node_id)
            .map(|n| n.upstream.to_vec())
            .unwrap_or_default();
        while let Some(id) = stack.pop() {
            if let Some(node) = self.nodes.get(&id) {
                if ancestors.insert((node.layer, id)) {
                    stack.extend(node.upstream.iter().copied());
                }
            }
        }
        let mut input = Map::new();
        for (_, id) in ancestors {
            if let Some(node) = self.nodes.get(&id) {
                for task_id in &node.task_ids {
                    if let Some(task) = self.tasks.get(task_id) {
                        merge_context(&mut input, &task.output);
                    }
                }
            }
        }
        let input = Arc::new(input);
        self.inputs.insert(node_id, Arc::clone(&input));
        input
    }

    /// Queues a READY sub-task in its node's pool.
    pub(crate) fn enqueue(&mut self, task_id: u64) {
        let pool = self
            .tasks
            .get(&task_id)
            .and_then(|t| self.nodes.get(&t.node_id))
            .and_then(|n| n.pool.clone())
            .unwrap_or_default();
        self.enqueue_in(&pool, task_id);
    }

    /// Queues a READY sub-task in `pool` ("" for none), its node's pool.
    pub(crate) fn enqueue_in(&mut self, pool: &str, task_id: u64) {
        self.ready.push(pool, task_id);
    }

    /// Creates a node's sub-tasks (PENDING), one per parameter value, with fresh ids.
    /// Each sub-task shares its parameter value (no copy).
    pub(crate) fn create_tasks(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        next_task_id: &mut u64,
        node: &NodeRecord,
        params: &[Arc<Value>],
    ) -> Vec<u64> {
        let many = params.len() > 1;
        let mut ids = Vec::with_capacity(params.len());
        // One copy of the type name, shared by every sub-task of the node; one buffer
        // for the numbered names.
        let task_type = &node.task_type;
        let mut name = String::new();
        txn.new_tasks.reserve(params.len());
        for (index, params) in params.iter().enumerate() {
            *next_task_id += 1;
            let id = *next_task_id;
            let task = new_task_record(node, id, index, many, params, task_type, &mut name, sched);
            self.tasks.insert(id, Arc::new(task));
            txn.touch_task(self.rec.id, id);
            txn.new_tasks.push(Member {
                dag_id: self.rec.id,
                id,
            });
            ids.push(id);
        }
        *self.unfinished_tasks.entry(node.id).or_default() += params.len();
        txn.counters_dirty = true;
        ids
    }

    /// Releases the DAG's maintenance lock, if it holds it.
    pub(crate) fn release_lock(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if !self.rec.lock_held {
            return;
        }
        if let Some(key) = keys::lock(&self.rec.maintenance) {
            sched.locks.release(txn, key, self.rec.id);
        }
        Arc::make_mut(&mut self.rec).lock_held = false;
        txn.dirty_dags.push(self.id());
    }

    /// Takes the DAG's lock back after a failure released it (see
    /// [`super::locks::LockTable::retake`]).
    pub(crate) fn reacquire_lock(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
    ) -> Result<(), OperateError> {
        if self.rec.lock_held {
            return Ok(());
        }
        let Some(key) = keys::lock(&self.rec.maintenance) else {
            return Ok(());
        };
        sched.locks.retake(txn, &sched.ids, key, &self.rec)?;
        Arc::make_mut(&mut self.rec).lock_held = true;
        txn.dirty_dags.push(self.id());
        Ok(())
    }
}

/// A new PENDING sub-task of `node`. A parameter object with a string `"name"` names
/// it; otherwise it is named like its node (numbered when the node has several, built
/// in `buffer`).
#[allow(clippy::too_many_arguments)]
fn new_task_record(
    node: &NodeRecord,
    id: u64,
    index: usize,
    numbered: bool,
    params: &Arc<Value>,
    task_type: &Arc<str>,
    buffer: &mut String,
    sched: &Sched,
) -> TaskRecord {
    let name: Arc<str> = match params.get("name").and_then(Value::as_str) {
        Some(name) => name.into(),
        None if numbered => {
            use std::fmt::Write;
            buffer.clear();
            let _ = write!(buffer, "{} #{}", node.name, index + 1);
            buffer.as_str().into()
        }
        None => Arc::clone(&node.name),
    };
    TaskRecord {
        v: RECORD_VERSION,
        id,
        dag_id: node.dag_id,
        node_id: node.id,
        index: u32::try_from(index).unwrap_or(u32::MAX),
        name,
        task_type: Arc::clone(task_type),
        params: Arc::clone(params),
        flags: node.flags.unwrap_or_default(),
        state: State::Pending,
        operator: node.operator,
        execute_times: 0,
        auto_retries: 0,
        rollback_before_retry: false,
        ran: false,
        local: Map::new(),
        output: Map::new(),
        additional_data: Map::new(),
        log_count: 0,
        create_time: sched.now,
        start_time: None,
        end_time: None,
    }
}

/// The record of a new DAG (READY+RUN, stage 1).
fn new_dag_record(
    spec: &DagSpec,
    id: u64,
    node_ids: &[u64],
    layers: &[u32],
    sched: &Sched,
) -> DagRecord {
    DagRecord {
        v: RECORD_VERSION,
        id,
        name: spec.name.clone(),
        scope: spec.scope,
        state: State::Ready,
        operator: Operator::Run,
        stage: 1,
        max_stage: layers.iter().copied().max().unwrap_or(1),
        maintenance: spec.maintenance.clone(),
        lock_held: false,
        params: spec.params.clone(),
        pools: spec.pools.clone(),
        node_ids: node_ids.into(),
        create_time: sched.now,
        start_time: None,
        end_time: None,
    }
}

/// The record of node `index` of a new DAG (PENDING+RUN, no sub-tasks yet). `node_type`
/// is its type's name (shared by the nodes of that type) and flags: its sub-tasks get
/// them unless the spec overrides them.
fn new_node_record(
    node_spec: &NodeSpec,
    id: u64,
    dag_id: u64,
    links: NodeLinks,
    layer: u32,
    node_type: (Arc<str>, Flags),
    sched: &Sched,
) -> NodeRecord {
    let (task_type, type_flags) = node_type;
    NodeRecord {
        v: RECORD_VERSION,
        id,
        dag_id,
        name: node_spec.name.as_str().into(),
        task_type,
        layer,
        upstream: links.upstream,
        downstream: links.downstream,
        state: State::Pending,
        operator: Operator::Run,
        fan_out: node_spec.fan_out.clone(),
        expanded: matches!(node_spec.fan_out, FanOut::Static(_)),
        task_ids: Vec::new(),
        pool: node_spec.pool.clone(),
        timeout_ms: u64::try_from(node_spec.timeout.as_millis()).unwrap_or(u64::MAX),
        retry: node_spec.retry,
        flags: Some(node_spec.flags.unwrap_or(type_flags)),
        failure_exit_maintenance: node_spec.failure_exit_maintenance,
        create_time: sched.now,
        start_time: None,
        end_time: None,
    }
}
