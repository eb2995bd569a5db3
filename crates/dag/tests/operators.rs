//! The operator table of SPEC §2.1: every row, allowed and refused, with the resulting
//! state+operator of the DAG and its nodes.

mod support;

use std::sync::Arc;

use obrestore_dag::{DagSpec, Maintenance, NodeSpec, OperateError, Operator, SubmitError};
use serde_json::json;
use support::*;

fn s(state: &str, operator: &str) -> (String, String) {
    (state.to_string(), operator.to_string())
}

fn n(name: &str, state: &str, operator: &str) -> (String, String, String) {
    (name.to_string(), state.to_string(), operator.to_string())
}

fn refused(result: Result<(), OperateError>) -> String {
    match result {
        Err(OperateError::NotAllowed { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
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
        s("SUCCEED", "RUN")
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
async fn retry_reruns_only_failed_sub_tasks_after_rolling_them_back() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("D2", 1);
    let mut spec = DagSpec::new("retry");
    let a = spec.add_node(script("A"));
    let d = spec.add_node(
        NodeSpec::new("D", "script").sub_tasks(vec![json!({"name": "D1"}), json!({"name": "D2"})]),
    );
    spec.add_edge(a, d);
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("FAILED", "RUN")
    );
    assert_eq!(
        node_status(&engine, id),
        vec![n("A", "SUCCEED", "RUN"), n("D", "FAILED", "RUN")]
    );

    engine.operate(id, Operator::Retry).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "RETRY")
    );
    assert_eq!(world.executions_of("A"), 1);
    assert_eq!(world.executions_of("D1"), 1);
    assert_eq!(world.executions_of("D2"), 2);
    assert_eq!(world.rollback_order(), vec!["D2".to_string()]);
    let d = engine
        .dag_detail(id, true)
        .unwrap()
        .nodes
        .unwrap()
        .remove(1);
    let d2 = &d.sub_tasks.as_ref().unwrap()[1];
    assert_eq!(d2.execute_times, 2);
    assert_eq!(d2.task_logs[1], "ERROR: D2 failed on purpose");
    // Nothing to retry on a finished DAG.
    assert!(refused(engine.operate(id, Operator::Retry).await).contains("already finished"));
}

#[tokio::test]
async fn retry_is_refused_when_a_failed_node_cannot_retry() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("L", 1);
    let mut spec = DagSpec::new("locked");
    spec.add_node(NodeSpec::new("L", "script_locked").sub_tasks(vec![json!({"name": "L"})]));
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert_eq!(
        refused(engine.operate(id, Operator::Retry).await),
        "node 'L' cannot be retried"
    );
    assert_eq!(
        refused(engine.operate(id, Operator::Rollback).await),
        "node 'L' cannot be rolled back"
    );
    assert_eq!(
        refused(engine.operate(id, Operator::Pass).await),
        "node 'L' cannot be passed"
    );
    assert_eq!(dag_status(&engine, id), s("FAILED", "RUN"));
}

#[tokio::test]
async fn rollback_undoes_finished_nodes_in_reverse_topological_order() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("D", 1);
    let mut spec = DagSpec::new("rollback");
    let a = spec.add_node(script("A"));
    let b = spec.add_node(script("B"));
    let c = spec.add_node(script("C"));
    let d = spec.add_node(script("D"));
    let e = spec.add_node(script("E"));
    spec.add_edge(a, b);
    spec.add_edge(a, c);
    spec.add_edge(b, d);
    spec.add_edge(c, d);
    spec.add_edge(d, e);
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert_eq!(
        refused(engine.operate(id, Operator::Run).await),
        "RUN is applied when the dag is submitted"
    );

    engine.operate(id, Operator::Rollback).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "ROLLBACK")
    );
    let order = world.rollback_order();
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(order[0], "D");
    assert_eq!(order[3], "A");
    assert_eq!(
        node_status(&engine, id),
        vec![
            n("A", "SUCCEED", "ROLLBACK"),
            n("B", "SUCCEED", "ROLLBACK"),
            n("C", "SUCCEED", "ROLLBACK"),
            n("D", "SUCCEED", "ROLLBACK"),
            n("E", "PENDING", "RUN"),
        ]
    );
}

#[tokio::test]
async fn a_failed_rollback_ends_failed_rollback_and_only_rollback_continues_it() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("B", 1);
    world.fail_rollback("A");
    let id = engine.submit(chain(&["A", "B"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Rollback).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("FAILED", "ROLLBACK")
    );
    assert_eq!(
        node_status(&engine, id),
        vec![n("A", "FAILED", "ROLLBACK"), n("B", "SUCCEED", "ROLLBACK")]
    );
    let reason = refused(engine.operate(id, Operator::Retry).await);
    assert_eq!(
        reason,
        "the dag's rollback failed; only ROLLBACK can continue it"
    );
    refused(engine.operate(id, Operator::Pass).await);

    world.heal_rollback();
    engine.operate(id, Operator::Rollback).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "ROLLBACK")
    );
    // B was rolled back once, A once (after its failed attempt).
    assert_eq!(world.rollbacks_of("B"), 1);
    assert_eq!(world.rollbacks_of("A"), 1);
}

#[tokio::test]
async fn rollback_is_refused_unless_failed() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let id = engine.submit(chain(&["A"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert!(refused(engine.operate(id, Operator::Rollback).await).contains("already finished"));
    assert!(refused(engine.operate(id, Operator::Cancel).await).contains("already finished"));
    assert!(matches!(
        engine.operate(999, Operator::Cancel).await,
        Err(OperateError::DagNotFound(999))
    ));
}

#[tokio::test]
async fn cancel_stops_running_sub_tasks_and_then_retry_rollback_pass_apply() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("cancel");
    let a = spec.add_node(script("A"));
    let b = spec.add_node(script_with("B", json!({"wait_cancel": true})));
    let c = spec.add_node(script("C"));
    spec.add_edge(a, b);
    spec.add_edge(b, c);
    let mut events = engine.subscribe();
    let id = engine.submit(spec).await.unwrap();
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
    // A second CANCEL is refused: either still cancelling or already settled.
    let again = refused(engine.operate(id, Operator::Cancel).await);
    assert!(
        again.contains("already being cancelled") || again.contains("already finished"),
        "{again}"
    );
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("FAILED", "CANCEL")
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
    assert!(refused(engine.operate(id, Operator::Cancel).await).contains("already finished"));
    // PASS the whole DAG: B and C become SUCCEED+PASS.
    engine.operate(id, Operator::Pass).await.unwrap();
    assert_eq!(dag_status(&engine, id), s("SUCCEED", "PASS"));
    assert_eq!(
        node_status(&engine, id),
        vec![
            n("A", "SUCCEED", "RUN"),
            n("B", "SUCCEED", "PASS"),
            n("C", "SUCCEED", "PASS")
        ]
    );
}

#[tokio::test]
async fn cancel_is_refused_when_a_running_node_cannot_cancel() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("no-cancel");
    spec.add_node(
        NodeSpec::new("L", "script_locked").sub_tasks(vec![json!({"name": "L", "sleep_ms": 300})]),
    );
    let id = engine.submit(spec).await.unwrap();
    let mut reason = String::new();
    for _ in 0..200 {
        if let Err(OperateError::NotAllowed { reason: r, .. }) =
            engine.operate(id, Operator::Cancel).await
        {
            reason = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(reason, "running node 'L' cannot be cancelled");
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
}

#[tokio::test]
async fn pass_dag_needs_every_remaining_node_passable() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("A", 1);
    let mut spec = DagSpec::new("pass");
    spec.chain(
        None,
        vec![
            script("A"),
            NodeSpec::new("B", "script_nopass").sub_tasks(vec![json!({"name": "B"})]),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert_eq!(
        refused(engine.operate(id, Operator::Pass).await),
        "node 'B' cannot be passed"
    );
    assert_eq!(dag_status(&engine, id), s("FAILED", "RUN"));
}

#[tokio::test]
async fn pass_node_continues_downstream() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("B", 5);
    let id = engine.submit(chain(&["A", "B", "C"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    let nodes = engine.dag_detail(id, true).unwrap().nodes.unwrap();
    // Refused: A is not FAILED.
    assert_eq!(
        refused(engine.pass_node(nodes[0].node_id).await),
        "node 'A' is SUCCEED, not FAILED"
    );
    engine.pass_node(nodes[1].node_id).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "RUN")
    );
    assert_eq!(
        node_status(&engine, id),
        vec![
            n("A", "SUCCEED", "RUN"),
            n("B", "SUCCEED", "PASS"),
            n("C", "SUCCEED", "RUN")
        ]
    );
    assert_eq!(world.executions_of("C"), 1);
    // Refused on a running or finished DAG.
    assert!(matches!(
        engine.pass_node(nodes[1].node_id).await,
        Err(OperateError::NotAllowed { .. })
    ));
    assert!(matches!(
        engine.pass_node(12345).await,
        Err(OperateError::NodeNotFound(12345))
    ));
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
        Err(SubmitError::LockConflict { lock, holder }) => {
            assert_eq!((lock.as_str(), holder), ("TENANT:t1", first))
        }
        other => panic!("{other:?}"),
    }
    match engine
        .submit(chain(&["A"]).maintenance(Maintenance::Global))
        .await
    {
        Err(SubmitError::LockConflict { lock, holder }) => {
            assert_eq!((lock.as_str(), holder), ("TENANT:t1", first))
        }
        other => panic!("{other:?}"),
    }
    let other = engine.submit(tenant("t2")).await.unwrap();
    engine.wait_settled(other).await.unwrap();
    engine.operate(first, Operator::Retry).await.unwrap();
    engine.wait_settled(first).await.unwrap();
    assert_eq!(dag_status(&engine, first), s("SUCCEED", "RETRY"));
    let again = engine.submit(tenant("t1")).await.unwrap();
    engine.wait_settled(again).await.unwrap();
    let detail = engine.dag_detail(again, false).unwrap();
    assert_eq!(
        (detail.maintenance_type, detail.maintenance_key.as_str()),
        (2, "t1")
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
            assert!(matches!(err, OperateError::LockConflict { .. }), "{err:?}");
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
