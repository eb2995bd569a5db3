//! The OpenAPI 3 document. Paths come from the handlers' `#[utoipa::path]` through
//! `utoipa_axum::routes!`, so the router and the document are one list. Types of the
//! other crates (which know nothing of HTTP) are mirrored here as schema-only structs;
//! `tests/openapi.rs` checks that each mirror has exactly the fields of the real DTO.
//!
//! A handler documents its own answers with the body inside `data` (`body = Dto`, or
//! `body = Vec<Dto>` for a listing) and its errors with `body = ApiError`. [`complete`]
//! then wraps every body in the envelope the server really sends and adds the answers
//! every operation shares (401, 429, 413, 408, 500, 503), so the document is what a client
//! receives; `scripts/fuzz-api.sh` checks it against a live agent.

#![allow(dead_code)] // Schema-only mirrors are never constructed.

use serde_json::{Map, Value};
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, RefOr};
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

/// The one path answered outside the envelope (the document itself).
pub const UNWRAPPED_PATH: &str = "/api/v1/openapi.json";
/// Operations that read nothing from the store, so never answer 500.
const STORE_FREE_PATHS: [&str; 3] = ["/api/v1/info", "/api/v1/secret", UNWRAPPED_PATH];
/// The envelope of a successful answer (`data` added per operation).
pub const ENVELOPE_SCHEMA: &str = "Envelope";
/// The envelope of a refused or failed request.
pub const ERROR_ENVELOPE_SCHEMA: &str = "ErrorEnvelope";

/// The router's document with every answer in the envelope and the answers every
/// operation shares (see the module docs).
pub fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ENVELOPE_SCHEMA.to_string(), envelope_schema(false).into());
    components.schemas.insert(
        ERROR_ENVELOPE_SCHEMA.to_string(),
        envelope_schema(true).into(),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        for (writes, operation) in operations_mut(item) {
            if path == UNWRAPPED_PATH {
                document_itself(operation);
            } else {
                complete_operation(path, writes, operation);
            }
        }
    }
    doc
}

/// The document's own answer: a JSON object, outside the envelope.
fn document_itself(operation: &mut Operation) {
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("200") {
        let object = ObjectBuilder::new().schema_type(Type::Object);
        response
            .content
            .insert("application/json".to_string(), json(object.into()));
    }
}

/// The operations of a path, each with whether it may write (every method but GET).
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, &mut item.get),
        (true, &mut item.put),
        (true, &mut item.post),
        (true, &mut item.delete),
        (true, &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(writes, operation)| operation.as_mut().map(|operation| (writes, operation)))
}

/// `{successful, timestamp, duration, status, traceId}` and, for an error, `error`.
fn envelope_schema(error: bool) -> Schema {
    let integer = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
    };
    let builder = ObjectBuilder::new()
        .property(
            "successful",
            ObjectBuilder::new().schema_type(Type::Boolean),
        )
        .property(
            "timestamp",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("RFC 3339 with offset")),
        )
        .property(
            "duration",
            integer().description(Some("Milliseconds spent on the request")),
        )
        .property("status", integer().description(Some("The HTTP status")))
        .property("traceId", ObjectBuilder::new().schema_type(Type::String))
        .required("successful")
        .required("timestamp")
        .required("duration")
        .required("status")
        .required("traceId");
    if error {
        builder
            .property("error", RefOr::Ref(schema_ref("ApiError")))
            .required("error")
            .into()
    } else {
        builder.into()
    }
}

fn schema_ref(name: &str) -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name(name)
}

/// A successful answer: the envelope, with `data` when the handler documents a body (a
/// documented array is a listing, `{contents: [...]}`).
fn success_schema(data: Option<RefOr<Schema>>) -> RefOr<Schema> {
    let Some(data) = data else {
        return RefOr::Ref(schema_ref(ENVELOPE_SCHEMA));
    };
    let data = match data {
        RefOr::T(Schema::Array(array)) => ObjectBuilder::new()
            .property("contents", array)
            .required("contents")
            .into(),
        other => other,
    };
    let with_data = ObjectBuilder::new().property("data", data).required("data");
    AllOfBuilder::new()
        .item(RefOr::Ref(schema_ref(ENVELOPE_SCHEMA)))
        .item(with_data)
        .into()
}

fn json(schema: RefOr<Schema>) -> Content {
    Content::new(Some(schema))
}

fn error_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_string(),
        json(RefOr::Ref(schema_ref(ERROR_ENVELOPE_SCHEMA))),
    );
    response
}

/// One operation: its own answers in the envelope, then the shared ones it lacks.
fn complete_operation(path: &str, writes: bool, operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status == "204" {
            response.content.clear();
        } else if status.starts_with('2') {
            let data = response
                .content
                .shift_remove("application/json")
                .and_then(|content| content.schema);
            response
                .content
                .insert("application/json".to_string(), json(success_schema(data)));
        } else {
            response.content.clear();
            response.content.insert(
                "application/json".to_string(),
                json(RefOr::Ref(schema_ref(ERROR_ENVELOPE_SCHEMA))),
            );
        }
    }
    for (status, response) in shared_responses(path, writes, operation) {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| response.into());
    }
}

/// The answers an operation has because of what it takes (a body, a query), where it
/// stands (behind auth or not), what it reads (the store) and whether it may write.
fn shared_responses(
    path: &str,
    writes: bool,
    operation: &Operation,
) -> Vec<(&'static str, Response)> {
    let public = operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|r| *r == SecurityRequirement::default())
    });
    let has_body = operation.request_body.is_some();
    let has_query = operation.parameters.iter().flatten().any(|parameter| {
        matches!(
            parameter.parameter_in,
            utoipa::openapi::path::ParameterIn::Query
        )
    });
    let mut shared = Vec::new();
    if has_body {
        shared.push(("400", error_response("The body is not JSON or a field does not fit (Common.BindJsonFailed, the field in subErrors)")));
    }
    if has_query {
        shared.push(("400", error_response("A query parameter does not parse (Common.IllegalArgument, the parameter in subErrors)")));
    }
    if !public {
        shared.push(("401", error_response("Authentication failed: no, an expired or a wrong auth header, or a body that does not decrypt")));
        let mut limited = error_response("Too many failed authentications from this address (Security.Authentication.TooManyFailures)");
        limited.headers.insert(
            "Retry-After".to_string(),
            Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
        );
        shared.push(("429", limited));
    }
    if has_body || !public {
        let text = "The request body is larger than the limit (Common.RequestBodyTooLarge)";
        shared.push(("413", error_response(text)));
        let text = "The client stopped sending the request body (Common.RequestTimeout)";
        shared.push(("408", error_response(text)));
    }
    if !STORE_FREE_PATHS.contains(&path) {
        let text = "The agent's store failed (Common.Unexpected); never a refusal of the request";
        shared.push(("500", error_response(text)));
        if writes {
            let text =
                "The agent is shutting down and starts or changes no DAG (Common.Unexpected)";
            shared.push(("503", error_response(text)));
        }
    }
    shared
}
