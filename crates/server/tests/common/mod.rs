//! Shared setup of the router tests: an agent in a temp dir, the router over it, and
//! one small generated backup per test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use obrestore_backup::{generate, GenerateConfig, GenerateSummary};
use obrestore_dag::{AgentInfo, Clock, SystemClock};
use obrestore_restore::{AgentConfig, ClusterConfig, RestoreAgent, Secret};
use obrestore_server::auth::{AgentKey, AuthConfig, Authenticator, LimiterConfig};
use obrestore_server::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The fixed test vectors made by `tests/vectors/gen_vectors.py`.
pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/vectors.json")).expect("vectors.json")
}

/// The vectors' RSA key (loading it is much faster than generating one).
pub fn vector_key() -> Arc<AgentKey> {
    let vectors = vectors();
    Arc::new(AgentKey::from_pkcs1_pem(vectors["private_key_pkcs1_pem"].as_str().unwrap()).unwrap())
}

/// A generated backup shared by the tests of one binary (deterministic, rewritten once
/// per run under the target dir's temp dir).
pub struct Backup {
    pub root: PathBuf,
    pub summary: GenerateSummary,
}

pub fn backup() -> &'static Backup {
    static BACKUP: OnceLock<Backup> = OnceLock::new();
    BACKUP.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-router-backup");
        let mut config = GenerateConfig::new(&root);
        config.target_bytes = 4 << 20;
        config.data_file_bytes = 512 << 10;
        config.log_file_bytes = 512 << 10;
        config.block_bytes = 64 << 10;
        config.kdf_iterations = 1000;
        config.overwrite = true;
        let summary = generate(&config).expect("generate backup");
        Backup { root, summary }
    })
}

/// An agent over a temp dir and its router.
pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub agent: RestoreAgent,
    pub app: Router,
}

pub struct Options {
    pub password: Option<&'static str>,
    pub clock: Arc<dyn Clock>,
    pub limiter: LimiterConfig,
    pub roots: Vec<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            password: None,
            clock: Arc::new(SystemClock),
            limiter: LimiterConfig::default(),
            roots: Vec::new(),
        }
    }
}

impl Options {
    /// Default options whose agent may also read the shared [`backup`].
    pub fn with_backup_root() -> Options {
        Options {
            roots: vec![backup().root.clone()],
            ..Options::default()
        }
    }
}

/// One zone of a restore or create-tenant body: unit config `s1`, one unit.
pub fn zone(name: &str) -> Value {
    json!({"name": name, "unit_config_name": "s1", "unit_num": 1})
}

/// A restore of the shared [`backup`] into `tenant` on zone z1, concurrency 2.
pub fn restore_body(tenant: &str) -> Value {
    let summary = &backup().summary;
    json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": tenant,
        "zone_list": [zone("z1")],
        "concurrency": 2,
    })
}

pub async fn agent(options: Options) -> TestAgent {
    let dir = tempfile::tempdir().unwrap();
    let mut roots = options.roots;
    roots.push(dir.path().join("backup"));
    std::fs::create_dir_all(dir.path().join("backup")).unwrap();
    let agent = RestoreAgent::open(AgentConfig {
        data_dir: dir.path().join("data"),
        agent: AgentInfo::default(),
        allowed_roots: roots,
        worker_limit: 8,
        cluster: ClusterConfig::default(),
    })
    .await
    .unwrap();
    let auth = Authenticator::new(AuthConfig {
        key: vector_key(),
        password: options.password.map(Secret::new),
        clock: options.clock,
        limiter: options.limiter,
    });
    let app = app(AppState::new(agent.clone(), auth).unwrap());
    TestAgent { dir, agent, app }
}

/// A reply: status, envelope (Null for an empty body).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The string `field` of every item of a list reply's `data.contents`.
    #[track_caller]
    pub fn listed(&self, field: &str) -> Vec<&str> {
        self.data()["contents"]
            .as_array()
            .expect("data.contents is a list")
            .iter()
            .map(|item| item[field].as_str().expect("a string field"))
            .collect()
    }

    pub fn err_code(&self) -> &str {
        self.body["error"]["errCode"].as_str().unwrap_or("")
    }

    /// The error message (panics when the reply has none).
    #[track_caller]
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap()
    }

    /// Asserts the status (printing the body otherwise) and returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "body: {:#}", self.body);
        self
    }

    /// Asserts an error status and errCode, and that the envelope is well formed.
    #[track_caller]
    pub fn expect_error(self, status: u16, err_code: &str) -> Reply {
        let reply = self.expect(status);
        assert_eq!(reply.err_code(), err_code, "body: {:#}", reply.body);
        assert_eq!(reply.body["successful"], false);
        assert_eq!(reply.body["status"], status);
        assert!(reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        reply
    }
}

/// Sends a raw request through the router.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&bytes)))
    };
    if status.is_success() && status != StatusCode::NO_CONTENT && body.get("successful").is_some() {
        assert_eq!(body["successful"], true);
        assert!(body["traceId"].as_str().is_some_and(|t| t.len() == 16));
        assert!(body["timestamp"].as_str().is_some());
        assert!(body["duration"].as_u64().is_some());
    }
    Reply { status, body }
}

/// Sends `method uri` with an optional JSON body and no auth header.
pub async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> Reply {
    let body = body
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    send(app, request).await
}

/// Polls the DAG until it is SUCCEED or FAILED; returns the final detail.
pub async fn wait_dag(app: &Router, id: &str) -> Value {
    for _ in 0..1200 {
        let reply = call(app, Method::GET, &format!("/api/v1/task/dag/{id}"), None)
            .await
            .expect(200);
        let state = reply.data()["state"].as_str().unwrap_or("").to_string();
        if state == "SUCCEED" || state == "FAILED" {
            return reply.data().clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("dag {id} did not settle");
}
