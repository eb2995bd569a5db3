//! Time-based behaviour with paused tokio time: timeouts and retry backoff.

mod support;

use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::{DagSpec, RetryPolicy};
use serde_json::json;
use support::*;

#[tokio::test(start_paused = true)]
async fn a_sub_task_over_its_timeout_fails_with_the_timeout_log() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("timeout");
    spec.add_node(script_with("slow", json!({"sleep_ms": 10_000})).timeout(Duration::from_secs(5)));
    let started = tokio::time::Instant::now();
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state.to_string(), "FAILED");
    // Paused time advanced to the timeout exactly, not to the sleep.
    assert_eq!(started.elapsed().as_secs(), 5);
    let task = &engine.dag_detail(id, true).unwrap().nodes.unwrap()[0]
        .sub_tasks
        .clone()
        .unwrap()[0];
    assert_eq!(task.task_logs.last().unwrap(), "sub task timeout");
}

#[tokio::test(start_paused = true)]
async fn the_default_timeout_is_one_hour() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("default-timeout");
    spec.add_node(script_with("slow", json!({"sleep_ms": 7_200_000})));
    let started = tokio::time::Instant::now();
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "FAILED"
    );
    assert_eq!(started.elapsed().as_secs(), 3600);
}

#[tokio::test(start_paused = true)]
async fn automatic_retries_back_off_exponentially_then_succeed() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("flaky", 2);
    let mut spec = DagSpec::new("retry");
    spec.add_node(script("flaky").retry(RetryPolicy {
        attempts: 3,
        initial_backoff_ms: 1000,
        multiplier: 2,
        max_backoff_ms: 60_000,
    }));
    let started = tokio::time::Instant::now();
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state.to_string(), "SUCCEED");
    // 1 s after the first failure, 2 s after the second.
    assert_eq!(started.elapsed().as_secs(), 3);
    assert_eq!(world.executions_of("flaky"), 3);
    let task = engine.dag_detail(id, true).unwrap().nodes.unwrap()[0]
        .sub_tasks
        .clone()
        .unwrap()[0]
        .clone();
    assert_eq!(task.execute_times, 3);
    assert!(
        task.task_logs
            .contains(&"WARN: automatic retry 2/3 in 2000 ms".to_string()),
        "{:?}",
        task.task_logs
    );
}

#[tokio::test(start_paused = true)]
async fn automatic_retries_run_out_and_fail_the_node() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("broken", 10);
    let mut spec = DagSpec::new("retry-out");
    spec.add_node(script("broken").retry(RetryPolicy {
        attempts: 2,
        initial_backoff_ms: 500,
        multiplier: 10,
        max_backoff_ms: 3000,
    }));
    let started = tokio::time::Instant::now();
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "FAILED"
    );
    // 0.5 s, then min(5 s, 3 s cap).
    assert_eq!(started.elapsed().as_millis(), 3500);
    assert_eq!(world.executions_of("broken"), 3);
}

#[test]
fn backoff_is_capped_and_multiplies() {
    let policy = RetryPolicy {
        attempts: 5,
        initial_backoff_ms: 100,
        multiplier: 3,
        max_backoff_ms: 1000,
    };
    let delays: Vec<u128> = (1..=4).map(|n| policy.backoff(n).as_millis()).collect();
    assert_eq!(delays, vec![100, 300, 900, 1000]);
}
