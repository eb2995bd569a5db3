//! HTTP DTOs in obshell's shapes (`ob/agent/meta/agent.go`, `lib/http/status.go`,
//! `repository/model/bo`, `repository/model/oceanbase`, `ob/param`), converted from the
//! domain records at the boundary (STYLE rule 2). The engine's DTOs (`DagDetailDto`,
//! ...) are obshell-exact already; their OpenAPI schemas are mirrored in
//! [`crate::openapi`].
//!
//! A few DTOs carry fields obshell's lack (marked "extension"); obshell's clients
//! ignore them. `docs/api.md` lists them.
//!
//! One module per area of the API; every DTO is re-exported here, so callers name
//! `crate::dto::X` whatever file it lives in.

mod agent;
mod resource;
mod restore;
mod task;
mod tenant;
mod tenant_admin;

pub use agent::*;
pub use resource::*;
pub use restore::*;
pub use task::*;
pub use tenant::*;
pub use tenant_admin::*;

/// The SQL port the embedded cluster's connection strings name (OceanBase's default).
pub const SQL_PORT: u16 = 2881;
/// Name of the embedded cluster (`obcluster_info.name`).
pub const CLUSTER_NAME: &str = "obcluster";
/// Id of the embedded cluster (`obcluster_info.id`).
pub const CLUSTER_ID: i64 = 1;

fn time(time: chrono::DateTime<chrono::Utc>) -> String {
    obrestore_dag::dto::format_time(time)
}

fn yes_no(flag: bool) -> String {
    if flag { "YES" } else { "NO" }.to_string()
}
