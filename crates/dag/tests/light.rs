//! Light task types (`TaskRegistry::set_light`): an attempt is polled once where the
//! engine starts it and spawned only if it did not finish. These tests check what that
//! saves (no tokio task per attempt) and what it must not change: the worker limit,
//! timeouts, panics, one result per attempt. The operator table (`operators.rs`) and the
//! proptest model (`model.rs`) also run with light task types.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, MemStore, NodeSpec, State, Task, TaskContext, TaskError,
    TaskRegistry,
};
use serde_json::json;
use support::*;

/// Records the tokio task each attempt ran in.
struct WhereRan(Arc<Mutex<Vec<Option<tokio::task::Id>>>>);

#[async_trait]
impl Task for WhereRan {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.lock().unwrap().push(tokio::task::try_id());
        Ok(())
    }
}

/// Panics in `execute`.
struct Boom;

#[async_trait]
impl Task for Boom {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        panic!("boom in execute")
    }
}

fn fan_out(task_type: &str, width: usize) -> DagSpec {
    let mut spec = DagSpec::new(task_type);
    let params = (0..width).map(|n| json!({ "n": n })).collect();
    spec.add_node(NodeSpec::new("fan out", task_type).sub_tasks(params));
    spec
}

/// The distinct tokio tasks `width` sub-tasks of a (light or not) type ran in.
async fn tasks_used(light: bool, width: usize) -> usize {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = TaskRegistry::new();
    registry.register_shared("where", Flags::ALL, Arc::new(WhereRan(Arc::clone(&seen))));
    if light {
        assert!(registry.set_light("where"));
    }
    let engine = Engine::open(EngineConfig::default(), Arc::new(MemStore::new()), registry)
        .await
        .unwrap();
    let id = engine.submit(fan_out("where", width)).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    engine.shutdown(Duration::from_secs(5)).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), width, "one execution per sub-task");
    seen.iter().collect::<HashSet<_>>().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_sub_tasks_that_finish_at_once_cost_no_tokio_task_each() {
    const WIDTH: usize = 200;
    // Spawned: every attempt is a tokio task of its own.
    assert_eq!(tasks_used(false, WIDTH).await, WIDTH);
    // Light: they all ran inside the engine's scheduler task (MemStore commits inline).
    assert_eq!(tasks_used(true, WIDTH).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_sub_tasks_that_wait_keep_the_worker_limit() {
    let world = Arc::new(World::default());
    let config = EngineConfig {
        worker_limit: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, Arc::new(MemStore::new()), light_registry(&world))
        .await
        .unwrap();
    let mut spec = DagSpec::new("limited");
    let params = (0..12)
        .map(|n| json!({ "name": format!("s{n}"), "sleep_ms": 5 }))
        .collect();
    spec.add_node(NodeSpec::new("sleepers", "script").sub_tasks(params));
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    assert_eq!(world.executions.lock().unwrap().len(), 12);
    let max = world.max_running.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} ran at once, limit 2");
}

#[tokio::test(start_paused = true)]
async fn a_light_sub_task_that_waits_is_spawned_under_its_timeout() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine_of(&world, true).await;
    let mut spec = DagSpec::new("timeouts");
    spec.add_node(script_with("quick", json!({"sleep_ms": 1_000})).timeout(Duration::from_secs(5)));
    spec.add_node(script_with("slow", json!({"sleep_ms": 10_000})).timeout(Duration::from_secs(5)));
    let started = tokio::time::Instant::now();
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state, State::Failed);
    assert_eq!(started.elapsed().as_secs(), 5);
    let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
    let state_of = |name: &str| {
        let node = nodes.iter().find(|n| n.name == name).unwrap();
        let task = node.sub_tasks.clone().unwrap()[0].clone();
        (node.state.clone(), task.task_logs.last().cloned().unwrap())
    };
    assert_eq!(
        state_of("quick"),
        ("SUCCEED".to_string(), "executing quick".to_string())
    );
    assert_eq!(
        state_of("slow"),
        ("FAILED".to_string(), "sub task timeout".to_string())
    );
}

/// A DAG of one node of `task_type`, run to the end; returns its state and the last
/// log line of its sub-task.
async fn run_one(engine: &Engine, task_type: &str) -> (State, String) {
    let mut spec = DagSpec::new(task_type);
    spec.add_node(NodeSpec::new(task_type, task_type).sub_tasks(vec![json!({})]));
    let id = engine.submit(spec).await.unwrap();
    let state = engine.wait_settled(id).await.unwrap().state;
    let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
    let task = nodes[0].sub_tasks.clone().unwrap()[0].clone();
    (state, task.task_logs.last().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_sub_task_or_its_factory_fails_only_that_attempt() {
    for light in [false, true] {
        let mut registry = TaskRegistry::new();
        registry.register_shared("boom", Flags::ALL, Arc::new(Boom));
        registry.register(
            "boom_factory",
            Flags::ALL,
            |_: &serde_json::Value| -> Result<Box<dyn Task>, TaskError> {
                panic!("boom in the factory")
            },
        );
        registry.register("noop", Flags::ALL, |_| Ok(Box::new(Noop) as Box<dyn Task>));
        if light {
            for name in ["boom", "boom_factory", "noop"] {
                assert!(registry.set_light(name));
            }
        }
        let engine = Engine::open(EngineConfig::default(), Arc::new(MemStore::new()), registry)
            .await
            .unwrap();
        assert_eq!(
            run_one(&engine, "boom").await,
            (
                State::Failed,
                "ERROR: sub task panicked: boom in execute".to_string()
            ),
            "light {light}"
        );
        assert_eq!(
            run_one(&engine, "boom_factory").await,
            (
                State::Failed,
                "ERROR: sub task panicked: boom in the factory".to_string()
            ),
            "light {light}"
        );
        // The engine goes on.
        assert_eq!(run_one(&engine, "noop").await.0, State::Succeed);
        assert!(!TaskRegistry::new().set_light("unknown"));
        engine.shutdown(Duration::from_secs(5)).await;
    }
}

/// A light attempt that finishes on its first poll hands its result to the scheduler
/// directly, not through the channel its reports (logs, additional data) go through:
/// the reports must still be decided first, while the attempt is RUNNING, or they would
/// be dropped as late. Every sub-task keeps its log line and data, whether the engine
/// started it early (a fan-out's sub-tasks after the first batch) or after a commit
/// (every stage of a chain: its node starts in the same batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_of_light_sub_tasks_that_finish_at_once_are_kept() {
    const WIDTH: usize = 60;
    let params = |n: usize| json!({ "name": format!("s{n}"), "additional": { "n": n } });
    let mut fan_out = DagSpec::new("reports");
    fan_out
        .add_node(NodeSpec::new("reporters", "script").sub_tasks((0..WIDTH).map(params).collect()));
    let mut chain = DagSpec::new("chained reports");
    let stages = (0..WIDTH)
        .map(|n| NodeSpec::new(format!("stage {n}"), "script").sub_tasks(vec![params(n)]))
        .collect();
    chain.chain(None, stages);
    for spec in [fan_out, chain] {
        let world = Arc::new(World::default());
        let (engine, _) = mem_engine_of(&world, true).await;
        let id = engine.submit(spec).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
        let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
        let tasks: Vec<_> = nodes
            .iter()
            .flat_map(|node| node.sub_tasks.clone().unwrap())
            .collect();
        assert_eq!(tasks.len(), WIDTH);
        let mut seen = HashSet::new();
        for task in tasks {
            let logged = task
                .task_logs
                .iter()
                .find_map(|line| line.strip_prefix("executing s"))
                .unwrap_or_else(|| panic!("{}: no log line in {:?}", task.name, task.task_logs));
            let n: usize = logged.parse().unwrap();
            // A node's detail leaves the sub-tasks' data out; a sub-task's detail has it.
            let data = engine.task_detail(task.task_id).unwrap().additional_data;
            let data = data.unwrap_or_default();
            assert_eq!(
                data.get("n"),
                Some(&json!(n)),
                "{}: {data:?} {:?}",
                task.name,
                task.task_logs
            );
            seen.insert(n);
        }
        assert_eq!(seen.len(), WIDTH, "every sub-task reported");
        engine.shutdown(Duration::from_secs(5)).await;
    }
}
