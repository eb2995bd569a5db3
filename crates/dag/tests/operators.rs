//! The operator table of SPEC §2.1: every row, allowed and refused, with the resulting
//! state+operator of the DAG and its nodes.

mod support;

use std::sync::Arc;

use obrestore_dag::{
    DagSpec, Maintenance, NodeSpec, OperateError, Operator, Refusal, SubmitError,
};
use serde_json::json;
use support::*;

fn s(state: &str, operator: &str) -> (String, String) {
    (state.to_string(), operator.to_string())
}

fn n(name: &str, state: &str, operator: &str) -> (String, String, String) {
    (name.to_string(), state.to_string(), operator.to_string())
}

/// The refusal's message (obshell's `en.json` text).
fn refused(result: Result<(), OperateError>) -> String {
    match result {
        Err(OperateError::NotAllowed { reason, .. }) => reason.to_string(),
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
        s("SUCCEED", "RUN")
    );
    // The retried node carries RETRY (obshell: DAG back to RUN, node RETRY).
    assert_eq!(
        node_status(&engine, id),
        vec![n("A", "SUCCEED", "RUN"), n("D", "SUCCEED", "RETRY")]
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
    assert_eq!(
        refused(engine.operate(id, Operator::Retry).await),
        "Failed to set DAG retry: DAG state is not failed"
    );
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
        "Failed to set DAG retry: node L cannot retry"
    );
    assert_eq!(
        refused(engine.operate(id, Operator::Rollback).await),
        "Failed to set DAG rollback: node L cannot rollback"
    );
    assert_eq!(
        refused(engine.operate(id, Operator::Pass).await),
        "Failed to pass DAG: node L cannot pass"
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
        "Operator RUN is not supported"
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
async fn a_failed_rollback_ends_failed_rollback_and_rollback_continues_it() {
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
    // The failed rollback released nothing and changed nothing else: CANCEL finds a
    // finished DAG.
    assert_eq!(
        refused(engine.operate(id, Operator::Cancel).await),
        "Failed to cancel DAG: DAG is finished"
    );
    assert_eq!(dag_status(&engine, id), s("FAILED", "ROLLBACK"));

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
    assert_eq!(
        refused(engine.operate(id, Operator::Rollback).await),
        "Failed to set DAG rollback: DAG state is not failed"
    );
    assert_eq!(
        refused(engine.operate(id, Operator::Cancel).await),
        "Failed to cancel DAG: DAG is finished"
    );
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
    assert_eq!(
        refused(engine.operate(id, Operator::Cancel).await),
        "Failed to cancel DAG: DAG is finished"
    );
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
            reason = r.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(reason, "Failed to cancel DAG: node L cannot cancel");
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
        "Failed to pass DAG: node B cannot pass"
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
        "Failed to pass node: node A is not failed"
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
        Err(OperateError::NotAllowed {
            reason: Refusal::PassNodeNotFailedDag,
            ..
        })
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
            (conflict.lock, conflict.holder, conflict.holder_name.as_str()),
            (Maintenance::Tenant("t1".to_string()), first, "chain")
        ),
        other => panic!("{other:?}"),
    }
    let other = engine.submit(tenant("t2")).await.unwrap();
    engine.wait_settled(other).await.unwrap();
    engine.operate(first, Operator::Retry).await.unwrap();
    engine.wait_settled(first).await.unwrap();
    assert_eq!(dag_status(&engine, first), s("SUCCEED", "RUN"));
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
async fn retry_after_a_failed_rollback_runs_the_undone_nodes_again() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("C", 1);
    world.fail_rollback("B");
    let id = engine.submit(chain(&["A", "B", "C"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Rollback).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert_eq!(dag_status(&engine, id), s("FAILED", "ROLLBACK"));
    assert_eq!(
        node_status(&engine, id),
        vec![
            n("A", "SUCCEED", "RUN"),
            n("B", "FAILED", "ROLLBACK"),
            n("C", "SUCCEED", "ROLLBACK")
        ]
    );
    // obshell allows RETRY after a failed rollback: B is retried and C, which the
    // rollback undid, runs again; A was never undone and does not.
    engine.operate(id, Operator::Retry).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "RUN")
    );
    assert_eq!(
        node_status(&engine, id),
        vec![
            n("A", "SUCCEED", "RUN"),
            n("B", "SUCCEED", "RETRY"),
            n("C", "SUCCEED", "RUN")
        ]
    );
    assert_eq!(
        (
            world.executions_of("A"),
            world.executions_of("B"),
            world.executions_of("C")
        ),
        (1, 2, 2)
    );
    // B's failed rollback is not attempted again before it executes.
    assert_eq!(world.rollbacks_of("B"), 0);
}

#[tokio::test]
async fn pass_and_node_pass_apply_after_a_failed_rollback() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("C", 1);
    world.fail_rollback("B");
    let id = engine.submit(chain(&["A", "B", "C"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Rollback).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    // PASS of the one failed node: the DAG runs forward again from it.
    let b = engine.dag_detail(id, true).unwrap().nodes.unwrap()[1].node_id;
    engine.pass_node(b).await.unwrap();
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

    // PASS of the whole DAG after a failed rollback.
    world.fail("Z", 1);
    world.fail_rollback("Y");
    let id = engine.submit(chain(&["Y", "Z"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Rollback).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    assert_eq!(dag_status(&engine, id), s("FAILED", "ROLLBACK"));
    engine.operate(id, Operator::Pass).await.unwrap();
    assert_eq!(dag_status(&engine, id), s("SUCCEED", "PASS"));
    assert_eq!(
        node_status(&engine, id),
        vec![n("Y", "SUCCEED", "PASS"), n("Z", "SUCCEED", "ROLLBACK")]
    );
}

#[tokio::test]
async fn cancel_stops_a_rollback_and_rollback_continues_it() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("B", 1);
    let mut spec = DagSpec::new("cancel-rollback");
    spec.chain(
        None,
        vec![
            script_with("A", json!({"rollback_wait_cancel": true})),
            script("B"),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Rollback).await.unwrap();
    // Wait until A's rollback runs (B's is done first).
    for _ in 0..500 {
        if node_status(&engine, id)[0] == n("A", "RUNNING", "ROLLBACK") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(node_status(&engine, id)[0], n("A", "RUNNING", "ROLLBACK"));
    engine.operate(id, Operator::Cancel).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("FAILED", "CANCEL")
    );
    assert_eq!(
        node_status(&engine, id),
        vec![n("A", "FAILED", "ROLLBACK"), n("B", "SUCCEED", "ROLLBACK")]
    );
    // RETRY from here runs both again.
    engine.operate(id, Operator::Retry).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        s("SUCCEED", "RUN")
    );
    assert_eq!((world.executions_of("A"), world.executions_of("B")), (2, 2));
}

#[tokio::test]
async fn cancel_checks_the_nodes_up_to_the_running_one_in_stage_order() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    // A finished node that cannot be cancelled blocks CANCEL (obshell's
    // `getNodeCanCancel` walks the stages up to the first unfinished node).
    let mut spec = DagSpec::new("walk");
    spec.chain(
        None,
        vec![
            NodeSpec::new("L", "script_locked").sub_tasks(vec![json!({"name": "L"})]),
            script_with("W", json!({"wait_cancel": true})),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    for _ in 0..500 {
        if node_status(&engine, id)[1].1 == "RUNNING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        refused(engine.operate(id, Operator::Cancel).await),
        "Failed to cancel DAG: node L cannot cancel"
    );
    assert_eq!(dag_status(&engine, id), s("RUNNING", "RUN"));
    // Nodes after the running one are not checked.
    let mut spec = DagSpec::new("later");
    spec.chain(
        None,
        vec![
            script_with("V", json!({"wait_cancel": true})),
            NodeSpec::new("M", "script_locked").sub_tasks(vec![json!({"name": "M"})]),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    for _ in 0..500 {
        if node_status(&engine, id)[0].1 == "RUNNING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    engine.operate(id, Operator::Cancel).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().operator,
        Operator::Cancel
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
    assert_eq!(dag_status(&engine, old), s("SUCCEED", "PASS"));
}
