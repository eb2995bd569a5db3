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

/// One log row (mirror of `obrestore_dag::TaskLogDto`).
#[derive(ToSchema)]
#[schema(as = TaskLog)]
pub struct TaskLogSchema {
    task_id: u64,
    execute_times: u32,
    log_content: String,
    time: String,
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
    zone_list: Vec<ZoneParamSchema>,
    primary_zone: Option<String>,
    concurrency: Option<i64>,
    ha_high_thread_score: Option<i64>,
    decryption: Option<Vec<String>>,
    kms_encrypt_info: Option<String>,
}

/// Restore progress/history (mirror of `obrestore_restore::agent::RestoreOverview`).
#[derive(ToSchema)]
#[schema(as = RestoreOverview)]
pub struct RestoreOverviewSchema {
    job_id: u64,
    tenant_name: String,
    tenant_id: Option<u64>,
    restore_scn: u64,
    restore_scn_display: String,
    status: String,
    backup_set_list: String,
    backup_piece_list: String,
    ls_count: u64,
    finish_ls_count: u64,
    tablet_count: u64,
    finish_tablet_count: u64,
    total_bytes: u64,
    total_bytes_display: String,
    finish_bytes: u64,
    finish_bytes_display: String,
    recover_scn: u64,
    recover_scn_display: String,
    recover_progress: f64,
    restore_progress: f64,
    start_timestamp: String,
    finish_timestamp: Option<String>,
    comment: String,
    dag_id: Option<String>,
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
            "v1",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::HEADER_V1,
                "base64(RSA-PKCS1v1.5 of {password, ts}); body plain",
            ))),
        );
    }
}

/// Document-level data; the paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "obrestore agent API (obshell-compatible)",
        description = "Responses are wrapped in {successful, timestamp, duration, status, traceId, data?, error?}; listings put items under data.contents. All endpoints but info, secret, status and openapi.json need API hybrid-encryption auth when the agent has a password.",
    ),
    security(("v2" = []), ("v1" = [])),
    modifiers(&AuthSchemes),
    components(schemas(
        DagDetailSchema, NodeDetailSchema, TaskDetailSchema, TaskLogSchema, AgentAddressSchema,
        RestorePreviewItemSchema, RestoreWindowsSchema, RestoreWindowSchema, RestoreParamSchema,
        ZoneParamSchema, RestoreOverviewSchema, crate::envelope::ApiError,
    ))
)]
pub struct ApiDoc;
