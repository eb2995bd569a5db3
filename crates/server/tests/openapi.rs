//! The OpenAPI document lists every route of SPEC §3, and the schema mirrors of the
//! other crates' DTOs have exactly the fields those DTOs serialize.

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use obrestore_dag::{AgentInfo, DagDetailDto, NodeDetailDto, TaskDetailDto, TaskLogDto};
use serde_json::{json, Value};

/// SPEC §3's table plus the backup-config endpoint the OCP ONLINE preview needs.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/info"),
    ("get", "/api/v1/secret"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/tenant/restore"),
    ("delete", "/api/v1/tenant/{name}/restore"),
    ("get", "/api/v1/tenant/{name}/restore/overview"),
    ("get", "/api/v1/restore/windows"),
    ("post", "/api/v2/ob/clusters/{id}/backup/restore/preview"),
    ("post", "/api/v1/tenant/{name}/backup/config"),
    ("get", "/api/v1/task/dag/{id}"),
    ("post", "/api/v1/task/dag/{id}"),
    ("get", "/api/v1/task/node/{id}"),
    ("post", "/api/v1/task/node/{id}"),
    ("get", "/api/v1/task/sub_task/{id}"),
    ("get", "/api/v1/task/sub_task/{id}/logs"),
    ("get", "/api/v1/task/dag/unfinish"),
    ("get", "/api/v1/task/dag/ob/unfinish"),
    ("get", "/api/v1/task/dag/agent/unfinish"),
    ("post", "/api/v1/unit/config"),
    ("get", "/api/v1/unit/config/{name}"),
    ("delete", "/api/v1/unit/config/{name}"),
    ("get", "/api/v1/units/config"),
    ("get", "/api/v1/tenant/{name}"),
    ("delete", "/api/v1/tenant/{name}"),
    ("get", "/api/v1/tenants/overview"),
    ("get", "/api/v1/resource-pools"),
    ("get", "/api/v1/resource-pool/{name}"),
    ("delete", "/api/v1/resource-pool/{name}"),
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_and_documented() {
    let test = common::agent(common::Options::default()).await;
    let served = common::call(&test.app, Method::GET, "/api/v1/openapi.json", None)
        .await
        .expect(200)
        .body;
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    assert_eq!(served, doc, "the served document is the generated one");
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented(&doc), expected);
    // Each documented route is routed (a 405 or a 404 from axum would have no envelope).
    for (method, path) in ROUTES {
        let uri = path.replace("{id}", "1").replace("{name}", "ghost");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = common::call(&test.app, method.clone(), &uri, None).await;
        assert_ne!(reply.status.as_u16(), 405, "{method} {uri}");
        if reply.status.as_u16() == 404 {
            assert!(
                reply.body["error"]["errCode"].is_string(),
                "{method} {uri} not routed"
            );
        }
    }
}

fn schema_fields(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} missing"))
        .keys()
        .cloned()
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn schema_mirrors_match_the_real_dtos() {
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let task = TaskDetailDto {
        id: "2".into(),
        task_id: 1,
        name: "t".into(),
        state: "SUCCEED".into(),
        operator: "RUN".into(),
        start_time: String::new(),
        end_time: String::new(),
        additional_data: None,
        execute_times: 1,
        execute_agent: AgentInfo::default(),
        task_logs: Vec::new(),
    };
    let node = NodeDetailDto {
        id: "2".into(),
        node_id: 1,
        name: "n".into(),
        state: "SUCCEED".into(),
        operator: "RUN".into(),
        start_time: String::new(),
        end_time: String::new(),
        additional_data: None,
        sub_tasks: Some(vec![task.clone()]),
    };
    let dag = DagDetailDto {
        id: "2".into(),
        dag_id: 1,
        name: "d".into(),
        stage: 1,
        max_stage: 1,
        maintenance_type: 0,
        maintenance_key: String::new(),
        state: "SUCCEED".into(),
        operator: "RUN".into(),
        start_time: String::new(),
        end_time: String::new(),
        additional_data: None,
        nodes: Some(vec![node.clone()]),
    };
    let log = TaskLogDto {
        task_id: 1,
        execute_times: 1,
        log_content: String::new(),
        time: String::new(),
    };
    let preview = obrestore_backup::RestorePreviewItem {
        backup_dest: String::new(),
        backup_id: 1,
        backup_type: obrestore_backup::PreviewBackupType::BackupSet,
        copy_id: 0,
    };
    let windows = obrestore_backup::RestoreWindowsDto {
        restore_windows: Vec::new(),
    };
    let param: obrestore_restore::RestoreParam = serde_json::from_value(json!({
        "archive_log_uri": "x", "scn": 1, "timestamp": "2024-04-01T00:00:00Z", "primary_zone": "RANDOM",
        "concurrency": 1, "ha_high_thread_score": 1, "decryption": ["p"], "kms_encrypt_info": "k",
        "zone_list": [{"name": "z1", "replica_type": "FULL", "unit_config_name": "s1", "unit_num": 1}]
    }))
    .unwrap();
    let param = serde_json::to_value(&param).unwrap();
    let overview = obrestore_restore::RestoreOverview {
        job_id: 1,
        tenant_name: String::new(),
        tenant_id: None,
        restore_scn: 0,
        restore_scn_display: String::new(),
        status: String::new(),
        backup_set_list: String::new(),
        backup_piece_list: String::new(),
        ls_count: 0,
        finish_ls_count: 0,
        tablet_count: 0,
        finish_tablet_count: 0,
        total_bytes: 0,
        total_bytes_display: String::new(),
        finish_bytes: 0,
        finish_bytes_display: String::new(),
        recover_scn: 0,
        recover_scn_display: String::new(),
        recover_progress: 0.0,
        restore_progress: 0.0,
        start_timestamp: String::new(),
        finish_timestamp: None,
        comment: String::new(),
        dag_id: None,
    };
    let cases = [
        ("DagDetailDTO", serde_json::to_value(&dag).unwrap()),
        ("NodeDetailDTO", serde_json::to_value(&node).unwrap()),
        ("TaskDetailDTO", serde_json::to_value(&task).unwrap()),
        (
            "AgentAddress",
            serde_json::to_value(&task.execute_agent).unwrap(),
        ),
        ("TaskLog", serde_json::to_value(&log).unwrap()),
        (
            "RestorePreviewItem",
            serde_json::to_value(&preview).unwrap(),
        ),
        ("RestoreWindows", serde_json::to_value(&windows).unwrap()),
        ("RestoreParam", param.clone()),
        ("ZoneParam", param["zone_list"][0].clone()),
        ("RestoreOverview", serde_json::to_value(&overview).unwrap()),
    ];
    for (name, value) in cases {
        assert_eq!(
            schema_fields(&doc, name),
            keys(&value),
            "schema {name} drifted"
        );
    }
}
