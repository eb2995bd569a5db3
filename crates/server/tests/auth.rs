//! API hybrid encryption through the router: the fixed vectors of
//! `tests/vectors/gen_vectors.py` (pycryptodome, independent of the server code), every
//! failure answering 401 with its errCode and executing nothing, public endpoints, the
//! no-password agent and the failed-auth limiter.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use chrono::{DateTime, TimeZone, Utc};
use common::{agent, call, send, vectors, Options};
use obrestore_dag::Clock;
use obrestore_restore::Secret;
use obrestore_server::auth::{ClientCredentials, LimiterConfig, HEADER_V2};
use serde_json::{json, Value};

#[derive(Debug)]
struct FixedClock(i64);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0, 0).single().unwrap()
    }
}

fn request(case: &Value) -> Request<Body> {
    let mut builder = Request::builder()
        .method(case["method"].as_str().unwrap())
        .uri(case["uri"].as_str().unwrap());
    for (name, value) in case["headers"].as_object().unwrap() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    builder
        .body(Body::from(case["body"].as_str().unwrap().to_string()))
        .unwrap()
}

/// `POST /api/v1/unit/config` of unit config `u1`, signed and encrypted with `creds`.
async fn create_unit_config_signed(
    app: &axum::Router,
    creds: &ClientCredentials,
    now: i64,
) -> common::Reply {
    let (header, cipher) = creds.v2_header("/api/v1/unit/config", now).unwrap();
    let body = cipher.encrypt_body(br#"{"name":"u1","memory_size":"2G","max_cpu":1}"#);
    send(
        app,
        Request::builder()
            .method("POST")
            .uri("/api/v1/unit/config")
            .header(HEADER_V2, header)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_vectors_from_an_independent_implementation() {
    let vectors = vectors();
    let now = vectors["now"].as_i64().unwrap();
    let password: &'static str = vectors["password"].as_str().unwrap().to_string().leak();
    let test = agent(Options {
        password: Some(password),
        clock: Arc::new(FixedClock(now)),
        ..Options::default()
    })
    .await;
    assert_eq!(
        test.agent.config().agent.port,
        2886,
        "vectors use the default agent address"
    );
    // The public key the agent serves is the vectors' key.
    let secret = call(&test.app, Method::GET, "/api/v1/secret", None)
        .await
        .expect(200);
    assert_eq!(
        secret.data()["public_key"],
        vectors["public_key_pkcs1_der_base64"]
    );
    for case in vectors["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reply = send(&test.app, request(case)).await;
        match case["expect"].as_str().unwrap() {
            "ok" => assert_eq!(reply.status.as_u16(), 200, "{name}: {:#}", reply.body),
            err_code => {
                assert_eq!(reply.status.as_u16(), 401, "{name}: {:#}", reply.body);
                assert_eq!(reply.err_code(), err_code, "{name}: {:#}", reply.body);
                let code = reply.body["error"]["code"].as_i64().unwrap();
                // obshell: 1 for an undecryptable header, 10008 for the rest
                // (a body that does not decrypt is Common.Unauthorized, 10008).
                let expected_code = if err_code == "Security.Authentication.Header.DecryptFailed" {
                    1
                } else {
                    10008
                };
                assert_eq!(code, expected_code, "{name}");
            }
        }
    }
    // The encrypted body of the accepted POST reached the handler; the tampered one did
    // not create anything.
    let configs = call(&test.app, Method::GET, "/api/v1/units/config", None).await;
    assert_eq!(configs.status.as_u16(), 401, "listing needs auth too");
    let creds = ClientCredentials {
        public_key: common::vector_key().public_key(),
        password: Secret::new(password),
        validity: std::time::Duration::from_secs(60),
    };
    let (header, _) = creds.v2_header("/api/v1/units/config", now).unwrap();
    let listing = send(
        &test.app,
        Request::builder()
            .uri("/api/v1/units/config")
            .header(HEADER_V2, header)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .expect(200);
    let names = listing.listed("name");
    assert!(names.contains(&"vec_unit"), "{names:?}");
    assert!(
        !names.contains(&"vec_unit2"),
        "tampered body must not execute: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_execute_nothing_and_public_endpoints_need_no_auth() {
    let test = agent(Options {
        password: Some(""),
        ..Options::default()
    })
    .await;
    for path in [
        "/api/v1/info",
        "/api/v1/secret",
        "/api/v1/status",
        "/api/v1/openapi.json",
    ] {
        call(&test.app, Method::GET, path, None).await.expect(200);
    }
    let info = call(&test.app, Method::GET, "/api/v1/info", None).await;
    assert_eq!(info.data()["security"], true);
    assert_eq!(info.data()["supportedAuth"], json!(["v2"]));
    // Missing header: 401, and the unit config is not created.
    call(
        &test.app,
        Method::POST,
        "/api/v1/unit/config",
        Some(json!({"name": "u1", "memory_size": "2G", "max_cpu": 1})),
    )
    .await
    .expect_error(401, "Security.Authentication.Unauthorized");
    // An empty password is a real password: a header with "" passes, "x" does not.
    let public_key = common::vector_key().public_key();
    let now = Utc::now().timestamp();
    for (password, status) in [("x", 401), ("", 200)] {
        let creds = ClientCredentials {
            public_key: public_key.clone(),
            password: Secret::new(password),
            validity: std::time::Duration::from_secs(60),
        };
        let reply = create_unit_config_signed(&test.app, &creds, now)
            .await
            .expect(status);
        if status == 200 {
            assert_eq!(reply.data()["name"], "u1");
        } else {
            assert_eq!(
                reply.err_code(),
                "Security.Authentication.IncorrectOceanbasePassword"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_without_password_accepts_plain_requests() {
    let test = agent(Options::default()).await;
    call(&test.app, Method::GET, "/api/v1/tenants/overview", None)
        .await
        .expect(200);
    let info = call(&test.app, Method::GET, "/api/v1/info", None)
        .await
        .expect(200);
    assert_eq!(info.data()["security"], false);
    assert_eq!(info.data()["identity"], "CLUSTER AGENT");
    assert_eq!(info.data()["zone"], "z1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_without_password_ignores_headers_that_do_not_verify() {
    let test = agent(Options {
        limiter: LimiterConfig {
            burst: 2.0,
            refill_per_sec: 0.001,
        },
        ..Options::default()
    })
    .await;
    // Garbage, a header for another URI, an expired one: ignored, never a 401 and never
    // charged to the limiter (which would answer 429 after two failures).
    let creds = ClientCredentials {
        public_key: common::vector_key().public_key(),
        password: Secret::new("anything"),
        validity: std::time::Duration::from_secs(60),
    };
    let now = Utc::now().timestamp();
    let (other_uri, _) = creds.v2_header("/api/v1/info", now).unwrap();
    let (expired, _) = creds
        .v2_header("/api/v1/units/config", now - 3_600)
        .unwrap();
    for header in ["garbage", "", other_uri.as_str(), expired.as_str()]
        .iter()
        .cycle()
        .take(12)
    {
        let reply = send(
            &test.app,
            Request::builder()
                .uri("/api/v1/units/config")
                .header(HEADER_V2, *header)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    }
    // A header that verifies still decrypts the body, as obshell's SDKs send it.
    let reply = create_unit_config_signed(&test.app, &creds, now).await;
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    let configs = call(&test.app, Method::GET, "/api/v1/units/config", None)
        .await
        .expect(200);
    assert!(
        configs.data()["contents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|config| config["name"] == "u1"),
        "{:?}",
        configs.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auth_is_rate_limited_before_any_decryption() {
    let test = agent(Options {
        password: Some("pw"),
        limiter: LimiterConfig {
            burst: 3.0,
            refill_per_sec: 0.001,
        },
        ..Options::default()
    })
    .await;
    let bad = || {
        Request::builder()
            .uri("/api/v1/tenants/overview")
            .header(HEADER_V2, "AAAA")
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        send(&test.app, bad())
            .await
            .expect_error(401, "Security.Authentication.Header.DecryptFailed");
    }
    let limited = send(&test.app, bad())
        .await
        .expect_error(429, "Security.Authentication.TooManyFailures");
    assert!(limited.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("retry in"));
    // Even a correct header is refused while the budget is spent (it is not decrypted).
    let creds = ClientCredentials {
        public_key: common::vector_key().public_key(),
        password: Secret::new("pw"),
        validity: std::time::Duration::from_secs(60),
    };
    let (header, _) = creds
        .v2_header("/api/v1/tenants/overview", Utc::now().timestamp())
        .unwrap();
    send(
        &test.app,
        Request::builder()
            .uri("/api/v1/tenants/overview")
            .header(HEADER_V2, header)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .expect(429);
    // Public endpoints stay reachable.
    call(&test.app, Method::GET, "/api/v1/secret", None)
        .await
        .expect(200);
}
