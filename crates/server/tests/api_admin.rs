//! The task, unit-config, pool and tenant-administration endpoints through the router
//! (`oneshot`, no socket), with their error paths. The restore endpoints are in
//! `tests/api.rs`; the agent here has no password (auth: `tests/auth.rs`).

mod common;

use axum::http::Method;
use axum::Router;
use common::{agent, call, wait_dag, zone, Options};
use serde_json::json;

/// Well-formed ids of this agent (127.0.0.1:2886) that name nothing.
const UNKNOWN_ID: &str = "22130706433028869999";

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
    for path in [
        format!("/api/v1/task/dag/{UNKNOWN_ID}"),
        format!("/api/v1/task/node/{UNKNOWN_ID}"),
        format!("/api/v1/task/sub_task/{UNKNOWN_ID}"),
        format!("/api/v1/task/sub_task/{UNKNOWN_ID}/logs"),
    ] {
        call(app, Method::GET, &path, None)
            .await
            .expect_error(404, "Task.NotFound");
    }
    for (kind, operator) in [("dag", "RETRY"), ("node", "pass")] {
        call(
            app,
            Method::POST,
            &format!("/api/v1/task/{kind}/{UNKNOWN_ID}"),
            Some(json!({ "operator": operator })),
        )
        .await
        .expect_error(404, "Task.NotFound");
    }
    // A cluster id ("1" + id) names no DAG of this agent.
    call(app, Method::GET, "/api/v1/task/dag/19", None)
        .await
        .expect_error(404, "Task.NotFound");
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
async fn task_endpoints_check_the_id_before_the_operator_query_and_json() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    // Bad operator, bad query, bad JSON. As in obshell, the DAG is looked up before
    // the operator is read, so an unknown operator on an unknown DAG is a 404; the
    // operator refusal on a real DAG is in the restore test (tests/api.rs).
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
    assert!(bad_query.message().contains("show_details"));
    let bad_json = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/task/dag/22130706433028869")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    common::send(app, bad_json)
        .await
        .expect_error(400, "Common.BindJsonFailed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_config_create_refuses_what_obshell_refuses() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    let created = create_unit_config(
        app,
        json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4, "min_cpu": 2}),
    )
    .await
    .expect(200);
    assert_eq!(created.data()["memory_size"], 8u64 << 30);
    assert!(created.data()["unit_config_id"].as_u64().unwrap() >= 1001);
    assert!(created.data()["create_time"].as_str().is_some());
    assert_eq!(created.data()["min_cpu"], 2.0);
    create_unit_config(
        app,
        json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4}),
    )
    .await
    .expect_error(400, "OB.Resource.UnitConfig.Existed");
    let bad = create_unit_config(
        app,
        json!({"name": "u9", "memory_size": "lots", "max_cpu": 4}),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    assert!(bad.message().contains("memory_size"));
    let missing = create_unit_config(app, json!({"memory_size": "8G", "max_cpu": 1}))
        .await
        .expect_error(400, "Common.BindJsonFailed");
    assert_eq!(missing.body["error"]["subErrors"][0]["field"], "name");
    // Present but empty: obshell's own check after binding.
    let empty = create_unit_config(app, json!({"name": "", "memory_size": "8G", "max_cpu": 1}))
        .await
        .expect_error(400, "Common.IllegalArgument");
    assert!(empty.message().contains("Resource unit name is empty"));
    create_unit_config(
        app,
        json!({"name": "u0", "memory_size": 1024, "max_cpu": 1}),
    )
    .await
    .expect_error(400, "Common.IllegalArgument");
    create_unit_config(app, json!({"name": 5}))
        .await
        .expect_error(400, "Common.BindJsonFailed");
    unit_config_numbers_out_of_range_are_refused(app).await;
}

/// Numbers the store cannot hold are refused naming the field, and the unit configs
/// still read afterwards (a huge max_cpu was once stored as null, and every read then
/// answered 500).
async fn unit_config_numbers_out_of_range_are_refused(app: &Router) {
    for (body, field) in [
        (
            json!({"name": "big", "memory_size": "8G", "max_cpu": 1e308}),
            "max_cpu",
        ),
        (
            json!({"name": "big", "memory_size": "8G", "max_cpu": 4, "min_cpu": 1e308}),
            "min_cpu",
        ),
        (
            json!({"name": "big", "memory_size": 18446744073709551615u64, "max_cpu": 4}),
            "memory_size",
        ),
    ] {
        let refused = create_unit_config(app, body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {:?}", refused.body);
        assert!(
            refused.message().contains(field),
            "{body}: {}",
            refused.message()
        );
    }
    call(app, Method::GET, "/api/v1/units/config", None)
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_config_get_list_and_drop() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    create_unit_config(
        app,
        json!({"name": "u8", "memory_size": "8GB", "max_cpu": 4, "min_cpu": 2}),
    )
    .await
    .expect(200);
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
    let names = list.listed("name");
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

async fn create_unit_config(app: &Router, body: serde_json::Value) -> common::Reply {
    call(app, Method::POST, "/api/v1/unit/config", Some(body)).await
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

/// Tenant administration through the router: a create DAG, then the one-write routes,
/// with obshell's check order (the tenant before the body) and codes. One tenant walks
/// every step in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_administration_routes() {
    let test = agent(Options::default()).await;
    let app = &test.app;
    create_tenant_ta(app).await;
    whitelist_checks_the_tenant_before_the_body(app).await;
    variables_and_parameters(app).await;
    root_password(app).await;
    replicas_and_primary_zone(app).await;
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

/// Creates tenant `ta` on z1..z3 (root password `Pw-1`), and the create refusals.
async fn create_tenant_ta(app: &Router) {
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
}

async fn whitelist_checks_the_tenant_before_the_body(app: &Router) {
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
}

async fn variables_and_parameters(app: &Router) {
    // Variables: listed with a LIKE filter, one by name, unknown ones 404.
    let listed = call(
        app,
        Method::GET,
        "/api/v1/tenant/ta/variables?filter=ob_query%25",
        None,
    )
    .await
    .expect(200);
    let names = listed.listed("name");
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
}

/// Root password: the old one must be right; persist checks it too.
async fn root_password(app: &Router) {
    let cases = [
        (
            Method::PUT,
            "/api/v1/tenant/ta/password",
            json!({"old_password": "nope", "new_password": "Pw-2"}),
            Some("OB.Tenant.RootPasswordIncorrect"),
        ),
        (
            Method::PUT,
            "/api/v1/tenant/ta/password",
            json!({"old_password": "Pw-1", "new_password": "Pw-2"}),
            None,
        ),
        (
            Method::POST,
            "/api/v1/tenant/ta/password/persist",
            json!({"password": "Pw-1"}),
            Some("OB.Tenant.RootPasswordIncorrect"),
        ),
        (
            Method::POST,
            "/api/v1/tenant/ta/password/persist",
            json!({"password": "Pw-2"}),
            None,
        ),
        (
            Method::PUT,
            "/api/v1/tenant/sys/password",
            json!({"new_password": "x"}),
            Some("OB.Tenant.SysOperationNotAllowed"),
        ),
    ];
    for (method, path, body, refusal) in cases {
        let reply = call(app, method, path, Some(body)).await;
        match refusal {
            Some(err_code) => reply.expect_error(400, err_code),
            None => reply.expect(200),
        };
    }
}

/// Replicas: nothing to remove is 204; a real scale-in is a DAG.
async fn replicas_and_primary_zone(app: &Router) {
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
}
