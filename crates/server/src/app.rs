//! `app(state) -> Router`: every endpoint (handlers in [`crate::routes`], one module per
//! area), the envelope and auth middleware, and obshell's answers for unknown routes
//! (404) and methods (405), both `Common.NotFound` in the envelope.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use obrestore_restore::agent::RestoreAgent;
use obrestore_restore::SledCluster;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{AuthError, Authenticator, VerifiedV2, HEADER_AGENT_V2, HEADER_V2};
use crate::envelope::{new_trace_id, AppError, RequestMeta, REQUEST_META};
use crate::openapi::ApiDoc;

/// The obshell version this API is compatible with (`GET /api/v1/info`).
pub const OBSHELL_COMPAT_VERSION: &str = "4.2.4.0";
/// The obshell identity the agent reports.
pub const IDENTITY: &str = "CLUSTER AGENT";
/// Largest request body accepted (before decryption).
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Paths that never need auth.
pub const PUBLIC_PATHS: [&str; 4] = [
    "/api/v1/info",
    "/api/v1/secret",
    "/api/v1/status",
    "/api/v1/openapi.json",
];
/// The sled tree of the tenants' backup destinations.
pub const BACKUP_CONFIG_TREE: &str = "server/backup_config";

/// Why the server state could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("opening the server's sled tree: {0}")]
    Store(#[from] sled::Error),
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    agent: RestoreAgent,
    /// Cluster mode: the maintainer's view of its cluster.
    cluster_view: Option<crate::membership::ClusterView>,
    auth: Authenticator,
    backup_configs: sled::Tree,
    started_at: DateTime<Utc>,
}

impl AppState {
    /// State over `agent` authenticating with `auth`.
    ///
    /// # Errors
    /// The server's sled tree could not be opened.
    pub fn new(agent: RestoreAgent, auth: Authenticator) -> Result<AppState, ServerError> {
        AppState::build(agent, auth, None)
    }

    /// State of the maintainer of a cluster of agents (`/ob/info` lists every agent,
    /// `/info` gives this agent's zone).
    ///
    /// # Errors
    /// As [`AppState::new`].
    pub fn in_cluster(
        agent: RestoreAgent,
        auth: Authenticator,
        view: crate::membership::ClusterView,
    ) -> Result<AppState, ServerError> {
        AppState::build(agent, auth, Some(view))
    }

    fn build(
        agent: RestoreAgent,
        auth: Authenticator,
        cluster_view: Option<crate::membership::ClusterView>,
    ) -> Result<AppState, ServerError> {
        let backup_configs = agent.db().open_tree(BACKUP_CONFIG_TREE)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                agent,
                cluster_view,
                auth,
                backup_configs,
                started_at: Utc::now(),
            }),
        })
    }

    /// The agent.
    pub fn agent(&self) -> &RestoreAgent {
        &self.inner.agent
    }

    /// Cluster mode: the maintainer's view of its cluster.
    pub fn cluster_view(&self) -> Option<&crate::membership::ClusterView> {
        self.inner.cluster_view.as_ref()
    }

    /// The authenticator.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// When the server state was built (the agent's start).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// The agent's `(ip, port)`.
    pub fn address(&self) -> (String, u16) {
        let agent = &self.inner.agent.config().agent;
        (agent.ip.to_string(), agent.port)
    }

    /// The tree of the tenants' backup destinations.
    pub fn backup_configs(&self) -> &sled::Tree {
        &self.inner.backup_configs
    }

    /// Runs a blocking cluster call on the blocking pool.
    ///
    /// # Errors
    /// The call's error, or a blocking-pool failure (500).
    pub async fn cluster<T, F>(&self, call: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&SledCluster) -> Result<T, AppError> + Send + 'static,
    {
        let cluster = Arc::clone(self.agent().cluster());
        tokio::task::spawn_blocking(move || call(&cluster))
            .await
            .map_err(|err| AppError::internal(format!("blocking task failed: {err}")))?
    }

    /// Runs an engine query on the blocking pool: for queries whose store reads grow
    /// with the number of DAGs kept (every DAG, the last maintenance DAG).
    ///
    /// # Errors
    /// The call's error, or a blocking-pool failure (500).
    pub async fn engine_query<T, F>(&self, call: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&obrestore_dag::Engine) -> Result<T, AppError> + Send + 'static,
    {
        let engine = self.agent().engine().clone();
        tokio::task::spawn_blocking(move || call(&engine))
            .await
            .map_err(|err| AppError::internal(format!("blocking task failed: {err}")))?
    }
}

/// A JSON body bound the way obshell binds (`crate::bind`), whatever its content type
/// (obshell clients send encrypted bodies as text, and `GET /api/v1/restore/windows`
/// carries one too). An empty body is `{}`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|err| body_read_error(err.status() == StatusCode::PAYLOAD_TOO_LARGE, &err))?;
        Ok(JsonBody(crate::bind::from_json(&bytes)?))
    }
}

/// A body that could not be read: 413 over [`MAX_BODY_BYTES`], 408 when the client
/// stopped sending it ([`crate::listen::Limits::body_idle_timeout`]), else 400 as
/// obshell's binding answers.
fn body_read_error(too_large: bool, err: &(dyn std::error::Error + 'static)) -> AppError {
    if crate::listen::is_body_timeout(err) {
        return AppError::new(
            StatusCode::REQUEST_TIMEOUT,
            "Common.RequestTimeout",
            "the client stopped sending the request body".to_string(),
        );
    }
    if too_large {
        return AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Common.RequestBodyTooLarge",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        );
    }
    AppError::new(
        StatusCode::BAD_REQUEST,
        "Common.BindJsonFailed",
        format!("Bind JSON failed: reading the body: {err}"),
    )
}

/// The router with every endpoint and its OpenAPI document.
fn api_router() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let router = crate::routes::agent::routes(router);
    let router = crate::routes::restore::routes(router);
    let router = crate::routes::task::routes(router);
    let router = crate::routes::tenant::routes(router);
    let router = crate::routes::tenant_admin::routes(router);
    crate::routes::resource::routes(router)
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::complete(api_router().split_for_parts().1)
}

/// The agent's HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(crate::openapi::complete(doc));
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(Extension(doc))
        .layer(middleware::from_fn(envelope_meta))
        .with_state(state)
}

/// obshell's `NoRoute`: 404 `Common.NotFound` in the envelope.
async fn no_route() -> AppError {
    AppError::not_found("404 not found")
}

/// A route that exists without this method: 405, still `Common.NotFound` in the
/// envelope (gin answers 404 there; 405 says more and the SDK reads only errCode).
async fn no_method() -> AppError {
    AppError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..AppError::not_found("405 method not allowed")
    }
}

/// Outermost middleware: trace id and start time for the envelope, one log line per
/// request (method, path without query, status, duration — never headers or bodies).
async fn envelope_meta(req: Request, next: Next) -> Response {
    let meta = RequestMeta {
        trace_id: new_trace_id(),
        start: Instant::now(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let trace_id = meta.trace_id.clone();
    let start = meta.start;
    let response = REQUEST_META.scope(meta, next.run(req)).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        duration_ms = start.elapsed().as_millis() as u64,
        trace_id,
        "request"
    );
    response
}

/// Auth middleware (SPEC §3): verifies `X-OCS-Header` or `X-OCS-Agent-Header` (v2,
/// then decrypts the body). obshell no longer accepts v1 (`X-OCS-Auth`), and neither
/// does this agent. Without a header, only public paths, or any path when the agent
/// has no password, pass. A failure answers 401 and nothing runs. An agent without a
/// password ignores a header that does not verify (obshell answers 401 there; an
/// agent that asks for no password has nothing to refuse).
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_request(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

async fn check_request(state: &AppState, req: Request) -> Result<Request, AppError> {
    match verify_request(state.auth(), &req)? {
        Some(verified) => decrypt_body(req, &verified.body).await,
        None => Ok(req),
    }
}

/// The API's authentication of `req`, from its headers alone (its body is not read):
/// `Ok(Some(_))` for a verified v2 header whose body cipher decrypts the body,
/// `Ok(None)` for a request that goes on as it is (a public path; without a password, no
/// header or one that does not verify), `Err` for a refused one. A refusal other than a
/// missing header or the limiter's own is charged to the client's address. A cluster's
/// follower runs it before it forwards (`crate::forward`), so failures are charged to
/// the client there, not to the follower's address at the maintainer.
pub(crate) fn verify_request(
    auth: &Authenticator,
    req: &Request,
) -> Result<Option<VerifiedV2>, AppError> {
    let header = req
        .headers()
        .get(HEADER_AGENT_V2)
        .or_else(|| req.headers().get(HEADER_V2))
        .map(header_text);
    let public = PUBLIC_PATHS.contains(&req.uri().path());
    if public || (header.is_none() && !auth.password_required()) {
        return Ok(None);
    }
    let peer: Option<IpAddr> = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let request_uri = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let err = match header {
        None => AuthError::Missing,
        Some(header) if !auth.password_required() => {
            // No password: a header only encrypts the body. One that verifies decrypts
            // it; any other is ignored (never a 401, never charged to the limiter).
            return Ok(auth.verify_v2(&header, &request_uri).ok());
        }
        Some(header) => match auth.admit(peer) {
            Err(err) => err,
            Ok(()) => match auth.verify_v2(&header, &request_uri) {
                Ok(verified) => return Ok(Some(verified)),
                Err(err) => err,
            },
        },
    };
    if !matches!(err, AuthError::Missing | AuthError::RateLimited { .. }) {
        auth.record_failure(peer);
    }
    tracing::warn!(err_code = err.err_code(), "authentication failed");
    Err(err.into())
}

/// A request's whole body, at most [`MAX_BODY_BYTES`]: 413 over it, 408 when the client
/// stopped sending it (as [`body_read_error`]).
pub(crate) async fn read_body(body: Body) -> Result<Bytes, AppError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            body_read_error(too_large, &err)
        })
}

fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

async fn decrypt_body(req: Request, cipher: &crate::auth::BodyCipher) -> Result<Request, AppError> {
    let (mut parts, body) = req.into_parts();
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    let plain = cipher.decrypt_body(&bytes)?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Request::from_parts(parts, Body::from(plain)))
}
