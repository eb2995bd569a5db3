//! DTO JSON shapes (names exact) and generic ids.

mod support;

use std::sync::Arc;

use obrestore_dag::{DagSpec, Engine, Maintenance, NodeSpec, QueryError, Scope};
use serde_json::{json, Value};
use support::*;

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// A two-node DAG whose sub-tasks set additional data, run to the end. Returns the
/// engine and the DAG's id.
async fn finished_dag_with_additional_data() -> (Engine, u64) {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("Restore backup_t1");
    let a = spec.add_node(NodeSpec::new("A", "script").sub_tasks(vec![
        json!({"name": "a1", "additional": {"bytes": 10, "files": ["x"], "restore_job_id": 7}}),
        json!({"name": "a2", "additional": {"bytes": 20, "files": ["y"]}}),
    ]));
    let b = spec.add_node(script_with(
        "B",
        json!({"additional": {"progress": {"ls": 1}}}),
    ));
    spec.add_edge(a, b);
    let id = engine.submit(spec).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    (engine, id)
}

/// The detailed DAG DTO as JSON.
fn detail_json(engine: &Engine, id: u64) -> Value {
    serde_json::to_value(engine.dag_detail(id, true).unwrap()).unwrap()
}

#[tokio::test]
async fn dag_detail_json_has_obshell_names_and_merged_additional_data() {
    let (engine, id) = finished_dag_with_additional_data().await;
    let detail = detail_json(&engine, id);
    assert_eq!(
        keys(&detail),
        [
            "additional_data",
            "dag_id",
            "end_time",
            "id",
            "maintenance_key",
            "maintenance_type",
            "max_stage",
            "name",
            "nodes",
            "operator",
            "stage",
            "start_time",
            "state"
        ]
    );
    assert_eq!(detail["id"], json!(format!("2213070643302886{id}")));
    assert_eq!(
        detail["additional_data"],
        json!({"bytes": 20, "files": ["x", "y"], "restore_job_id": 7, "progress": {"ls": 1}})
    );
    let node = &detail["nodes"][0];
    assert_eq!(
        keys(node),
        [
            "additional_data",
            "end_time",
            "id",
            "name",
            "node_id",
            "operator",
            "start_time",
            "state",
            "sub_tasks"
        ]
    );
    assert_eq!(node["additional_data"], Value::Null);
    // RFC 3339 with an offset.
    let start = detail["start_time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(start).is_ok(),
        "{start}"
    );
}

#[tokio::test]
async fn sub_tasks_inside_a_dag_detail_have_obshell_names_and_no_data_of_their_own() {
    let (engine, id) = finished_dag_with_additional_data().await;
    let detail = detail_json(&engine, id);
    let task = &detail["nodes"][0]["sub_tasks"][0];
    assert_eq!(
        keys(task),
        [
            "additional_data",
            "end_time",
            "execute_agent",
            "execute_times",
            "id",
            "name",
            "operator",
            "start_time",
            "state",
            "task_id",
            "task_logs"
        ]
    );
    assert_eq!(
        task["execute_agent"],
        json!({"ip": "127.0.0.1", "port": 2886})
    );
    assert_eq!(task["task_logs"], json!(["executing a1"]));
    // Inside a DAG detail, sub-tasks carry no additional data of their own (obshell).
    assert_eq!(task["additional_data"], Value::Null);
}

#[tokio::test]
async fn additional_data_shows_where_obshell_shows_it() {
    let (engine, id) = finished_dag_with_additional_data().await;
    let detail = detail_json(&engine, id);
    let brief = serde_json::to_value(engine.dag_detail(id, false).unwrap()).unwrap();
    assert_eq!(brief["nodes"], Value::Null);
    // Without details obshell shows no additional data either.
    assert_eq!(brief["additional_data"], Value::Null);
    // Node detail carries its own merged data, its sub-tasks none.
    let node_id = detail["nodes"][0]["node_id"].as_u64().unwrap();
    let node = serde_json::to_value(engine.node_detail(node_id, true).unwrap()).unwrap();
    assert_eq!(node["additional_data"]["files"], json!(["x", "y"]));
    assert_eq!(node["sub_tasks"][0]["additional_data"], Value::Null);
    let bare = serde_json::to_value(engine.node_detail(node_id, false).unwrap()).unwrap();
    assert_eq!(
        (&bare["sub_tasks"], &bare["additional_data"]),
        (&Value::Null, &Value::Null)
    );
    // A sub-task detail shows the sub-task's own data.
    let task_id = node["sub_tasks"][1]["task_id"].as_u64().unwrap();
    let task = serde_json::to_value(engine.task_detail(task_id).unwrap()).unwrap();
    assert_eq!(
        task["additional_data"],
        json!({"bytes": 20, "files": ["y"]})
    );
}

#[tokio::test]
async fn generic_ids_decode_back_and_other_scopes_and_agents_are_refused() {
    let (engine, id) = finished_dag_with_additional_data().await;
    let detail = detail_json(&engine, id);
    let node = &detail["nodes"][0];
    let node_id = node["node_id"].as_u64().unwrap();
    // Generic ids decode back to the ids.
    assert_eq!(
        engine.decode_id(detail["id"].as_str().unwrap()).unwrap(),
        (id, Scope::Agent)
    );
    assert_eq!(
        engine.decode_id(node["id"].as_str().unwrap()).unwrap(),
        (node_id, Scope::Agent)
    );
    assert_eq!(engine.decode_id("142").unwrap(), (42, Scope::Cluster));
    // This agent DAG is not found under its cluster id.
    assert!(matches!(
        engine.find_dag(&format!("1{id}")),
        Err(QueryError::NotFound { .. })
    ));
    assert!(engine.decode_id("2213070643302886x").is_err());
    // Another agent's id.
    assert!(matches!(
        engine.decode_id("22130706433028879"),
        Err(QueryError::ForeignId(_))
    ));
}

#[tokio::test]
async fn task_log_rows_have_obshell_names() {
    let (engine, id) = finished_dag_with_additional_data().await;
    let detail = detail_json(&engine, id);
    let task_id = detail["nodes"][0]["sub_tasks"][1]["task_id"]
        .as_u64()
        .unwrap();
    let logs = serde_json::to_value(engine.task_logs(task_id).unwrap()).unwrap();
    assert_eq!(
        keys(&logs[0]),
        [
            "create_time",
            "execute_times",
            "id",
            "is_sync",
            "log_content",
            "sub_task_id",
            "update_time"
        ]
    );
    assert_eq!(
        (
            &logs[0]["id"],
            &logs[0]["sub_task_id"],
            &logs[0]["log_content"]
        ),
        (&json!(1), &json!(task_id), &json!("executing a2"))
    );
}

#[tokio::test]
async fn cluster_dags_have_cluster_ids_and_obshell_maintenance_types() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    let mut spec = DagSpec::new("Drop tenant")
        .scope(Scope::Cluster)
        .maintenance(Maintenance::Tenant("t1".to_string()));
    spec.add_node(script("A"));
    let cluster = engine.submit(spec).await.unwrap();
    let agent = engine.submit(chain(&["B"])).await.unwrap();
    engine.wait_settled(cluster).await.unwrap();
    engine.wait_settled(agent).await.unwrap();
    let detail = engine.dag_detail(cluster, true).unwrap();
    assert_eq!(detail.id, format!("1{cluster}"));
    let nodes = detail.nodes.unwrap();
    assert_eq!(nodes[0].id, format!("1{}", nodes[0].node_id));
    let task = &nodes[0].sub_tasks.as_ref().unwrap()[0];
    assert_eq!(task.id, format!("1{}", task.task_id));
    assert_eq!(engine.find_dag(&detail.id).unwrap().id, cluster);
    assert_eq!(engine.find_node(&nodes[0].id).unwrap().id, nodes[0].node_id);
    assert_eq!(engine.find_task(&task.id).unwrap().id, task.task_id);
    // Under this agent's prefix the cluster DAG does not exist.
    let as_agent = format!("2213070643302886{cluster}");
    assert!(matches!(
        engine.find_dag(&as_agent),
        Err(QueryError::NotFound { .. })
    ));
    // obshell's numbers: 1 NONE, 2 GLOBAL, 3 TENANT.
    assert_eq!(
        (detail.maintenance_type, detail.maintenance_key.as_str()),
        (3, "t1")
    );
    assert_eq!(engine.dag_detail(agent, false).unwrap().maintenance_type, 1);
    // Lists by scope.
    let ids = |scope| -> Vec<u64> {
        engine
            .dags(Some(scope))
            .unwrap()
            .iter()
            .map(|dag| dag.id)
            .collect()
    };
    assert_eq!(ids(Scope::Cluster), vec![cluster]);
    assert_eq!(ids(Scope::Agent), vec![agent]);
    assert_eq!(
        engine
            .last_maintenance_dag(Scope::Cluster)
            .unwrap()
            .map(|dag| dag.id),
        Some(cluster)
    );
    assert!(engine.last_maintenance_dag(Scope::Agent).unwrap().is_none());
}
