//! The restore endpoints through the router (`oneshot`, no socket), with their error
//! paths: windows and OCP's preview, a restore followed through the task, tenant and
//! pool endpoints, a cancelled restore, and every validation rule. The other endpoints
//! are in `tests/api_admin.rs`; the agent here has no password (auth: `tests/auth.rs`).

mod common;

use axum::http::Method;
use axum::Router;
use common::{agent, backup, call, restore_body, wait_dag, zone, Options};
use obrestore_restore::TenantService;
use serde_json::{json, Value};

const OFFLINE_PREVIEW: &str = "/api/v2/ob/clusters/1001/backup/restore/preview";
const ONLINE_PREVIEW: &str = "/api/v2/ob/clusters/1/backup/restore/preview";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_windows_name_the_uri_and_refuse_foreign_destinations() {
    let test = agent(Options::with_backup_root()).await;
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
    assert!(!outside.message().is_empty());
    call(
        app,
        Method::GET,
        "/api/v1/restore/windows",
        Some(json!({"data_backup_uri": "oss://bucket/x"})),
    )
    .await
    .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_preview_lists_sets_then_pieces() {
    let test = agent(Options::with_backup_root()).await;
    let app = &test.app;
    let summary = &backup().summary;
    let preview = call(
        app,
        Method::POST,
        OFFLINE_PREVIEW,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_refusals_name_the_parameter() {
    let test = agent(Options::with_backup_root()).await;
    let app = &test.app;
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
        let reply = call(app, Method::POST, OFFLINE_PREVIEW, Some(body))
            .await
            .expect_error(400, "Common.IllegalArgument");
        assert!(reply.message().contains(fragment), "{:#}", reply.body);
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
        ONLINE_PREVIEW,
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

/// One restore, followed through every endpoint that shows it, then dropped. The steps
/// run in order on the same tenant `rt1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_through_the_api_then_tenant_pool_dag_and_online_preview_endpoints() {
    let test = agent(Options::with_backup_root()).await;
    let app = &test.app;
    refused_restores_name_the_field(app).await;
    let id = start_restore_rt1(app).await;
    let done = wait_dag(app, &id).await;
    assert_eq!(done["state"], "SUCCEED", "{done:#}");
    let node_id = task_endpoints_show_the_restore(app, &id, &done).await;
    operators_on_a_finished_restore_are_refused(app, &id, &node_id).await;
    let overview = call(
        app,
        Method::GET,
        "/api/v1/tenant/rt1/restore/overview",
        None,
    )
    .await
    .expect(200);
    assert_eq!(overview.data()["status"], "SUCCESS", "{:#}", overview.body);
    let tenant_id = restored_tenant_and_its_pools(app).await;
    online_preview_of_the_restored_tenant(app, tenant_id).await;
    dropping_the_tenant_drops_its_pools(app).await;
}

/// Validation errors name the field.
async fn refused_restores_name_the_field(app: &Router) {
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
    // A password of the wrong JSON type is named by its field, never echoed.
    let mut secret = restore_body("rt1");
    secret["decryption"] = json!("S3cret-Pa55word");
    let reply = call(app, Method::POST, "/api/v1/tenant/restore", Some(secret))
        .await
        .expect_error(400, "Common.BindJsonFailed");
    let text = reply.body.to_string();
    assert!(text.contains("decryption"), "{text}");
    assert!(!text.contains("S3cret"), "the password is echoed: {text}");
}

/// Starts the restore of `rt1`, checks a second one conflicts and the overview appears;
/// returns the DAG's generic id.
async fn start_restore_rt1(app: &Router) -> String {
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
    id
}

/// The DAG brief, a node, its sub-task and logs by generic id; returns the first
/// node's id.
async fn task_endpoints_show_the_restore(app: &Router, id: &str, done: &Value) -> String {
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
    node_id.to_string()
}

/// Operators on a finished DAG / node are refused with obshell's codes, which are
/// illegal arguments (400) there.
async fn operators_on_a_finished_restore_are_refused(app: &Router, id: &str, node_id: &str) {
    let cases = [
        ("dag", id, "cancel", "Task.Dag.Operator.CancelFinishedDag"),
        (
            "dag",
            id,
            "Rollback",
            "Task.Dag.Operator.RollbackNotFailedDag",
        ),
        ("dag", id, "RETRY", "Task.Dag.Operator.RetryNotFailedDag"),
        (
            "node",
            node_id,
            "PASS",
            "Task.Node.Operator.PassNotFailedDag",
        ),
        ("dag", id, "jump", "Task.Dag.Operator.NotSupport"),
        ("node", node_id, "RETRY", "Task.Node.Operator.NotSupport"),
    ];
    for (kind, target, operator, err_code) in cases {
        call(
            app,
            Method::POST,
            &format!("/api/v1/task/{kind}/{target}"),
            Some(json!({ "operator": operator })),
        )
        .await
        .expect_error(400, err_code);
    }
}

/// The tenant and its pools, which cannot be dropped while granted; returns the
/// tenant id.
async fn restored_tenant_and_its_pools(app: &Router) -> u64 {
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
    assert!(in_use.message().contains("is used by resource pool"));
    tenant_id
}

/// ONLINE preview of the restored tenant once its destinations are configured.
async fn online_preview_of_the_restored_tenant(app: &Router, tenant_id: u64) {
    let summary = &backup().summary;
    let online = json!({
        "backupTenantStatus": "ONLINE",
        "restoreOnlineTenantRequiredParam": {
            "backupClusterId": 1, "backupTenantId": tenant_id, "restoreClusterId": 1,
            "restoreTenantInfoParam": {"name": "rt2", "zones": []}
        }
    });
    let unconfigured = call(app, Method::POST, ONLINE_PREVIEW, Some(online.clone()))
        .await
        .expect_error(400, "Common.IllegalArgument");
    assert!(unconfigured.message().contains("backup/config"));
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
    let preview = call(app, Method::POST, ONLINE_PREVIEW, Some(online))
        .await
        .expect(200);
    assert!(!preview.data()["contents"].as_array().unwrap().is_empty());
}

/// Dropping is a cluster DAG ("Drop tenant") that drops the tenant's pools; once it
/// has run, a second drop has nothing to do (obshell: 204 No Content).
async fn dropping_the_tenant_drops_its_pools(app: &Router) {
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
    let test = agent(Options::with_backup_root()).await;
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
    let listed = unfinished.listed("id");
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

/// A refused restore: how the body is spoiled, obshell's errCode, the named field.
type ValidationCase = (BodyMutation, &'static str, &'static str);

/// Each validation rule through HTTP: obshell's errCode, 400, and the field in
/// `subErrors` (the messages themselves are checked in the restore crate's
/// `tests/validation.rs`). Nothing is created by a refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_restore_validation_rule_has_obshells_err_code_and_names_the_field() {
    let test = agent(Options::with_backup_root()).await;
    let app = &test.app;
    let base = {
        let mut body = restore_body("v1");
        body["zone_list"] = json!([zone("z1"), zone("z2"), zone("z3")]);
        body
    };
    for (mutate, err_code, field) in top_level_rules().into_iter().chain(zone_list_rules()) {
        let mut body = base.clone();
        mutate(&mut body);
        let reply = call(app, Method::POST, "/api/v1/tenant/restore", Some(body))
            .await
            .expect_error(400, err_code);
        assert_eq!(
            reply.body["error"]["subErrors"][0]["field"], field,
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

/// The rules about the body's top-level fields.
fn top_level_rules() -> Vec<ValidationCase> {
    vec![
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
    ]
}

/// The rules about the zones of `zone_list`.
fn zone_list_rules() -> Vec<ValidationCase> {
    vec![
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
    ]
}
