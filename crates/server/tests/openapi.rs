//! The OpenAPI document lists every route of SPEC §3, the schema mirrors of the other
//! crates' DTOs have exactly the fields those DTOs serialize, every answer is documented
//! in the envelope with the codes every operation shares, and real answers of the router
//! validate against the document. (`scripts/fuzz-api.sh` does the same with Schemathesis
//! against a live agent.)

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use obrestore_dag::{AgentInfo, DagDetailDto, NodeDetailDto, TaskDetailDto, TaskLogDto};
use serde_json::{json, Value};

/// SPEC §3's table, obshell's routes of the same areas (docs/api.md), plus the
/// backup-config endpoint the OCP ONLINE preview needs.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/info"),
    ("get", "/api/v1/secret"),
    ("get", "/api/v1/status"),
    ("post", "/api/v1/status"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/ob/info"),
    ("post", "/api/v1/tenant/restore"),
    ("delete", "/api/v1/tenant/{name}/restore"),
    ("get", "/api/v1/tenant/{name}/restore/overview"),
    ("get", "/api/v1/restore/windows"),
    ("post", "/api/v1/restore/source-tenant-info"),
    ("get", "/api/v1/restore/tasks"),
    ("post", "/api/v2/ob/clusters/{id}/backup/restore/preview"),
    ("post", "/api/v1/tenant/{name}/backup/config"),
    ("get", "/api/v1/task/dag/{id}"),
    ("post", "/api/v1/task/dag/{id}"),
    ("get", "/api/v1/task/node/{id}"),
    ("post", "/api/v1/task/node/{id}"),
    ("get", "/api/v1/task/sub_task/{id}"),
    ("get", "/api/v1/task/sub_task/{id}/logs"),
    ("get", "/api/v1/task/dags/ob"),
    ("get", "/api/v1/task/dags/agent"),
    ("get", "/api/v1/task/dag/unfinish"),
    ("get", "/api/v1/task/dag/ob/unfinish"),
    ("get", "/api/v1/task/dag/agent/unfinish"),
    ("get", "/api/v1/task/dag/maintain/ob"),
    ("get", "/api/v1/task/dag/maintain/agent"),
    ("get", "/api/v1/task/dag/maintain/agents"),
    ("get", "/api/v1/task/dag/agent/main_dags"),
    ("post", "/api/v1/unit/config"),
    ("get", "/api/v1/unit/config/{name}"),
    ("delete", "/api/v1/unit/config/{name}"),
    ("get", "/api/v1/units/config"),
    ("get", "/api/v1/tenant/{name}"),
    ("delete", "/api/v1/tenant/{name}"),
    ("get", "/api/v1/tenants/overview"),
    ("post", "/api/v1/tenant/{name}/lock"),
    ("delete", "/api/v1/tenant/{name}/lock"),
    ("get", "/api/v1/recyclebin/tenants"),
    ("post", "/api/v1/recyclebin/tenant/{name}"),
    ("delete", "/api/v1/recyclebin/tenant/{name}"),
    ("post", "/api/v1/tenant"),
    ("put", "/api/v1/tenant/{name}/name"),
    ("post", "/api/v1/tenant/{name}/replicas"),
    ("delete", "/api/v1/tenant/{name}/replicas"),
    ("patch", "/api/v1/tenant/{name}/replicas"),
    ("put", "/api/v1/tenant/{name}/primary-zone"),
    ("put", "/api/v1/tenant/{name}/whitelist"),
    ("put", "/api/v1/tenant/{name}/password"),
    ("post", "/api/v1/tenant/{name}/password/persist"),
    ("put", "/api/v1/tenant/{name}/variables"),
    ("get", "/api/v1/tenant/{name}/variables"),
    ("get", "/api/v1/tenant/{name}/variable/{var}"),
    ("put", "/api/v1/tenant/{name}/parameters"),
    ("get", "/api/v1/tenant/{name}/parameters"),
    ("get", "/api/v1/tenant/{name}/parameter/{para}"),
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
    // Each documented route is routed: its method is not 405, and a 404 comes from the
    // handler (Task.NotFound, ...), not from the fallback for unknown routes.
    for (method_name, path) in ROUTES {
        let uri = path
            .replace("{id}", "1")
            .replace("{name}", "ghost")
            .replace("{var}", "autocommit")
            .replace("{para}", "max_cpu");
        let method = Method::from_bytes(method_name.to_uppercase().as_bytes()).unwrap();
        let reply = common::call(&test.app, method.clone(), &uri, None).await;
        assert_ne!(reply.status.as_u16(), 405, "{method} {uri}");
        conforms(&doc, method_name, path, &reply);
        if reply.status.as_u16() == 404 {
            assert_ne!(
                reply.body["error"]["message"], "Element not found: 404 not found",
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

/// One of each engine DTO, nested as the API answers them: (task, node, dag).
fn engine_dtos() -> (TaskDetailDto, NodeDetailDto, DagDetailDto) {
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
    (task, node, dag)
}

/// Every field of the restore request set, serialized.
fn full_restore_param() -> Value {
    let param: obrestore_restore::RestoreParam = serde_json::from_value(json!({
        "archive_log_uri": "x", "scn": 1, "timestamp": "2024-04-01T00:00:00Z", "primary_zone": "RANDOM",
        "concurrency": 1, "ha_high_thread_score": 1, "decryption": ["p"], "kms_encrypt_info": "k",
        "zone_list": [{"name": "z1", "replica_type": "FULL", "unit_config_name": "s1", "unit_num": 1}]
    }))
    .unwrap();
    serde_json::to_value(&param).unwrap()
}

#[test]
fn schema_mirrors_match_the_real_dtos() {
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let (task, node, dag) = engine_dtos();
    let log = TaskLogDto {
        id: 1,
        sub_task_id: 1,
        execute_times: 1,
        log_content: String::new(),
        is_sync: true,
        create_time: String::new(),
        update_time: String::new(),
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
    let param = full_restore_param();
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
    ];
    for (name, value) in cases {
        assert_eq!(
            schema_fields(&doc, name),
            keys(&value),
            "schema {name} drifted"
        );
    }
}

/// The overview is obshell's `param.RestoreOverview` (bo.RestoreInfo and the
/// progress/history columns), plus the restore DAG's id.
#[test]
fn restore_overview_schema_is_obshells() {
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let overview: BTreeSet<String> = [
        "tenant_id",
        "job_id",
        "restore_tenant_name",
        "restore_tenant_id",
        "backup_tenant_name",
        "backup_tenant_id",
        "backup_cluster_name",
        "restore_option",
        "restore_scn",
        "restore_scn_display",
        "status",
        "start_timestamp",
        "backup_set_list",
        "backup_piece_list",
        "backup_data_uri",
        "backup_log_uri",
        "tablet_count",
        "finish_tablet_count",
        "total_bytes",
        "total_bytes_display",
        "finish_bytes",
        "finish_bytes_display",
        "description",
        "recover_scn",
        "recover_scn_display",
        "recover_progress",
        "restore_progress",
        "backup_cluster_version",
        "ls_count",
        "finish_ls_count",
        "comment",
        "finish_timestamp",
        "dag_id",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(schema_fields(&doc, "RestoreOverviewDto"), overview);
}

/// Asserts that `reply` is an answer `doc` documents for `method path`: its status is
/// listed and its body validates against that answer's schema.
#[track_caller]
fn conforms(doc: &Value, method: &str, path: &str, reply: &common::Reply) {
    let status = reply.status.as_u16().to_string();
    let response = &doc["paths"][path][method]["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {path} answered an undocumented {status}: {:#}",
        reply.body
    );
    let schema = &response["content"]["application/json"]["schema"];
    if schema.is_null() {
        assert!(
            reply.body.is_null(),
            "{method} {path} {status}: a body where none is documented"
        );
        return;
    }
    if let Err(why) = validate(doc, schema, &reply.body, "$") {
        panic!("{method} {path} {status}: {why}\nbody: {:#}", reply.body);
    }
}

/// A JSON-schema check of the subset the document uses: `$ref`, `allOf`, `oneOf`,
/// `anyOf`, `type` (one or a list), `properties`, `required`, `items`, `enum`.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return validate(doc, &doc["components"]["schemas"][name], value, at);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        validate(doc, part, value, at)?;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(parts) = schema[key].as_array() {
            if !parts
                .iter()
                .any(|part| validate(doc, part, value, at).is_ok())
            {
                return Err(format!("{at}: matches none of {key}"));
            }
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|kind| is_type(value, kind)) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    if let Value::Object(object) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required {name}"));
            }
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(field) = object.get(name) {
                validate(doc, property, field, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            validate(doc, item_schema, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// Every answer but the document's own is the envelope; every authenticated operation
/// documents 401, 429, 413, 408 and 500, and 503 if it may write; every operation with a
/// body documents 400, 413 and 408, and every one with query parameters 400.
#[test]
fn every_answer_is_documented_in_the_envelope() {
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let envelope = "#/components/schemas/Envelope";
    let error_envelope = "#/components/schemas/ErrorEnvelope";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            if path == obrestore_server::openapi::UNWRAPPED_PATH {
                continue;
            }
            for (status, response) in responses {
                let schema = &response["content"]["application/json"]["schema"];
                if status == "204" {
                    assert!(response.get("content").is_none(), "{what} 204 has a body");
                } else if status.starts_with('2') {
                    let reference = schema["$ref"]
                        .as_str()
                        .or_else(|| schema["allOf"][0]["$ref"].as_str());
                    assert_eq!(reference, Some(envelope), "{what} {status}");
                } else {
                    assert_eq!(schema["$ref"], error_envelope, "{what} {status}");
                }
            }
            let public = operation["security"] == json!([{}]);
            let mut expected: Vec<&str> = Vec::new();
            if !public {
                expected.extend(["401", "408", "413", "429", "500"]);
                if method != "get" {
                    expected.push("503");
                }
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "408", "413"]);
            }
            let parameters = operation["parameters"].as_array().into_iter().flatten();
            if parameters
                .clone()
                .any(|parameter| parameter["in"] == "query")
            {
                expected.push("400");
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{what} does not document {status}"
                );
            }
        }
    }
}

/// Real answers of each kind (data, listing, none, 204, refusals of every status)
/// validate against the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_validate_against_the_document() {
    let test = common::agent(common::Options::default()).await;
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let unit = json!({"name": "u1", "memory_size": "5G", "max_cpu": 2, "min_cpu": 1});
    let restore = json!({"data_backup_uri": "file:///nowhere", "restore_tenant_name": "t1",
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}]});
    // "method documented-path [uri]" (the uri is the path when there is none), and a body.
    let cases: Vec<(&str, Option<Value>)> = vec![
        ("post /api/v1/unit/config", Some(unit.clone())),
        ("post /api/v1/unit/config", Some(unit)),
        ("post /api/v1/unit/config", Some(json!({"name": 1}))),
        (
            "post /api/v1/unit/config",
            Some(json!({"name": "u2", "memory_size": "1e400G", "max_cpu": 1})),
        ),
        (
            "get /api/v1/unit/config/{name} /api/v1/unit/config/u1",
            None,
        ),
        ("get /api/v1/units/config", None),
        ("get /api/v1/resource-pools", None),
        ("post /api/v1/tenant/restore", Some(restore)),
        ("get /api/v1/tenants/overview", None),
        ("get /api/v1/tenant/{name} /api/v1/tenant/sys", None),
        ("get /api/v1/task/dag/{id} /api/v1/task/dag/x", None),
        (
            "get /api/v1/restore/tasks /api/v1/restore/tasks?page=x",
            None,
        ),
        (
            "get /api/v1/task/dag/maintain/ob /api/v1/task/dag/maintain/ob?show_details=x",
            None,
        ),
        (
            "get /api/v1/tenant/{name}/variables /api/v1/tenant/sys/variables?filter=a&filter=b",
            None,
        ),
        (
            "delete /api/v1/unit/config/{name} /api/v1/unit/config/u1",
            None,
        ),
        ("delete /api/v1/tenant/{name} /api/v1/tenant/ghost", None),
        ("get /api/v1/info", None),
        ("get /api/v1/status", None),
        ("get /api/v1/ob/info", None),
    ];
    for (case, body) in cases {
        let words: Vec<&str> = case.split(' ').collect();
        let (method, path) = (words[0], words[1]);
        let uri = words.get(2).copied().unwrap_or(path);
        let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = common::call(&test.app, http_method, uri, body).await;
        conforms(&doc, method, path, &reply);
    }
}
