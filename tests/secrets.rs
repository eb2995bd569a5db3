//! Secrets never leave the request that carries them: after an encrypted restore through
//! `obagent serve` started with a password and logging at trace level, neither the
//! agent password nor the backup's decryption password appears — plain, hex, or base64
//! at any byte alignment — in any file of the data dir, in the log, in any API answer
//! (the restore, a binding error on the decryption field, the DAG, every sub-task's
//! logs, the overviews) or in the CLI client's output.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use obrestore::backup::{generate, GenerateConfig, GenerateSummary};
use obrestore::restore::Secret;
use obrestore_server::client::Method;
use obrestore_server::AgentClient;
use serde_json::{json, Value};
use support::{stop_gracefully, Serve};

const AGENT_PASSWORD: &str = "Agent-Secret-8d3e5b7a9c1f2468";
const BACKUP_PASSWORD: &str = "Backup-Secret-4f7c9a2b1e6d1357";

/// Every spelling of `secret` this test looks for: as is, hex (both cases), and the
/// part of standard and URL-safe base64 that does not depend on the neighbouring bytes,
/// at each of the three alignments a secret can have inside a longer base64 text.
fn spellings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut spellings = vec![secret.to_string(), hex.to_uppercase(), hex];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for offset in 0..3 {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let text = engine.encode(&shifted);
            // 4 characters at each end may mix in neighbouring bytes or padding.
            spellings.push(text[4..text.len() - 4].to_string());
        }
    }
    spellings
}

/// The spellings of the secrets found in `haystack`, as "secret spelling in where".
fn leaks(haystack: &[u8], place: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in [AGENT_PASSWORD, BACKUP_PASSWORD] {
        for spelling in spellings(secret) {
            if haystack
                .windows(spelling.len())
                .any(|window| window == spelling.as_bytes())
            {
                found.push(format!("{secret} as {spelling:?} in {place}"));
            }
        }
    }
    found
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(self::files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn encrypted_backup(root: &Path) -> GenerateSummary {
    let mut config = GenerateConfig::new(root);
    config.target_bytes = 6 << 20;
    config.data_file_bytes = 512 << 10;
    config.log_file_bytes = 512 << 10;
    config.block_bytes = 64 << 10;
    config.kdf_iterations = 1000;
    for set in &mut config.sets {
        set.password = Some(BACKUP_PASSWORD.to_string());
    }
    generate(&config).unwrap()
}

#[test]
fn the_scan_finds_every_spelling_at_every_alignment() {
    for prefix in ["", "x", "xy", "xyz"] {
        let text = format!("{prefix}{BACKUP_PASSWORD}!");
        let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        assert!(!leaks(b64.as_bytes(), "b64").is_empty(), "{prefix:?}");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes());
        assert!(!leaks(url.as_bytes(), "url").is_empty(), "{prefix:?}");
    }
    let hex: String = AGENT_PASSWORD
        .bytes()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    assert!(!leaks(format!("..{hex}..").as_bytes(), "hex").is_empty());
    assert!(leaks(b"nothing secret here", "none").is_empty());
}

/// Every answer of the walk below, as text.
struct Answers {
    client: AgentClient,
    texts: Vec<String>,
}

impl Answers {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self.client.call(method, path, body.as_ref()).await.unwrap();
        let envelope = reply.envelope.unwrap_or(Value::Null);
        self.texts.push(envelope.to_string());
        envelope
    }

    async fn wait_finished(&mut self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let path = format!("/api/v1/task/dag/{id}?show_details=true");
            let detail = self.call(Method::GET, &path, None).await;
            let state = &detail["data"]["state"];
            if state == "SUCCEED" || state == "FAILED" {
                return detail["data"].clone();
            }
            assert!(Instant::now() < deadline, "not finished: {detail:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_is_stored_logged_or_answered() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backup");
    let summary = encrypted_backup(&root);
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{AGENT_PASSWORD}\n")).unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let mut serve = Serve::new(&data_dir, &password_file, &root, "127.0.0.1:0");
    serve.env = vec![("OBAGENT_LOG", "trace".to_string())];
    serve.log = Some(log.clone());
    let server = serve.start();
    let mut answers = Answers {
        client: AgentClient::new(&server.url, Some(Secret::new(AGENT_PASSWORD))).unwrap(),
        texts: Vec::new(),
    };
    let restore = |decryption: Value| {
        json!({
            "data_backup_uri": summary.data_uri,
            "archive_log_uri": summary.archive_uri,
            "restore_tenant_name": "sec",
            "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
            "decryption": decryption,
        })
    };
    // Mistyped: a binding error on the decryption field.
    let mistyped = answers
        .call(
            Method::POST,
            "/api/v1/tenant/restore",
            Some(restore(json!(BACKUP_PASSWORD))),
        )
        .await;
    assert_eq!(mistyped["successful"], false, "{mistyped}");
    let started = answers
        .call(
            Method::POST,
            "/api/v1/tenant/restore",
            Some(restore(json!(["not-this-one", BACKUP_PASSWORD]))),
        )
        .await;
    let id = started["data"]["id"]
        .as_str()
        .expect("a DAG id")
        .to_string();
    let dag = answers.wait_finished(&id).await;
    assert_eq!(dag["state"], "SUCCEED", "{dag:#}");
    read_everything(&mut answers, &dag).await;
    let cli = Command::new(env!("CARGO_BIN_EXE_obagent"))
        .args(["dag", "show", &id, "--server", &server.url])
        .env("OBAGENT_PASSWORD", AGENT_PASSWORD)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    stop_gracefully(server);

    let found = scan(
        &log,
        &answers.texts,
        &[cli.stdout, cli.stderr].concat(),
        &data_dir,
    );
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// Every leak in the log, the answers, the CLI output and the data dir.
fn scan(log: &Path, answers: &[String], cli: &[u8], data_dir: &Path) -> Vec<String> {
    let log_text = std::fs::read(log).unwrap();
    eprintln!("trace log: {} bytes", log_text.len());
    assert!(
        String::from_utf8_lossy(&log_text).contains("TRACE"),
        "the log is at trace level"
    );
    let mut found = leaks(&log_text, "the trace log");
    for (n, text) in answers.iter().enumerate() {
        found.extend(leaks(text.as_bytes(), &format!("answer {n}")));
    }
    found.extend(leaks(cli, "the CLI output"));
    let stored = files(data_dir);
    assert!(stored.len() > 3, "{stored:?}");
    for path in stored {
        found.extend(leaks(
            &std::fs::read(&path).unwrap(),
            &path.display().to_string(),
        ));
    }
    found
}

/// Every read a client can make about the restore: each sub-task's logs, the tenant
/// and restore overviews, the unfinished DAGs.
async fn read_everything(answers: &mut Answers, dag: &Value) {
    let mut sub_tasks = 0;
    for node in dag["nodes"].as_array().unwrap() {
        for task in node["sub_tasks"].as_array().unwrap() {
            let id = task["id"].as_str().unwrap();
            let logs = answers
                .call(
                    Method::GET,
                    &format!("/api/v1/task/sub_task/{id}/logs"),
                    None,
                )
                .await;
            assert_eq!(logs["successful"], true, "{logs}");
            sub_tasks += 1;
        }
    }
    assert!(sub_tasks > 5, "{dag:#}");
    for path in [
        "/api/v1/tenant/sec/restore/overview",
        "/api/v1/tenants/overview",
        "/api/v1/task/dag/unfinish",
    ] {
        let answer = answers.call(Method::GET, path, None).await;
        assert_eq!(answer["successful"], true, "{path}: {answer}");
    }
}
