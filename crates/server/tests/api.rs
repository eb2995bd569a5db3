//! Every endpoint through the router (`oneshot`, no socket), with its error paths.
//! The agent here has no password; auth is covered by `tests/auth.rs`.

mod common;

use axum::http::Method;
use common::{agent, backup, call, wait_dag, Options};
use serde_json::{json, Value};

fn restore_body(tenant: &str) -> Value {
    let summary = &backup().summary;
    json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": tenant,
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "concurrency": 2,
    })
}

fn roots() -> Options {
    Options {
        roots: vec![backup().root.clone()],
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_endpoints_refuse_bad_ids_with_400_and_unknown_ids_with_404() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    for path in [
        "/api/v1/task/dag/abc",
        "/api/v1/task/dag/221307064330288609",
        "/api/v1/task/node/9x",
        "/api/v1/task/sub_task/-1",
        "/api/v1/task/sub_task/2/logs",
    ] {
        call(app, Method::GET, path, None)
            .await
            .expect_error(400, "Task.GenericID.Invalid");
    }
    call(
        app,
        Method::POST,
        "/api/v1/task/dag/12x",
        Some(json!({"operator": "retry"})),
    )
    .await
    .expect_error(400, "Task.GenericID.Invalid");
    // Well-formed ids of this agent (127.0.0.1:2886) that do not exist.
    for path in [
        "/api/v1/task/dag/22130706433028869999",
        "/api/v1/task/node/22130706433028869999",
        "/api/v1/task/sub_task/22130706433028869999",
        "/api/v1/task/sub_task/22130706433028869999/logs",
    ] {
        call(app, Method::GET, path, None)
            .await
            .expect_error(404, "Task.NotFound");
    }
    call(
        app,
        Method::POST,
        "/api/v1/task/dag/22130706433028869999",
        Some(json!({"operator": "RETRY"})),
    )
    .await
    .expect_error(404, "Task.NotFound");
    call(
        app,
        Method::POST,
        "/api/v1/task/node/22130706433028869999",
        Some(json!({"operator": "pass"})),
    )
    .await
    .expect_error(404, "Task.NotFound");
    // A cluster id ("1" + id) names no DAG of this agent.
    call(app, Method::GET, "/api/v1/task/dag/19", None)
        .await
        .expect_error(404, "Task.NotFound");
    // Bad operator, bad query, bad JSON.
    call(
        app,
        Method::POST,
        "/api/v1/task/dag/22130706433028869",
        Some(json!({"operator": "jump"})),
    )
    .await
    .expect_error(400, "Task.Dag.Operator.NotSupport");
    call(
        app,
        Method::GET,
        "/api/v1/task/dag/22130706433028869?show_details=maybe",
        None,
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    let bad_json = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/task/dag/22130706433028869")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    common::send(app, bad_json)
        .await
        .expect_error(400, "Common.BindJsonFailed");
    for path in [
        "/api/v1/task/dag/unfinish",
        "/api/v1/task/dag/ob/unfinish",
        "/api/v1/task/dag/agent/unfinish",
    ] {
        let reply = call(app, Method::GET, path, None).await.expect(200);
        assert_eq!(reply.data()["contents"], json!([]), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_config_endpoints() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let created = call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4, "min_cpu": 2})),
    )
    .await
    .expect(200);
    assert_eq!(created.data()["memory_size"], 8u64 << 30);
    assert_eq!(created.data()["memory_size_display"], "8G");
    assert_eq!(created.data()["min_cpu"], 2.0);
    call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4})),
    )
    .await
    .expect_error(409, "OB.Resource.UnitConfig.Existed");
    let bad = call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u9", "memory_size": "lots", "max_cpu": 4})),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    assert!(bad.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("memory_size"));
    call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"memory_size": "8G", "max_cpu": 1})),
    )
    .await
    .expect_error(400, "OB.Resource.UnitConfig.Name.Empty");
    call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u0", "memory_size": 1024, "max_cpu": 1})),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": 5})),
    )
    .await
    .expect_error(400, "Common.BindJsonFailed");
    let one = call(app, Method::GET, "/api/v1/unit/config/u8", None)
        .await
        .expect(200);
    assert_eq!(one.data()["name"], "u8");
    call(app, Method::GET, "/api/v1/unit/config/nope", None)
        .await
        .expect_error(404, "OB.Resource.UnitConfig.NotExist");
    let list = call(app, Method::GET, "/api/v1/units/config", None)
        .await
        .expect(200);
    let names: Vec<&str> = list.data()["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|config| config["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s1", "u8"]);
    call(app, Method::DELETE, "/api/v1/unit/config/u8", None)
        .await
        .expect(200);
    let gone = call(app, Method::DELETE, "/api/v1/unit/config/u8", None)
        .await
        .expect(204);
    assert_eq!(gone.body, Value::Null, "204 has no body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_and_pool_endpoints_without_tenants() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let overview = call(app, Method::GET, "/api/v1/tenants/overview", None)
        .await
        .expect(200);
    assert_eq!(overview.data()["contents"], json!([]));
    call(app, Method::GET, "/api/v1/tenant/ghost", None)
        .await
        .expect_error(404, "OB.Tenant.NotExist");
    call(app, Method::DELETE, "/api/v1/tenant/ghost", None)
        .await
        .expect(204);
    let pools = call(app, Method::GET, "/api/v1/resource-pools", None)
        .await
        .expect(200);
    assert_eq!(pools.data()["contents"], json!([]));
    call(app, Method::GET, "/api/v1/resource-pool/ghost", None)
        .await
        .expect_error(404, "Common.NotFound");
    call(app, Method::DELETE, "/api/v1/resource-pool/ghost", None)
        .await
        .expect(204);
    call(app, Method::DELETE, "/api/v1/tenant/ghost/restore", None)
        .await
        .expect(204);
    call(
        app,
        Method::GET,
        "/api/v1/tenant/ghost/restore/overview",
        None,
    )
    .await
    .expect_error(404, "OB.Restore.Task.NotExist");
    call(
        app,
        Method::POST,
        "/api/v1/tenant/ghost/backup/config",
        Some(json!({"data_base_uri": format!("file://{}", test.dir.path().join("backup/d").display()),
                    "archive_base_uri": format!("file://{}", test.dir.path().join("backup/a").display())})),
    )
    .await
    .expect_error(404, "OB.Tenant.NotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_windows_and_offline_preview() {
    let test = agent(roots()).await;
    let app = &test.app;
    let summary = &backup().summary;
    let windows = call(
        app,
        Method::GET,
        "/api/v1/restore/windows",
        Some(json!({"data_backup_uri": summary.data_uri, "archive_log_uri": summary.archive_uri})),
    )
    .await
    .expect(200);
    let list = windows.data()["restore_windows"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list[0]["start_time"].as_str().is_some() && list[0]["end_time"].as_str().is_some());
    call(app, Method::GET, "/api/v1/restore/windows", None)
        .await
        .expect_error(400, "Common.IllegalArgument");
    let outside = call(
        app,
        Method::GET,
        "/api/v1/restore/windows",
        Some(json!({"data_backup_uri": "file:///etc"})),
    )
    .await
    .expect(400);
    assert!(!outside.body["error"]["message"]
        .as_str()
        .unwrap()
        .is_empty());
    call(
        app,
        Method::GET,
        "/api/v1/restore/windows",
        Some(json!({"data_backup_uri": "oss://bucket/x"})),
    )
    .await
    .expect(400);

    let preview = call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/1001/backup/restore/preview",
        Some(json!({
            "backupTenantStatus": "OFFLINE",
            "restoreOfflineTenantRequiredParam": {
                "backupMode": "PHYSICAL",
                "backupClusterName": "obcluster",
                "backupTenantName": "mysql_tenant",
                "restoreClusterId": 1,
                "obBackupStorageBaseInfo": {
                    "storageType": "FILE",
                    "dataBaseUri": summary.data_uri,
                    "archiveBaseUri": summary.archive_uri,
                },
                "restoreTenantInfoParam": {"name": "t1", "zones": []}
            }
        })),
    )
    .await
    .expect(200);
    let items = preview.data()["contents"].as_array().unwrap();
    assert!(items.iter().any(|item| item["backupType"] == "BACKUP_SET"));
    assert!(items
        .iter()
        .any(|item| item["backupType"] == "BACKUP_PIECE"));
    let first = &items[0];
    assert_eq!(first["backupType"], "BACKUP_SET");
    assert!(first["backupId"].is_string() && first["copyId"] == "0");
    assert!(first["backupDest"].as_str().unwrap().starts_with("file://"));

    for (body, fragment) in [
        (json!({"backupTenantStatus": "MAYBE"}), "backupTenantStatus"),
        (
            json!({"backupTenantStatus": "OFFLINE"}),
            "restoreOfflineTenantRequiredParam",
        ),
        (
            json!({"backupTenantStatus": "ONLINE"}),
            "restoreOnlineTenantRequiredParam",
        ),
        (
            json!({"backupTenantStatus": "OFFLINE", "restoreOfflineTenantRequiredParam": {
                "obBackupStorageBaseInfo": {"storageType": "OSS", "dataBaseUri": "oss://b/x"}}}),
            "storageType",
        ),
        (
            json!({"backupTenantStatus": "ONLINE", "restoreOnlineTenantRequiredParam": {}}),
            "backupTenantId",
        ),
    ] {
        let reply = call(
            app,
            Method::POST,
            "/api/v2/ob/clusters/1001/backup/restore/preview",
            Some(body),
        )
        .await
        .expect_error(400, "Common.IllegalArgument");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(fragment),
            "{:#}",
            reply.body
        );
    }
    call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/x/backup/restore/preview",
        Some(json!({"backupTenantStatus": "OFFLINE"})),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/1/backup/restore/preview",
        Some(json!({"backupTenantStatus": "ONLINE",
                    "restoreOnlineTenantRequiredParam": {"backupTenantId": 4242}})),
    )
    .await
    .expect_error(404, "OB.Tenant.NotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_through_the_api_then_tenant_pool_dag_and_online_preview_endpoints() {
    let test = agent(roots()).await;
    let app = &test.app;
    // Validation errors name the field.
    let mut bad = restore_body("rt1");
    bad["zone_list"] = json!([]);
    let reply = call(app, Method::POST, "/api/v1/tenant/restore", Some(bad))
        .await
        .expect(400);
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("zone_list"));
    call(
        app,
        Method::POST,
        "/api/v1/tenant/restore",
        Some(json!({"scn": "x"})),
    )
    .await
    .expect_error(400, "Common.BindJsonFailed");

    let started = call(
        app,
        Method::POST,
        "/api/v1/tenant/restore",
        Some(restore_body("rt1")),
    )
    .await
    .expect(200);
    let dag = started.data().clone();
    assert_eq!(dag["name"], "Restore backup_rt1");
    assert_eq!(dag["nodes"], Value::Null);
    let id = dag["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("22130706433028869") || id.starts_with("2213070643302886"));
    // A second restore of the same tenant conflicts.
    call(
        app,
        Method::POST,
        "/api/v1/tenant/restore",
        Some(restore_body("rt1")),
    )
    .await
    .expect(409);
    // The overview appears once the restore job is created (by the first node).
    let mut overview_status = 0;
    for _ in 0..400 {
        let reply = call(
            app,
            Method::GET,
            "/api/v1/tenant/rt1/restore/overview",
            None,
        )
        .await;
        overview_status = reply.status.as_u16();
        if overview_status == 200 {
            break;
        }
        assert_eq!(reply.err_code(), "OB.Restore.Task.NotExist");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(overview_status, 200);

    let done = wait_dag(app, &id).await;
    assert_eq!(done["state"], "SUCCEED", "{done:#}");
    let nodes = done["nodes"].as_array().unwrap();
    assert!(nodes
        .iter()
        .any(|node| node["name"].as_str().unwrap().starts_with("Restore data")));
    let brief = call(
        app,
        Method::GET,
        &format!("/api/v1/task/dag/{id}?show_details=false"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(brief.data()["nodes"], Value::Null);

    // Node, sub-task and logs by generic id.
    let node_id = nodes[0]["id"].as_str().unwrap();
    let node = call(
        app,
        Method::GET,
        &format!("/api/v1/task/node/{node_id}"),
        None,
    )
    .await
    .expect(200);
    let task_id = node.data()["sub_tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = call(
        app,
        Method::GET,
        &format!("/api/v1/task/sub_task/{task_id}"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(task.data()["execute_agent"]["port"], 2886);
    let logs = call(
        app,
        Method::GET,
        &format!("/api/v1/task/sub_task/{task_id}/logs"),
        None,
    )
    .await
    .expect(200);
    assert!(logs.data()["contents"].is_array());
    // Operators on a finished DAG / node are refused with 409 and obshell's codes.
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "cancel"})),
    )
    .await
    .expect_error(409, "Task.Dag.Operator.CancelFinishedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "Rollback"})),
    )
    .await
    .expect_error(409, "Task.Dag.Operator.RollbackNotFailedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "RETRY"})),
    )
    .await
    .expect_error(409, "Task.Dag.Operator.RetryNotFailedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/node/{node_id}"),
        Some(json!({"operator": "PASS"})),
    )
    .await
    .expect(409);
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/node/{node_id}"),
        Some(json!({"operator": "RETRY"})),
    )
    .await
    .expect_error(400, "Task.Node.Operator.NotSupport");

    let overview = call(
        app,
        Method::GET,
        "/api/v1/tenant/rt1/restore/overview",
        None,
    )
    .await
    .expect(200);
    assert_eq!(overview.data()["status"], "SUCCESS", "{:#}", overview.body);

    // Tenant and pools.
    let tenant = call(app, Method::GET, "/api/v1/tenant/rt1", None)
        .await
        .expect(200);
    assert_eq!(tenant.data()["status"], "NORMAL");
    assert_eq!(tenant.data()["tenant_role"], "PRIMARY");
    let tenant_id = tenant.data()["tenant_id"].as_u64().unwrap();
    let tenants = call(app, Method::GET, "/api/v1/tenants/overview", None)
        .await
        .expect(200);
    assert_eq!(tenants.data()["contents"].as_array().unwrap().len(), 1);
    let pools = call(app, Method::GET, "/api/v1/resource-pools", None)
        .await
        .expect(200);
    let pool = pools.data()["contents"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        app,
        Method::GET,
        &format!("/api/v1/resource-pool/{pool}"),
        None,
    )
    .await
    .expect(200);
    call(
        app,
        Method::DELETE,
        &format!("/api/v1/resource-pool/{pool}"),
        None,
    )
    .await
    .expect_error(409, "OB.Resource.Pool.Granted");
    call(app, Method::DELETE, "/api/v1/unit/config/s1", None)
        .await
        .expect_error(409, "OB.Resource.UnitConfig.InUse");

    // ONLINE preview of the restored tenant once its destinations are configured.
    let summary = &backup().summary;
    let online = json!({
        "backupTenantStatus": "ONLINE",
        "restoreOnlineTenantRequiredParam": {
            "backupClusterId": 1, "backupTenantId": tenant_id, "restoreClusterId": 1,
            "restoreTenantInfoParam": {"name": "rt2", "zones": []}
        }
    });
    let unconfigured = call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/1/backup/restore/preview",
        Some(online.clone()),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    assert!(unconfigured.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("backup/config"));
    call(
        app,
        Method::POST,
        "/api/v1/tenant/rt1/backup/config",
        Some(json!({"data_base_uri": "file:///etc", "archive_base_uri": summary.archive_uri})),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    call(
        app,
        Method::POST,
        "/api/v1/tenant/rt1/backup/config",
        Some(json!({"data_base_uri": summary.data_uri, "archive_base_uri": summary.archive_uri})),
    )
    .await
    .expect(200);
    let preview = call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/1/backup/restore/preview",
        Some(online),
    )
    .await
    .expect(200);
    assert!(!preview.data()["contents"].as_array().unwrap().is_empty());

    // Dropping the tenant drops its pools; a second drop has nothing to do.
    call(app, Method::DELETE, "/api/v1/tenant/rt1", None)
        .await
        .expect(200);
    call(app, Method::DELETE, "/api/v1/tenant/rt1", None)
        .await
        .expect(204);
    let pools = call(app, Method::GET, "/api/v1/resource-pools", None)
        .await
        .expect(200);
    assert_eq!(pools.data()["contents"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_restore_rolls_back_and_a_restoring_tenant_cannot_be_dropped() {
    let test = agent(roots()).await;
    let app = &test.app;
    let started = call(
        app,
        Method::POST,
        "/api/v1/tenant/restore",
        Some(restore_body("rt3")),
    )
    .await
    .expect(200);
    let id = started.data()["id"].as_str().unwrap().to_string();
    // While the restore job runs, the tenant cannot be dropped.
    for _ in 0..200 {
        let tenant = call(app, Method::GET, "/api/v1/tenant/rt3", None).await;
        if tenant.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let drop = call(app, Method::DELETE, "/api/v1/tenant/rt3", None).await;
    // Never dropped under a running restore: 409 once the job exists.
    assert_ne!(drop.status.as_u16(), 200, "{:#}", drop.body);
    if drop.status == 409 {
        assert_eq!(drop.err_code(), "OB.Tenant.UnderMaintenance");
    }
    let unfinished = call(app, Method::GET, "/api/v1/task/dag/unfinish", None)
        .await
        .expect(200);
    let listed = unfinished.data()["contents"].as_array().unwrap().len();
    let cancelled = call(app, Method::DELETE, "/api/v1/tenant/rt3/restore", None).await;
    match cancelled.status.as_u16() {
        200 => assert_eq!(cancelled.data()["id"], id.as_str()),
        // The restore may already have finished on a fast machine.
        204 => {}
        other => panic!("cancel answered {other}: {:#}", cancelled.body),
    }
    let settled = wait_dag(app, &id).await;
    if cancelled.status == 200 {
        assert!(listed <= 1);
        assert_eq!(settled["state"], "SUCCEED", "{settled:#}");
        assert_eq!(settled["operator"], "ROLLBACK", "{settled:#}");
        call(app, Method::GET, "/api/v1/tenant/rt3", None)
            .await
            .expect_error(404, "OB.Tenant.NotExist");
        call(app, Method::DELETE, "/api/v1/tenant/rt3/restore", None)
            .await
            .expect(204);
    }
}
