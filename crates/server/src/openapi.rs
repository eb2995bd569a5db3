//! The OpenAPI 3 document. Paths come from the handlers' `#[utoipa::path]` through
//! `utoipa_axum::routes!`, so the router and the document are one list. Types of the
//! other crates (which know nothing of HTTP) are mirrored here as schema-only structs;
//! `tests/openapi.rs` checks that each mirror has exactly the fields of the real DTO.

#![allow(dead_code)] // Schema-only mirrors are never constructed.

use serde_json::{Map, Value};
use utoipa::{Modify, OpenApi, ToSchema};

/// `DagDetailDTO` (mirror of `obrestore_dag::DagDetailDto`).
#[derive(ToSchema)]
#[schema(as = DagDetailDTO)]
pub struct DagDetailSchema {
    /// Generic id.
    id: String,
    dag_id: u64,
    name: String,
    stage: u32,
    max_stage: u32,
    maintenance_type: i32,
    maintenance_key: String,
    /// PENDING, READY, RUNNING, FAILED or SUCCEED.
    state: String,
    /// RUN, RETRY, ROLLBACK, CANCEL or PASS.
    operator: String,
    start_time: String,
    end_time: String,
    additional_data: Option<Map<String, Value>>,
    /// Null when `show_details=false`.
    nodes: Option<Vec<NodeDetailSchema>>,
}

/// `NodeDetailDTO` (mirror of `obrestore_dag::NodeDetailDto`).
#[derive(ToSchema)]
#[schema(as = NodeDetailDTO)]
pub struct NodeDetailSchema {
    id: String,
    node_id: u64,
    name: String,
    state: String,
    operator: String,
    start_time: String,
    end_time: String,
    additional_data: Option<Map<String, Value>>,
    sub_tasks: Option<Vec<TaskDetailSchema>>,
}

/// `execute_agent`.
#[derive(ToSchema)]
#[schema(as = AgentAddress)]
pub struct AgentAddressSchema {
    ip: String,
    port: u16,
}

/// `TaskDetailDTO` (mirror of `obrestore_dag::TaskDetailDto`).
#[derive(ToSchema)]
#[schema(as = TaskDetailDTO)]
pub struct TaskDetailSchema {
    id: String,
    task_id: u64,
    name: String,
    state: String,
    operator: String,
    start_time: String,
    end_time: String,
    additional_data: Option<Map<String, Value>>,
    execute_times: u32,
    execute_agent: AgentAddressSchema,
    task_logs: Vec<String>,
}

/// One log row (mirror of `obrestore_dag::TaskLogDto`, obshell's `bo.SubTaskLog`).
#[derive(ToSchema)]
#[schema(as = TaskLog)]
pub struct TaskLogSchema {
    /// The row's sequence number within its sub-task, from 1.
    id: u64,
    sub_task_id: u64,
    execute_times: u32,
    log_content: String,
    is_sync: bool,
    create_time: String,
    update_time: String,
}

/// OCP's `RestorePreviewItem` (mirror of `obrestore_backup::RestorePreviewItem`).
#[derive(ToSchema)]
#[schema(as = RestorePreviewItem)]
#[allow(non_snake_case)]
pub struct RestorePreviewItemSchema {
    backupDest: String,
    /// A Long sent as a string, as OCP does.
    backupId: String,
    /// BACKUP_SET or BACKUP_PIECE.
    backupType: String,
    copyId: String,
}

/// One restore window.
#[derive(ToSchema)]
#[schema(as = RestoreWindow)]
pub struct RestoreWindowSchema {
    start_time: String,
    end_time: String,
}

/// `{restore_windows: [...]}` (mirror of `obrestore_backup::RestoreWindowsDto`).
#[derive(ToSchema)]
#[schema(as = RestoreWindows)]
pub struct RestoreWindowsSchema {
    restore_windows: Vec<RestoreWindowSchema>,
}

/// One zone of a restore (obshell's `ZoneParam`).
#[derive(ToSchema)]
#[schema(as = ZoneParam)]
pub struct ZoneParamSchema {
    name: String,
    /// FULL (default) or READONLY.
    replica_type: Option<String>,
    unit_config_name: String,
    unit_num: i64,
}

/// Body of `POST /api/v1/tenant` (mirror of
/// `obrestore_restore::tenant_param::CreateTenantParam`).
#[derive(ToSchema)]
#[schema(as = CreateTenantParam)]
pub struct CreateTenantParamSchema {
    name: String,
    zone_list: Vec<ZoneParamSchema>,
    /// `MYSQL` (default); the embedded cluster has no Oracle mode.
    mode: Option<String>,
    /// `RANDOM` (default) or `z1;z2,z3`.
    primary_zone: Option<String>,
    /// Merged with `127.0.0.1`.
    whitelist: Option<String>,
    /// Kept sealed until the `Set root password` step; never echoed.
    root_password: Option<String>,
    charset: Option<String>,
    collation: Option<String>,
    read_only: Option<bool>,
    comment: Option<String>,
    /// Name → string, number or boolean.
    #[schema(value_type = Option<Object>)]
    variables: Option<std::collections::BTreeMap<String, String>>,
    /// Name → string, number or boolean.
    #[schema(value_type = Option<Object>)]
    parameters: Option<std::collections::BTreeMap<String, String>>,
    /// Accepted, ignored.
    scenario: Option<String>,
    /// Accepted, ignored.
    import_script: Option<bool>,
}

/// Body of `POST /api/v1/tenant/restore` (mirror of `obrestore_restore::RestoreParam`).
#[derive(ToSchema)]
#[schema(as = RestoreParam)]
pub struct RestoreParamSchema {
    data_backup_uri: String,
    archive_log_uri: Option<String>,
    restore_tenant_name: String,
    /// RFC 3339 (also accepted as `time_stamp`).
    timestamp: Option<String>,
    scn: Option<u64>,
    zone_list: Option<Vec<ZoneParamSchema>>,
    primary_zone: Option<String>,
    concurrency: Option<i64>,
    ha_high_thread_score: Option<i64>,
    decryption: Option<Vec<String>>,
    kms_encrypt_info: Option<String>,
}

/// Adds the auth headers as security schemes.
struct AuthSchemes;

impl Modify for AuthSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "v2",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::HEADER_V2,
                "base64(RSA-PKCS1v1.5 chunks of {auth, ts, uri, keys}); body AES-128-CBC, base64",
            ))),
        );
        components.add_security_scheme(
            "v2_agent",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::HEADER_AGENT_V2,
                "the same as X-OCS-Header, sent by obshell's SDKs with the agent password",
            ))),
        );
    }
}

/// Document-level data; the paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "obrestore agent API (obshell-compatible)",
        description = "Responses are wrapped in {successful, timestamp, duration, status, traceId, data?, error?}; listings put items under data.contents. All endpoints but info, secret, status and openapi.json need API hybrid-encryption auth (v2) when the agent has a password. Unknown routes answer 404 and unknown methods 405, both with errCode Common.NotFound.",
    ),
    security(("v2" = []), ("v2_agent" = [])),
    modifiers(&AuthSchemes),
    components(schemas(
        DagDetailSchema, NodeDetailSchema, TaskDetailSchema, TaskLogSchema, AgentAddressSchema,
        RestorePreviewItemSchema, RestoreWindowsSchema, RestoreWindowSchema, RestoreParamSchema,
        ZoneParamSchema, crate::envelope::ApiError, crate::envelope::FieldError,
    ))
)]
pub struct ApiDoc;
