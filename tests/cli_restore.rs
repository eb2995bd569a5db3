//! The `obagent` commands a user runs, as processes: generate, preview, windows, restore
//! start, tenant show, and their error paths.

use std::path::Path;
use std::process::{Command, Output};

fn obagent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obagent"))
        .args(args)
        .env_remove("OBAGENT_DATA_DIR")
        .output()
        .expect("obagent runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Generates a small backup and returns its (data, archive) URIs.
fn generate(dir: &Path) -> (String, String) {
    let out = obagent(&[
        "backup",
        "generate",
        "--dir",
        dir.to_str().unwrap(),
        "--size",
        "6MiB",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let uri = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no '{label}' in {text}"))
    };
    (uri("data backup uri:"), uri("archive log uri:"))
}

#[test]
fn generate_preview_windows_and_restore_start_as_a_user_would() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (data, archive) = generate(backup.path());

    let out = obagent(&[
        "restore",
        "preview",
        "--data-uri",
        &data,
        "--archive-uri",
        &archive,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items[0]["backupType"], "BACKUP_SET");
    assert_eq!(items.last().unwrap()["backupType"], "BACKUP_PIECE");
    assert!(items
        .iter()
        .all(|item| item["backupDest"].as_str().unwrap().starts_with("file:///")));

    let out = obagent(&[
        "restore",
        "windows",
        "--data-uri",
        &data,
        "--archive-uri",
        &archive,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let windows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(windows["restore_windows"].as_array().unwrap().len(), 1);

    let data_dir = state.path().to_str().unwrap();
    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        data_dir,
        "--data-uri",
        &data,
        "--archive-uri",
        &archive,
        "--tenant",
        "t1",
        "--zone",
        "z1:s1:1",
        "--zone",
        "z2:s1:1",
        "--concurrency",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("restore of tenant 't1': SUCCEED+RUN"),
        "{text}"
    );
    // Progress lines were shown for every stage.
    assert!(
        stderr(&out).contains("Upgrade tenant: SUCCEED+RUN"),
        "{}",
        stderr(&out)
    );
    let json_start = text.find("{\n").unwrap();
    let dag: serde_json::Value = serde_json::from_str(&text[json_start..]).unwrap();
    assert_eq!(dag["name"], "Restore backup_t1");
    assert_eq!(dag["state"], "SUCCEED");

    let out = obagent(&["tenant", "list", "--data-dir", data_dir, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tenants: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let t1 = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t1")
        .unwrap();
    assert_eq!(
        (t1["status"].as_str(), t1["role"].as_str()),
        (Some("NORMAL"), Some("PRIMARY"))
    );

    // The same tenant again: refused, naming the field.
    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        data_dir,
        "--data-uri",
        &data,
        "--archive-uri",
        &archive,
        "--tenant",
        "t1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("restore_tenant_name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_fails_with_a_message_naming_the_problem() {
    let state = tempfile::tempdir().unwrap();
    let out = obagent(&["restore", "preview", "--data-uri", "s3://bucket/backup"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unsupported storage type"),
        "{}",
        stderr(&out)
    );

    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        state.path().to_str().unwrap(),
        "--data-uri",
        "file:///nonexistent/data",
        "--tenant",
        "sys",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("restore_tenant_name"),
        "{}",
        stderr(&out)
    );

    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        state.path().to_str().unwrap(),
        "--data-uri",
        "file:///x",
        "--tenant",
        "t",
        "--zone",
        "z1:s1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--zone 'z1:s1'"), "{}", stderr(&out));
}
