//! Task types and helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::{
    DagDetailDto, DagSpec, Engine, EngineConfig, Flags, KvStore, MemStore, NodeSpec, Task,
    TaskContext, TaskError, TaskRegistry,
};
use serde_json::{json, Value};

/// Shared, inspectable behaviour of the "script" task type.
#[derive(Default)]
pub struct World {
    /// Sub-task names that fail while listed.
    pub failing: Mutex<HashMap<String, usize>>,
    /// Sub-task names whose rollback fails while listed.
    pub rollback_failing: Mutex<Vec<String>>,
    pub executions: Mutex<Vec<String>>,
    pub rollbacks: Mutex<Vec<String>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub pool_running: Mutex<HashMap<String, (usize, usize)>>,
}

impl World {
    /// `name` fails its next `times` executions.
    pub fn fail(&self, name: &str, times: usize) {
        self.failing.lock().unwrap().insert(name.to_string(), times);
    }

    pub fn fail_rollback(&self, name: &str) {
        self.rollback_failing.lock().unwrap().push(name.to_string());
    }

    pub fn heal_rollback(&self) {
        self.rollback_failing.lock().unwrap().clear();
    }

    pub fn executions_of(&self, name: &str) -> usize {
        self.executions
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }

    pub fn rollbacks_of(&self, name: &str) -> usize {
        self.rollbacks
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }

    pub fn rollback_order(&self) -> Vec<String> {
        self.rollbacks.lock().unwrap().clone()
    }

    pub fn max_in_pool(&self, pool: &str) -> usize {
        self.pool_running
            .lock()
            .unwrap()
            .get(pool)
            .map(|(_, max)| *max)
            .unwrap_or(0)
    }
}

/// Params: `{"name": .., "sleep_ms": .., "pool": .., "output": {..}, "wait_cancel": bool,
/// "rollback_wait_cancel": bool}`.
pub struct Script {
    pub world: Arc<World>,
    pub params: Value,
}

impl Script {
    fn name(&self) -> String {
        self.params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    }
}

#[async_trait]
impl Task for Script {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let name = self.name();
        self.world.executions.lock().unwrap().push(name.clone());
        let now = self.world.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.world.max_running.fetch_max(now, Ordering::SeqCst);
        let pool = self
            .params
            .get("pool")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(pool) = &pool {
            let mut pools = self.world.pool_running.lock().unwrap();
            let entry = pools.entry(pool.clone()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(entry.0);
        }
        ctx.info(format!("executing {name}"));
        if let Some(output) = self.params.get("output").and_then(Value::as_object) {
            for (key, value) in output {
                ctx.set_output(key.clone(), value.clone());
            }
        }
        if let Some(data) = self.params.get("additional").and_then(Value::as_object) {
            for (key, value) in data {
                ctx.set_additional_data(key.clone(), value.clone());
            }
        }
        let sleep = self
            .params
            .get("sleep_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let result = if self
            .params
            .get("wait_cancel")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            ctx.cancelled().cancelled().await;
            Err(TaskError::new("observed cancellation"))
        } else {
            if sleep > 0 {
                tokio::time::sleep(Duration::from_millis(sleep)).await;
            }
            let mut failing = self.world.failing.lock().unwrap();
            match failing.get_mut(&name) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    Err(TaskError::new(format!("{name} failed on purpose")))
                }
                _ => Ok(()),
            }
        };
        if let Some(pool) = &pool {
            let mut pools = self.world.pool_running.lock().unwrap();
            if let Some(entry) = pools.get_mut(pool) {
                entry.0 -= 1;
            }
        }
        self.world.running.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let name = self.name();
        ctx.info(format!("rolling back {name}"));
        let wait_cancel = self
            .params
            .get("rollback_wait_cancel")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if wait_cancel {
            ctx.cancelled().cancelled().await;
            return Err(TaskError::new("rollback observed cancellation"));
        }
        if self.world.rollback_failing.lock().unwrap().contains(&name) {
            return Err(TaskError::new(format!(
                "rollback of {name} failed on purpose"
            )));
        }
        self.world.rollbacks.lock().unwrap().push(name);
        Ok(())
    }
}

/// A registry with "script" (all flags), "script_nopass" (default flags),
/// "script_fragile" (cannot continue after a crash) and "noop".
pub fn registry(world: &Arc<World>) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    for (name, flags) in [
        ("script", Flags::ALL),
        ("script_nopass", Flags::default()),
        (
            "script_fragile",
            Flags {
                can_continue: false,
                ..Flags::ALL
            },
        ),
        (
            "script_locked",
            Flags {
                can_retry: false,
                can_rollback: false,
                can_cancel: false,
                can_pass: false,
                can_continue: true,
            },
        ),
    ] {
        let world = Arc::clone(world);
        registry.register(name, flags, move |params| {
            Ok(Box::new(Script {
                world: Arc::clone(&world),
                params: params.clone(),
            }) as Box<dyn Task>)
        });
    }
    registry.register("noop", Flags::ALL, |_| Ok(Box::new(Noop) as Box<dyn Task>));
    registry
}

/// Every type of [`registry`] marked light (polled once where it starts).
pub fn light_registry(world: &Arc<World>) -> TaskRegistry {
    let mut registry = registry(world);
    for name in [
        "script",
        "script_nopass",
        "script_fragile",
        "script_locked",
        "noop",
    ] {
        assert!(registry.set_light(name), "{name} is registered");
    }
    registry
}

/// A fresh in-memory engine with the task types of [`registry`], light ones if `light`.
pub async fn mem_engine_of(world: &Arc<World>, light: bool) -> (Engine, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    let registry = if light {
        light_registry(world)
    } else {
        registry(world)
    };
    let engine = Engine::open(EngineConfig::default(), store.clone(), registry)
        .await
        .expect("engine opens");
    (engine, store)
}

pub struct Noop;

#[async_trait]
impl Task for Noop {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

/// A script node whose single sub-task is named like the node.
pub fn script(name: &str) -> NodeSpec {
    NodeSpec::new(name, "script").sub_tasks(vec![json!({"name": name})])
}

pub fn script_with(name: &str, mut params: Value) -> NodeSpec {
    params["name"] = json!(name);
    NodeSpec::new(name, "script").sub_tasks(vec![params])
}

pub async fn open(store: Arc<dyn KvStore>, world: &Arc<World>) -> Engine {
    Engine::open(EngineConfig::default(), store, registry(world))
        .await
        .expect("engine opens")
}

pub async fn mem_engine(world: &Arc<World>) -> (Engine, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    (open(store.clone(), world).await, store)
}

/// A -> B -> C chain of scripts.
pub fn chain(names: &[&str]) -> DagSpec {
    let mut spec = DagSpec::new("chain");
    spec.chain(None, names.iter().map(|n| script(n)).collect());
    spec
}

/// `(state, operator)` of the DAG as stored.
pub fn dag_status(engine: &Engine, id: u64) -> (String, String) {
    let dag = engine.dag_record(id).unwrap();
    (dag.state.to_string(), dag.operator.to_string())
}

/// `name -> (state, operator)` of every node.
pub fn node_status(engine: &Engine, id: u64) -> Vec<(String, String, String)> {
    let detail = engine.dag_detail(id, true).unwrap();
    detail
        .nodes
        .unwrap()
        .into_iter()
        .map(|n| (n.name, n.state, n.operator))
        .collect()
}

/// An expected `(state, operator)`.
pub fn status(state: &str, operator: &str) -> (String, String) {
    (state.to_string(), operator.to_string())
}

/// An expected `(name, state, operator)` of a node.
pub fn node_row(name: &str, state: &str, operator: &str) -> (String, String, String) {
    (name.to_string(), state.to_string(), operator.to_string())
}

/// Waits (up to 4 s) until `done` holds for the DAG's detail (with nodes and sub-tasks);
/// panics saying `what` did not happen otherwise.
pub async fn wait_until(
    engine: &Engine,
    id: u64,
    what: &str,
    done: impl Fn(&DagDetailDto) -> bool,
) {
    for _ in 0..2000 {
        if done(&engine.dag_detail(id, true).unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{what} never happened");
}
