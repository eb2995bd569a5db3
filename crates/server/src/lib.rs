//! obrestore-server: the obshell-compatible HTTP API of the obrestore agent (SPEC §3).
//!
//! - [`app`]: `app(state) -> Router` with every endpoint, the envelope and auth
//!   middleware, and the OpenAPI document generated from the handlers.
//! - [`routes`]: the handlers, one module per area of obshell's API.
//! - [`bind`]: request binding as obshell's (case-insensitive JSON keys, field paths in
//!   errors, Go's `ParseBool`).
//! - [`auth`]: API hybrid encryption (RSA key, v2 headers, AES-128-CBC bodies,
//!   failed-auth limiter), both the verifying and the client side.
//! - [`envelope`]: the response envelope and the one `AppError`.
//! - [`client`]: an HTTP client that authenticates like obshell's SDKs.
//! - [`daemon`]: agent + key + router on a socket (`obagent serve`, the example).
//! - [`listen`]: the HTTP/1 server loop and its limits (header size, read timeouts).
//!
//! Only this crate knows HTTP; the engine, backup and restore crates know nothing of it.

pub mod app;
pub mod auth;
pub mod bind;
pub mod client;
pub mod daemon;
pub mod dto;
pub mod envelope;
pub mod forward;
pub mod listen;
pub mod membership;
pub mod openapi;
pub mod routes;

pub use app::{app, openapi, AppState, ServerError};
pub use auth::{AgentKey, AuthConfig, AuthError, Authenticator, ClientCredentials, LimiterConfig};
pub use client::{AgentClient, ClientError};
pub use daemon::{ClusterMode, Daemon, DaemonConfig, DaemonError};
pub use envelope::{AppError, Reply};
pub use listen::{serve, Limits};
