//! The agent daemon: [`RestoreAgent`] + the agent key + [`crate::app`] on a socket.
//! `obagent serve` and `examples/obshell_daemon.rs` are thin wrappers around it.

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
}

/// A bound, not yet serving daemon.
pub struct Daemon {
    agent: RestoreAgent,
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
    /// The socket, the data dir, the key or the agent could not be set up.
    ///
    /// # Cancel safety
    /// Not cancel safe: the agent may be half open.
    pub async fn bind(config: DaemonConfig) -> Result<Daemon, DaemonError> {
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
        let data_dir = config.data_dir.clone();
        let key = tokio::task::spawn_blocking(move || AgentKey::load_or_generate(&data_dir))
            .await
            .map_err(|err| KeyError::Generate(err.to_string()))??;
        let ip = if local_addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local_addr.ip()
        };
        let agent = RestoreAgent::open(AgentConfig {
            data_dir: config.data_dir,
            agent: AgentInfo {
                ip,
                port: local_addr.port(),
            },
            allowed_roots: config.allowed_roots,
            worker_limit: config.worker_limit,
            cluster: config.cluster,
        })
        .await?;
        let auth = Authenticator::new(AuthConfig {
            key: Arc::new(key),
            password: config.password,
            clock: Arc::new(SystemClock),
            limiter: LimiterConfig::default(),
        });
        let router = app(AppState::new(agent.clone(), auth)?);
        Ok(Daemon {
            agent,
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

    /// The agent.
    pub fn agent(&self) -> &RestoreAgent {
        &self.agent
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
        let served = crate::serve(self.listener, self.router, shutdown, self.http).await;
        self.agent.shutdown(grace).await;
        served
    }
}
