//! DTO JSON shapes (names exact) and generic ids.

mod support;

use std::sync::Arc;

use obrestore_dag::{DagSpec, NodeSpec};
use serde_json::{json, Value};
use support::*;

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn dag_detail_json_has_obshell_names_and_merged_additional_data() {
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
    let detail = serde_json::to_value(engine.dag_detail(id, true).unwrap()).unwrap();
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
    let task = &node["sub_tasks"][0];
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
    // RFC 3339 with an offset.
    let start = detail["start_time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(start).is_ok(),
        "{start}"
    );

    let brief = serde_json::to_value(engine.dag_detail(id, false).unwrap()).unwrap();
    assert_eq!(brief["nodes"], Value::Null);
    // Node detail carries its own merged data.
    let node_id = detail["nodes"][0]["node_id"].as_u64().unwrap();
    let node = serde_json::to_value(engine.node_detail(node_id).unwrap()).unwrap();
    assert_eq!(node["additional_data"]["files"], json!(["x", "y"]));
    // Generic ids decode back to the ids.
    assert_eq!(
        engine.decode_id(detail["id"].as_str().unwrap()).unwrap(),
        id
    );
    assert_eq!(
        engine.decode_id(node["id"].as_str().unwrap()).unwrap(),
        node_id
    );
    assert!(engine.decode_id("142").is_err(), "cluster ids are not ours");
    assert!(engine.decode_id("2213070643302886x").is_err());
}
