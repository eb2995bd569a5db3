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
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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
/// follower answers `/info` and `/status` itself, as `identity`.
pub fn cluster_app(role: watch::Receiver<Role>, identity: Identity) -> Router {
    let state = Arc::new(Dispatch {
        role,
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
