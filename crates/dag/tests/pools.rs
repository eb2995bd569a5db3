//! Resource pools and the worker limit: the observed maximum never exceeds the capacity.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use obrestore_dag::{DagSpec, Engine, EngineConfig, MemStore, NodeSpec};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_and_worker_limit_bound_concurrency() {
    let world = Arc::new(World::default());
    let config = EngineConfig {
        worker_limit: 6,
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, Arc::new(MemStore::new()), registry(&world))
        .await
        .unwrap();
    let mut spec = DagSpec::new("pools")
        .pool("restore_data", 3)
        .pool("ha_high", 2);
    let data: Vec<_> = (0..40)
        .map(|i| json!({"name": format!("d{i}"), "pool": "restore_data", "sleep_ms": 2}))
        .collect();
    let logs: Vec<_> = (0..40)
        .map(|i| json!({"name": format!("l{i}"), "pool": "ha_high", "sleep_ms": 2}))
        .collect();
    let free: Vec<_> = (0..40)
        .map(|i| json!({"name": format!("f{i}"), "sleep_ms": 2}))
        .collect();
    spec.add_node(
        NodeSpec::new("data", "script")
            .sub_tasks(data)
            .pool("restore_data"),
    );
    spec.add_node(
        NodeSpec::new("logs", "script")
            .sub_tasks(logs)
            .pool("ha_high"),
    );
    spec.add_node(NodeSpec::new("free", "script").sub_tasks(free));
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    assert_eq!(world.max_in_pool("restore_data"), 3);
    assert_eq!(world.max_in_pool("ha_high"), 2);
    let max = world.max_running.load(Ordering::SeqCst);
    assert!(max <= 6, "worker limit exceeded: {max}");
    assert!(max >= 5, "branches should run side by side: {max}");
}

#[tokio::test]
async fn pools_are_per_dag() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let spec = |n: usize| {
        let mut spec = DagSpec::new("p").pool("restore_data", 1);
        let tasks: Vec<_> = (0..5)
            .map(
                |i| json!({"name": format!("x{n}-{i}"), "pool": format!("pool{n}"), "sleep_ms": 3}),
            )
            .collect();
        spec.add_node(
            NodeSpec::new("data", "script")
                .sub_tasks(tasks)
                .pool("restore_data"),
        );
        spec
    };
    let a = engine.submit(spec(1)).await.unwrap();
    let b = engine.submit(spec(2)).await.unwrap();
    engine.wait_settled(a).await.unwrap();
    engine.wait_settled(b).await.unwrap();
    assert_eq!(world.max_in_pool("pool1"), 1);
    assert_eq!(world.max_in_pool("pool2"), 1);
    assert_eq!(world.max_running.load(Ordering::SeqCst), 2);
}
