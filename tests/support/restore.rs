//! Restore helpers of the end-to-end tests: a small backup, a restore through the API,
//! and polling its DAG. Not every test uses every helper.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use obrestore::backup::{generate, GenerateConfig, GenerateSummary};
use obrestore_server::client::Method;
use obrestore_server::AgentClient;
use serde_json::{json, Value};

pub async fn dag(client: &AgentClient, id: &str) -> Value {
    client
        .data::<Value>(Method::GET, &format!("/api/v1/task/dag/{id}"), None)
        .await
        .unwrap()
        .unwrap()
}

pub fn running_restore_data(dag: &Value) -> bool {
    dag["nodes"].as_array().is_some_and(|nodes| {
        nodes.iter().any(|node| {
            node["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Restore data"))
                && node["state"] == "RUNNING"
        })
    })
}

/// A 12 MiB backup in small files and blocks, so `Restore data` has many steps.
pub fn small_backup(backup_root: &Path) -> GenerateSummary {
    let mut config = GenerateConfig::new(backup_root);
    config.target_bytes = 12 << 20;
    config.data_file_bytes = 256 << 10;
    config.log_file_bytes = 256 << 10;
    config.block_bytes = 32 << 10;
    config.kdf_iterations = 1000;
    generate(&config).unwrap()
}

/// Submits the restore of tenant `e2e` and returns its DAG's generic id.
pub async fn start_restore(client: &AgentClient, summary: &GenerateSummary) -> String {
    let started: Value = client
        .data(
            Method::POST,
            "/api/v1/tenant/restore",
            Some(&json!({
                "data_backup_uri": summary.data_uri,
                "archive_log_uri": summary.archive_uri,
                "restore_tenant_name": "e2e",
                "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
                "concurrency": 1,
            })),
        )
        .await
        .unwrap()
        .unwrap();
    started["id"].as_str().unwrap().to_string()
}

/// Polls until a `Restore data` node runs (failing if the DAG ends first).
pub async fn wait_for_restore_data(client: &AgentClient, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = dag(client, id).await;
        if running_restore_data(&detail) {
            return;
        }
        assert_ne!(
            detail["state"], "SUCCEED",
            "finished before Restore data was seen"
        );
        assert_ne!(detail["state"], "FAILED", "{detail:#}");
        assert!(
            Instant::now() < deadline,
            "Restore data never ran: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls until the DAG is SUCCEED or FAILED and returns its detail.
pub async fn wait_finished(client: &AgentClient, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let detail = dag(client, id).await;
        if detail["state"] == "SUCCEED" || detail["state"] == "FAILED" {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "restore did not finish: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
