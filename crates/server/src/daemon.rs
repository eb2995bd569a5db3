//! The agent daemon: [`RestoreAgent`] + the agent key + [`crate::app`] on a socket.
//! `obagent serve` and `examples/obshell_daemon.rs` are thin wrappers around it. In
//! cluster mode (`daemon/cluster.rs`) the agent is opened only while this daemon is the
//! elected maintainer; otherwise it forwards the API to the maintainer.

mod cluster;

pub use cluster::ClusterMode;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::{AgentInfo, SystemClock};
use obrestore_restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreError, Secret};

use crate::app::{app, AppState, ServerError};
use crate::auth::{AgentKey, AuthConfig, Authenticator, KeyError, LimiterConfig};
use crate::listen::Limits;

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Agent state: `obrestore.sled`, `agent.key`, `api_rsa_key.pem`.
    pub data_dir: PathBuf,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The API password (`None`: no auth). Never logged.
    pub password: Option<Secret>,
    /// `file://` backup URIs must resolve inside these directories.
    pub allowed_roots: Vec<PathBuf>,
    /// The engine's global worker limit.
    pub worker_limit: usize,
    /// Seed of the embedded cluster on first start.
    pub cluster: ClusterConfig,
    /// Header size, read timeouts and connection count of the HTTP server.
    pub http: Limits,
    /// Join a cluster of agents on etcd instead of running alone.
    pub cluster_mode: Option<ClusterMode>,
}

impl DaemonConfig {
    /// Defaults: 127.0.0.1:2886, no password, no roots, 8 workers, zones z1..z3.
    pub fn new(data_dir: impl Into<PathBuf>) -> DaemonConfig {
        DaemonConfig {
            data_dir: data_dir.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2886),
            password: None,
            allowed_roots: Vec::new(),
            worker_limit: 8,
            cluster: ClusterConfig::default(),
            http: Limits::default(),
            cluster_mode: None,
        }
    }
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("creating the data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("opening the agent: {0}")]
    Agent(#[from] RestoreError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("joining the cluster: {0}")]
    Cluster(String),
    /// An `--allow-root` directory does not exist or cannot be resolved: checked before
    /// anything else, alone or in a cluster (where it would otherwise fail every term).
    #[error("--allow-root: {0}")]
    Roots(#[from] obrestore_backup::UriError),
}

/// One agent on its own, or one agent of a cluster.
enum Mode {
    Single(RestoreAgent),
    Cluster(Box<cluster::Node>),
}

/// A bound, not yet serving daemon.
pub struct Daemon {
    mode: Mode,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    http: Limits,
}

impl Daemon {
    /// Binds the socket, loads (or on first start generates) the RSA key, and opens the
    /// agent, which resumes unfinished DAGs. The agent's address for generic ids is the
    /// bound address (`127.0.0.1` when listening on an unspecified address).
    ///
    /// # Errors
    /// An allowed root does not resolve; the socket, the data dir, the key or the agent
    /// could not be set up.
    ///
    /// # Cancel safety
    /// Not cancel safe: the agent may be half open.
    pub async fn bind(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        obrestore_backup::AllowedRoots::new(&config.allowed_roots)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DaemonError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| DaemonError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| DaemonError::Bind {
            addr: config.listen,
            source,
        })?;
        // A cluster's agents share one API key, so a client keeps its cached public key
        // when the maintainer changes.
        let key_dir = match &config.cluster_mode {
            Some(mode) => mode.shared_dir.clone(),
            None => config.data_dir.clone(),
        };
        std::fs::create_dir_all(&key_dir).map_err(|source| DaemonError::DataDir {
            path: key_dir.clone(),
            source,
        })?;
        let key = tokio::task::spawn_blocking(move || AgentKey::load_or_generate(&key_dir))
            .await
            .map_err(|err| KeyError::Generate(err.to_string()))??;
        let ip = if local_addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local_addr.ip()
        };
        let agent_config = AgentConfig {
            data_dir: config.data_dir,
            agent: AgentInfo {
                ip,
                port: local_addr.port(),
            },
            allowed_roots: config.allowed_roots,
            worker_limit: config.worker_limit,
            cluster: config.cluster,
        };
        let key = Arc::new(key);
        let (mode, router) = match config.cluster_mode {
            None => {
                let agent = RestoreAgent::open(agent_config).await?;
                let auth = Authenticator::new(AuthConfig {
                    key,
                    password: config.password,
                    clock: Arc::new(SystemClock),
                    limiter: LimiterConfig::default(),
                });
                let router = app(AppState::new(agent.clone(), auth)?);
                (Mode::Single(agent), router)
            }
            Some(mode) => {
                let identity = crate::routes::agent::Identity {
                    ip: ip.to_string(),
                    port: local_addr.port(),
                    zone: mode.zone.clone(),
                    home_path: agent_config.data_dir.display().to_string(),
                    password_required: config.password.is_some(),
                    started_at: chrono::Utc::now(),
                };
                let node = cluster::Node::join(mode, agent_config, key, config.password, &identity)
                    .await?;
                let router = node.router(identity);
                (Mode::Cluster(Box::new(node)), router)
            }
        };
        Ok(Daemon {
            mode,
            listener,
            local_addr,
            router,
            http: config.http,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The agent (`None` in cluster mode, where it exists only while this daemon is
    /// the maintainer).
    pub fn agent(&self) -> Option<&RestoreAgent> {
        match &self.mode {
            Mode::Single(agent) => Some(agent),
            Mode::Cluster(_) => None,
        }
    }

    /// Serves until `shutdown` resolves, stops accepting, lets in-flight requests end,
    /// then shuts the agent down, giving running sub-tasks up to `grace` (what is still
    /// running then resumes at the next start).
    ///
    /// # Errors
    /// The listener failed.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping it skips the agent shutdown (which is then like a crash).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        match self.mode {
            Mode::Single(agent) => {
                let served = crate::serve(self.listener, self.router, shutdown, self.http).await;
                agent.shutdown(grace).await;
                served
            }
            Mode::Cluster(node) => {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let node = tokio::spawn(node.run(stopped, grace));
                let served = crate::serve(self.listener, self.router, shutdown, self.http).await;
                stop.send_replace(true);
                if let Err(error) = node.await {
                    tracing::warn!(%error, "the cluster loop ended abnormally");
                }
                served
            }
        }
    }
}
