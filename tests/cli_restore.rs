//! The `obagent` commands a user runs, as processes: generate, preview, windows, restore
//! start, the embedded cluster's tables, and their error paths. Checks what a script
//! relies on: `--json` prints exactly one JSON document on stdout, an error is printed
//! once, `--allow-root` (and the old `--allowed-root`) is taken by every command with
//! roots, and `tenant show --digest` is the digest the restore's Post check recorded.

use std::process::{Command, Output};

use serde_json::Value;

fn obagent(args: &[&str]) -> Output {
    obagent_env(args, &[])
}

/// `obagent` with exactly these of its environment variables set.
fn obagent_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_obagent"));
    command.args(args);
    for name in [
        "OBAGENT_DATA_DIR",
        "OBAGENT_PASSWORD",
        "OBAGENT_DECRYPTION",
        "OBAGENT_BACKUP_PASSWORD",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("obagent runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and that stdout is exactly one JSON document (nothing before or
/// after it); returns the document.
#[track_caller]
fn one_json_document(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_str(&stdout(output)).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}):\n{}",
            stdout(output)
        )
    })
}

/// Asserts failure and that `message` appears exactly once in stdout and stderr
/// together.
#[track_caller]
fn fails_printing_once(output: &Output, message: &str) {
    assert!(!output.status.success(), "{}", stdout(output));
    let text = format!("{}{}", stdout(output), stderr(output));
    assert_eq!(text.matches(message).count(), 1, "'{message}' in:\n{text}");
}

/// A generated backup: its directory and (data, archive) URIs.
struct Backup {
    dir: tempfile::TempDir,
    data: String,
    archive: String,
}

impl Backup {
    /// `--data-uri D --archive-uri A --json`: the backup as a preview or windows source.
    fn json_source(&self) -> [&str; 5] {
        [
            "--data-uri",
            &self.data,
            "--archive-uri",
            &self.archive,
            "--json",
        ]
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}

/// Generates a small backup.
fn generate() -> Backup {
    generate_with(&[])
}

/// Generates a small backup with extra `backup generate` options.
fn generate_with(extra: &[&str]) -> Backup {
    generate_with_env(extra, &[])
}

fn generate_with_env(extra: &[&str], env: &[(&str, &str)]) -> Backup {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let base = ["backup", "generate", "--dir", dir_text, "--size", "6MiB"];
    let out = obagent_env(&[&base[..], extra].concat(), env);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let uri = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no '{label}' in {text}"))
    };
    Backup {
        data: uri("data backup uri:"),
        archive: uri("archive log uri:"),
        dir,
    }
}

#[test]
fn preview_and_windows_print_one_json_document() {
    let backup = generate();
    let source = backup.json_source();
    let items = one_json_document(&obagent(&[&["restore", "preview"], &source[..]].concat()));
    let items = items.as_array().unwrap();
    assert_eq!(items[0]["backupType"], "BACKUP_SET");
    assert_eq!(items.last().unwrap()["backupType"], "BACKUP_PIECE");
    assert!(items
        .iter()
        .all(|item| item["backupDest"].as_str().unwrap().starts_with("file:///")));

    let windows = one_json_document(&obagent(&[&["restore", "windows"], &source[..]].concat()));
    assert_eq!(windows["restore_windows"].as_array().unwrap().len(), 1);
}

/// One restore, then what a user does with it; the steps run in order on tenant t1.
#[test]
fn restore_start_then_tenant_commands_as_a_user_would() {
    let backup = generate();
    let state = tempfile::tempdir().unwrap();
    let data_dir = state.path().to_str().unwrap();
    let dag = restore_start_json(&backup, data_dir);

    let tenants = one_json_document(&obagent(&[
        "tenant",
        "list",
        "--data-dir",
        data_dir,
        "--json",
    ]));
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

    tenant_show_digest_is_the_post_check_one(data_dir, &dag);

    // The same tenant again: refused, naming the field, printed once.
    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        data_dir,
        "--data-uri",
        &backup.data,
        "--archive-uri",
        &backup.archive,
        "--tenant",
        "t1",
    ]);
    fails_printing_once(&out, "Tenant t1 already exists");
    assert!(
        stderr(&out).contains("restore_tenant_name"),
        "{}",
        stderr(&out)
    );
    tenant_drop_follows_the_agents_policy(data_dir);
}

/// `tenant drop` applies the agent's drop policy (`sys` refused) and drops a restored
/// tenant with its pools.
fn tenant_drop_follows_the_agents_policy(data_dir: &str) {
    let store = ["--data-dir", data_dir, "--json"];
    let with_store = |args: &[&str]| obagent(&[args, &store[..]].concat());
    fails_printing_once(
        &with_store(&["tenant", "drop", "sys"]),
        "System tenant is not allowed to perform this operation",
    );
    let before = one_json_document(&with_store(&["tenant", "list"]));
    let t1 = before
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t1");
    let t1_id = t1.expect("t1 restored")["id"].clone();
    let dropped = one_json_document(&with_store(&["tenant", "drop", "t1", "--drop-pools"]));
    assert_eq!(dropped["dropped"], true);
    let tenants = one_json_document(&with_store(&["tenant", "list"]));
    assert!(
        !tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "t1"),
        "{tenants}"
    );
    let pools = one_json_document(&with_store(&["pool", "list"]));
    assert!(
        !pools
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["tenant_id"] == t1_id),
        "{pools}"
    );
}

/// `restore start --json` of tenant t1 on two zones: the final DagDetailDTO is the only
/// thing on stdout; the progress and the summary are on stderr. Returns the DTO.
fn restore_start_json(backup: &Backup, data_dir: &str) -> Value {
    let out = obagent(&[
        "restore",
        "start",
        "--data-dir",
        data_dir,
        "--data-uri",
        &backup.data,
        "--archive-uri",
        &backup.archive,
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
    let dag = one_json_document(&out);
    assert_eq!(dag["name"], "Restore backup_t1");
    assert_eq!(dag["state"], "SUCCEED");
    let progress = stderr(&out);
    assert!(
        progress.contains("restore of tenant 't1': SUCCEED+RUN"),
        "{progress}"
    );
    // Progress lines were shown for every stage.
    assert!(
        progress.contains("Upgrade tenant: SUCCEED+RUN"),
        "{progress}"
    );
    dag
}

/// `tenant show --digest` prints the digest the restore's Post check recorded in the
/// DAG (`tenant_digest`), in JSON and in the table.
fn tenant_show_digest_is_the_post_check_one(data_dir: &str, dag: &Value) {
    let recorded = find_key(dag, "tenant_digest")
        .unwrap_or_else(|| panic!("no tenant_digest in the restore DAG: {dag:#}"));
    let recorded = recorded["sha256"].as_str().unwrap();
    let shown = one_json_document(&obagent(&[
        "tenant",
        "show",
        "t1",
        "--digest",
        "--data-dir",
        data_dir,
        "--json",
    ]));
    assert_eq!(shown["digest"], recorded);
    let out = obagent(&["tenant", "show", "t1", "--digest", "--data-dir", data_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("digest:       {recorded}")),
        "{}",
        stdout(&out)
    );
}

/// The first value under `key` anywhere in `value`.
fn find_key<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|child| find_key(child, key))),
        Value::Array(items) => items.iter().find_map(|child| find_key(child, key)),
        _ => None,
    }
}

#[test]
fn every_json_command_of_the_embedded_cluster_prints_one_document() {
    let state = tempfile::tempdir().unwrap();
    let data_dir = state.path().to_str().unwrap();
    let store = ["--data-dir", data_dir, "--json"];
    let with_store = |args: &[&str]| obagent(&[args, &store[..]].concat());
    let created = one_json_document(&with_store(&[
        "unit-config",
        "create",
        "--name",
        "u2",
        "--memory-size",
        "2G",
        "--max-cpu",
        "2",
    ]));
    assert_eq!(created["name"], "u2");
    let configs = one_json_document(&with_store(&["unit-config", "list"]));
    assert!(configs
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "u2"));
    let dropped = one_json_document(&with_store(&["unit-config", "drop", "u2"]));
    assert_eq!(dropped["dropped"], true);
    let tenants = one_json_document(&with_store(&["tenant", "list"]));
    assert!(tenants.is_array());
    let pools = one_json_document(&with_store(&["pool", "list"]));
    assert!(pools.is_array());
    let dropped = one_json_document(&with_store(&["tenant", "drop", "ghost", "--drop-pools"]));
    assert_eq!(dropped["dropped"], false);
}

#[test]
fn allow_root_and_the_old_allowed_root_are_taken_by_every_command_with_roots() {
    let backup = generate();
    let state = tempfile::tempdir().unwrap();
    let data_dir = state.path().to_str().unwrap();
    for flag in ["--allow-root", "--allowed-root"] {
        let roots = [flag, backup.root()];
        for command in ["preview", "windows"] {
            let source = ["--data-uri", &backup.data, "--archive-uri", &backup.archive];
            let out = obagent(&[&["restore", command], &source[..], &roots[..]].concat());
            assert!(out.status.success(), "{command} {flag}: {}", stderr(&out));
        }
        // Parsed, then refused for a reason past the options: the sys tenant.
        let start = [
            "restore",
            "start",
            "--data-dir",
            data_dir,
            "--data-uri",
            &backup.data,
            "--tenant",
            "sys",
        ];
        let out = obagent(&[&start[..], &roots[..]].concat());
        fails_printing_once(&out, "System tenant is not allowed");
        // Parsed, then refused before binding: the password file is missing.
        let missing = state.path().join("no-password-file");
        let serve = [
            "serve",
            "--data-dir",
            data_dir,
            "--password-file",
            missing.to_str().unwrap(),
        ];
        let out = obagent(&[&serve[..], &roots[..]].concat());
        fails_printing_once(&out, "reading the password file");
    }
}

#[test]
fn bad_input_fails_with_a_message_naming_the_problem_once() {
    let state = tempfile::tempdir().unwrap();
    let data_dir = state.path().to_str().unwrap();
    let out = obagent(&["restore", "preview", "--data-uri", "s3://bucket/backup"]);
    fails_printing_once(&out, "unsupported storage type");

    let start = |extra: &[&str]| {
        let args = ["restore", "start", "--data-dir", data_dir];
        obagent(&[&args[..], extra].concat())
    };
    let out = start(&["--data-uri", "file:///nonexistent/data", "--tenant", "sys"]);
    fails_printing_once(&out, "System tenant is not allowed");
    assert!(
        stderr(&out).contains("restore_tenant_name"),
        "{}",
        stderr(&out)
    );

    let out = start(&[
        "--data-uri",
        "file:///x",
        "--tenant",
        "t",
        "--zone",
        "z1:s1",
    ]);
    fails_printing_once(&out, "--zone 'z1:s1'");

    // Refused by the backup: the library error shows its cause in its own message.
    let backup = generate();
    let out = start(&[
        "--data-uri",
        &backup.data,
        "--archive-uri",
        &backup.archive,
        "--tenant",
        "t2",
        "--scn",
        "5",
    ]);
    fails_printing_once(&out, "no full backup set can be used");
    let out = start(&["--data-uri", "file:///nonexistent/data", "--tenant", "t3"]);
    fails_printing_once(&out, "refusing '/nonexistent/data'");
}

/// Backup passwords come from files, never from the command line, and are never shown.
#[test]
fn passwords_from_files_encrypt_and_decrypt_and_are_never_printed() {
    const PASSWORD: &str = "Backup-Pa55-from-file";
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let decryption_file = secrets.path().join("decryption");
    std::fs::write(&decryption_file, format!("wrong-one\n\n{PASSWORD}\r\n")).unwrap();
    let password_option = ["--password-file", password_file.to_str().unwrap()];
    let backup = generate_with(&[&password_option[..], &["--kdf-iterations", "1000"]].concat());
    let source = backup.json_source();
    let preview = |extra: &[&str]| obagent(&[&["restore", "preview"], &source[..], extra].concat());

    let refused = preview(&[]);
    assert!(
        !refused.status.success(),
        "an encrypted set needs its password"
    );
    let items = one_json_document(&preview(&[
        "--decryption-file",
        decryption_file.to_str().unwrap(),
    ]));
    assert_eq!(items[0]["backupType"], "BACKUP_SET");

    let state = tempfile::tempdir().unwrap();
    let start = obagent(&[
        "restore",
        "start",
        "--data-dir",
        state.path().to_str().unwrap(),
        "--data-uri",
        &backup.data,
        "--archive-uri",
        &backup.archive,
        "--tenant",
        "enc",
        "--decryption-file",
        decryption_file.to_str().unwrap(),
        "--json",
    ]);
    let dag = one_json_document(&start);
    assert_eq!(dag["state"], "SUCCEED", "{dag}");
    for out in [&refused, &start] {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(!text.contains(PASSWORD), "a password is shown: {text}");
    }
}

#[test]
fn passwords_from_the_environment_encrypt_and_decrypt_and_are_never_printed() {
    const PASSWORD: &str = "Backup-Pa55-from-env";
    let backup = generate_with_env(
        &["--kdf-iterations", "1000"],
        &[("OBAGENT_BACKUP_PASSWORD", PASSWORD)],
    );
    let source = backup.json_source();
    let preview =
        |env: &[(&str, &str)]| obagent_env(&[&["restore", "preview"], &source[..]].concat(), env);
    let refused = preview(&[("OBAGENT_DECRYPTION", "wrong-one")]);
    assert!(
        !refused.status.success(),
        "the set was encrypted from the environment"
    );
    let several = format!("wrong-one\r\n\n{PASSWORD}\n");
    let accepted = preview(&[("OBAGENT_DECRYPTION", &several)]);
    let items = one_json_document(&accepted);
    assert_eq!(items[0]["backupType"], "BACKUP_SET");
    let help = obagent_env(
        &["backup", "generate", "--help"],
        &[("OBAGENT_BACKUP_PASSWORD", PASSWORD)],
    );
    assert!(stdout(&help).contains("OBAGENT_BACKUP_PASSWORD"));
    for out in [&refused, &accepted, &help] {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(!text.contains(PASSWORD), "a password is shown: {text}");
    }
}
