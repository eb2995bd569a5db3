//! Cluster mode of the daemon (`obagent serve --cluster`): several agents on one etcd,
//! one of them the maintainer.
//!
//! Every agent campaigns for the maintainer key ([`Election`]). The winner opens the
//! restore agent on the cluster's shared state ([`RestoreAgent::open_clustered`]: the
//! engine's and the cluster's records in etcd under its fence, rows and keys in the
//! shared directory), which resumes the cluster's unfinished DAGs with the engine's
//! restart rules, and answers the API itself. The others forward every request to it
//! (`crate::forward`). When the maintainer's lease is lost it stops deciding at once:
//! the role goes back to electing before anything else, the agent is shut down with no
//! grace (its fenced writes would fail anyway), and it campaigns again like the others.
//! An agent that wins but cannot open the cluster (a shared directory it cannot write,
//! say) gives the lease up and stays out of the election for a lease's time, so that a
//! healthy agent takes over instead of this one winning and failing in a loop.
//!
//! Invariant: at most one term's agent is open in a process at a time, and the role
//! says `Maintainer` only while this process holds the lease it opened the agent with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::SystemClock;
use obrestore_etcd::election::Election;
use obrestore_etcd::Etcd;
use obrestore_restore::{AgentConfig, RestoreAgent, Secret, SharedState};
use tokio::sync::watch;

use crate::app::{app, AppState};
use crate::auth::{AgentKey, AuthConfig, Authenticator, LimiterConfig};
use crate::forward::Role;
use crate::membership::ClusterView;
use crate::routes::agent::Identity;

/// How an agent joins a cluster of agents.
#[derive(Debug, Clone)]
pub struct ClusterMode {
    /// etcd endpoints (`host:port`).
    pub endpoints: Vec<String>,
    /// The cluster's name: its keys live under `/obrestore/<name>/`.
    pub name: String,
    /// This agent's zone (one of the embedded cluster's zones).
    pub zone: String,
    /// The directory every agent of the cluster mounts: tenant rows and keys.
    pub shared_dir: PathBuf,
    /// The maintainer lease's time to live.
    pub lease_ttl: Duration,
}

/// How often a follower looks for a new maintainer (the lease TTL bounds how long an
/// old one can still hold the key after it died).
const POLL: Duration = Duration::from_millis(500);
/// The shortest a request waits for the next maintainer (`Node::failover_wait`).
const MIN_FAILOVER_WAIT: Duration = Duration::from_secs(15);

/// How a term as maintainer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermEnd {
    /// The daemon is shutting down (the lease was given up).
    Shutdown,
    /// The lease was lost while serving: campaign again at once, like the others.
    Lost,
    /// The agent could not be opened on the cluster (the lease was given up): this
    /// agent steps aside for a lease's time so that another one can take over, instead
    /// of winning the key back at once and failing again in a loop.
    NotOpened,
}

/// What one look at the maintainer key found.
enum Campaign {
    /// This agent is the maintainer now.
    Won(obrestore_etcd::election::Leadership),
    /// Another agent (this address) is.
    Follow(String),
    /// Another agent won between the look and the campaign.
    Lost,
}

/// One agent of a cluster: what it needs to campaign and, when it wins, to open.
pub(super) struct Node {
    pub(super) me: Identity,
    pub(super) etcd: Etcd,
    pub(super) election: Election,
    pub(super) mode: ClusterMode,
    pub(super) agent: AgentConfig,
    pub(super) db: sled::Db,
    pub(super) key: Arc<AgentKey>,
    pub(super) password: Option<Secret>,
    pub(super) role: watch::Sender<Role>,
    /// The API over this agent's reader of the cluster ([`RestoreAgent::open_reader`]),
    /// as the maintainer it follows would answer: what a follower answers reads with
    /// (`crate::forward`). `None` until a maintainer is known.
    pub(super) reader: watch::Sender<Option<axum::Router>>,
}

impl Node {
    /// Connects to etcd and opens this agent's own database; checks that `mode.zone` is
    /// one of the cluster's zones. Campaigning starts in [`Node::run`].
    pub(super) async fn join(
        mode: ClusterMode,
        agent: AgentConfig,
        key: Arc<AgentKey>,
        password: Option<Secret>,
        me: &Identity,
    ) -> Result<Node, super::DaemonError> {
        let zones: Vec<&str> = agent
            .cluster
            .zones
            .iter()
            .map(|zone| zone.name.as_str())
            .collect();
        if !zones.contains(&mode.zone.as_str()) {
            return Err(super::DaemonError::Cluster(format!(
                "zone '{}' is not a zone of the cluster (its zones: {})",
                mode.zone,
                zones.join(", ")
            )));
        }
        let endpoints = mode.endpoints.clone();
        let data_dir = agent.data_dir.clone();
        let (name, zone, ip, port) = (mode.name.clone(), mode.zone.clone(), me.ip.clone(), me.port);
        let (etcd, db) = tokio::task::spawn_blocking(move || {
            let cluster_error =
                |err: obrestore_etcd::EtcdError| super::DaemonError::Cluster(err.to_string());
            let etcd = Etcd::connect(&endpoints).map_err(cluster_error)?;
            crate::membership::register(&etcd, &name, &ip, port, &zone).map_err(cluster_error)?;
            let db = obrestore_restore::open_agent_db(&data_dir)?;
            Ok::<_, super::DaemonError>((etcd, db))
        })
        .await
        .map_err(|err| super::DaemonError::Cluster(err.to_string()))??;
        let election = Election::new(etcd.clone(), &mode.name, format!("{}:{}", me.ip, me.port))
            .map_err(|err| super::DaemonError::Cluster(err.to_string()))?
            .with_ttl(mode.lease_ttl);
        let (role, _) = watch::channel(Role::Electing);
        let (reader, _) = watch::channel(None);
        Ok(Node {
            me: me.clone(),
            etcd,
            election,
            mode,
            agent,
            db,
            key,
            password,
            role,
            reader,
        })
    }

    /// Campaigns, serves terms and follows until `shutdown` flips; a term in progress
    /// then ends with `grace` for its running sub-tasks and the lease is given up, so
    /// another agent takes over at once.
    pub(super) async fn run(self: Box<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        // The maintainer the current reader answers as.
        let mut reading_as: Option<String> = None;
        loop {
            if *shutdown.borrow() {
                self.leave().await;
                return;
            }
            let election = self.election.clone();
            let campaign = tokio::task::spawn_blocking(move || {
                Ok::<_, obrestore_etcd::EtcdError>(match election.leader()? {
                    Some(leader) => Campaign::Follow(leader),
                    None => match election.campaign()? {
                        Some(leadership) => Campaign::Won(leadership),
                        None => Campaign::Lost,
                    },
                })
            })
            .await;
            match campaign {
                Ok(Ok(Campaign::Won(leadership))) => {
                    match self.term(leadership, &mut shutdown, grace).await {
                        TermEnd::Shutdown => {
                            self.leave().await;
                            return;
                        }
                        TermEnd::Lost => continue,
                        TermEnd::NotOpened => {
                            tokio::select! {
                                () = tokio::time::sleep(self.mode.lease_ttl.max(POLL)) => {}
                                _ = shutdown.changed() => {}
                            }
                            continue;
                        }
                    }
                }
                Ok(Ok(Campaign::Follow(leader))) => {
                    // Forward at once; reads are answered here once the reader is open.
                    self.role.send_replace(Role::Follower(leader.clone()));
                    if reading_as.as_deref() != Some(leader.as_str()) {
                        match self.open_reader(&leader).await {
                            Ok(reader) => {
                                self.reader.send_replace(Some(reader));
                                reading_as = Some(leader.clone());
                            }
                            Err(error) => {
                                tracing::warn!(%error, "cannot open a reader of the cluster; forwarding reads");
                            }
                        }
                    }
                }
                Ok(Ok(Campaign::Lost)) => {}
                // Keep following the maintainer known last: a member that is down or a
                // slow answer is no reason to stop forwarding.
                Ok(Err(error)) => {
                    tracing::warn!(%error, "etcd unreachable; still looking for a maintainer");
                }
                Err(error) => tracing::warn!(%error, "campaign task failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// This agent's view of its cluster (`/ob/info`, `/info`'s zone).
    fn view(&self) -> ClusterView {
        ClusterView {
            etcd: self.etcd.clone(),
            name: self.mode.name.clone(),
            zone: self.mode.zone.clone(),
        }
    }

    /// This agent's API: routed by its role (`crate::forward`).
    pub(super) fn router(&self, identity: Identity) -> axum::Router {
        crate::forward::cluster_app(
            self.role.subscribe(),
            self.reader.subscribe(),
            identity,
            authenticator(&self.key, self.password.clone()),
            self.failover_wait(),
        )
    }

    /// How long a request waits for a maintainer when none answers: a dead one's lease
    /// lapses within its TTL, the next campaign wins within a [`POLL`], followers learn
    /// of it at their next one, and the winner opens the cluster's engine; etcd itself
    /// may be electing a leader meanwhile (a member lost). Three TTLs, at least
    /// [`MIN_FAILOVER_WAIT`].
    fn failover_wait(&self) -> Duration {
        (self.mode.lease_ttl * 3).max(MIN_FAILOVER_WAIT)
    }

    /// The API over a reader of the cluster's state in etcd that answers as `leader`
    /// (its address in the answers, as the executing agent of the sub-tasks), so a
    /// read answered here is the maintainer's answer.
    async fn open_reader(&self, leader: &str) -> Result<axum::Router, super::DaemonError> {
        let address: std::net::SocketAddr = leader.parse().map_err(|_| {
            super::DaemonError::Cluster(format!("maintainer address '{leader}' is not ip:port"))
        })?;
        let mut config = self.agent.clone();
        config.agent = obrestore_dag::AgentInfo {
            ip: address.ip(),
            port: address.port(),
        };
        let (db, etcd) = (self.db.clone(), self.etcd.clone());
        let (name, shared_dir) = (self.mode.name.clone(), self.mode.shared_dir.clone());
        let reader = tokio::task::spawn_blocking(move || {
            RestoreAgent::open_reader(config, &db, etcd, &name, &shared_dir)
        })
        .await
        .map_err(|err| super::DaemonError::Cluster(err.to_string()))??;
        let view = self.view();
        let auth = authenticator(&self.key, self.password.clone());
        Ok(app(AppState::in_cluster(reader, auth, view)?))
    }

    /// Removes this agent's registration (a graceful stop).
    async fn leave(&self) {
        let (etcd, name) = (self.etcd.clone(), self.mode.name.clone());
        let (ip, port) = (self.me.ip.clone(), self.me.port);
        let left = tokio::task::spawn_blocking(move || {
            crate::membership::deregister(&etcd, &name, &ip, port)
        })
        .await;
        if !matches!(left, Ok(Ok(()))) {
            tracing::warn!("cannot remove this agent from the cluster's agents");
        }
    }

    /// One term as maintainer, and how it ended.
    async fn term(
        &self,
        leadership: obrestore_etcd::election::Leadership,
        shutdown: &mut watch::Receiver<bool>,
        grace: Duration,
    ) -> TermEnd {
        // Won, not yet serving: requests wait for the engine to open (a request
        // forwarded here while this agent still followed the dead maintainer would be
        // answered 503 by the forwarded-once rule).
        self.role.send_replace(Role::Electing);
        let mut lost = leadership.lost();
        let shared = SharedState {
            db: self.db.clone(),
            etcd: self.etcd.clone(),
            cluster: self.mode.name.clone(),
            fence: leadership.fence(),
            shared_dir: self.mode.shared_dir.clone(),
        };
        let started = std::time::Instant::now();
        let agent = match RestoreAgent::open_clustered(self.agent.clone(), shared).await {
            Ok(agent) => agent,
            Err(error) => {
                tracing::error!(%error, "cannot open the cluster as maintainer; giving up the lease");
                let _ = tokio::task::spawn_blocking(move || leadership.resign()).await;
                return TermEnd::NotOpened;
            }
        };
        let auth = authenticator(&self.key, self.password.clone());
        let view = self.view();
        let router = match AppState::in_cluster(agent.clone(), auth, view) {
            Ok(state) => app(state),
            Err(error) => {
                tracing::error!(%error, "cannot build the API state; giving up the lease");
                agent.shutdown(Duration::ZERO).await;
                let _ = tokio::task::spawn_blocking(move || leadership.resign()).await;
                return TermEnd::NotOpened;
            }
        };
        let unfinished = agent
            .engine()
            .unfinished_dags(None, false)
            .map_or(0, |dags| dags.len());
        tracing::info!(
            zone = %self.mode.zone,
            took_ms = started.elapsed().as_millis() as u64,
            unfinished,
            "maintainer of the cluster: engine opened"
        );
        eprintln!(
            "obagent: maintainer of cluster '{}' ({unfinished} unfinished dag(s) resumed)",
            self.mode.name
        );
        self.role.send_replace(Role::Maintainer(router));
        let stopping = tokio::select! {
            _ = lost.wait_for(|lost| *lost) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        // Stop answering as maintainer before anything else.
        self.role.send_replace(Role::Electing);
        if stopping {
            agent.shutdown(grace).await;
            let _ = tokio::task::spawn_blocking(move || leadership.resign()).await;
            TermEnd::Shutdown
        } else {
            tracing::warn!("maintainer lease lost: stopping this agent's engine");
            eprintln!("obagent: lost the maintainer lease; following again");
            agent.shutdown(Duration::ZERO).await;
            drop(leadership);
            TermEnd::Lost
        }
    }
}

/// The API's authenticator: every agent of a cluster has the same key and password.
fn authenticator(key: &Arc<AgentKey>, password: Option<Secret>) -> Authenticator {
    Authenticator::new(AuthConfig {
        key: Arc::clone(key),
        password,
        clock: Arc::new(SystemClock),
        limiter: LimiterConfig::default(),
    })
}
