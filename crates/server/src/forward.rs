//! Cluster mode's request routing: every agent answers the API, and the one that is not
//! the maintainer hands each request, as received (auth header and encrypted body
//! untouched), to the maintainer and relays its answer. The maintainer authenticates it
//! as if the client had called it directly; all agents of a cluster share one API key
//! (in the shared directory), so a client's cached public key stays valid after a
//! failover.
//!
//! Invariant: a request is forwarded at most once. A forwarded request carries
//! [`FORWARDED_BY`]; an agent that receives one while it is not the maintainer (the role
//! moved in between) answers 503 instead of forwarding again, so two agents that
//! disagree about the maintainer can never bounce a request between them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::app::MAX_BODY_BYTES;
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
/// etcd, answering as the maintainer; `None` until one is known); it forwards the rest.
pub fn cluster_app(
    role: watch::Receiver<Role>,
    reader: watch::Receiver<Option<Router>>,
    identity: Identity,
) -> Router {
    let state = Arc::new(Dispatch {
        role,
        reader,
        me: format!("{}:{}", identity.ip, identity.port),
        identity,
        client: reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(8)
            .build()
            .unwrap_or_default(),
    });
    Router::new().fallback(dispatch).with_state(state)
}

struct Dispatch {
    role: watch::Receiver<Role>,
    reader: watch::Receiver<Option<Router>>,
    identity: Identity,
    /// This agent's address, sent in [`FORWARDED_BY`].
    me: String,
    client: reqwest::Client,
}

async fn dispatch(State(state): State<Arc<Dispatch>>, req: Request) -> Response {
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
    match role {
        Role::Maintainer(router) => match router.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Role::Follower(_) if req.headers().contains_key(FORWARDED_BY) => {
            unavailable("the maintainer changed while the request was forwarded; retry")
        }
        Role::Follower(leader) => forward(&state, &leader, req).await,
        Role::Electing => unavailable("no maintainer is elected yet; retry in a few seconds"),
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

async fn forward(state: &Dispatch, leader: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Common.PayloadTooLarge",
                format!("request body over {MAX_BODY_BYTES} bytes or not readable"),
            )
            .into_response()
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let url = format!("http://{leader}{path}");
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    if let Ok(me) = HeaderValue::from_str(&state.me) {
        headers.insert(FORWARDED_BY, me);
    }
    let send = state
        .client
        .request(parts.method, &url)
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
            return unavailable("the maintainer changed while the request was forwarded; retry");
        }
    };
    let answer = match sent {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(%leader, error = %err, "forwarding to the maintainer failed");
            return unavailable(&format!(
                "the maintainer {leader} did not answer; retry in a few seconds"
            ));
        }
    };
    let status = answer.status();
    let mut response_headers = HeaderMap::new();
    copy_headers(answer.headers(), &mut response_headers);
    match answer.bytes().await {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
