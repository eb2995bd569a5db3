//! `obagent restore start` (embedded) and the live restore progress shared with `demo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use obrestore_dag::record::DagRecord;
use obrestore_dag::{AgentInfo, State, Subject};
use obrestore_restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreError, RestoreParam};
use serde_json::{json, Value};

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
    /// Password of an encrypted backup set (repeat for several).
    #[arg(long = "decryption", value_name = "PW")]
    pub decryption: Vec<String>,
    /// `zone:unit_config:unit_num[:replica_type]` (repeat per zone).
    #[arg(long = "zone", value_name = "ZONE:UNIT:NUM", default_values_t = vec!["z1:s1:1".to_string()])]
    pub zones: Vec<String>,
    /// Primary zone (default RANDOM).
    #[arg(long)]
    pub primary_zone: Option<String>,
    /// Directories backups may be read from (default: the given destinations).
    #[arg(long = "allow-root", value_name = "DIR")]
    pub allow_roots: Vec<PathBuf>,
    /// Engine worker limit.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Print the final DagDetailDTO as JSON.
    #[arg(long)]
    pub json: bool,
    /// Start the restore on a running agent (`obagent serve`) instead of embedded.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The agent's API password file (with --server; else env OBAGENT_PASSWORD).
    #[arg(long, requires = "server")]
    pub password_file: Option<PathBuf>,
}

/// Options of `obagent restore overview`.
#[derive(Debug, Args)]
pub struct OverviewArgs {
    /// Tenant name.
    pub tenant: String,
    #[command(flatten)]
    pub conn: crate::cli::client::ClientConn,
}

/// `obagent restore overview TENANT`: the restore progress/history from a running agent.
///
/// # Errors
/// The agent cannot be reached or refuses.
pub fn run_overview(args: OverviewArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match crate::cli::client::remote_restore_overview(&args.conn, &args.tenant).await? {
            Some(overview) => println!("{}", serde_json::to_string_pretty(&overview)?),
            None => bail!("tenant '{}' has no restore", args.tenant),
        }
        Ok(())
    })
}

/// Parses `zone:unit_config:unit_num[:replica_type]`.
///
/// # Errors
/// The spec does not have three or four parts or unit_num is not a number.
pub fn zone_param(spec: &str) -> anyhow::Result<Value> {
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

/// `obagent restore start`: restore into the embedded cluster with live progress.
///
/// # Errors
/// Invalid parameters, a refused restore, or a restore that did not succeed.
pub fn run_start(args: StartArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut roots = args.allow_roots.clone();
        if roots.is_empty() {
            // The destinations the user named; one that does not exist is reported by
            // the restore itself, naming the field.
            roots.extend(uri_dir(&args.data_uri).filter(|dir| dir.exists()));
            roots.extend(args.archive_uri.as_deref().and_then(uri_dir).filter(|dir| dir.exists()));
        }
        // Arguments first: a typo must not create or open any state.
        let zones = args.zones.iter().map(|z| zone_param(z)).collect::<anyhow::Result<Vec<_>>>()?;
        let mut body = json!({
            "data_backup_uri": args.data_uri,
            "restore_tenant_name": args.tenant,
            "zone_list": zones,
            "concurrency": args.concurrency,
            "decryption": args.decryption,
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
        let param: RestoreParam = serde_json::from_value(body).context("building the restore parameters")?;
        if let Some(server) = &args.server {
            let conn = crate::cli::client::ClientConn {
                server: server.clone(),
                password_file: args.password_file.clone(),
            };
            let dag = crate::cli::client::remote_start_restore(&conn, &param).await?;
            eprintln!("restore dag {} ({}) submitted to {server}", dag.id, dag.name);
            return crate::cli::client::watch_dag(&conn, &dag.id).await;
        }
        let agent = open_agent(&args.data_dir, roots, args.workers).await?;
        let started = Instant::now();
        let events = agent.engine().subscribe();
        let dag = agent.start_restore(param).await.map_err(naming_the_field)?;
        let dag_id = agent.engine().find_dag(&dag.id)?.id;
        eprintln!("restore dag {} ({}) submitted", dag.id, dag.name);
        let report = follow(&agent, dag_id, &args.tenant, events).await?;
        let detail = agent.engine().dag_detail(dag_id, true)?;
        print_summary(&agent, &args.tenant, &report, started.elapsed())?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&detail)?);
        }
        agent.shutdown(Duration::from_secs(5)).await;
        if report.dag.state != State::Succeed {
            bail!("restore ended {}+{}; see `obagent restore start --json` or the DAG's sub-task logs", report.dag.state, report.dag.operator);
        }
        Ok(())
    })
}

/// Opens the embedded agent in `data_dir`.
///
/// # Errors
/// The state cannot be opened.
pub async fn open_agent(
    data_dir: &Path,
    allowed_roots: Vec<PathBuf>,
    workers: usize,
) -> anyhow::Result<RestoreAgent> {
    RestoreAgent::open(AgentConfig {
        data_dir: data_dir.to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots,
        worker_limit: workers,
        cluster: ClusterConfig::default(),
    })
    .await
    .with_context(|| format!("opening the agent state in {}", data_dir.display()))
}

/// What a followed restore did.
#[derive(Debug)]
pub struct Report {
    pub dag: DagRecord,
    /// Node name → seconds, in the order nodes finished.
    pub stage_seconds: Vec<(String, f64)>,
}

/// Shows live progress (stage bar, bytes bar, one line per node transition) until the
/// DAG settles.
///
/// # Errors
/// The engine or the cluster cannot be read.
/// `events` must be subscribed before the DAG was submitted, so no transition is missed.
pub async fn follow(
    agent: &RestoreAgent,
    dag_id: u64,
    tenant: &str,
    mut events: tokio::sync::broadcast::Receiver<obrestore_dag::Event>,
) -> anyhow::Result<Report> {
    let engine = agent.engine();
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let stages = bars.add(ProgressBar::new(1));
    stages.set_style(
        ProgressStyle::with_template("{spinner} stages [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let bytes = bars.add(ProgressBar::new(1));
    bytes.set_style(
        ProgressStyle::with_template(
            "  data   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )?
        .progress_chars("=> "),
    );
    let mut started: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut stage_seconds = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut on_event = |event: obrestore_dag::Event| -> anyhow::Result<()> {
        if event.dag_id != dag_id {
            return Ok(());
        }
        if let Subject::Node { node_id } = event.subject {
            let name = engine
                .records()
                .node(node_id)?
                .map(|n| n.name)
                .unwrap_or_default();
            match event.state {
                State::Running => {
                    started.insert(node_id, Instant::now());
                }
                State::Succeed | State::Failed => {
                    let seconds = started
                        .remove(&node_id)
                        .map_or(0.0, |t| t.elapsed().as_secs_f64());
                    if event.state == State::Succeed {
                        stage_seconds.push((name.clone(), seconds));
                    }
                }
                _ => {}
            }
            bars.suspend(|| {
                eprintln!(
                    "[stage {}/{}] {name}: {}+{}",
                    event.stage, event.max_stage, event.state, event.operator
                )
            });
        }
        Ok(())
    };
    loop {
        tokio::select! {
            event = events.recv() => {
                if let Ok(event) = event {
                    on_event(event)?;
                }
            }
            _ = tick.tick() => {}
        }
        let dag = engine.dag_record(dag_id)?;
        let nodes = engine.records().nodes_of(&dag)?;
        stages.set_length(nodes.len() as u64);
        stages.set_position(nodes.iter().filter(|n| n.state == State::Succeed).count() as u64);
        let running: Vec<&str> = nodes
            .iter()
            .filter(|n| n.state == State::Running)
            .map(|n| n.name.as_str())
            .collect();
        stages.set_message(running.join(", "));
        if let Some(overview) = agent.restore_progress(tenant)? {
            let overview = &overview.job;
            bytes.set_length(overview.total_bytes.max(1));
            bytes.set_position(overview.finish_bytes);
            bytes.set_message(format!(
                "ls {}/{}",
                overview.finish_ls_count, overview.ls_count
            ));
        }
        if dag.state.is_finished() {
            // Events are broadcast just after their batch is durable, so the store can
            // show the end first: take events up to the DAG's own final one.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
                let last = event.dag_id == dag_id
                    && event.subject == Subject::Dag
                    && event.state.is_finished();
                on_event(event)?;
                if last {
                    break;
                }
            }
            stages.set_position(nodes.iter().filter(|n| n.state == State::Succeed).count() as u64);
            stages.finish();
            bytes.finish();
            return Ok(Report { dag, stage_seconds });
        }
    }
}

/// Prints sets, pieces, bytes, MB/s and time per stage.
///
/// # Errors
/// The cluster cannot be read.
pub fn print_summary(
    agent: &RestoreAgent,
    tenant: &str,
    report: &Report,
    elapsed: Duration,
) -> anyhow::Result<()> {
    println!(
        "restore of tenant '{tenant}': {}+{} in {:.2} s",
        report.dag.state,
        report.dag.operator,
        elapsed.as_secs_f64()
    );
    if let Some(overview) = agent.restore_progress(tenant)? {
        let overview = &overview.job;
        println!(
            "  restore_scn      {} ({})",
            overview.restore_scn,
            obrestore::restore::RestoreOverview::scn_display(overview.restore_scn)
        );
        println!(
            "  backup sets      {}",
            overview.backup_set_list.join("\n                   ")
        );
        println!(
            "  backup pieces    {}",
            overview.backup_piece_list.join("\n                   ")
        );
        println!(
            "  log streams      {}/{}, tablets {}/{}",
            overview.finish_ls_count,
            overview.ls_count,
            overview.finish_tablet_count,
            overview.tablet_count
        );
        let mb = overview.finish_bytes as f64 / 1e6;
        println!(
            "  data restored    {} ({:.1} MB/s over the whole restore)",
            obrestore::restore::agent::human_bytes(overview.finish_bytes),
            mb / elapsed.as_secs_f64().max(1e-9)
        );
    }
    println!("  time per stage:");
    for (name, seconds) in &report.stage_seconds {
        println!("    {name:<32} {seconds:>8.3} s");
    }
    Ok(())
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
