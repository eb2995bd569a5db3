//! Every endpoint through the router (`oneshot`, no socket), with its error paths.
//! The agent here has no password; auth is covered by `tests/auth.rs`.

mod common;

use axum::http::Method;
use common::{agent, backup, call, wait_dag, Options};
use obrestore_restore::TenantService;
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
    // Bad operator, bad query, bad JSON. As in obshell, the DAG is looked up before
    // the operator is read, so an unknown operator on an unknown DAG is a 404; the
    // operator refusal on a real DAG is in the restore test below.
    call(
        app,
        Method::POST,
        "/api/v1/task/dag/22130706433028869",
        Some(json!({"operator": "jump"})),
    )
    .await
    .expect_error(404, "Task.NotFound");
    // obshell ignores a query it cannot bind; we refuse it, naming the field
    // (docs/api.md), after the id lookup as obshell orders its checks.
    call(
        app,
        Method::GET,
        "/api/v1/task/dag/22130706433028869?show_details=maybe",
        None,
    )
    .await
    .expect_error(404, "Task.NotFound");
    let bad_query = call(
        app,
        Method::GET,
        "/api/v1/task/dag/unfinish?show_details=maybe",
        None,
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    assert!(bad_query.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("show_details"));
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
    assert!(created.data()["unit_config_id"].as_u64().unwrap() >= 1001);
    assert!(created.data()["create_time"].as_str().is_some());
    assert_eq!(created.data()["min_cpu"], 2.0);
    call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4})),
    )
    .await
    .expect_error(400, "OB.Resource.UnitConfig.Existed");
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
    let missing = call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"memory_size": "8G", "max_cpu": 1})),
    )
    .await
    .expect_error(400, "Common.BindJsonFailed");
    assert_eq!(missing.body["error"]["subErrors"][0]["field"], "name");
    // Present but empty: obshell's own check after binding.
    let empty = call(
        app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "", "memory_size": "8G", "max_cpu": 1})),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    assert!(empty.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Resource unit name is empty"));
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
        .expect_error(400, "OB.Resource.UnitConfig.NotExist");
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
    // Dropping a missing unit config is a success with no data, as in obshell
    // (`unit.DropUnitConfig` returns nil when it does not exist).
    let gone = call(app, Method::DELETE, "/api/v1/unit/config/u8", None)
        .await
        .expect(200);
    assert!(gone.body.get("data").is_none(), "{}", gone.body);
    call(app, Method::GET, "/api/v1/unit/config/u8", None)
        .await
        .expect_error(400, "OB.Resource.UnitConfig.NotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_and_pool_endpoints_without_tenants() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let overview = call(app, Method::GET, "/api/v1/tenants/overview", None)
        .await
        .expect(200);
    assert_eq!(overview.data()["contents"], json!([]));
    // obshell's OB.Tenant.NotExist is a bad request (400), not a 404.
    call(app, Method::GET, "/api/v1/tenant/ghost", None)
        .await
        .expect_error(400, "OB.Tenant.NotExist");
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
    // obshell's pool.DropResourcePool returns nil for a missing pool: 200, no data.
    let dropped = call(app, Method::DELETE, "/api/v1/resource-pool/ghost", None)
        .await
        .expect(200);
    assert!(dropped.body.get("data").is_none(), "{}", dropped.body);
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
    // obshell's checkTenantAndGetName runs before the restore lookup.
    .expect_error(400, "OB.Tenant.NotExist");
    call(
        app,
        Method::POST,
        "/api/v1/tenant/ghost/backup/config",
        Some(json!({"data_base_uri": format!("file://{}", test.dir.path().join("backup/d").display()),
                    "archive_base_uri": format!("file://{}", test.dir.path().join("backup/a").display())})),
    )
    .await
    .expect_error(400, "OB.Tenant.NotExist");
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
    // No body: the required URI is named, as gin's binding does.
    let unbound = call(app, Method::GET, "/api/v1/restore/windows", None)
        .await
        .expect_error(400, "Common.BindJsonFailed");
    assert_eq!(
        unbound.body["error"]["subErrors"][0]["field"],
        "data_backup_uri"
    );
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
    let unknown = call(
        app,
        Method::POST,
        "/api/v2/ob/clusters/1/backup/restore/preview",
        Some(json!({"backupTenantStatus": "ONLINE",
                    "restoreOnlineTenantRequiredParam": {"backupTenantId": 4242}})),
    )
    .await
    .expect_error(404, "Common.NotFound");
    assert_eq!(
        unknown.body["error"]["subErrors"][0]["field"],
        "restoreOnlineTenantRequiredParam.backupTenantId"
    );
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
        .expect_error(400, "OB.Tenant.ZoneList.Empty");
    assert_eq!(reply.body["error"]["message"], "Zone list is empty.");
    assert_eq!(reply.body["error"]["subErrors"][0]["field"], "zone_list");
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
    // A restore is a cluster DAG: obshell's generic id is "1" followed by the DAG id.
    assert!(
        id.starts_with('1') && id.len() > 1 && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
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
        // Before the first node creates the tenant, then before it records the job.
        assert!(
            ["OB.Tenant.NotExist", "Common.NotFound"].contains(&reply.err_code()),
            "{:#}",
            reply.body
        );
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
    // Operators on a finished DAG / node are refused with obshell's codes, which are
    // illegal arguments (400) there.
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "cancel"})),
    )
    .await
    .expect_error(400, "Task.Dag.Operator.CancelFinishedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "Rollback"})),
    )
    .await
    .expect_error(400, "Task.Dag.Operator.RollbackNotFailedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "RETRY"})),
    )
    .await
    .expect_error(400, "Task.Dag.Operator.RetryNotFailedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/node/{node_id}"),
        Some(json!({"operator": "PASS"})),
    )
    .await
    .expect_error(400, "Task.Node.Operator.PassNotFailedDag");
    call(
        app,
        Method::POST,
        &format!("/api/v1/task/dag/{id}"),
        Some(json!({"operator": "jump"})),
    )
    .await
    .expect_error(400, "Task.Dag.Operator.NotSupport");
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
    .expect_error(400, "OB.Resource.Pool.Granted");
    // obshell passes OceanBase's own refusal through as a MySQL error.
    let in_use = call(app, Method::DELETE, "/api/v1/unit/config/s1", None)
        .await
        .expect_error(400, "MySQL.Error");
    assert!(in_use.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is used by resource pool"));

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
    // Dropping is a cluster DAG ("Drop tenant"); once it has run, a second drop has
    // nothing to do (obshell: 204 No Content).
    let dropping = call(app, Method::DELETE, "/api/v1/tenant/rt1", None)
        .await
        .expect(200);
    assert_eq!(dropping.data()["name"], "Drop tenant");
    let drop_id = dropping.data()["id"].as_str().unwrap().to_string();
    let dropped = wait_dag(app, &drop_id).await;
    assert_eq!(dropped["state"], "SUCCEED", "{dropped:#}");
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
    // 2 ms per data block keeps `Restore data` running until it is cancelled; the
    // failpoint is process-wide, so the other tests of this binary only run slower.
    obrestore_restore::executors::set_block_delay_failpoint(2);
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
    // Wait until `Restore data` runs (slowed by the failpoint, so it is seen however
    // fast the machine is).
    let mut running = false;
    for _ in 0..4000 {
        let detail = call(app, Method::GET, &format!("/api/v1/task/dag/{id}"), None)
            .await
            .expect(200);
        if detail.data()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|node| {
                node["name"].as_str().unwrap().starts_with("Restore data")
                    && node["state"] == "RUNNING"
            })
        {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(running, "Restore data never ran");
    // While the restore holds the tenant, it cannot be dropped: 409 naming the lock.
    call(app, Method::DELETE, "/api/v1/tenant/rt3", None)
        .await
        .expect_error(409, "OB.Tenant.UnderMaintenance");
    // The running restore is the one unfinished cluster DAG.
    let unfinished = call(app, Method::GET, "/api/v1/task/dag/ob/unfinish", None)
        .await
        .expect(200);
    let listed: Vec<&str> = unfinished.data()["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dag| dag["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id.as_str()]);
    // Cancel answers the restore DAG, now rolling back.
    let cancelled = call(app, Method::DELETE, "/api/v1/tenant/rt3/restore", None)
        .await
        .expect(200);
    obrestore_restore::executors::set_block_delay_failpoint(0);
    assert_eq!(cancelled.data()["id"], id.as_str());
    assert_eq!(cancelled.data()["operator"], "ROLLBACK");
    let settled = wait_dag(app, &id).await;
    assert_eq!(settled["state"], "SUCCEED", "{settled:#}");
    assert_eq!(settled["operator"], "ROLLBACK", "{settled:#}");
    call(app, Method::GET, "/api/v1/tenant/rt3", None)
        .await
        .expect_error(400, "OB.Tenant.NotExist");
    // Nothing is left to cancel: 204, no body.
    let again = call(app, Method::DELETE, "/api/v1/tenant/rt3/restore", None)
        .await
        .expect(204);
    assert_eq!(again.body, Value::Null);
}

type BodyMutation = fn(&mut Value);

/// Each validation rule through HTTP: obshell's errCode, 400, and the field in
/// `subErrors` (the messages themselves are checked in the restore crate's
/// `tests/validation.rs`). Nothing is created by a refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_restore_validation_rule_has_obshells_err_code_and_names_the_field() {
    let test = agent(roots()).await;
    let app = &test.app;
    let zone = |name: &str| json!({"name": name, "unit_config_name": "s1", "unit_num": 1});
    let base = {
        let mut body = restore_body("v1");
        body["zone_list"] = json!([zone("z1"), zone("z2"), zone("z3")]);
        body
    };
    let cases: &[(BodyMutation, &str, &str)] = &[
        (
            |b| {
                b.as_object_mut().unwrap().remove("data_backup_uri");
            },
            "Common.BindJsonFailed",
            "data_backup_uri",
        ),
        (
            |b| b["restore_tenant_name"] = json!(""),
            "Common.BindJsonFailed",
            "restore_tenant_name",
        ),
        (
            |b| {
                b.as_object_mut().unwrap().remove("zone_list");
            },
            "Common.BindJsonFailed",
            "zone_list",
        ),
        (
            |b| b["restore_tenant_name"] = json!("sys"),
            "OB.Tenant.SysOperationNotAllowed",
            "restore_tenant_name",
        ),
        (
            |b| b["zone_list"] = json!([]),
            "OB.Tenant.ZoneList.Empty",
            "zone_list",
        ),
        (
            |b| {
                b["scn"] = json!(1_728_727_696_264_250_400u64);
                b["timestamp"] = json!("2024-10-12T18:08:16.264+08:00");
            },
            "Common.IllegalArgument",
            "timestamp",
        ),
        (
            |b| b["ha_high_thread_score"] = json!(101),
            "Common.IllegalArgument",
            "ha_high_thread_score",
        ),
        (
            |b| b["zone_list"][0]["unit_num"] = json!(0),
            "OB.Tenant.UnitNum.Invalid",
            "zone_list[0].unit_num",
        ),
        (
            |b| b["zone_list"][1]["name"] = json!("z1"),
            "OB.Tenant.Zone.Repeated",
            "zone_list[1].name",
        ),
        (
            |b| b["zone_list"][1]["replica_type"] = json!("learner"),
            "OB.Tenant.Replica.InvalidType",
            "zone_list[1].replica_type",
        ),
        (
            |b| b["zone_list"][1]["unit_num"] = json!(2),
            "OB.Tenant.UnitNum.Inconsistent",
            "zone_list[1].unit_num",
        ),
        (
            |b| b["zone_list"][2]["unit_config_name"] = json!(""),
            "OB.Resource.UnitConfig.Name.Empty",
            "zone_list[2].unit_config_name",
        ),
        (
            |b| {
                for z in b["zone_list"].as_array_mut().unwrap() {
                    z["unit_num"] = json!(2);
                }
            },
            "OB.Tenant.UnitNum.ExceedsLimit",
            "zone_list[0].unit_num",
        ),
        (
            |b| b["zone_list"][1]["unit_config_name"] = json!("nope"),
            "OB.Resource.UnitConfig.NotExist",
            "zone_list[1].unit_config_name",
        ),
        (
            |b| b["zone_list"][2]["name"] = json!("z9"),
            "OB.Zone.NotExist",
            "zone_list[2].name",
        ),
        (
            |b| {
                for z in b["zone_list"].as_array_mut().unwrap() {
                    z["replica_type"] = json!("READONLY");
                }
            },
            "OB.Tenant.NoPaxosReplica",
            "zone_list",
        ),
        (
            |b| b["primary_zone"] = json!("z1;z9"),
            "OB.Tenant.PrimaryZone.Invalid",
            "primary_zone",
        ),
        (
            |b| b["restore_tenant_name"] = json!("bad name"),
            "OB.Tenant.Name.Invalid",
            "restore_tenant_name",
        ),
        (
            |b| b["data_backup_uri"] = json!("s3://bucket/data"),
            "OB.Storage.URI.Invalid",
            "data_backup_uri",
        ),
        (
            |b| b["concurrency"] = json!(101),
            "Common.IllegalArgument",
            "concurrency",
        ),
    ];
    for (mutate, err_code, field) in cases {
        let mut body = base.clone();
        mutate(&mut body);
        let reply = call(app, Method::POST, "/api/v1/tenant/restore", Some(body))
            .await
            .expect_error(400, err_code);
        assert_eq!(
            reply.body["error"]["subErrors"][0]["field"], *field,
            "{err_code}: {:#}",
            reply.body
        );
    }
    // A tenant that exists (made through `POST /api/v1/tenant`): OB.Tenant.Existed.
    let created = call(
        app,
        Method::POST,
        "/api/v1/tenant",
        Some(json!({"name": "existing", "zone_list": [zone("z1")]})),
    )
    .await
    .expect(200);
    let made = wait_dag(app, created.data()["id"].as_str().unwrap()).await;
    assert_eq!(made["state"], "SUCCEED", "{made:#}");
    let mut body = base.clone();
    body["restore_tenant_name"] = json!("existing");
    let reply = call(app, Method::POST, "/api/v1/tenant/restore", Some(body))
        .await
        .expect_error(400, "OB.Tenant.Existed");
    assert_eq!(
        reply.body["error"]["message"],
        "Tenant existing already exists"
    );
    let unfinished = call(app, Method::GET, "/api/v1/task/dag/ob/unfinish", None)
        .await
        .expect(200);
    assert_eq!(
        unfinished.data()["contents"],
        json!([]),
        "nothing was submitted"
    );
    assert!(test.agent.cluster().tenant("v1").unwrap().is_none());
}

/// Tenant administration through the router: a create DAG, then the one-write routes,
/// with obshell's check order (the tenant before the body) and codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_administration_routes() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let zone = |name: &str| json!({"name": name, "unit_config_name": "s1", "unit_num": 1});
    let created = call(
        app,
        Method::POST,
        "/api/v1/tenant",
        Some(
            json!({"name": "ta", "zone_list": [zone("z1"), zone("z2"), zone("z3")],
                    "root_password": "Pw-1", "variables": {"ob_query_timeout": 5000000}}),
        ),
    )
    .await
    .expect(200);
    assert_eq!(created.data()["name"], "Create tenant ta");
    let id = created.data()["id"].as_str().unwrap().to_string();
    let done = wait_dag(app, &id).await;
    assert_eq!(done["state"], "SUCCEED", "{done:#}");
    // The root password is never echoed, in the DAG or anywhere else.
    assert!(!done.to_string().contains("Pw-1"), "{done}");
    call(
        app,
        Method::POST,
        "/api/v1/tenant",
        Some(json!({"name": "ta", "zone_list": [zone("z1")]})),
    )
    .await
    .expect_error(400, "OB.Tenant.Existed");
    let missing = call(
        app,
        Method::POST,
        "/api/v1/tenant",
        Some(json!({"name": "tb"})),
    )
    .await
    .expect_error(400, "Common.BindJsonFailed");
    assert_eq!(missing.body["error"]["subErrors"][0]["field"], "zone_list");

    // The tenant is checked before the body is bound, as obshell's wrappers do.
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ghost/whitelist",
        Some(json!({"whitelist": 5})),
    )
    .await
    .expect_error(400, "OB.Tenant.NotExist");
    let bad = call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/whitelist",
        Some(json!({"whitelist": 5})),
    )
    .await
    .expect_error(400, "Common.BindJsonFailed");
    assert_eq!(bad.body["error"]["subErrors"][0]["field"], "whitelist");
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/whitelist",
        Some(json!({"whitelist": "10.%"})),
    )
    .await
    .expect(200);
    let info = call(app, Method::GET, "/api/v1/tenant/ta", None)
        .await
        .expect(200);
    assert_eq!(info.data()["whitelist"], "10.%,127.0.0.1");

    // Variables: listed with a LIKE filter, one by name, unknown ones 404.
    let listed = call(
        app,
        Method::GET,
        "/api/v1/tenant/ta/variables?filter=ob_query%25",
        None,
    )
    .await
    .expect(200);
    let names: Vec<&str> = listed.data()["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ob_query_timeout") && names.iter().all(|n| n.starts_with("ob_query")),
        "{names:?}"
    );
    let one = call(
        app,
        Method::GET,
        "/api/v1/tenant/ta/variable/ob_query_timeout",
        None,
    )
    .await
    .expect(200);
    assert_eq!(one.data()["value"], "5000000");
    call(
        app,
        Method::GET,
        "/api/v1/tenant/ta/variable/no_such_variable",
        None,
    )
    .await
    .expect_error(404, "OB.Tenant.Variable.NotExist");
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/variables",
        Some(json!({"variables": {"ob_query_timeout": -1}})),
    )
    .await
    .expect_error(400, "OB.Tenant.Variable.Invalid");
    // A pathological filter is answered, not spun on.
    let filter = format!("{}b", "%25a".repeat(30));
    call(
        app,
        Method::GET,
        &format!("/api/v1/tenant/ta/parameters?filter={filter}"),
        None,
    )
    .await
    .expect(200);

    // Parameters.
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/parameters",
        Some(json!({"parameters": {"writing_throttling_trigger_percentage": 55}})),
    )
    .await
    .expect(200);
    let param = call(
        app,
        Method::GET,
        "/api/v1/tenant/ta/parameter/writing_throttling_trigger_percentage",
        None,
    )
    .await
    .expect(200);
    assert_eq!(param.data()["value"], "55");

    // Root password: the old one must be right; persist checks it too.
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/password",
        Some(json!({"old_password": "nope", "new_password": "Pw-2"})),
    )
    .await
    .expect_error(400, "OB.Tenant.RootPasswordIncorrect");
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/password",
        Some(json!({"old_password": "Pw-1", "new_password": "Pw-2"})),
    )
    .await
    .expect(200);
    call(
        app,
        Method::POST,
        "/api/v1/tenant/ta/password/persist",
        Some(json!({"password": "Pw-1"})),
    )
    .await
    .expect_error(400, "OB.Tenant.RootPasswordIncorrect");
    call(
        app,
        Method::POST,
        "/api/v1/tenant/ta/password/persist",
        Some(json!({"password": "Pw-2"})),
    )
    .await
    .expect(200);
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/sys/password",
        Some(json!({"new_password": "x"})),
    )
    .await
    .expect_error(400, "OB.Tenant.SysOperationNotAllowed");

    // Replicas: nothing to remove is 204; a real scale-in is a DAG.
    call(
        app,
        Method::DELETE,
        "/api/v1/tenant/ta/replicas",
        Some(json!({"zones": ["z9"]})),
    )
    .await
    .expect(204);
    let scale_in = call(
        app,
        Method::DELETE,
        "/api/v1/tenant/ta/replicas",
        Some(json!({"zones": ["z3"]})),
    )
    .await
    .expect(200);
    assert_eq!(scale_in.data()["name"], "Scale in tenant replicas");
    let scaled = wait_dag(app, scale_in.data()["id"].as_str().unwrap()).await;
    assert_eq!(scaled["state"], "SUCCEED", "{scaled:#}");
    call(
        app,
        Method::PATCH,
        "/api/v1/tenant/ta/replicas",
        Some(json!({"zone_list": [{"zone_name": "z1", "replica_type": "LEARNER"}]})),
    )
    .await
    .expect_error(400, "OB.Tenant.Replica.InvalidType");
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/primary-zone",
        Some(json!({"primary_zone": "z9"})),
    )
    .await
    .expect_error(400, "OB.Tenant.PrimaryZone.Invalid");

    // Rename last: a plain 200.
    call(
        app,
        Method::PUT,
        "/api/v1/tenant/ta/name",
        Some(json!({"new_name": "tc"})),
    )
    .await
    .expect(200);
    call(app, Method::GET, "/api/v1/tenant/tc", None)
        .await
        .expect(200);
    call(app, Method::PUT, "/api/v1/tenant/tc/name", Some(json!({})))
        .await
        .expect_error(400, "Common.BindJsonFailed");
}
