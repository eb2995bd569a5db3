//! Synchronous task types (`SyncTask`, `TaskRegistry::register_sync`): an attempt is
//! called where the engine starts it, with no future, spawn or timer. These tests check
//! that it keeps what every task type has: results, logs, output and data, panics of
//! the task and of its factory, automatic retries, RETRY and ROLLBACK, cancellation
//! before start, and a durable store across a restart. The proptest model (`model.rs`)
//! also runs with a synchronous task type.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, MemStore, NodeSpec, Operator, RetryPolicy,
    SledStore, State, SyncTask, TaskContext, TaskError, TaskRegistry,
};
use serde_json::{json, Value};
use support::*;

/// The synchronous twin of the support's "script": params `{"name", "output": {..},
/// "additional": {..}, "local": {..}, "panic": bool}`; fails while `world.failing`
/// lists it, its rollback fails while `world.rollback_failing` does. Records the tokio
/// task it ran in and the input it saw.
struct SyncScript {
    world: Arc<World>,
    params: Value,
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen {
    tokio_tasks: Mutex<Vec<Option<tokio::task::Id>>>,
    inputs: Mutex<Vec<(String, Value)>>,
}

impl SyncScript {
    fn name(&self) -> String {
        self.params["name"].as_str().unwrap_or("?").to_string()
    }

    fn each(&self, field: &str, mut apply: impl FnMut(String, Value)) {
        if let Some(map) = self.params.get(field).and_then(Value::as_object) {
            for (key, value) in map {
                apply(key.clone(), value.clone());
            }
        }
    }
}

impl SyncTask for SyncScript {
    fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let name = self.name();
        self.world.executions.lock().unwrap().push(name.clone());
        self.seen
            .tokio_tasks
            .lock()
            .unwrap()
            .push(tokio::task::try_id());
        self.seen
            .inputs
            .lock()
            .unwrap()
            .push((name.clone(), Value::Object(ctx.input().clone())));
        if self.params["panic"].as_bool() == Some(true) {
            panic!("boom in sync execute");
        }
        ctx.info(format!("executing {name}"));
        self.each("output", |key, value| ctx.set_output(key, value));
        self.each("additional", |key, value| {
            ctx.set_additional_data(key, value)
        });
        self.each("local", |key, value| ctx.set_local(key, value));
        let mut failing = self.world.failing.lock().unwrap();
        match failing.get_mut(&name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(TaskError::new(format!("{name} failed on purpose")))
            }
            _ => Ok(()),
        }
    }

    fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let name = self.name();
        ctx.info(format!("rolling back {name}"));
        if self.world.rollback_failing.lock().unwrap().contains(&name) {
            return Err(TaskError::new(format!(
                "rollback of {name} failed on purpose"
            )));
        }
        self.world.rollbacks.lock().unwrap().push(name);
        Ok(())
    }
}

/// Registers "sync": a [`SyncScript`] built per attempt.
fn register_sync_script(registry: &mut TaskRegistry, world: &Arc<World>, seen: &Arc<Seen>) {
    let (world, seen) = (Arc::clone(world), Arc::clone(seen));
    registry.register_sync("sync", Flags::ALL, move |params| {
        Ok(Box::new(SyncScript {
            world: Arc::clone(&world),
            params: params.clone(),
            seen: Arc::clone(&seen),
        }) as Box<dyn SyncTask>)
    });
}

/// The support's task types ("script" and its kin: async, spawned), and "sync" (built
/// per attempt), "sync_shared" (one task for every attempt, named "shared"),
/// "sync_boom_factory" (its factory panics) and "sync_refused" (its factory refuses).
fn sync_registry(world: &Arc<World>, seen: &Arc<Seen>) -> TaskRegistry {
    let mut registry = registry(world);
    register_sync_script(&mut registry, world, seen);
    let shared = SyncScript {
        world: Arc::clone(world),
        params: json!({"name": "shared"}),
        seen: Arc::clone(seen),
    };
    registry.register_shared_sync("sync_shared", Flags::ALL, Arc::new(shared));
    registry.register_sync(
        "sync_boom_factory",
        Flags::ALL,
        |_: &Value| -> Result<Box<dyn SyncTask>, TaskError> { panic!("boom in the sync factory") },
    );
    registry.register_sync(
        "sync_refused",
        Flags::ALL,
        |_: &Value| -> Result<Box<dyn SyncTask>, TaskError> { Err("no such thing".into()) },
    );
    // Marking a synchronous type light changes nothing, and is allowed.
    assert!(registry.set_light("sync_shared"));
    registry
}

async fn open(store: Arc<dyn KvStore>, registry: TaskRegistry) -> Engine {
    Engine::open(EngineConfig::default(), store, registry)
        .await
        .expect("engine opens")
}

/// An engine on a `MemStore` with the sync registry, and what its tasks see and do.
async fn mem_engine() -> (Arc<World>, Arc<Seen>, Engine) {
    let (world, seen) = (Arc::new(World::default()), Arc::new(Seen::default()));
    let engine = open(Arc::new(MemStore::new()), sync_registry(&world, &seen)).await;
    (world, seen, engine)
}

/// A node of one sub-task of `task_type` named `name`, with `extra` parameters.
fn node_of(task_type: &str, name: &str, extra: Value) -> NodeSpec {
    let mut params = json!({ "name": name });
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    NodeSpec::new(name, task_type).sub_tasks(vec![params])
}

fn sync_node(name: &str, extra: Value) -> NodeSpec {
    node_of("sync", name, extra)
}

/// The state and log lines of the one sub-task of the node named `name`.
fn task_of(engine: &Engine, id: u64, name: &str) -> (String, Vec<String>, u64) {
    let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
    let node = nodes.iter().find(|n| n.name == name).unwrap();
    let task = node.sub_tasks.clone().unwrap()[0].clone();
    (task.state, task.task_logs, task.task_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sub_tasks_run_inside_the_scheduler_without_a_tokio_task_each() {
    const WIDTH: usize = 200;
    let (world, seen, engine) = mem_engine().await;
    let mut fan_out = DagSpec::new("fan out");
    let params = (0..WIDTH)
        .map(|n| json!({ "name": format!("s{n}") }))
        .collect();
    fan_out.add_node(NodeSpec::new("fan out", "sync").sub_tasks(params));
    let mut chain = DagSpec::new("chain");
    let stages = (0..WIDTH)
        .map(|n| NodeSpec::new(format!("c{n}"), "sync_shared"))
        .collect();
    chain.chain(None, stages);
    for spec in [fan_out, chain] {
        let id = engine.submit(spec).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    }
    assert_eq!(world.executions.lock().unwrap().len(), 2 * WIDTH);
    let tasks = seen.tokio_tasks.lock().unwrap().clone();
    let distinct: HashSet<_> = tasks.iter().collect();
    // The scheduler's own task (MemStore commits inline): one for all of them.
    assert_eq!(distinct.len(), 1, "{distinct:?}");
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_sub_task_reports_logs_output_local_and_additional_data() {
    let (_world, seen, engine) = mem_engine().await;
    let mut spec = DagSpec::new("reports");
    spec.chain(
        None,
        vec![
            sync_node(
                "first",
                json!({"output": {"x": 1}, "additional": {"n": 7}, "local": {"at": 3}}),
            ),
            sync_node("second", json!({})),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    let (state, logs, task_id) = task_of(&engine, id, "first");
    assert_eq!(state, "SUCCEED");
    assert_eq!(logs, vec!["executing first".to_string()]);
    let detail = engine.task_detail(task_id).unwrap();
    assert_eq!(detail.additional_data.unwrap().get("n"), Some(&json!(7)));
    assert_eq!(detail.execute_times, 1);
    let task = engine.records().task(task_id).unwrap().unwrap();
    assert_eq!(task.local.get("at"), Some(&json!(3)));
    let inputs = seen.inputs.lock().unwrap().clone();
    assert_eq!(
        inputs,
        vec![
            ("first".to_string(), json!({})),
            ("second".to_string(), json!({"x": 1})),
        ]
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_panics_of_a_sync_task_or_its_factory_fail_only_that_attempt() {
    let (world, _seen, engine) = mem_engine().await;
    world.fail("fails", 1);
    let cases = [
        (
            "fails",
            sync_node("fails", json!({})),
            "ERROR: fails failed on purpose",
        ),
        (
            "panics",
            sync_node("panics", json!({"panic": true})),
            "ERROR: sub task panicked: boom in sync execute",
        ),
        (
            "factory",
            NodeSpec::new("factory", "sync_boom_factory").sub_tasks(vec![json!({})]),
            "ERROR: sub task panicked: boom in the sync factory",
        ),
        (
            "refused",
            NodeSpec::new("refused", "sync_refused").sub_tasks(vec![json!({})]),
            "ERROR: no such thing",
        ),
    ];
    for (name, node, expected) in cases {
        let mut spec = DagSpec::new(name);
        spec.add_node(node);
        let id = engine.submit(spec).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Failed);
        let (state, logs, _) = task_of(&engine, id, name);
        assert_eq!(
            (state.as_str(), logs.last().map(String::as_str)),
            ("FAILED", Some(expected))
        );
    }
    // The engine goes on.
    let mut spec = DagSpec::new("after");
    spec.add_node(sync_node("after", json!({})));
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    engine.shutdown(Duration::from_secs(5)).await;
}

/// What a run of [`retries`] or [`rollbacks`] observed: executions, rollbacks (in
/// order), and per node its sub-task's state, attempts and last log line.
#[derive(Debug, PartialEq)]
struct Observed {
    executions: Vec<String>,
    rollbacks: Vec<String>,
    tasks: Vec<(String, String, u32, Option<String>)>,
}

fn observe(engine: &Engine, ids: &[u64], world: &World) -> Observed {
    let mut tasks = Vec::new();
    for id in ids {
        for node in engine.dag_detail(*id, true).unwrap().nodes.unwrap() {
            let task = node.sub_tasks.unwrap()[0].clone();
            let detail = engine.task_detail(task.task_id).unwrap();
            tasks.push((
                node.name,
                task.state,
                detail.execute_times,
                task.task_logs.last().cloned(),
            ));
        }
    }
    Observed {
        executions: world.executions.lock().unwrap().clone(),
        rollbacks: world.rollback_order(),
        tasks,
    }
}

/// Automatic retries, then RETRY of a DAG that failed, on sub-tasks of `task_type`.
async fn retries(task_type: &str) -> Observed {
    let (world, _seen, engine) = mem_engine().await;
    // Two automatic retries absorb two failures.
    world.fail("flaky", 2);
    let policy = RetryPolicy {
        attempts: 2,
        initial_backoff_ms: 1,
        multiplier: 1,
        max_backoff_ms: 1,
    };
    let mut spec = DagSpec::new("flaky");
    spec.add_node(node_of(task_type, "flaky", json!({})).retry(policy));
    let flaky = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(flaky).await.unwrap().state,
        State::Succeed
    );
    // Without retries the DAG fails; RETRY runs the failed sub-task again.
    world.fail("stubborn", 1);
    let mut spec = DagSpec::new("stubborn");
    spec.chain(
        None,
        vec![
            node_of(task_type, "ok", json!({})),
            node_of(task_type, "stubborn", json!({})),
        ],
    );
    let stubborn = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(stubborn).await.unwrap().state,
        State::Failed
    );
    engine.operate(stubborn, Operator::Retry).await.unwrap();
    assert_eq!(
        engine.wait_settled(stubborn).await.unwrap().state,
        State::Succeed
    );
    let observed = observe(&engine, &[flaky, stubborn], &world);
    engine.shutdown(Duration::from_secs(5)).await;
    observed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_task_retries_as_an_async_one_does() {
    let sync = retries("sync").await;
    assert_eq!(sync, retries("script").await, "sync against async");
    let line = |text: &str| Some(text.to_string());
    assert_eq!(
        sync.tasks,
        vec![
            ("flaky".into(), "SUCCEED".into(), 3, line("executing flaky")),
            ("ok".into(), "SUCCEED".into(), 1, line("executing ok")),
            (
                "stubborn".into(),
                "SUCCEED".into(),
                2,
                line("executing stubborn")
            ),
        ]
    );
}

/// A chain a -> b -> c whose c fails, rolled back while a's rollback fails, then
/// again once it no longer does, on sub-tasks of `task_type`.
async fn rollbacks(task_type: &str) -> (Observed, Vec<(State, Operator)>) {
    let (world, _seen, engine) = mem_engine().await;
    world.fail("c", 1);
    world.fail_rollback("a");
    let mut spec = DagSpec::new("undo");
    let nodes = ["a", "b", "c"]
        .into_iter()
        .map(|name| node_of(task_type, name, json!({})))
        .collect();
    spec.chain(None, nodes);
    let id = engine.submit(spec).await.unwrap();
    let mut states = Vec::new();
    let dag = engine.wait_settled(id).await.unwrap();
    states.push((dag.state, dag.operator));
    engine.operate(id, Operator::Rollback).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    states.push((dag.state, dag.operator));
    world.heal_rollback();
    engine.operate(id, Operator::Rollback).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    states.push((dag.state, dag.operator));
    let observed = observe(&engine, &[id], &world);
    engine.shutdown(Duration::from_secs(5)).await;
    (observed, states)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rollbacks_run_as_async_ones_do() {
    let (sync, states) = rollbacks("sync").await;
    assert_eq!((&sync, &states), (&rollbacks("script").await.0, &states));
    assert_eq!(
        states,
        vec![
            (State::Failed, Operator::Run),
            (State::Failed, Operator::Rollback),
            (State::Succeed, Operator::Rollback),
        ]
    );
    // Reverse order; a's first rollback failed, its second ran.
    let rolled: Vec<&str> = sync.rollbacks.iter().map(String::as_str).collect();
    assert_eq!(rolled.last(), Some(&"a"));
    assert!(rolled.iter().position(|n| *n == "b") < rolled.iter().position(|n| *n == "a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_sub_task_after_a_cancelled_one_never_runs() {
    let (world, _seen, engine) = mem_engine().await;
    let mut spec = DagSpec::new("cancelled");
    spec.chain(
        None,
        vec![
            script_with("waits", json!({"wait_cancel": true})),
            sync_node("after", json!({})),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    wait_until(&engine, id, "waits runs", |_| {
        world.executions_of("waits") == 1
    })
    .await;
    engine.operate(id, Operator::Cancel).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!((dag.state, dag.operator), (State::Failed, Operator::Cancel));
    assert_eq!(world.executions_of("after"), 0);
    let (state, _, _) = task_of(&engine, id, "after");
    assert_ne!(state, "SUCCEED");
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sub_tasks_on_a_durable_store_survive_a_restart_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (world, seen) = (Arc::new(World::default()), Arc::new(Seen::default()));
    world.fail("second", 1);
    let id = {
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
        let engine = open(store, sync_registry(&world, &seen)).await;
        let mut spec = DagSpec::new("durable");
        spec.chain(
            None,
            vec![
                sync_node("first", json!({"output": {"x": 2}})),
                sync_node("second", json!({})),
            ],
        );
        let id = engine.submit(spec).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Failed);
        engine.shutdown(Duration::from_secs(5)).await;
        id
    };
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(store, sync_registry(&world, &seen)).await;
    let (state, logs, _) = task_of(&engine, id, "second");
    assert_eq!(state, "FAILED");
    assert_eq!(
        logs.last().map(String::as_str),
        Some("ERROR: second failed on purpose")
    );
    engine.operate(id, Operator::Retry).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    assert_eq!(world.executions_of("first"), 1);
    assert_eq!(world.executions_of("second"), 2);
    let inputs = seen.inputs.lock().unwrap().clone();
    assert_eq!(
        inputs.last(),
        Some(&("second".to_string(), json!({"x": 2}))),
        "the retried attempt sees the persisted output of first"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}
