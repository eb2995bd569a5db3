//! Cluster mode's request routing: every agent answers the API, and the one that is not
//! the maintainer hands each request, as received (auth header and encrypted body
//! untouched), to the maintainer and relays its answer. The maintainer authenticates it
//! as if the client had called it directly; all agents of a cluster share one API key
//! (in the shared directory), so a client's cached public key stays valid after a
//! failover.
//!
//! A follower authenticates a request before it forwards it (`crate::app::verify_request`,
//! with the cluster's key and its own failed-auth limiter): a refusal is answered and
//! charged to the client's address there. The maintainer sees only requests that
//! verified, so its limiter never charges a follower's address for one client's bad
//! password (which would refuse every client forwarded through that follower).
//!
//! A failover is waited out, not answered with an error: a request that arrives while
//! an election is under way, or whose forward the maintainer refuses at connect (it
//! died: nothing reached it), waits for the next maintainer, at most the failover wait
//! (three lease TTLs, at least 15 s), and is routed again. A read is routed again after
//! any failure. A fresh connection per forward makes "refused at connect" mean "the
//! maintainer is gone"; an agent that won the election answers nothing as a follower
//! while it opens the cluster (it is electing until it serves). A request the
//! maintainer may have received is never sent again (a submit must not run twice):
//! a failure after the connection answers 503, and the client retries.
//!
//! Invariant: a request is forwarded at most once. A forwarded request carries
//! [`FORWARDED_BY`]; an agent that receives one while it is not the maintainer (the role
//! moved in between) answers 503 instead of forwarding again, so two agents that
//! disagree about the maintainer can never bounce a request between them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::auth::Authenticator;
use crate::envelope::AppError;
use crate::routes::agent::Identity;

/// Header naming the agent that forwarded a request.
pub const FORWARDED_BY: &str = "x-obrestore-forwarded-by";

/// How long a forwarded request may take before the follower gives up (a synchronous
/// SDK call polls; none waits on one request longer than this).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(120);
/// A maintainer that does not accept a connection in this time is treated as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What this agent is in its cluster right now.
#[derive(Clone)]
pub enum Role {
    /// No maintainer known yet (an election is under way).
    Electing,
    /// This agent is the maintainer: requests go to its own router.
    Maintainer(Router),
    /// Another agent (`host:port`) is the maintainer.
    Follower(String),
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Electing => f.write_str("Electing"),
            Role::Maintainer(_) => f.write_str("Maintainer"),
            Role::Follower(leader) => write!(f, "Follower({leader})"),
        }
    }
}

/// The router of an agent in cluster mode: one fallback that routes by [`Role`]. A
/// follower answers `/info` and `/status` itself, as `identity`, and the reads of
/// [`reads_locally`] with `reader` (the API over its reader of the cluster's state in
/// etcd, answering as the maintainer; `None` until one is known); it forwards the rest
/// once `auth` (the cluster's key and this agent's password) admits them. A request
/// that finds no maintainer waits up to `failover_wait` for the next one (module docs).
pub fn cluster_app(
    role: watch::Receiver<Role>,
    reader: watch::Receiver<Option<Router>>,
    identity: Identity,
    auth: Authenticator,
    failover_wait: Duration,
) -> Router {
    let state = Arc::new(Dispatch {
        failover_wait,
        role,
        reader,
        auth,
        me: format!("{}:{}", identity.ip, identity.port),
        identity,
        client: reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A fresh connection per forward: a maintainer that died then refuses it at
            // connect, which proves nothing reached it (the failover wait sends the
            // request on). A pooled connection of a dead maintainer fails after the
            // request was written, which proves nothing either way: a submit could
            // not be sent again. A loopback or LAN connect costs far less than the
            // request's own auth.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default(),
    });
    Router::new().fallback(dispatch).with_state(state)
}

struct Dispatch {
    role: watch::Receiver<Role>,
    reader: watch::Receiver<Option<Router>>,
    /// Checks a request before it is forwarded.
    auth: Authenticator,
    identity: Identity,
    /// This agent's address, sent in [`FORWARDED_BY`].
    me: String,
    client: reqwest::Client,
    /// How long a request that finds no maintainer (an election under way, or the
    /// maintainer refusing connections) waits for the next one.
    failover_wait: Duration,
}

async fn dispatch(State(state): State<Arc<Dispatch>>, req: Request) -> Response {
    let deadline = Instant::now() + state.failover_wait;
    let mut req = req;
    loop {
        let role = state.role.borrow().clone();
        if !matches!(role, Role::Maintainer(_)) {
            if let Some(own) = state
                .identity
                .follower_answer(req.method(), req.uri().path())
            {
                return own;
            }
            let reader = state.reader.borrow().clone();
            if let Some(reader) = reader.filter(|_| reads_locally(req.method(), req.uri().path())) {
                return match reader.oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
            }
        }
        let leader = match role {
            Role::Maintainer(router) => {
                return match router.oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Role::Follower(_) if req.headers().contains_key(FORWARDED_BY) => {
                return unavailable("the maintainer changed while the request was forwarded; retry")
            }
            Role::Electing if state.elected(deadline).await => continue,
            Role::Electing => {
                return unavailable(&format!(
                    "no maintainer was elected within {:?}; retry",
                    state.failover_wait
                ))
            }
            Role::Follower(leader) => leader,
        };
        if let Err(refused) = crate::app::verify_request(&state.auth, &req) {
            return refused.into_response();
        }
        let (parts, body) = req.into_parts();
        let body = match crate::app::read_body(body).await {
            Ok(body) => body,
            Err(unreadable) => return unreadable.into_response(),
        };
        match forward(&state, &leader, &parts, body.clone()).await {
            Forwarded::Answer(response) => return response,
            // Nothing reached the maintainer (it refused the connection or never
            // accepted it): the request goes to the next one once it is known.
            Forwarded::NotSent(why) => {
                if !state.moved_on_from(&leader, deadline).await {
                    return unavailable(&why);
                }
                tracing::info!(%leader, "the maintainer did not answer; routing the request again");
                req = Request::from_parts(parts, Body::from(body));
            }
        }
    }
}

impl Dispatch {
    /// Waits until an election under way ends, at most until `deadline`; whether it did.
    async fn elected(&self, deadline: Instant) -> bool {
        let mut role = self.role.clone();
        let elected = role.wait_for(|role| !matches!(role, Role::Electing));
        let waited = tokio::time::timeout_at(deadline.into(), elected).await;
        waited.is_ok_and(|elected| elected.is_ok())
    }

    /// Waits until this agent no longer follows `leader` (a takeover, or this agent's
    /// lease lapsed), at most until `deadline`; whether it did.
    async fn moved_on_from(&self, leader: &str, deadline: Instant) -> bool {
        let mut role = self.role.clone();
        let moved = role.wait_for(|role| !matches!(role, Role::Follower(now) if now == leader));
        let waited = tokio::time::timeout_at(deadline.into(), moved).await;
        waited.is_ok_and(|moved| moved.is_ok())
    }
}

/// Whether an agent that is not the maintainer answers this request from its own reader
/// of etcd: every `GET` of the cluster's state (tenants, pools, restore jobs, the
/// cluster's DAGs by their `"1…"` ids), which etcd answers linearizably, so a follower
/// sees every transition the maintainer acknowledged. Forwarded: every other method
/// (operators and submits), and the reads of agent-scoped DAGs, whose generic ids
/// carry the maintainer's address.
pub fn reads_locally(method: &Method, path: &str) -> bool {
    const AGENT_SCOPED: [&str; 6] = [
        "/api/v1/task/dags/agent",
        "/api/v1/task/dag/unfinish",
        "/api/v1/task/dag/agent/unfinish",
        "/api/v1/task/dag/maintain/agent",
        "/api/v1/task/dag/maintain/agents",
        "/api/v1/task/dag/agent/main_dags",
    ];
    if method != Method::GET || AGENT_SCOPED.contains(&path) {
        return false;
    }
    for object in ["dag", "node", "sub_task"] {
        let prefix = format!("/api/v1/task/{object}/");
        let id = path
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('/').next())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        if let Some(id) = id {
            return id.starts_with('1');
        }
    }
    true
}

fn unavailable(message: &str) -> Response {
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Common.ServiceUnavailable",
        message,
    )
    .into_response()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !is_hop_by_hop(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// What became of a forwarded request.
enum Forwarded {
    /// The maintainer's answer, or 503 when it may have received the request but did
    /// not answer it whole (never sent again: a submit must not run twice).
    Answer(Response),
    /// The maintainer never received it (connection refused or not accepted), or it is
    /// a read: safe to send to the next maintainer. The reason, for a 503 if there is
    /// none.
    NotSent(String),
}

async fn forward(state: &Dispatch, leader: &str, parts: &Parts, body: Bytes) -> Forwarded {
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let url = format!("http://{leader}{path}");
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    if let Ok(me) = HeaderValue::from_str(&state.me) {
        headers.insert(FORWARDED_BY, me);
    }
    let send = state
        .client
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body)
        .send();
    // A maintainer that stopped answering (paused, or its machine gone) is replaced
    // within its lease: stop waiting for it the moment the role moves on.
    let mut role = state.role.clone();
    let moved = role.wait_for(|role| !matches!(role, Role::Follower(now) if now == leader));
    let sent = tokio::select! {
        sent = send => sent,
        _ = moved => {
            return Forwarded::Answer(unavailable(
                "the maintainer changed while the request was forwarded; retry",
            ));
        }
    };
    let answer = match sent {
        Ok(answer) => answer,
        Err(err) if err.is_connect() => {
            tracing::warn!(%leader, error = %err, "the maintainer refused or did not accept the connection");
            return Forwarded::NotSent(format!(
                "the maintainer {leader} did not answer; retry in a few seconds"
            ));
        }
        // A read changes nothing: it may go to the next maintainer whatever became of it.
        Err(err) if parts.method == Method::GET || parts.method == Method::HEAD => {
            tracing::warn!(%leader, error = %err, "a forwarded read failed");
            return Forwarded::NotSent(format!(
                "the maintainer {leader} did not answer; retry in a few seconds"
            ));
        }
        Err(err) => {
            tracing::warn!(%leader, error = %err, "forwarding to the maintainer failed");
            return Forwarded::Answer(unavailable(&format!(
                "the maintainer {leader} did not answer; retry in a few seconds"
            )));
        }
    };
    let status = answer.status();
    let mut response_headers = HeaderMap::new();
    copy_headers(answer.headers(), &mut response_headers);
    Forwarded::Answer(match answer.bytes().await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = response_headers;
            response
        }
        Err(err) => {
            tracing::warn!(%leader, error = %err, "reading the maintainer's answer failed");
            unavailable(&format!(
                "the maintainer {leader} did not finish its answer; retry"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::ConnectInfo;
    use obrestore_restore::Secret;

    use crate::auth::{AgentKey, AuthConfig, ClientCredentials, LimiterConfig, HEADER_V2};

    /// A stand-in maintainer on a real socket that counts what reaches it.
    async fn counting_maintainer() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let router = Router::new().fallback(move |body: Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                format!("from the maintainer: {}", String::from_utf8_lossy(&body))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (address, hits)
    }

    /// A follower's request from `client` (its address as the listener records it).
    fn request(client: [u8; 4], header: Option<&str>) -> Request {
        let mut req = Request::builder()
            .uri("/api/v1/task/dag/unfinish")
            .body(Body::empty())
            .unwrap();
        if let Some(header) = header {
            req.headers_mut()
                .insert(HEADER_V2, HeaderValue::from_str(header).unwrap());
        }
        let peer = SocketAddr::from((client, 40000));
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }

    #[tokio::test]
    async fn a_follower_refuses_bad_auth_itself_and_charges_the_client() {
        let (leader, hits) = counting_maintainer().await;
        let key = test_key();
        let (_role_tx, role) = watch::channel(Role::Follower(leader));
        let wait = Duration::from_secs(5);
        let app = follower_app(role, wait, Arc::clone(&key), Some("cluster-pw"));
        let credentials = ClientCredentials {
            public_key: key.public_key(),
            password: Secret::new("cluster-pw"),
            validity: Duration::from_secs(60),
        };
        let now = chrono::Utc::now().timestamp();
        let (valid, _) = credentials
            .v2_header("/api/v1/task/dag/unfinish", now)
            .unwrap();
        let send = |req: Request| async { app.clone().oneshot(req).await.unwrap().status() };
        let (good, bad) = ([10, 0, 0, 8], [10, 0, 0, 7]);

        assert_eq!(send(request(good, Some(&valid))).await, StatusCode::OK);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "a valid request is forwarded"
        );
        assert_eq!(send(request(bad, None)).await, StatusCode::UNAUTHORIZED);
        for _ in 0..LimiterConfig::default().burst as usize {
            let status = send(request(bad, Some("not a header"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        // The bad client's budget is spent at the follower: even its valid header is
        // refused now, and nothing it sent reached the maintainer.
        let status = send(request(bad, Some(&valid))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "refused requests were forwarded"
        );
        // Another client through the same follower is not locked out.
        assert_eq!(send(request(good, Some(&valid))).await, StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_follower_reads_cluster_state_itself_and_forwards_the_rest() {
        let local = |method: Method, path: &str| reads_locally(&method, path);
        for path in [
            "/api/v1/task/dag/1123",
            "/api/v1/task/node/145/",
            "/api/v1/task/sub_task/17/logs",
            "/api/v1/task/dag/ob/unfinish",
            "/api/v1/task/dags/ob",
            "/api/v1/task/dag/maintain/ob",
            "/api/v1/tenants/overview",
            "/api/v1/tenant/t1/restore/overview",
            "/api/v1/resource-pools",
            "/api/v1/ob/info",
        ] {
            assert!(local(Method::GET, path), "{path} is read locally");
        }
        for (method, path) in [
            (Method::POST, "/api/v1/task/dag/1123"),
            (Method::POST, "/api/v1/tenant/restore"),
            (Method::DELETE, "/api/v1/tenant/t1"),
            (Method::PUT, "/api/v1/tenant/t1/name"),
            (Method::HEAD, "/api/v1/tenants/overview"),
            // Agent-scoped DAGs: their ids carry the maintainer's address.
            (Method::GET, "/api/v1/task/dag/2170000000000020000000001"),
            (
                Method::GET,
                "/api/v1/task/sub_task/3170000000000020000000001/logs",
            ),
            (Method::GET, "/api/v1/task/dag/unfinish"),
            (Method::GET, "/api/v1/task/dags/agent"),
            (Method::GET, "/api/v1/task/dag/maintain/agents"),
            (Method::GET, "/api/v1/task/dag/agent/main_dags"),
        ] {
            assert!(!local(method.clone(), path), "{method} {path} is forwarded");
        }
    }

    /// A 1024-bit key keeps the debug-build tests fast; agents generate 2048.
    fn test_key() -> Arc<AgentKey> {
        Arc::new(AgentKey::generate(1024).unwrap())
    }

    /// A follower with `key` and `password` whose role is `role`; requests wait `wait`
    /// for a maintainer.
    fn follower_app(
        role: watch::Receiver<Role>,
        wait: Duration,
        key: Arc<AgentKey>,
        password: Option<&str>,
    ) -> Router {
        let auth = Authenticator::new(AuthConfig {
            key,
            password: password.map(Secret::new),
            clock: Arc::new(obrestore_dag::SystemClock),
            limiter: LimiterConfig::default(),
        });
        let (_reader_tx, reader) = watch::channel(None);
        let identity = Identity {
            ip: "127.0.0.1".to_string(),
            port: 2886,
            zone: "z1".to_string(),
            home_path: "/tmp/follower".to_string(),
            password_required: password.is_some(),
            started_at: chrono::Utc::now(),
        };
        cluster_app(role, reader, identity, auth, wait)
    }

    /// [`follower_app`] without a password.
    fn follower(role: watch::Receiver<Role>, wait: Duration) -> Router {
        follower_app(role, wait, test_key(), None)
    }

    /// A submit through `app`: its status and body.
    async fn submit(app: Router) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/tenant/restore")
            .body(Body::from("the submit"))
            .unwrap();
        let peer = SocketAddr::from(([10, 0, 0, 9], 40000));
        req.extensions_mut().insert(ConnectInfo(peer));
        let response = app.oneshot(req).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// An address that refuses connections (a maintainer whose process died).
    async fn dead_address() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    }

    /// Sends `role` on `tx` a little after the request has started to wait.
    fn later(tx: watch::Sender<Role>, role: Role) {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send_replace(role);
            // Keep the channel open: the follower keeps following.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
    }

    /// The failover wait may send a request on only if the dead maintainer refused it at
    /// connect, which a pooled connection of it would not do (CI saw a write during a
    /// takeover fail on one): every forward has a connection of its own.
    #[tokio::test]
    async fn every_forward_opens_a_connection_of_its_own() {
        let peers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&peers);
        let router = Router::new().fallback(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(peer);
                "from the maintainer"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let leader = listener.local_addr().unwrap().to_string();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        let (_tx, role) = watch::channel(Role::Follower(leader));
        let app = follower(role, Duration::from_secs(5));
        for _ in 0..3 {
            let (status, body) = submit(app.clone()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let peers = peers.lock().unwrap().clone();
        assert_eq!(peers.len(), 3);
        assert!(
            peers[0] != peers[1] && peers[1] != peers[2] && peers[0] != peers[2],
            "a connection was reused: {peers:?}"
        );
    }

    #[tokio::test]
    async fn a_submit_during_an_election_waits_for_the_next_maintainer() {
        let (leader, hits) = counting_maintainer().await;
        let (tx, role) = watch::channel(Role::Electing);
        later(tx, Role::Follower(leader));
        let (status, body) = submit(follower(role, Duration::from_secs(30))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "from the maintainer: the submit");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_submit_the_dead_maintainer_refused_goes_to_the_next_one_once() {
        let (leader, hits) = counting_maintainer().await;
        let (tx, role) = watch::channel(Role::Follower(dead_address().await));
        later(tx, Role::Follower(leader));
        let (status, body) = submit(follower(role, Duration::from_secs(30))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "from the maintainer: the submit");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_answers_its_own_info_at_once_during_an_election() {
        // The election never ends, and a request waiting for it would wait an hour of
        // the paused clock: the minute below would end first.
        let (_tx, role) = watch::channel(Role::Electing);
        let app = follower(role, Duration::from_secs(3600));
        let req = Request::builder()
            .uri("/api/v1/info")
            .body(Body::empty())
            .unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(60), app.oneshot(req)).await;
        let response = answered.expect("/info waited for the election").unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_too_large_is_refused_at_the_follower_as_at_the_maintainer() {
        let (leader, hits) = counting_maintainer().await;
        let (_tx, role) = watch::channel(Role::Follower(leader));
        let body = vec![b' '; crate::app::MAX_BODY_BYTES + 1];
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/tenant/restore")
            .body(Body::from(body))
            .unwrap();
        let response = follower(role, Duration::from_secs(5))
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("Common.RequestBodyTooLarge"), "{text}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn with_no_maintainer_within_the_failover_wait_the_answer_is_503() {
        let wait = Duration::from_millis(300);
        let (_electing_tx, electing) = watch::channel(Role::Electing);
        let (status, body) = submit(follower(electing, wait)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Common.ServiceUnavailable"), "{body}");
        let dead = dead_address().await;
        let (_dead_tx, following) = watch::channel(Role::Follower(dead.clone()));
        let (status, body) = submit(follower(following, wait)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains(&dead),
            "the answer names the maintainer: {body}"
        );
    }

    #[tokio::test]
    async fn a_submit_the_maintainer_may_have_received_is_never_sent_again() {
        // It accepts the connection, reads the request, and dies without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dying = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
        });
        let (next, hits) = counting_maintainer().await;
        let (tx, role) = watch::channel(Role::Follower(dying));
        later(tx, Role::Follower(next));
        let (status, body) = submit(follower(role, Duration::from_secs(30))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the submit was sent twice");
    }
}
