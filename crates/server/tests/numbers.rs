//! Numbers and strings from users, as a property: the unit-config, restore and
//! create-tenant APIs, driven through the router with arbitrary JSON numbers (huge,
//! tiny, negative, `-0`, integers beyond u64, floats with many digits, numbers that do
//! not fit JSON at all) and strings in their numeric and string fields, answer a success
//! or a 4xx, never a 5xx; a refused unit config names its field; and after every case
//! the store still reads (unit configs, tenants, restore tasks, the DAG answered).
//!
//! The bodies are built as text, not as `serde_json::Value`, so numbers that a `Value`
//! cannot hold (`18446744073709551616`, `1e400`) reach the server as sent.

mod common;

use std::cell::Cell;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use common::{agent, call, Options, Reply};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

/// One JSON value as text: a number of every awkward kind, or a string.
fn json_token() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "0",
        "-0",
        "0.0",
        "-0.0",
        "1",
        "-1",
        "1e308",
        "-1e308",
        "1.7976931348623157e308",
        "1e400",
        "-1e400",
        "1e-7",
        "1e-400",
        "4.9e-324",
        "0.49",
        "0.5",
        "0.999999999",
        "1.0000000001",
        "1048576",
        "1048576.5",
        "1048577",
        "1073741824",
        "1125899906842624",
        "1125899906842625",
        "3377699720527872",
        "3377699720527873",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "100",
        "101",
        "2147483648",
        "4294967295",
        "4294967296",
        "true",
        "null",
        "[]",
        "{}",
        "\"\"",
        "\"5G\"",
        "\"1e400G\"",
        "\"-1G\"",
        "\"0.5G\"",
        "\"NaN\"",
        "\"inf\"",
        "\"1P\"",
        "\"2P\"",
        "\"4P\"",
        "\"18446744073709551615\"",
        "\"1.5K\"",
        "\"5 GB\"",
        "\"5GiB\"",
    ]);
    prop_oneof![
        3 => special.prop_map(str::to_string),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        1 => (1u32..400).prop_map(|digits| format!("1{}", "0".repeat(digits as usize))),
        1 => ("[0-9]{1,3}", "[0-9]{1,40}", -400i32..400)
            .prop_map(|(whole, fraction, exponent)| format!("{whole}.{fraction}e{exponent}")),
        1 => (0u64..2048, prop::sample::select(vec!["", "B", "K", "M", "G", "T", "P", "GB", "X"]))
            .prop_map(|(n, unit)| format!("\"{n}{unit}\"")),
        1 => any::<String>().prop_map(|text| json!(text).to_string()),
    ]
}

/// A field: absent, a value the API takes (`valid`), or any token.
fn field(name: &'static str, valid: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => Just(Some(valid.to_string())),
        2 => json_token().prop_map(Some),
    ]
    .prop_map(move |token| token.map(|token| format!("{}:{token}", json!(name))))
}

fn object(fields: Vec<Option<String>>) -> String {
    let present: Vec<String> = fields.into_iter().flatten().collect();
    format!("{{{}}}", present.join(","))
}

/// Sends `body` (text) to `method uri`.
async fn send_text(app: &Router, method: Method, uri: &str, body: String) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    common::send(app, request).await
}

/// A success or a 4xx with an error that says something.
fn check_answer(reply: &Reply, body: &str) -> Result<(), TestCaseError> {
    let status = reply.status.as_u16();
    prop_assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "{status} for {body}: {:#}",
        reply.body
    );
    if status >= 400 {
        prop_assert!(!reply.message().is_empty(), "{body}");
    }
    Ok(())
}

/// The reads that must keep answering 200 whatever was stored.
async fn store_reads(app: &Router) -> Result<(), TestCaseError> {
    for uri in [
        "/api/v1/units/config",
        "/api/v1/resource-pools",
        "/api/v1/tenants/overview",
        "/api/v1/restore/tasks",
        "/api/v1/task/dags/ob",
    ] {
        let reply = call(app, Method::GET, uri, None).await;
        prop_assert_eq!(reply.status.as_u16(), 200, "{}: {:#}", uri, reply.body);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The numeric fields of a unit config, each with a value the API takes.
const UNIT_CONFIG_FIELDS: [(&str, &str); 7] = [
    ("memory_size", "\"5G\""),
    ("max_cpu", "2"),
    ("min_cpu", "1.5"),
    ("log_disk_size", "16106127360"),
    ("data_disk_size", "null"),
    ("max_iops", "20000"),
    ("min_iops", "10000"),
];

fn unit_config_body() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.9, json_token()),
        UNIT_CONFIG_FIELDS.map(|(name, valid)| field(name, valid)),
        any::<bool>(),
    )
        .prop_map(move |(name_token, fields, plain_name)| {
            // Mostly a valid name (a created config is dropped again), so refusals are
            // about the numbers.
            let name_field = match (plain_name, name_token) {
                (true, _) | (false, None) => Some("\"name\":\"u1\"".to_string()),
                (false, Some(token)) => Some(format!("\"name\":{token}")),
            };
            let mut all = vec![name_field];
            all.extend(fields);
            object(all)
        })
}

/// `text` percent-encoded as one path segment (a generated name may hold any character).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A refused unit config names the field it is about (in the message or subErrors).
fn names_a_field(reply: &Reply) -> bool {
    let message = reply.message();
    let sub_field = reply.body["error"]["subErrors"][0]["field"]
        .as_str()
        .unwrap_or("");
    std::iter::once("name")
        .chain(UNIT_CONFIG_FIELDS.map(|(name, _)| name))
        .any(|field| message.contains(field) || sub_field == field)
}

#[test]
fn unit_config_api_takes_any_number_and_the_store_still_reads() {
    let runtime = runtime();
    let test = runtime.block_on(agent(Options::default()));
    let (created, refused) = (Cell::new(0), Cell::new(0));
    runner(512)
        .run(&unit_config_body(), |body| {
            runtime.block_on(async {
                let reply =
                    send_text(&test.app, Method::POST, "/api/v1/unit/config", body.clone()).await;
                check_answer(&reply, &body)?;
                if reply.status.is_success() {
                    created.set(created.get() + 1);
                    let name = reply.data()["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let uri = format!("/api/v1/unit/config/{}", path_segment(&name));
                    let read = call(&test.app, Method::GET, &uri, None).await;
                    prop_assert_eq!(read.status.as_u16(), 200, "{}", body);
                    prop_assert_eq!(read.data(), reply.data());
                    call(&test.app, Method::DELETE, &uri, None)
                        .await
                        .expect(200);
                } else {
                    refused.set(refused.get() + 1);
                    prop_assert!(names_a_field(&reply), "{}: {}", body, reply.message());
                }
                store_reads(&test.app).await
            })
        })
        .unwrap();
    // The strategy reaches both sides of the rules.
    let (created, refused) = (created.get(), refused.get());
    eprintln!("unit configs: {created} created, {refused} refused");
    assert!(
        created > 0 && refused > 0,
        "{created} created, {refused} refused"
    );
}

/// `"zone_list": [...]` of zones z1, z2, ... on unit config `s1` (the cluster's seeded
/// one), up to three, each `unit_num` mostly 1, else any token.
fn zone_list() -> impl Strategy<Value = String> {
    prop::collection::vec((json_token(), prop::bool::weighted(0.8)), 0..4).prop_map(|zones| {
        let zones: Vec<String> = zones
            .into_iter()
            .enumerate()
            .map(|(index, (unit_num, valid))| {
                let unit_num = if valid { "1".to_string() } else { unit_num };
                let zone = index + 1;
                format!(
                    "{{\"name\":\"z{zone}\",\"unit_config_name\":\"s1\",\"unit_num\":{unit_num}}}"
                )
            })
            .collect();
        format!("\"zone_list\":[{}]", zones.join(","))
    })
}

/// A restore of the shared backup with arbitrary numbers (and strings) in its numeric
/// fields and in the tenant name; few names, so that a restore that starts makes the
/// next ones of that name refusals rather than more restores.
fn restore_body() -> impl Strategy<Value = String> {
    let summary = &common::backup().summary;
    let uris = format!(
        "\"data_backup_uri\":{},\"archive_log_uri\":{}",
        json!(summary.data_uri),
        json!(summary.archive_uri)
    );
    let tenant = prop_oneof![
        6 => prop::sample::select(vec!["\"r1\"", "\"r2\"", "\"r1\"", "\"r2\"", "\"sys\"", "\"\"", "\"a$b\""])
            .prop_map(str::to_string),
        1 => json_token(),
    ];
    let timestamp = prop_oneof![
        2 => json_token(),
        1 => (-1000i64..12000, prop::sample::select(vec!["Z", "+14:00", "-12:00"]))
            .prop_map(|(year, zone)| format!("\"{year:04}-01-01T00:00:00{zone}\"")),
    ];
    (
        tenant,
        prop::option::weighted(0.2, timestamp),
        [
            field("scn", "0"),
            field("concurrency", "2"),
            field("ha_high_thread_score", "10"),
        ],
        zone_list(),
    )
        .prop_map(move |(tenant, timestamp, numbers, zones)| {
            let mut fields = vec![
                Some(uris.clone()),
                Some(format!("\"restore_tenant_name\":{tenant}")),
                Some(zones),
                timestamp.map(|timestamp| format!("\"timestamp\":{timestamp}")),
            ];
            fields.extend(numbers);
            object(fields)
        })
}

#[test]
fn restore_api_takes_any_number_and_the_store_still_reads() {
    let runtime = runtime();
    // The cluster's seeded unit config `s1` is the one the zones name.
    let test = runtime.block_on(agent(Options::with_backup_root()));
    let (started, refused) = (Cell::new(0), Cell::new(0));
    runner(256)
        .run(&restore_body(), |body| {
            runtime.block_on(async {
                let reply = send_text(
                    &test.app,
                    Method::POST,
                    "/api/v1/tenant/restore",
                    body.clone(),
                )
                .await;
                check_answer(&reply, &body)?;
                if reply.status.is_success() {
                    started.set(started.get() + 1);
                    let id = reply.data()["id"].as_str().unwrap_or_default().to_string();
                    let uri = format!("/api/v1/task/dag/{id}");
                    let dag = call(&test.app, Method::GET, &uri, None).await;
                    prop_assert_eq!(dag.status.as_u16(), 200, "{}", body);
                } else {
                    refused.set(refused.get() + 1);
                }
                store_reads(&test.app).await
            })
        })
        .unwrap();
    let (started, refused) = (started.get(), refused.get());
    eprintln!("restores: {started} started, {refused} refused");
    assert!(
        started > 0 && refused > 0,
        "{started} started, {refused} refused"
    );
    // The restores that started end (SUCCEED or FAILED), and the store still reads.
    runtime.block_on(async {
        let dags = call(&test.app, Method::GET, "/api/v1/task/dags/ob", None)
            .await
            .expect(200);
        for id in dags.listed("id") {
            common::wait_dag(&test.app, id).await;
        }
        store_reads(&test.app).await.unwrap();
    });
}

fn tenant_body() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            3 => prop::sample::select(vec!["\"c1\"", "\"c2\"", "\"sys\"", "\"\""])
                .prop_map(str::to_string),
            1 => json_token(),
        ],
        zone_list(),
        field("ob_query_timeout", "10000000"),
        field("cpu_quota_concurrency", "4"),
    )
        .prop_map(|(name, zones, variable, parameter)| {
            object(vec![
                Some(format!("\"name\":{name}")),
                Some(zones),
                variable.map(|variable| format!("\"variables\":{{{variable}}}")),
                parameter.map(|parameter| format!("\"parameters\":{{{parameter}}}")),
            ])
        })
}

#[test]
fn create_tenant_api_takes_any_number_and_the_store_still_reads() {
    let runtime = runtime();
    let test = runtime.block_on(agent(Options::default()));
    let (created, refused) = (Cell::new(0), Cell::new(0));
    runner(128)
        .run(&tenant_body(), |body| {
            runtime.block_on(async {
                let reply =
                    send_text(&test.app, Method::POST, "/api/v1/tenant", body.clone()).await;
                check_answer(&reply, &body)?;
                if reply.status.is_success() {
                    created.set(created.get() + 1);
                    let id = reply.data()["id"].as_str().unwrap_or_default().to_string();
                    let dag = common::wait_dag(&test.app, &id).await;
                    prop_assert!(dag["state"] == "SUCCEED" || dag["state"] == "FAILED");
                } else {
                    refused.set(refused.get() + 1);
                }
                store_reads(&test.app).await
            })
        })
        .unwrap();
    let (created, refused) = (created.get(), refused.get());
    eprintln!("tenants: {created} created, {refused} refused");
    assert!(
        created > 0 && refused > 0,
        "{created} created, {refused} refused"
    );
}
