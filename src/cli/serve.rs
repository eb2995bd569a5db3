//! `obagent serve`: the obshell-compatible agent daemon (engine + embedded cluster +
//! HTTP API). Stops accepting on SIGTERM or Ctrl-C, then shuts the agent down; DAGs
//! still running resume at the next start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use obrestore_restore::ClusterConfig;
use obrestore_server::{ClusterMode, Daemon, DaemonConfig};

/// Options of `obagent serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Agent data directory (database, keys); created on first start.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:2886")]
    pub listen: SocketAddr,
    /// File holding the API password (one trailing newline is ignored). Without it the
    /// password comes from the environment variable OBAGENT_PASSWORD; with neither, the
    /// API needs no auth. The password is never taken as a command-line value.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Directory that `file://` backup URIs may point into (repeatable).
    // `--allowed-root`: the spelling `restore preview|windows` had, still accepted (hidden).
    #[arg(long = "allow-root", alias = "allowed-root", value_name = "DIR")]
    pub allow_roots: Vec<PathBuf>,
    /// Sub-tasks running at once across all DAGs.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Seconds running sub-tasks get to finish on shutdown.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// CPU cores of each server of the embedded cluster (one per zone, z1..z3). Used
    /// when the data dir is created; an existing cluster keeps its servers.
    #[arg(long, default_value_t = 16.0, value_parser = parse_server_cpu)]
    pub server_cpu: f64,
    /// Memory of each server of the embedded cluster, e.g. 64GiB. Used when the data
    /// dir is created.
    #[arg(long, default_value = "64GiB", value_parser = parse_server_memory)]
    pub server_memory: u64,
    /// Join a cluster of agents on etcd: `etcd://HOST:PORT[,HOST:PORT...]`. One agent
    /// is elected maintainer and runs the cluster's DAGs; the others forward the API to
    /// it. Needs `--zone` and `--shared-dir`.
    #[arg(long, value_name = "etcd://HOST:PORT[,...]", value_parser = parse_cluster_endpoints,
          requires_all = ["zone", "shared_dir"])]
    pub cluster: Option<Endpoints>,
    /// This agent's zone in the cluster (one of the embedded cluster's zones, z1..z3).
    #[arg(long, requires = "cluster")]
    pub zone: Option<String>,
    /// Directory every agent of the cluster mounts (tenant rows, keys): stands in for
    /// OceanBase's shared storage.
    #[arg(long, requires = "cluster")]
    pub shared_dir: Option<PathBuf>,
    /// Name of the cluster: its keys in etcd live under `/obrestore/<name>/`.
    #[arg(long, default_value = "obcluster", requires = "cluster")]
    pub cluster_name: String,
    /// Seconds the maintainer's lease lives without renewal (the longest a dead
    /// maintainer delays a takeover).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60), requires = "cluster")]
    pub lease_ttl_secs: u64,
}

/// The etcd endpoints of `--cluster` (one value, comma-separated members).
#[derive(Debug, Clone)]
pub struct Endpoints(pub Vec<String>);

/// `etcd://HOST:PORT[,HOST:PORT...]` → the endpoints.
fn parse_cluster_endpoints(text: &str) -> Result<Endpoints, String> {
    let usage = "etcd://HOST:PORT[,HOST:PORT...]";
    let Some(list) = text.trim().strip_prefix("etcd://") else {
        return Err(format!("expected {usage}"));
    };
    let mut endpoints = Vec::new();
    for endpoint in list.split(',') {
        let endpoint = endpoint.trim();
        let valid = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid || endpoint.contains('/') {
            return Err(format!("'{endpoint}' is not HOST:PORT; expected {usage}"));
        }
        endpoints.push(endpoint.to_string());
    }
    Ok(Endpoints(endpoints))
}

/// The most cores or bytes of one server a user may seed (1,048,576 cores, 1 PiB).
const MAX_SERVER_CPU: f64 = (1u64 << 20) as f64;
const MAX_SERVER_MEMORY: u64 = 1 << 50;

fn parse_server_cpu(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(cpu) if (1.0..=MAX_SERVER_CPU).contains(&cpu) => Ok(cpu),
        _ => Err(format!("a number of cores from 1 to {MAX_SERVER_CPU}")),
    }
}

fn parse_server_memory(text: &str) -> Result<u64, String> {
    match obrestore_backup::generate::parse_size(text) {
        Ok(bytes) if (1 << 30..=MAX_SERVER_MEMORY).contains(&bytes) => Ok(bytes),
        _ => Err("a size from 1GiB to 1PiB, e.g. 64GiB".to_string()),
    }
}

/// The password from `--password-file`, else `OBAGENT_PASSWORD`, else none.
///
/// # Errors
/// The file cannot be read.
pub fn read_password(file: Option<&PathBuf>) -> anyhow::Result<Option<obrestore_restore::Secret>> {
    if let Some(path) = file {
        let password = crate::cli::secrets::read_secret_file(path)?;
        return Ok(Some(obrestore_restore::Secret::new(password)));
    }
    Ok(std::env::var("OBAGENT_PASSWORD")
        .ok()
        .map(obrestore_restore::Secret::new))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("obagent: shutting down");
}

/// Runs the daemon until SIGTERM or Ctrl-C.
///
/// # Errors
/// The daemon could not start or the listener failed.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let password = read_password(args.password_file.as_ref())?;
    let mut config = DaemonConfig::new(&args.data_dir);
    config.listen = args.listen;
    config.password = password;
    config.allowed_roots = args.allow_roots;
    config.worker_limit = args.workers;
    config.cluster = ClusterConfig::uniform(3, args.server_cpu, args.server_memory);
    if let Some(Endpoints(endpoints)) = args.cluster {
        config.cluster_mode = Some(ClusterMode {
            endpoints,
            name: args.cluster_name,
            zone: args.zone.unwrap_or_default(),
            shared_dir: args.shared_dir.unwrap_or_default(),
            lease_ttl: Duration::from_secs(args.lease_ttl_secs),
        });
    }
    let auth = if config.password.is_some() {
        "required"
    } else {
        "off (no password)"
    };
    let clustered = config
        .cluster_mode
        .as_ref()
        .map(|mode| format!("cluster '{}', zone {}", mode.name, mode.zone));
    let daemon = Daemon::bind(config).await.context("starting the agent")?;
    match (daemon.agent(), clustered) {
        (Some(agent), _) => {
            let unfinished = agent.engine().unfinished_dags(None, false)?.len();
            println!(
                "obagent listening on http://{} (auth {auth}, {unfinished} unfinished dag(s))",
                daemon.local_addr()
            );
        }
        (None, clustered) => println!(
            "obagent listening on http://{} (auth {auth}, {})",
            daemon.local_addr(),
            clustered.unwrap_or_default()
        ),
    }
    daemon
        .run(
            shutdown_signal(),
            Duration::from_secs(args.shutdown_grace_secs),
        )
        .await
        .context("serving the API")
}
