//! End to end through the real binary: `obagent serve` with a password, a restore
//! started through the API with v2 auth, SIGKILL while a `Restore data` node runs, a
//! restart on the same data dir and port, the DAG resuming to SUCCEED, and the restored
//! rows equal to the independent truth at the restore SCN. Then SIGTERM stops the
//! daemon gracefully and the CLI client reads the DAG.

mod support;

use std::path::Path;
use std::process::Command;

use obrestore::backup::{truth, Scn};
use obrestore::restore::cluster::agent_db_path;
use obrestore::restore::{ClusterConfig, Secret, SledCluster};
use obrestore_server::client::Method;
use obrestore_server::AgentClient;
use serde_json::Value;

use support::restore::{small_backup, start_restore, wait_finished, wait_for_restore_data};
use support::{stop_gracefully, Serve, Server};

const PASSWORD: &str = "e2e-Pa55";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_survives_sigkill_during_restore_data() {
    let dir = tempfile::tempdir().unwrap();
    let backup_root = dir.path().join("backup");
    let data_dir = dir.path().join("agent");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let summary = small_backup(&backup_root);

    // First start on a free port; restarts reuse it so generic ids stay valid.
    let server = Serve::new(&data_dir, &password_file, &backup_root, "127.0.0.1:0").start();
    let listen = server.url.trim_start_matches("http://").to_string();
    check_key_file_and_auth(&server, &data_dir).await;
    let client = AgentClient::new(&server.url, Some(Secret::new(PASSWORD))).unwrap();
    let id = start_restore(&client, &summary).await;
    wait_for_restore_data(&client, &id).await;
    drop(server); // SIGKILL while a `Restore data` node runs

    let server = Serve::new(&data_dir, &password_file, &backup_root, &listen).start();
    let client = AgentClient::new(&server.url, Some(Secret::new(PASSWORD))).unwrap();
    let finished = wait_finished(&client, &id).await;
    assert_eq!(finished["state"], "SUCCEED", "{finished:#}");
    assert_eq!(finished["operator"], "RUN", "{finished:#}");
    let overview: Value = client
        .data(Method::GET, "/api/v1/tenant/e2e/restore/overview", None)
        .await
        .unwrap()
        .unwrap();
    let restore_scn = overview["restore_scn"].as_u64().unwrap();
    check_cli_shows_succeeded(&server, &password_file, &id);
    stop_gracefully(server);

    let cluster = SledCluster::open(agent_db_path(&data_dir), &ClusterConfig::default()).unwrap();
    let restored = obrestore::restore::verify::restored_digest(&cluster, "e2e").unwrap();
    let expected = truth::rows_at(&summary.truth_dir, Scn(restore_scn))
        .unwrap()
        .digest();
    assert_eq!(
        restored, expected,
        "restored rows differ from the source at {restore_scn}"
    );
}

/// The RSA key is generated at first start, private to its owner, and a wrong password
/// is refused with 401.
async fn check_key_file_and_auth(server: &Server, data_dir: &Path) {
    assert!(
        std::fs::metadata(data_dir.join("api_rsa_key.pem")).is_ok(),
        "the RSA key is generated at first start"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join("api_rsa_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let wrong = AgentClient::new(&server.url, Some(Secret::new("wrong"))).unwrap();
    let refused = wrong
        .call(Method::GET, "/api/v1/tenants/overview", None)
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
}

/// The CLI client reads the DAG from the running agent.
fn check_cli_shows_succeeded(server: &Server, password_file: &Path, id: &str) {
    let shown = Command::new(env!("CARGO_BIN_EXE_obagent"))
        .args([
            "dag",
            "show",
            id,
            "--brief",
            "--server",
            &server.url,
            "--password-file",
        ])
        .arg(password_file)
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["state"], "SUCCEED");
}

/// `--server-cpu` and `--server-memory` seed the embedded cluster's servers; values a
/// cluster cannot have are refused naming the option, before anything is created.
#[test]
fn serve_refuses_server_sizes_a_cluster_cannot_have() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for (option, value) in [
        ("--server-cpu", "0"),
        ("--server-cpu", "NaN"),
        ("--server-cpu", "1e308"),
        ("--server-memory", "12"),
        ("--server-memory", "2PiB"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_obagent"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args([option, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{option} {value} accepted");
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
        assert!(!data_dir.exists(), "{option} {value} created the data dir");
    }
}

/// A root that does not exist is refused before anything is opened, alone and in a
/// cluster (where it was found only by each won term, which then failed in a loop): the
/// message names the option and the root, and no data dir is created.
#[test]
fn serve_refuses_an_allowed_root_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let missing = dir.path().join("no-such-backup-root");
    let cluster = [
        "--cluster",
        "etcd://127.0.0.1:9",
        "--zone",
        "z1",
        "--shared-dir",
    ];
    for extra in [&[][..], &cluster[..]] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_obagent"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .arg("--allow-root")
            .arg(&missing)
            .args(extra);
        if !extra.is_empty() {
            command.arg(dir.path().join("shared"));
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}: a missing root accepted");
        assert!(
            stderr.contains("--allow-root") && stderr.contains("no-such-backup-root"),
            "{extra:?}: {stderr}"
        );
        assert!(!data_dir.exists(), "{extra:?}: the data dir was created");
        assert!(
            !dir.path().join("shared").exists(),
            "{extra:?}: the shared dir was created"
        );
    }
}
