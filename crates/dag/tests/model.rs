//! Property test: random DAG shapes, random failures, and random operator / restart
//! sequences, checked against a simple reference model of what each operator allows
//! and of what must hold once the DAG settles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::record::DagRecord;
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, MemStore, NodeSpec, OperateError, Operator,
    State, SyncTask, Task, TaskContext, TaskError, TaskRegistry,
};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Ok,
    Fail,
    Rollback,
    RollbackOperator,
}

#[derive(Default)]
struct Journal {
    entries: Mutex<Vec<(Kind, String)>>,
    failures: Mutex<HashMap<String, u8>>,
}

impl Journal {
    fn push(&self, kind: Kind, name: &str) {
        self.entries.lock().unwrap().push((kind, name.to_string()));
    }
}

struct Step {
    journal: Arc<Journal>,
    name: String,
}

impl Step {
    /// Journals the end of an execution: fails while the case's failures last.
    fn finish(&self) -> Result<(), TaskError> {
        let fail = {
            let mut failures = self.journal.failures.lock().unwrap();
            match failures.get_mut(&self.name) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        if fail {
            self.journal.push(Kind::Fail, &self.name);
            Err(TaskError::new("injected failure"))
        } else {
            self.journal.push(Kind::Ok, &self.name);
            Ok(())
        }
    }
}

#[async_trait]
impl Task for Step {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.journal.push(Kind::Exec, &self.name);
        tokio::task::yield_now().await;
        self.finish()
    }

    async fn rollback(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.journal.push(Kind::Rollback, &self.name);
        Ok(())
    }
}

/// The same step as a synchronous task type: it cannot yield.
impl SyncTask for Step {
    fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.journal.push(Kind::Exec, &self.name);
        self.finish()
    }

    fn rollback(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.journal.push(Kind::Rollback, &self.name);
        Ok(())
    }
}

/// How the "step" type is registered.
#[derive(Debug, Clone, Copy)]
enum StepKind {
    /// Each attempt a tokio task.
    Spawned,
    /// Polled once where it starts (`set_light`).
    Light,
    /// A `SyncTask`, called where it starts.
    Sync,
}

#[derive(Debug, Clone)]
enum Op {
    Retry,
    Rollback,
    Pass,
    PassNode(usize),
    Restart,
}

#[derive(Debug, Clone)]
struct Case {
    /// Per node, the injected failure count of each sub-task.
    nodes: Vec<Vec<u8>>,
    edges: Vec<(usize, usize)>,
    ops: Vec<Op>,
    /// How the task type is registered.
    kind: StepKind,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..6)
        .prop_flat_map(|n| {
            let nodes = prop::collection::vec(prop::collection::vec(0u8..3, 1..4), n);
            let edges = prop::collection::vec((0..n, 0..n), 0..(n * 2));
            let op = prop_oneof![
                3 => Just(Op::Retry),
                1 => Just(Op::Rollback),
                1 => Just(Op::Pass),
                1 => (0..n).prop_map(Op::PassNode),
                2 => Just(Op::Restart),
            ];
            let kind = prop_oneof![
                Just(StepKind::Spawned),
                Just(StepKind::Light),
                Just(StepKind::Sync),
            ];
            (nodes, edges, prop::collection::vec(op, 0..6), kind)
        })
        .prop_map(|(nodes, edges, ops, kind)| Case {
            edges: edges.into_iter().filter(|(a, b)| a < b).collect(),
            nodes,
            ops,
            kind,
        })
}

fn name(node: usize, task: usize) -> String {
    format!("n{node}t{task}")
}

async fn open(store: &Arc<dyn KvStore>, journal: &Arc<Journal>, kind: StepKind) -> Engine {
    let mut registry = TaskRegistry::new();
    let journal = Arc::clone(journal);
    let step = move |params: &serde_json::Value| Step {
        journal: Arc::clone(&journal),
        name: params["name"].as_str().unwrap_or_default().to_string(),
    };
    match kind {
        StepKind::Spawned | StepKind::Light => {
            registry.register("step", Flags::ALL, move |params| {
                Ok(Box::new(step(params)) as Box<dyn Task>)
            });
        }
        StepKind::Sync => registry.register_sync("step", Flags::ALL, move |params| {
            Ok(Box::new(step(params)) as Box<dyn SyncTask>)
        }),
    }
    if matches!(kind, StepKind::Light) {
        registry.set_light("step");
    }
    let config = EngineConfig {
        worker_limit: 3,
        ..EngineConfig::default()
    };
    Engine::open(config, Arc::clone(store), registry)
        .await
        .unwrap()
}

/// The reference model of what an operator may do to a settled DAG: obshell's rule,
/// a FAILED DAG whatever its operator (a failed rollback included).
fn model_allows(op: &Op, dag_state: State, _dag_operator: Operator, node_states: &[State]) -> bool {
    let failed = dag_state == State::Failed;
    match op {
        Op::Retry | Op::Pass | Op::Rollback => failed,
        Op::PassNode(i) => failed && node_states.get(*i) == Some(&State::Failed),
        Op::Restart => true,
    }
}

/// What the random operators did, for the checks once the DAG settled.
struct Applied {
    /// Per node, whether a PASS of that node succeeded.
    passed_nodes: Vec<bool>,
    /// Whether the engine was restarted (then sub-tasks may run more often).
    restarted: bool,
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let journal = journal_failing(&case);
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let mut engine = open(&store, &journal, case.kind).await;
    let id = engine.submit(spec_of(&case)).await.unwrap();
    let applied = apply_ops(&mut engine, &store, &journal, &case, id).await?;
    let dag = engine.wait_settled(id).await.unwrap();
    let entries = journal.entries.lock().unwrap().clone();
    check_upstream_order(&case, &applied, &dag, &entries)?;
    check_final_state(&case, &applied, &dag, &entries)?;
    engine.abort();
    Ok(())
}

/// A journal whose sub-tasks fail as the case says.
fn journal_failing(case: &Case) -> Arc<Journal> {
    let journal = Arc::new(Journal::default());
    for (n, tasks) in case.nodes.iter().enumerate() {
        for (t, failures) in tasks.iter().enumerate() {
            journal
                .failures
                .lock()
                .unwrap()
                .insert(name(n, t), *failures);
        }
    }
    journal
}

fn spec_of(case: &Case) -> DagSpec {
    let mut spec = DagSpec::new("model");
    let indices: Vec<_> = case
        .nodes
        .iter()
        .enumerate()
        .map(|(n, tasks)| {
            let params = (0..tasks.len())
                .map(|t| json!({"name": name(n, t)}))
                .collect();
            spec.add_node(NodeSpec::new(format!("n{n}"), "step").sub_tasks(params))
        })
        .collect();
    for (a, b) in &case.edges {
        spec.add_edge(indices[*a], indices[*b]);
    }
    spec
}

/// Applies the case's operators, then RETRY until done (bounded), as an operator would,
/// each on the settled DAG, and checks each answer against the model.
async fn apply_ops(
    engine: &mut Engine,
    store: &Arc<dyn KvStore>,
    journal: &Arc<Journal>,
    case: &Case,
    id: u64,
) -> Result<Applied, TestCaseError> {
    let mut applied = Applied {
        passed_nodes: vec![false; case.nodes.len()],
        restarted: false,
    };
    let mut ops = case.ops.clone();
    ops.extend(std::iter::repeat_n(Op::Retry, 4));
    for op in ops {
        let dag = engine.wait_settled(id).await.unwrap();
        let nodes = engine.records().nodes_of(&dag).unwrap();
        let node_states: Vec<State> = nodes.iter().map(|n| n.state).collect();
        if dag.state == State::Succeed {
            break;
        }
        // Settled FAILED: some node failed, none runs.
        prop_assert!(node_states.iter().all(|s| *s != State::Running));
        let allowed = model_allows(&op, dag.state, dag.operator, &node_states);
        let result = match &op {
            Op::Retry => engine.operate(id, Operator::Retry).await,
            Op::Rollback => {
                journal.push(Kind::RollbackOperator, "");
                engine.operate(id, Operator::Rollback).await
            }
            Op::Pass => engine.operate(id, Operator::Pass).await,
            Op::PassNode(i) => engine.pass_node(nodes[*i].id).await,
            Op::Restart => {
                engine.abort();
                *engine = open(store, journal, case.kind).await;
                applied.restarted = true;
                Ok(())
            }
        };
        match (&result, allowed) {
            (Ok(()), true) | (Err(OperateError::NotAllowed { .. }), false) => {}
            _ => prop_assert!(
                false,
                "model allows {op:?}: {allowed}, engine said {result:?} (dag {}+{})",
                dag.state,
                dag.operator
            ),
        }
        if let (Op::PassNode(i), Ok(())) = (&op, &result) {
            applied.passed_nodes[*i] = true;
        }
    }
    Ok(applied)
}

/// A sub-task executes only after every sub-task of each upstream node succeeded (or
/// its node was passed).
fn check_upstream_order(
    case: &Case,
    applied: &Applied,
    dag: &DagRecord,
    entries: &[(Kind, String)],
) -> Result<(), TestCaseError> {
    for (seq, (kind, task)) in entries.iter().enumerate() {
        if *kind != Kind::Exec {
            continue;
        }
        let node: usize = task[1..task.find('t').unwrap()].parse().unwrap();
        for (up, down) in &case.edges {
            if *down != node || applied.passed_nodes[*up] || dag.operator == Operator::Pass {
                continue;
            }
            for t in 0..case.nodes[*up].len() {
                let upstream = name(*up, t);
                let ok_before = entries[..seq]
                    .iter()
                    .any(|(k, n)| *k == Kind::Ok && *n == upstream);
                prop_assert!(ok_before, "{task} ran before {upstream} succeeded");
            }
        }
    }
    Ok(())
}

/// What must hold of the settled DAG, by its final state and operator.
fn check_final_state(
    case: &Case,
    applied: &Applied,
    dag: &DagRecord,
    entries: &[(Kind, String)],
) -> Result<(), TestCaseError> {
    match (dag.state, dag.operator) {
        (State::Succeed, Operator::Run | Operator::Retry) => {
            // Without passes, every sub-task succeeded; without restarts, each ran exactly
            // its failures + 1 times (RETRY re-runs only failed sub-tasks).
            if !applied.passed_nodes.iter().any(|p| *p) {
                check_run_counts(case, applied.restarted, entries)?;
            }
        }
        (State::Succeed, Operator::Rollback) => check_rollback_order(case, entries)?,
        (State::Succeed, Operator::Pass) => {}
        (State::Failed, _) => {
            // Only possible when the random ops ran out of RETRYs or ended in a rollback
            // that is allowed to be continued.
            prop_assert!(dag.operator != Operator::Cancel);
        }
        other => prop_assert!(false, "unexpected final state {other:?}"),
    }
    Ok(())
}

fn check_run_counts(
    case: &Case,
    restarted: bool,
    entries: &[(Kind, String)],
) -> Result<(), TestCaseError> {
    for (n, tasks) in case.nodes.iter().enumerate() {
        for (t, failures) in tasks.iter().enumerate() {
            let runs = entries
                .iter()
                .filter(|(k, x)| *k == Kind::Exec && *x == name(n, t))
                .count();
            if restarted {
                prop_assert!(runs > usize::from(*failures));
            } else {
                prop_assert_eq!(runs, usize::from(*failures) + 1, "{}", name(n, t));
            }
        }
    }
    Ok(())
}

/// Reverse topological order within the last ROLLBACK: a node's rollbacks come after
/// its downstream nodes' rollbacks.
fn check_rollback_order(case: &Case, entries: &[(Kind, String)]) -> Result<(), TestCaseError> {
    let operator_rollback = entries
        .iter()
        .rposition(|(k, _)| *k == Kind::RollbackOperator);
    let start = operator_rollback.unwrap_or(0);
    let rollbacks: Vec<&String> = entries[start..]
        .iter()
        .filter(|(k, _)| *k == Kind::Rollback)
        .map(|(_, n)| n)
        .collect();
    for (up, down) in &case.edges {
        let last_down = rollbacks
            .iter()
            .rposition(|n| n.starts_with(&format!("n{down}t")));
        let first_up = rollbacks
            .iter()
            .position(|n| n.starts_with(&format!("n{up}t")));
        if let (Some(last_down), Some(first_up)) = (last_down, first_up) {
            prop_assert!(
                last_down < first_up,
                "n{up} rolled back before its downstream n{down}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_dags_and_operators_follow_the_model(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), run_case(case)).await.expect("case timed out")
        })?;
    }
}
