//! The operator table of SPEC §2.1: every row, allowed and refused, with the resulting
//! state+operator of the DAG and its nodes, run by one [`check`] function. Scenarios
//! that are not one operator on one state (submit, concurrency, locks between DAGs,
//! logs) are tests of their own after the table.
//!
//! A row is a DAG, what it went through (the state before), one operator, and the
//! expected outcome, all as text:
//!
//! - **dag**: chains such as `A>B>C`, separated by spaces (`A>B A>C B>D C>D`). A node's
//!   first mention may add `:type` (`locked`, `nopass`, `fragile`: the support
//!   registry's `script_<type>`; default `script`), `{key,key=number}` parameters (a bare
//!   key is `true`) and `[D1,D2]` sub-task names (default: one sub-task named like the
//!   node). Nodes are in order of first mention.
//! - **before**: steps separated by `;`: `fail X` or `fail X*5` (sub-task X fails its
//!   next executions), `fail-rollback X`, `heal-rollback`, an operator (`RETRY`,
//!   `ROLLBACK`, `CANCEL`, `PASS`, `PASS X` for node X), `until X RUNNING+ROLLBACK`
//!   (wait until node X is so). The DAG is submitted at the first step that needs it;
//!   after the submit and after each operator it settles, unless an `until` follows.
//! - **apply**: `submit` (RUN, at submit) or an operator as above.
//! - **expect**: when applied, after the DAG settled: `STATE+OP | node STATE+OP, ... |
//!   ran <executed sub-tasks, sorted, once per execution> | undone <rolled back
//!   sub-tasks, in order>` (the last part only when something was undone; `{B C}`
//!   matches B and C in either order). When refused: `refused: <obshell's text> |
//!   STATE+OP` right after the refusal, and `| settles STATE+OP` when the row asks for
//!   it.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use obrestore_dag::{
    DagSpec, Engine, Maintenance, NodeIndex, NodeSpec, OperateError, Operator, Refusal, SubmitError,
};
use serde_json::{json, Map, Value};
use support::*;

/// One row of the table.
struct Row {
    dag: &'static str,
    before: &'static str,
    apply: &'static str,
    expect: &'static str,
}

const fn row(
    dag: &'static str,
    before: &'static str,
    apply: &'static str,
    expect: &'static str,
) -> Row {
    Row {
        dag,
        before,
        apply,
        expect,
    }
}

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // RETRY re-runs only the failed sub-tasks, after rolling them back.
    row("A>D[D1,D2]", "fail D2", "submit",
        "FAILED+RUN | A SUCCEED+RUN, D FAILED+RUN | ran A D1 D2"),
    row("A>D[D1,D2]", "fail D2", "RETRY",
        "SUCCEED+RUN | A SUCCEED+RUN, D SUCCEED+RETRY | ran A D1 D2 D2 | undone D2"),
    row("A>D[D1,D2]", "fail D2; RETRY", "RETRY",
        "refused: Failed to set DAG retry: DAG state is not failed | SUCCEED+RUN"),
    // A failed node that allows nothing refuses RETRY, ROLLBACK and PASS.
    row("L:locked", "fail L", "RETRY",
        "refused: Failed to set DAG retry: node L cannot retry | FAILED+RUN"),
    row("L:locked", "fail L", "ROLLBACK",
        "refused: Failed to set DAG rollback: node L cannot rollback | FAILED+RUN"),
    row("L:locked", "fail L", "PASS",
        "refused: Failed to pass DAG: node L cannot pass | FAILED+RUN"),
    // RUN is applied at submit only; ROLLBACK undoes in reverse topological order.
    row("A>B A>C B>D C>D D>E", "fail D", "RUN",
        "refused: Operator RUN is not supported | FAILED+RUN"),
    row("A>B A>C B>D C>D D>E", "fail D", "ROLLBACK",
        "SUCCEED+ROLLBACK | A SUCCEED+ROLLBACK, B SUCCEED+ROLLBACK, C SUCCEED+ROLLBACK, \
         D SUCCEED+ROLLBACK, E PENDING+RUN | ran A B C D | undone D {B C} A"),
    // A failed rollback ends FAILED+ROLLBACK; CANCEL finds it finished; ROLLBACK
    // continues it.
    row("A>B", "fail B; fail-rollback A", "ROLLBACK",
        "FAILED+ROLLBACK | A FAILED+ROLLBACK, B SUCCEED+ROLLBACK | ran A B | undone B"),
    row("A>B", "fail B; fail-rollback A; ROLLBACK", "CANCEL",
        "refused: Failed to cancel DAG: DAG is finished | FAILED+ROLLBACK"),
    row("A>B", "fail B; fail-rollback A; ROLLBACK; heal-rollback", "ROLLBACK",
        "SUCCEED+ROLLBACK | A SUCCEED+ROLLBACK, B SUCCEED+ROLLBACK | ran A B | undone B A"),
    // A succeeded DAG refuses ROLLBACK and CANCEL.
    row("A", "", "ROLLBACK",
        "refused: Failed to set DAG rollback: DAG state is not failed | SUCCEED+RUN"),
    row("A", "", "CANCEL",
        "refused: Failed to cancel DAG: DAG is finished | SUCCEED+RUN"),
    // CANCEL stops running sub-tasks; then CANCEL finds it finished and PASS applies.
    row("A>B{wait_cancel}>C", "until B RUNNING+RUN", "CANCEL",
        "FAILED+CANCEL | A SUCCEED+RUN, B FAILED+CANCEL, C PENDING+RUN | ran A B"),
    row("A>B{wait_cancel}>C", "until B RUNNING+RUN; CANCEL", "CANCEL",
        "refused: Failed to cancel DAG: DAG is finished | FAILED+CANCEL"),
    row("A>B{wait_cancel}>C", "until B RUNNING+RUN; CANCEL", "PASS",
        "SUCCEED+PASS | A SUCCEED+RUN, B SUCCEED+PASS, C SUCCEED+PASS | ran A B"),
    // CANCEL checks the nodes in stage order up to the running one, and running ones.
    row("L:locked{sleep_ms=300}", "until L RUNNING+RUN", "CANCEL",
        "refused: Failed to cancel DAG: node L cannot cancel | RUNNING+RUN | settles SUCCEED+RUN"),
    row("L:locked>W{wait_cancel}", "until W RUNNING+RUN", "CANCEL",
        "refused: Failed to cancel DAG: node L cannot cancel | RUNNING+RUN"),
    row("V{wait_cancel}>M:locked", "until V RUNNING+RUN", "CANCEL",
        "FAILED+CANCEL | V FAILED+CANCEL, M PENDING+RUN | ran V"),
    // CANCEL stops a rollback; RETRY then runs both again.
    row("A{rollback_wait_cancel}>B", "fail B; ROLLBACK; until A RUNNING+ROLLBACK", "CANCEL",
        "FAILED+CANCEL | A FAILED+ROLLBACK, B SUCCEED+ROLLBACK | ran A B | undone B"),
    row("A{rollback_wait_cancel}>B", "fail B; ROLLBACK; until A RUNNING+ROLLBACK; CANCEL", "RETRY",
        "SUCCEED+RUN | A SUCCEED+RETRY, B SUCCEED+RUN | ran A A B B | undone B"),
    // PASS of the DAG needs every remaining node passable.
    row("A>B:nopass", "fail A", "PASS",
        "refused: Failed to pass DAG: node B cannot pass | FAILED+RUN"),
    // PASS of a node needs a FAILED node of a FAILED DAG, and continues downstream.
    row("A>B>C", "fail B*5", "PASS A",
        "refused: Failed to pass node: node A is not failed | FAILED+RUN"),
    row("A>B>C", "fail B*5", "PASS B",
        "SUCCEED+RUN | A SUCCEED+RUN, B SUCCEED+PASS, C SUCCEED+RUN | ran A B C"),
    row("A>B>C", "fail B*5; PASS B", "PASS B",
        "refused: Failed to pass node: assigned DAG is not failed | SUCCEED+RUN"),
    // After a failed rollback: RETRY re-runs the undone nodes (B's failed rollback is
    // not attempted again), PASS of the failed node runs forward again, PASS of the DAG
    // ends it.
    row("A>B>C", "fail C; fail-rollback B", "ROLLBACK",
        "FAILED+ROLLBACK | A SUCCEED+RUN, B FAILED+ROLLBACK, C SUCCEED+ROLLBACK | ran A B C | undone C"),
    row("A>B>C", "fail C; fail-rollback B; ROLLBACK", "RETRY",
        "SUCCEED+RUN | A SUCCEED+RUN, B SUCCEED+RETRY, C SUCCEED+RUN | ran A B B C C | undone C"),
    row("A>B>C", "fail C; fail-rollback B; ROLLBACK", "PASS B",
        "SUCCEED+RUN | A SUCCEED+RUN, B SUCCEED+PASS, C SUCCEED+RUN | ran A B C C | undone C"),
    row("Y>Z", "fail Z; fail-rollback Y", "ROLLBACK",
        "FAILED+ROLLBACK | Y FAILED+ROLLBACK, Z SUCCEED+ROLLBACK | ran Y Z | undone Z"),
    row("Y>Z", "fail Z; fail-rollback Y; ROLLBACK", "PASS",
        "SUCCEED+PASS | Y SUCCEED+PASS, Z SUCCEED+ROLLBACK | ran Y Z | undone Z"),
];

#[tokio::test]
async fn operator_table() {
    let mut mismatches = Vec::new();
    // Light task types (polled once where they start) follow the same table.
    for light in [false, true] {
        for (index, row) in TABLE.iter().enumerate() {
            let observed = check(row, light).await;
            if !same_outcome(row.expect, &observed) {
                mismatches.push(format!(
                    "row {index} (light {light}): dag {:?}, before {:?}, apply {:?}\n  expected {}\n  observed {observed}",
                    row.dag, row.before, row.apply, row.expect
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

/// Runs one row on a fresh engine and renders what happened (see the module doc).
async fn check(row: &Row, light: bool) -> String {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine_of(&world, light).await;
    let mut dag = Dag {
        spec: Some(parse_dag(row.dag)),
        id: None,
    };
    let steps = parse_steps(row.before);
    for (index, step) in steps.iter().enumerate() {
        let until_follows = matches!(steps.get(index + 1), Some(Step::Until { .. }));
        run_step(&engine, &world, &mut dag, step, until_follows).await;
    }
    let apply = parse_apply(row.apply);
    let result = match apply {
        Apply::Submit => {
            dag.submit(&engine, true).await;
            Ok(())
        }
        apply => {
            let id = dag.submit(&engine, true).await;
            operate(&engine, id, &apply).await
        }
    };
    let id = dag.submit(&engine, true).await;
    let outcome = render(
        &engine,
        &world,
        id,
        result,
        row.expect.contains("| settles"),
    )
    .await;
    engine.abort();
    outcome
}

/// The DAG of a row: its spec until it is submitted, then its id.
struct Dag {
    spec: Option<DagSpec>,
    id: Option<u64>,
}

impl Dag {
    /// Submits the DAG the first time (and lets it settle when `settle`); returns its id.
    async fn submit(&mut self, engine: &Engine, settle: bool) -> u64 {
        if let Some(id) = self.id {
            return id;
        }
        let spec = self.spec.take().expect("a spec to submit");
        let id = engine.submit(spec).await.unwrap();
        if settle {
            engine.wait_settled(id).await.unwrap();
        }
        self.id = Some(id);
        id
    }
}

enum Step {
    Fail { name: String, times: usize },
    FailRollback(String),
    HealRollback,
    Apply(Apply),
    Until { node: String, status: String },
}

enum Apply {
    Submit,
    Operator(Operator),
    PassNode(String),
}

async fn run_step(engine: &Engine, world: &World, dag: &mut Dag, step: &Step, until_follows: bool) {
    match step {
        Step::Fail { name, times } => world.fail(name, *times),
        Step::FailRollback(name) => world.fail_rollback(name),
        Step::HealRollback => world.heal_rollback(),
        Step::Apply(apply) => {
            let id = dag.submit(engine, true).await;
            operate(engine, id, apply)
                .await
                .expect("a step's operator applies");
            if !until_follows {
                engine.wait_settled(id).await.unwrap();
            }
        }
        Step::Until { node, status } => {
            let id = dag.submit(engine, false).await;
            let what = format!("{node} {status}");
            wait_until(engine, id, &what, |detail| {
                detail
                    .nodes
                    .iter()
                    .flatten()
                    .any(|n| n.name == *node && format!("{}+{}", n.state, n.operator) == *status)
            })
            .await;
        }
    }
}

async fn operate(engine: &Engine, id: u64, apply: &Apply) -> Result<(), OperateError> {
    match apply {
        Apply::Submit => panic!("submit is not a step"),
        Apply::Operator(operator) => engine.operate(id, *operator).await,
        Apply::PassNode(name) => {
            let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
            let node = nodes.iter().find(|n| n.name == *name).expect("node exists");
            engine.pass_node(node.node_id).await
        }
    }
}

/// The outcome text of the module doc.
async fn render(
    engine: &Engine,
    world: &World,
    id: u64,
    result: Result<(), OperateError>,
    then_settles: bool,
) -> String {
    let dag_text = |engine: &Engine| {
        let (state, operator) = dag_status(engine, id);
        format!("{state}+{operator}")
    };
    match result {
        Ok(()) => {
            engine.wait_settled(id).await.unwrap();
            let nodes: Vec<String> = node_status(engine, id)
                .into_iter()
                .map(|(name, state, operator)| format!("{name} {state}+{operator}"))
                .collect();
            let mut ran = world.executions.lock().unwrap().clone();
            ran.sort();
            let mut text = format!(
                "{} | {} | ran {}",
                dag_text(engine),
                nodes.join(", "),
                ran.join(" ")
            );
            let undone = world.rollback_order();
            if !undone.is_empty() {
                text.push_str(&format!(" | undone {}", undone.join(" ")));
            }
            text
        }
        Err(OperateError::NotAllowed { reason, .. }) => {
            let mut text = format!("refused: {reason} | {}", dag_text(engine));
            if then_settles {
                engine.wait_settled(id).await.unwrap();
                text.push_str(&format!(" | settles {}", dag_text(engine)));
            }
            text
        }
        Err(other) => format!("error: {other}"),
    }
}

/// Whether `observed` is the outcome `expected` describes: equal word by word, where a
/// `{B C}` group of the expectation matches its words in any order.
fn same_outcome(expected: &str, observed: &str) -> bool {
    let mut observed = observed.split_whitespace();
    let mut expected = expected.split_whitespace();
    while let Some(word) = expected.next() {
        let Some(group) = word.strip_prefix('{') else {
            if observed.next() != Some(word) {
                return false;
            }
            continue;
        };
        let mut wanted = vec![group.trim_end_matches('}').to_string()];
        let mut closed = group.ends_with('}');
        while !closed {
            let Some(next) = expected.next() else {
                return false;
            };
            closed = next.ends_with('}');
            wanted.push(next.trim_end_matches('}').to_string());
        }
        let mut got: Vec<String> = observed
            .by_ref()
            .take(wanted.len())
            .map(str::to_string)
            .collect();
        wanted.sort();
        got.sort();
        if wanted != got {
            return false;
        }
    }
    observed.next().is_none()
}

/// The DAG of the `dag` column.
fn parse_dag(text: &str) -> DagSpec {
    let mut spec = DagSpec::new("table");
    let mut indices: HashMap<String, NodeIndex> = HashMap::new();
    for chain in text.split_whitespace() {
        let mut previous = None;
        for mention in chain.split('>') {
            let (name, node) = parse_node(mention);
            let index = *indices.entry(name).or_insert_with(|| spec.add_node(node));
            if let Some(previous) = previous {
                spec.add_edge(previous, index);
            }
            previous = Some(index);
        }
    }
    spec
}

/// `Name[:type][{params}][[sub,tasks]]`.
fn parse_node(mention: &str) -> (String, NodeSpec) {
    let end = |text: &str| text.find(['{', '[']).unwrap_or(text.len());
    let (head, rest) = mention.split_at(end(mention));
    let (name, task_type) = match head.split_once(':') {
        Some((name, kind)) => (name, format!("script_{kind}")),
        None => (head, "script".to_string()),
    };
    let params = between(rest, '{', '}')
        .map(parse_params)
        .unwrap_or_default();
    let sub_tasks: Vec<String> = match between(rest, '[', ']') {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => vec![name.to_string()],
    };
    let params = sub_tasks
        .iter()
        .map(|sub_task| {
            let mut params = params.clone();
            params.insert("name".to_string(), json!(sub_task));
            Value::Object(params)
        })
        .collect();
    (
        name.to_string(),
        NodeSpec::new(name, task_type).sub_tasks(params),
    )
}

fn between(text: &str, open: char, close: char) -> Option<&str> {
    let start = text.find(open)? + 1;
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// `key,key=number`: a bare key is `true`.
fn parse_params(text: &str) -> Map<String, Value> {
    text.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((key, number)) => (key.to_string(), json!(number.parse::<u64>().unwrap())),
            None => (pair.to_string(), json!(true)),
        })
        .collect()
}

fn parse_steps(text: &str) -> Vec<Step> {
    text.split(';')
        .map(str::trim)
        .filter(|step| !step.is_empty())
        .map(|step| {
            let words: Vec<&str> = step.split_whitespace().collect();
            match words.as_slice() {
                ["fail", target] => {
                    let (name, times) = target.split_once('*').unwrap_or((target, "1"));
                    Step::Fail {
                        name: name.to_string(),
                        times: times.parse().unwrap(),
                    }
                }
                ["fail-rollback", name] => Step::FailRollback(name.to_string()),
                ["heal-rollback"] => Step::HealRollback,
                ["until", node, status] => Step::Until {
                    node: node.to_string(),
                    status: status.to_string(),
                },
                _ => Step::Apply(parse_apply(step)),
            }
        })
        .collect()
}

fn parse_apply(text: &str) -> Apply {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["submit"] => Apply::Submit,
        ["PASS", node] => Apply::PassNode(node.to_string()),
        [operator] => Apply::Operator(operator.parse().expect("an operator")),
        _ => panic!("not an operator: {text}"),
    }
}

// ---- scenarios that are not one operator on one state ----

#[tokio::test]
async fn a_retried_sub_task_keeps_the_log_of_its_failed_attempt() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("D2", 1);
    let id = engine.submit(parse_dag("A>D[D1,D2]")).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Retry).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    let d = engine
        .dag_detail(id, true)
        .unwrap()
        .nodes
        .unwrap()
        .remove(1);
    let d2 = &d.sub_tasks.as_ref().unwrap()[1];
    assert_eq!(d2.execute_times, 2);
    assert_eq!(d2.task_logs[1], "ERROR: D2 failed on purpose");
}

#[tokio::test]
async fn a_second_cancel_while_cancelling_succeeds_and_the_cancelled_sub_task_logs_it() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut events = engine.subscribe();
    let id = engine
        .submit(parse_dag("A>B{wait_cancel}>C"))
        .await
        .unwrap();
    // Wait until B runs.
    loop {
        let event = events.recv().await.unwrap();
        if let obrestore_dag::Subject::SubTask { .. } = event.subject {
            let detail = engine.dag_detail(id, true).unwrap();
            if detail.nodes.unwrap()[1].state == "RUNNING" {
                break;
            }
        }
    }
    engine.operate(id, Operator::Cancel).await.unwrap();
    // A second CANCEL succeeds while the DAG is still being cancelled (obshell's
    // compare-and-set on the current state) and is refused once it has settled.
    match engine.operate(id, Operator::Cancel).await {
        Ok(()) => {}
        Err(OperateError::NotAllowed { reason, .. }) => {
            assert_eq!(reason, Refusal::CancelFinishedDag)
        }
        Err(other) => panic!("{other:?}"),
    }
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        status("FAILED", "CANCEL")
    );
    let b = engine
        .dag_detail(id, true)
        .unwrap()
        .nodes
        .unwrap()
        .remove(1);
    assert_eq!(
        (b.state.as_str(), b.operator.as_str()),
        ("FAILED", "CANCEL")
    );
    assert_eq!(
        b.sub_tasks.unwrap()[0].task_logs.last().unwrap(),
        "sub task cancelled"
    );
}

#[tokio::test]
async fn operators_on_unknown_ids_are_not_found() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    assert!(matches!(
        engine.operate(999, Operator::Cancel).await,
        Err(OperateError::DagNotFound(999))
    ));
    assert!(matches!(
        engine.pass_node(12345).await,
        Err(OperateError::NodeNotFound(12345))
    ));
}

/// The forward stage is the first layer with an unfinished node: each node of a chain
/// starts at its own stage (the stage is found from a cursor that only moves forward
/// while nodes succeed), and a DAG that failed at a stage keeps it through a RETRY.
#[tokio::test]
async fn each_node_of_a_chain_starts_at_its_own_stage() {
    let world = Arc::new(World::default());
    world.fail("C", 1);
    let (engine, _) = mem_engine(&world).await;
    let mut events = engine.subscribe();
    let mut spec = DagSpec::new("stages");
    let nodes = vec![script("A"), script("B"), script("C"), script("D")];
    spec.chain(None, nodes);
    let id = engine.submit(spec).await.unwrap();
    let failed = engine.wait_settled(id).await.unwrap();
    assert_eq!(failed.state.to_string(), "FAILED");
    assert_eq!((failed.stage, failed.max_stage), (3, 4));
    engine.operate(id, Operator::Retry).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state.to_string(), "SUCCEED");
    assert_eq!((dag.stage, dag.max_stage), (4, 4));
    let mut started = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(event.subject, obrestore_dag::Subject::Node { .. })
            && event.state.to_string() == "RUNNING"
        {
            started.push(event.stage);
        }
    }
    assert_eq!(started, vec![1, 2, 3, 3, 4]);
}

#[tokio::test]
async fn run_executes_a_fan_out_fan_in_dag_in_topological_order() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("diamond");
    let a = spec.add_node(script_with(
        "A",
        json!({"output": {"from_a": 1, "shared": {"a": 1}}}),
    ));
    let b = spec.add_node(script_with(
        "B",
        json!({"output": {"from_b": 2, "shared": {"b": 2}}}),
    ));
    let c = spec.add_node(script_with("C", json!({"output": {"from_c": 3}})));
    let d = spec.add_node(
        NodeSpec::new("D", "script").sub_tasks(vec![json!({"name": "D1"}), json!({"name": "D2"})]),
    );
    spec.add_edge(a, b);
    spec.add_edge(a, c);
    spec.add_edge(b, d);
    spec.add_edge(c, d);
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        status("SUCCEED", "RUN")
    );
    assert_eq!((dag.stage, dag.max_stage), (3, 3));
    let order = world.executions.lock().unwrap().clone();
    assert_eq!(order[0], "A");
    assert_eq!(order.len(), 5);
    assert!(order[3..].contains(&"D1".to_string()) && order[3..].contains(&"D2".to_string()));
    // D sees the merged output of all its ancestors.
    let detail = engine.dag_detail(id, true).unwrap();
    let d_node = &detail.nodes.as_ref().unwrap()[3];
    assert_eq!(d_node.sub_tasks.as_ref().unwrap().len(), 2);
    assert_eq!(d_node.sub_tasks.as_ref().unwrap()[0].name, "D1");
}

#[tokio::test]
async fn concurrent_operators_cannot_both_win() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("A", 1);
    let id = engine.submit(chain(&["A"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    let (first, second) = tokio::join!(
        engine.operate(id, Operator::Rollback),
        engine.operate(id, Operator::Pass)
    );
    assert!(first.is_ok() != second.is_ok(), "{first:?} {second:?}");
}

#[tokio::test]
async fn maintenance_locks_are_taken_with_the_dag_and_released_on_success() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let tenant = |t: &str| chain(&["A"]).maintenance(Maintenance::Tenant(t.to_string()));
    world.fail("A", 1);
    let first = engine.submit(tenant("t1")).await.unwrap();
    engine.wait_settled(first).await.unwrap();
    // Failed: still holds its lock.
    match engine.submit(tenant("t1")).await {
        Err(SubmitError::LockConflict(conflict)) => assert_eq!(
            (conflict.lock, conflict.holder),
            (Maintenance::Tenant("t1".to_string()), first)
        ),
        other => panic!("{other:?}"),
    }
    match engine
        .submit(chain(&["A"]).maintenance(Maintenance::Global))
        .await
    {
        Err(SubmitError::LockConflict(conflict)) => assert_eq!(
            (
                conflict.lock,
                conflict.holder,
                conflict.holder_name.as_str()
            ),
            (Maintenance::Tenant("t1".to_string()), first, "chain")
        ),
        other => panic!("{other:?}"),
    }
    let other = engine.submit(tenant("t2")).await.unwrap();
    engine.wait_settled(other).await.unwrap();
    engine.operate(first, Operator::Retry).await.unwrap();
    engine.wait_settled(first).await.unwrap();
    assert_eq!(dag_status(&engine, first), status("SUCCEED", "RUN"));
    let again = engine.submit(tenant("t1")).await.unwrap();
    engine.wait_settled(again).await.unwrap();
    let detail = engine.dag_detail(again, false).unwrap();
    assert_eq!(
        (detail.maintenance_type, detail.maintenance_key.as_str()),
        (3, "t1")
    );
}

#[tokio::test]
async fn failure_exit_maintenance_releases_the_lock_on_failure() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("A", 1);
    let mut spec = DagSpec::new("exit").maintenance(Maintenance::Global);
    spec.add_node(script("A").failure_exit_maintenance());
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    let next = engine
        .submit(chain(&["B"]).maintenance(Maintenance::Global))
        .await
        .unwrap();
    // While the new DAG holds GLOBAL, the failed one cannot retry.
    let result = engine.operate(id, Operator::Retry).await;
    let settled = engine.wait_settled(next).await.unwrap();
    if settled.end_time.is_some() {
        // The new DAG may have finished first; then RETRY succeeded and re-took the lock.
        if let Err(err) = result {
            assert!(matches!(err, OperateError::LockConflict(_)), "{err:?}");
        }
    }
}

#[tokio::test]
async fn invalid_specs_are_refused_with_reasons() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut cyclic = DagSpec::new("cyclic");
    let a = cyclic.add_node(script("A"));
    let b = cyclic.add_node(script("B"));
    cyclic.add_edge(a, b);
    cyclic.add_edge(b, a);
    let err = engine.submit(cyclic).await.unwrap_err().to_string();
    assert!(
        err.starts_with("invalid dag: the graph has a cycle through node"),
        "{err}"
    );
    let mut unknown = DagSpec::new("unknown");
    unknown.add_node(NodeSpec::new("X", "nope"));
    assert_eq!(
        engine.submit(unknown).await.unwrap_err().to_string(),
        "unknown task type 'nope'"
    );
    let mut pool = DagSpec::new("pool");
    pool.add_node(script("A").pool("missing"));
    assert_eq!(
        engine.submit(pool).await.unwrap_err().to_string(),
        "invalid dag: node 'A' uses undeclared pool 'missing'"
    );
    assert_eq!(
        engine
            .submit(DagSpec::new("empty"))
            .await
            .unwrap_err()
            .to_string(),
        "invalid dag: a dag needs at least one node"
    );
}

#[tokio::test]
async fn an_operator_on_a_dag_whose_lock_a_newer_dag_took_is_expired() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("A", 1);
    let tenant = |spec: DagSpec| spec.maintenance(Maintenance::Tenant("t1".to_string()));
    let mut failing = tenant(DagSpec::new("Restore backup_t1"));
    failing.add_node(script("A").failure_exit_maintenance());
    let old = engine.submit(failing).await.unwrap();
    engine.wait_settled(old).await.unwrap();
    // The failure released the lock: a newer DAG takes it.
    let mut newer = tenant(DagSpec::new("Drop tenant"));
    newer.add_node(script_with("N", json!({"sleep_ms": 300})));
    let newer = engine.submit(newer).await.unwrap();
    // While the newer DAG holds the lock, the operator is a lock conflict.
    match engine.operate(old, Operator::Retry).await {
        Err(OperateError::LockConflict(conflict)) => {
            assert_eq!(
                (conflict.holder, conflict.holder_name.as_str()),
                (newer, "Drop tenant")
            )
        }
        other => panic!("{other:?}"),
    }
    engine.wait_settled(newer).await.unwrap();
    // Once it is done, the old DAG's work is stale: Task.Expired.
    let expired = engine.operate(old, Operator::Retry).await.unwrap_err();
    assert_eq!(
        expired.to_string(),
        format!(
            "t1 has already executed task 2213070643302886{newer}. '2213070643302886{old}: Restore backup_t1' cannot be executed. Please submit a new request"
        )
    );
    assert!(matches!(
        engine.operate(old, Operator::Rollback).await,
        Err(OperateError::Expired { .. })
    ));
    // PASS does not take the lock back, so it still ends the stale DAG.
    engine.operate(old, Operator::Pass).await.unwrap();
    assert_eq!(dag_status(&engine, old), status("SUCCEED", "PASS"));
}
