//! Garbage through every documented route: odd path values, malformed and mistyped
//! bodies, odd queries. Never a 5xx, always obshell's error envelope with an errCode,
//! never an echo of the body, and the agent keeps serving with its state intact.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{agent, send, Options};
use obrestore_restore::TenantService;
use serde_json::{json, Value};

/// Every (method, path template) of the OpenAPI document.
fn routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(obrestore_server::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) {
                out.push((method, path.clone()));
            }
        }
    }
    out
}

/// Path parameter values: unknown, numeric edge cases, traversal, non-ASCII, long.
fn path_values() -> Vec<String> {
    vec![
        "ghost".to_string(),
        "18446744073709551616999".to_string(),
        "..%2F..%2Fetc%2Fpasswd".to_string(),
        "%E5%90%8D%00x".to_string(),
        "x".repeat(300),
    ]
}

/// Bodies: malformed JSON, wrong types at the top and inside, extreme numbers and
/// strings, deep nesting, bytes that are not UTF-8.
fn bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        "",
        "{}",
        "[]",
        "null",
        "\"x\"",
        "123",
        "{not json",
        "{\"a\":",
        "\u{feff}{}",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    let values = [
        json!({"zone_list": "x", "zones": 5, "operator": {}, "name": null}),
        json!({"zone_list": [null, {}, {"name": 1, "unit_num": "2"}], "name": ["a"]}),
        json!({"name": "t", "zone_list": [{"name": "z1", "unit_config_name": "s1",
               "unit_num": u64::MAX, "replica_type": {}}]}),
        json!({"name": "t", "zone_list": [{"name": "z1", "unit_config_name": "s1",
               "unit_num": i64::MIN}], "primary_zone": ";;,,;"}),
        json!({"data_backup_uri": "file:///../../etc/passwd", "restore_tenant_name": "t",
               "zone_list": [], "scn": u64::MAX, "timestamp": "9999-99-99"}),
        json!({"data_backup_uri": "file://", "archive_log_uri": "\u{0}",
               "restore_tenant_name": "t".repeat(10_000), "zone_list": [{}]}),
        json!({"memory_size": "99999999999999999999P", "max_cpu": 1e308, "min_cpu": -1,
               "name": "u", "max_iops": i64::MIN}),
        json!({"variables": {"a": {"b": 1}, "": 1}, "parameters": {"x": [1]},
               "tenant_password": 7}),
        json!({"new_password": null, "old_password": [1], "password": {}, "whitelist": 1,
               "new_name": ""}),
        json!({"backupTenantStatus": "ONLINE", "restoreOnlineTenantRequiredParam":
               {"backupTenantId": -1}, "restoreEndTime": "not a time"}),
        json!({"backupTenantStatus": "OFFLINE", "restoreOfflineTenantRequiredParam":
               {"obBackupStorageBaseInfo": {"storageType": "S3", "dataBaseUri": 5}}}),
        json!({"need_recycle": "maybe", "operator": "RETRY".repeat(1000)}),
    ];
    bodies.extend(values.iter().map(|value| value.to_string().into_bytes()));
    bodies.push(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
    bodies.push(vec![0xff, 0xfe, 0x00, 0x7b, 0x22]);
    bodies.push(format!("{{\"name\": \"{}\"}}", "n".repeat(1 << 20)).into_bytes());
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_gets_a_5xx_and_changes_nothing() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let routes = routes();
    assert!(routes.len() > 50, "{} routes", routes.len());
    let bodies = bodies();
    let queries = [
        "",
        "?show_details=%ff",
        "?filter=%25%25%25%25%25%25%25%25%25%25%25%25%25%25%25x&page=-1&size=abc",
    ];
    let mut requests = 0;
    for (method, template) in &routes {
        let paths: Vec<String> = if template.contains('{') {
            path_values()
                .iter()
                .map(|value| {
                    template
                        .replace("{id}", value)
                        .replace("{name}", value)
                        .replace("{var}", value)
                        .replace("{para}", value)
                })
                .collect()
        } else {
            vec![template.clone()]
        };
        for path in paths {
            for (index, body) in bodies.iter().enumerate() {
                let query = queries[index % queries.len()];
                let request = Request::builder()
                    .method(method.clone())
                    .uri(format!("{path}{query}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body.clone()))
                    .unwrap();
                let reply = send(app, request).await;
                requests += 1;
                let status = reply.status.as_u16();
                let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).to_string();
                assert!(
                    status < 500,
                    "{method} {path}{query} {shown}: {:#}",
                    reply.body
                );
                if status >= 400 {
                    assert_eq!(reply.body["successful"], false, "{method} {path}");
                    assert!(
                        !reply.err_code().is_empty(),
                        "{method} {path}: {:#}",
                        reply.body
                    );
                    let message = reply.body["error"]["message"].as_str().unwrap_or("");
                    assert!(
                        !message.contains(&"n".repeat(1000))
                            && !message.contains(&"t".repeat(1000)),
                        "{method} {path}: the message echoes the body"
                    );
                }
            }
        }
    }
    assert!(requests > 1000, "{requests} requests");
    // Still serving, and the seeded cluster is intact.
    let status = common::call(app, Method::GET, "/api/v1/status", None)
        .await
        .expect(200);
    assert_eq!(status.data()["state"], 2);
    let cluster = test.agent.cluster();
    assert_eq!(cluster.list_zones().unwrap().len(), 3);
    assert!(cluster.unit_config("s1").unwrap().is_some());
    let configs: Vec<Value> = common::call(app, Method::GET, "/api/v1/units/config", None)
        .await
        .expect(200)
        .data()["contents"]
        .as_array()
        .unwrap()
        .clone();
    assert!(configs.iter().any(|config| config["name"] == "s1"));
}

/// A body over the documented limit (`MAX_BODY_BYTES`, 16 MiB) is 413 with an errCode,
/// not a binding error; one just under it is read (and refused as JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413() {
    let test = agent(Options::default()).await;
    let limit = obrestore_server::app::MAX_BODY_BYTES;
    for (size, status, code) in [
        (limit + 1, 413, "Common.RequestBodyTooLarge"),
        (limit, 400, "Common.BindJsonFailed"),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/unit/config")
            .header("content-type", "application/json")
            .body(Body::from(vec![b'x'; size]))
            .unwrap();
        let reply = send(&test.app, request).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{size} bytes: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["errCode"], code, "{size} bytes");
    }
}
