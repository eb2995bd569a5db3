//! `obagent restore start`: a restore into the embedded cluster with live progress, or
//! submitted to a running agent (`--server`) and watched.
//!
//! Invariant: the arguments are checked before any state is opened or created, and a
//! refusal is returned (not printed), naming the field.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use obrestore_dag::{DagDetailDto, State};
use obrestore_restore::{RestoreError, RestoreParam};
use serde_json::{json, Value};

use super::progress::{follow, open_agent, summary_text};
use crate::cli::client::{ensure_succeeded, remote_start_restore, watch_dag, ClientConn};
use crate::cli::output::print_json;
use crate::cli::secrets::DecryptionArgs;

/// Options of `obagent restore start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The agent's state directory (created on first use).
    #[arg(long, env = "OBAGENT_DATA_DIR", default_value = "obagent-data")]
    pub data_dir: PathBuf,
    /// Data backup destination, file:///.../data.
    #[arg(long)]
    pub data_uri: String,
    /// Archive log destination (default: the data uri, as in obshell).
    #[arg(long)]
    pub archive_uri: Option<String>,
    /// Name of the tenant to create.
    #[arg(long)]
    pub tenant: String,
    /// Restore up to this SCN (inclusive).
    #[arg(long, conflicts_with = "timestamp")]
    pub scn: Option<u64>,
    /// Restore up to this RFC 3339 timestamp (inclusive).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Data restore concurrency (0: the unit config's max_cpu).
    #[arg(long, default_value_t = 0)]
    pub concurrency: u32,
    /// HA high-priority thread score (0: 8 threads).
    #[arg(long)]
    pub ha_high_thread_score: Option<u32>,
    #[command(flatten)]
    pub decryption: DecryptionArgs,
    /// `zone:unit_config:unit_num[:replica_type]` (repeat per zone).
    #[arg(long = "zone", value_name = "ZONE:UNIT:NUM", default_values_t = vec!["z1:s1:1".to_string()])]
    pub zones: Vec<String>,
    /// Primary zone (default RANDOM).
    #[arg(long)]
    pub primary_zone: Option<String>,
    /// Directories backups may be read from (default: the given destinations).
    // `--allowed-root`: the spelling `restore preview|windows` had, still accepted (hidden).
    #[arg(long = "allow-root", alias = "allowed-root", value_name = "DIR")]
    pub allow_roots: Vec<PathBuf>,
    /// Engine worker limit.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Print the final DagDetailDTO as one JSON document on stdout (the summary goes to
    /// stderr).
    #[arg(long)]
    pub json: bool,
    /// Start the restore on a running agent (`obagent serve`) instead of embedded.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The agent's API password file (with --server; else env OBAGENT_PASSWORD).
    #[arg(long, requires = "server")]
    pub password_file: Option<PathBuf>,
}

/// Parses `zone:unit_config:unit_num[:replica_type]`.
///
/// # Errors
/// The spec does not have three or four parts or unit_num is not a number.
fn zone_param(spec: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, unit, num) = match parts.as_slice() {
        [name, unit, num] | [name, unit, num, _] => (name, unit, num),
        _ => bail!("--zone '{spec}': expected zone:unit_config:unit_num[:replica_type]"),
    };
    let num: u64 = num
        .parse()
        .with_context(|| format!("--zone '{spec}': unit_num must be a number"))?;
    let mut zone = json!({"name": name, "unit_config_name": unit, "unit_num": num});
    if let Some(replica) = parts.get(3) {
        zone["replica_type"] = json!(replica);
    }
    Ok(zone)
}

fn uri_dir(uri: &str) -> Option<PathBuf> {
    match obrestore_backup::StorageUri::parse(uri).ok()? {
        obrestore_backup::StorageUri::File(path) => Some(path),
    }
}

/// `obagent restore start`: restore into the embedded cluster with live progress, or
/// on the agent at `--server`.
///
/// # Errors
/// Invalid parameters, a refused restore, or a restore that did not succeed.
pub async fn run_start(args: StartArgs) -> anyhow::Result<()> {
    // Arguments first: a typo must not create or open any state.
    let param = restore_param(&args)?;
    if let Some(server) = &args.server {
        let conn = ClientConn {
            server: server.clone(),
            password_file: args.password_file.clone(),
        };
        return start_remote(&conn, &param, args.json).await;
    }
    start_embedded(&args, param).await
}

/// The restore request the options describe.
fn restore_param(args: &StartArgs) -> anyhow::Result<RestoreParam> {
    let zones = args
        .zones
        .iter()
        .map(|z| zone_param(z))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut body = json!({
        "data_backup_uri": args.data_uri,
        "restore_tenant_name": args.tenant,
        "zone_list": zones,
        "concurrency": args.concurrency,
        "decryption": args.decryption.passwords()?,
    });
    if let Some(uri) = &args.archive_uri {
        body["archive_log_uri"] = json!(uri);
    }
    if let Some(scn) = args.scn {
        body["scn"] = json!(scn);
    }
    if let Some(timestamp) = &args.timestamp {
        body["timestamp"] = json!(timestamp);
    }
    if let Some(score) = args.ha_high_thread_score {
        body["ha_high_thread_score"] = json!(score);
    }
    if let Some(zone) = &args.primary_zone {
        body["primary_zone"] = json!(zone);
    }
    serde_json::from_value(body).context("building the restore parameters")
}

/// `--allow-root`s, or else the named destinations that exist (one that does not is
/// reported by the restore itself, naming the field).
fn allowed_roots(args: &StartArgs) -> Vec<PathBuf> {
    if !args.allow_roots.is_empty() {
        return args.allow_roots.clone();
    }
    let mut roots = Vec::new();
    roots.extend(uri_dir(&args.data_uri).filter(|dir| dir.exists()));
    roots.extend(
        args.archive_uri
            .as_deref()
            .and_then(uri_dir)
            .filter(|dir| dir.exists()),
    );
    roots
}

/// Restores in the embedded agent: live progress, then the summary (stdout, or stderr
/// under `--json`) and the final DagDetailDTO with `--json`.
async fn start_embedded(args: &StartArgs, param: RestoreParam) -> anyhow::Result<()> {
    // The backup's metadata is read while the agent's state is created (sled, the
    // cluster, the engine's commit log: mostly device syncs), not only after it; the
    // restore's planning does not wait for it (it reads what is not cached yet itself).
    drop(read_ahead_metadata(args));
    let agent = open_agent(&args.data_dir, allowed_roots(args), args.workers).await?;
    let started = Instant::now();
    let events = agent.engine().subscribe();
    let dag = agent.start_restore(param).await.map_err(naming_the_field)?;
    let dag_id = agent.engine().find_dag(&dag.id)?.id;
    eprintln!("restore dag {} ({}) submitted", dag.id, dag.name);
    let report = follow(&agent, dag_id, &args.tenant, events).await?;
    let detail = agent.engine().dag_detail(dag_id, true)?;
    let summary = summary_text(&agent, &args.tenant, &report, started.elapsed())?;
    if args.json {
        eprint!("{summary}");
        print_json(&detail)?;
    } else {
        print!("{summary}");
    }
    agent.shutdown(Duration::from_secs(5)).await;
    if report.dag.state != State::Succeed {
        bail!(
            "restore ended {}+{}; see `obagent restore start --json` or the DAG's sub-task logs",
            report.dag.state,
            report.dag.operator
        );
    }
    Ok(())
}

/// [`obrestore_restore::prepare::read_ahead_metadata`] of the restore's destinations,
/// on the blocking pool.
fn read_ahead_metadata(args: &StartArgs) -> tokio::task::JoinHandle<()> {
    let roots = obrestore_backup::AllowedRoots::new(allowed_roots(args));
    let (data_uri, archive_uri) = (args.data_uri.clone(), args.archive_uri.clone());
    tokio::task::spawn_blocking(move || {
        if let Ok(roots) = roots {
            obrestore_restore::prepare::read_ahead_metadata(
                &data_uri,
                archive_uri.as_deref(),
                &roots,
            );
        }
    })
}

/// Submits the restore to the agent at `conn` and watches it; the final DAG as JSON
/// with `--json`.
async fn start_remote(conn: &ClientConn, param: &RestoreParam, json: bool) -> anyhow::Result<()> {
    let dag = remote_start_restore(conn, param).await?;
    eprintln!(
        "restore dag {} ({}) submitted to {}",
        dag.id, dag.name, conn.server
    );
    let dag: DagDetailDto = watch_dag(conn, &dag.id).await?;
    let line = format!(
        "dag {} '{}' finished {}+{}",
        dag.id, dag.name, dag.state, dag.operator
    );
    if json {
        eprintln!("{line}");
        print_json(&dag)?;
    } else {
        println!("{line}");
    }
    ensure_succeeded(&dag)
}

/// obshell's validation messages do not name the field ("Tenant t1 already exists");
/// on the command line the field leads the message, as the HTTP API's `subErrors` do.
fn naming_the_field(error: RestoreError) -> anyhow::Error {
    if let RestoreError::Param(param) = &error {
        if let Some(field) = param.field() {
            return anyhow::anyhow!("{field}: {error}");
        }
    }
    error.into()
}
