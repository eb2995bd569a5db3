//! Tasks (obshell's `api/task_handler.go`): DAGs, nodes, sub-tasks and their logs,
//! operators, unfinished and maintenance lists. Restore and tenant DAGs are cluster
//! DAGs (`"1" + id`); DAGs an embedding program submits are agent DAGs by default.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use obrestore_dag::{DagDetailDto, NodeDetailDto, Operator, Scope, TaskDetailDto, TaskLogDto};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, JsonBody};
use crate::bind::parse_bool;
use crate::dto::{OperatorParam, ShowDetailsQuery};
use crate::envelope::{ApiError, ApiResult, AppError, Contents, Reply};
use crate::openapi::{DagDetailSchema, NodeDetailSchema, TaskDetailSchema, TaskLogSchema};

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(get_dag, operate_dag))
        .routes(routes!(get_node, operate_node))
        .routes(routes!(get_sub_task))
        .routes(routes!(get_sub_task_logs))
        .routes(routes!(all_cluster_dags))
        .routes(routes!(all_agent_dags))
        .routes(routes!(unfinished_dags))
        .routes(routes!(unfinished_cluster_dags))
        .routes(routes!(unfinished_agent_dags))
        .routes(routes!(cluster_maintenance_dag))
        .routes(routes!(agent_maintenance_dag))
        .routes(routes!(agents_maintenance_dags))
        .routes(routes!(agent_main_dags))
}

/// `show_details` (default true), parsed like Go's `strconv.ParseBool`.
fn show_details(query: Result<Query<ShowDetailsQuery>, QueryRejection>) -> Result<bool, AppError> {
    let Ok(Query(query)) = query else {
        return Ok(true);
    };
    match query.show_details {
        None => Ok(true),
        Some(text) => parse_bool(&text).ok_or_else(|| {
            AppError::illegal(
                "show_details",
                format!("'{text}' is not a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)"),
            )
        }),
    }
}

/// The operator of an operator body.
fn operator(param: &OperatorParam, node: bool) -> Result<Operator, AppError> {
    let text = param.operator.as_deref().unwrap_or_default();
    if text.is_empty() {
        return Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Common.BindJsonFailed",
            "Bind JSON failed: Key: 'operator' Error:Field validation for 'operator' failed on the 'required' tag",
        )
        .with_field("operator"));
    }
    text.parse().map_err(|_| {
        let err_code = if node {
            "Task.Node.Operator.NotSupport"
        } else {
            "Task.Dag.Operator.NotSupport"
        };
        AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            err_code,
            format!("Operator {text} is not supported"),
        )
        .with_field("operator")
    })
}

/// DAG detail.
#[utoipa::path(get, path = "/api/v1/task/dag/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the DAG"), ShowDetailsQuery),
    responses(
        (status = 200, description = "DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown DAG", body = ApiError)))]
async fn get_dag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<DagDetailDto> {
    let engine = state.agent().engine();
    let dag = engine.find_dag(&id)?;
    Ok(Reply::Ok(engine.dag_detail(dag.id, show_details(query)?)?))
}

/// Apply RETRY, ROLLBACK, CANCEL or PASS to a DAG (no `data`, as obshell).
#[utoipa::path(post, path = "/api/v1/task/dag/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the DAG")),
    request_body = OperatorParam,
    responses(
        (status = 200, description = "Applied (durable)"),
        (status = 400, description = "Malformed id, unknown operator, or the operator is not allowed now (the errCode says why)", body = ApiError),
        (status = 404, description = "Unknown DAG", body = ApiError),
        (status = 409, description = "The DAG must take its maintenance lock back and another DAG holds it, or took it since (Task.Expired)", body = ApiError)))]
async fn operate_dag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(param): JsonBody<OperatorParam>,
) -> ApiResult<()> {
    let engine = state.agent().engine();
    let dag = engine.find_dag(&id)?;
    let operator = operator(&param, false)?;
    engine.operate(dag.id, operator).await?;
    Ok(Reply::Done)
}

/// Node detail; with `show_details` (default true), its sub-tasks.
#[utoipa::path(get, path = "/api/v1/task/node/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the node"), ShowDetailsQuery),
    responses(
        (status = 200, description = "NodeDetailDTO in `data`", body = NodeDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown node", body = ApiError)))]
async fn get_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<NodeDetailDto> {
    let engine = state.agent().engine();
    let node = engine.find_node(&id)?;
    Ok(Reply::Ok(
        engine.node_detail(node.id, show_details(query)?)?,
    ))
}

/// PASS a failed node; the DAG continues downstream (no `data`, as obshell).
#[utoipa::path(post, path = "/api/v1/task/node/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the node")),
    request_body = OperatorParam,
    responses(
        (status = 200, description = "Passed (durable)"),
        (status = 400, description = "Malformed id, an operator other than PASS, or PASS not allowed now", body = ApiError),
        (status = 404, description = "Unknown node", body = ApiError),
        (status = 409, description = "The DAG's maintenance lock is held by another DAG", body = ApiError)))]
async fn operate_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(param): JsonBody<OperatorParam>,
) -> ApiResult<()> {
    let engine = state.agent().engine();
    let node = engine.find_node(&id)?;
    let operator = operator(&param, true)?;
    if operator != Operator::Pass {
        return Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Task.Node.Operator.NotSupport",
            format!("Operator {operator} is not supported"),
        )
        .with_field("operator"));
    }
    engine
        .pass_node(node.id)
        .await
        .map_err(AppError::node_operate)?;
    Ok(Reply::Done)
}

/// Sub-task detail with its logs and additional data.
#[utoipa::path(get, path = "/api/v1/task/sub_task/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the sub-task")),
    responses(
        (status = 200, description = "TaskDetailDTO in `data`", body = TaskDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown sub-task", body = ApiError)))]
async fn get_sub_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<TaskDetailDto> {
    let engine = state.agent().engine();
    let task = engine.find_task(&id)?;
    Ok(Reply::Ok(engine.task_detail(task.id)?))
}

/// Log rows of a sub-task, every execution (obshell's `bo.SubTaskLog`).
#[utoipa::path(get, path = "/api/v1/task/sub_task/{id}/logs", tag = "task",
    params(("id" = String, Path, description = "Generic id of the sub-task")),
    responses(
        (status = 200, description = "`{contents:[log row]}` in `data`", body = Vec<TaskLogSchema>),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown sub-task", body = ApiError)))]
async fn get_sub_task_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Contents<TaskLogDto>> {
    let engine = state.agent().engine();
    let task = engine.find_task(&id)?;
    Ok(Reply::Ok(Contents {
        contents: engine.task_logs(task.id)?,
    }))
}

fn listed(dags: Vec<DagDetailDto>) -> ApiResult<Contents<DagDetailDto>> {
    Ok(Reply::Ok(Contents { contents: dags }))
}

/// Every cluster DAG.
#[utoipa::path(get, path = "/api/v1/task/dags/ob", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn all_cluster_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    listed(
        state
            .engine_query(move |engine| Ok(engine.dag_details(Some(Scope::Cluster), details)?))
            .await?,
    )
}

/// Every agent-local DAG.
#[utoipa::path(get, path = "/api/v1/task/dags/agent", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn all_agent_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    listed(
        state
            .engine_query(move |engine| Ok(engine.dag_details(Some(Scope::Agent), details)?))
            .await?,
    )
}

/// Unfinished DAGs of the agent, then of the cluster (obshell's `is_finished = false`:
/// not SUCCEED, and not FAILED without a maintenance lock).
#[utoipa::path(get, path = "/api/v1/task/dag/unfinish", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    let engine = state.agent().engine();
    let mut dags = engine.unfinished_dags(Some(Scope::Agent), details)?;
    dags.extend(engine.unfinished_dags(Some(Scope::Cluster), details)?);
    listed(dags)
}

/// Unfinished cluster DAGs (restores, tenant operations).
#[utoipa::path(get, path = "/api/v1/task/dag/ob/unfinish", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_cluster_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    listed(
        state
            .agent()
            .engine()
            .unfinished_dags(Some(Scope::Cluster), details)?,
    )
}

/// Unfinished agent-local DAGs.
#[utoipa::path(get, path = "/api/v1/task/dag/agent/unfinish", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_agent_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    listed(
        state
            .agent()
            .engine()
            .unfinished_dags(Some(Scope::Agent), details)?,
    )
}

/// The newest maintenance DAG of `scope` (it reads every DAG record of the scope: on
/// the blocking pool).
async fn last_maintenance(
    state: &AppState,
    scope: Scope,
    details: bool,
) -> Result<Option<DagDetailDto>, AppError> {
    state
        .engine_query(move |engine| match engine.last_maintenance_dag(scope)? {
            Some(dag) => Ok(Some(engine.dag_detail(dag.id, details)?)),
            None => Ok(None),
        })
        .await
}

/// The newest cluster maintenance DAG, finished or not.
#[utoipa::path(get, path = "/api/v1/task/dag/maintain/ob", tag = "task", params(ShowDetailsQuery),
    responses(
        (status = 200, description = "DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 404, description = "The cluster never was under maintenance", body = ApiError)))]
async fn cluster_maintenance_dag(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<DagDetailDto> {
    let details = show_details(query)?;
    last_maintenance(&state, Scope::Cluster, details)
        .await?
        .map(Reply::Ok)
        .ok_or_else(|| not_under_maintenance("Cluster"))
}

/// The newest agent-local maintenance DAG, finished or not.
#[utoipa::path(get, path = "/api/v1/task/dag/maintain/agent", tag = "task", params(ShowDetailsQuery),
    responses(
        (status = 200, description = "DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 404, description = "The agent never was under maintenance", body = ApiError)))]
async fn agent_maintenance_dag(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<DagDetailDto> {
    let details = show_details(query)?;
    last_maintenance(&state, Scope::Agent, details)
        .await?
        .map(Reply::Ok)
        .ok_or_else(|| not_under_maintenance("Agent"))
}

fn not_under_maintenance(what: &str) -> AppError {
    AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        "Task.NotFound",
        format!("Task not found: {what} is not under maintenance"),
    )
}

/// The newest agent maintenance DAG of every agent (this agent only).
#[utoipa::path(get, path = "/api/v1/task/dag/maintain/agents", tag = "task", params(ShowDetailsQuery),
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn agents_maintenance_dags(
    State(state): State<AppState>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<Contents<DagDetailDto>> {
    let details = show_details(query)?;
    listed(
        last_maintenance(&state, Scope::Agent, details)
            .await?
            .into_iter()
            .collect(),
    )
}

/// The main DAGs of the agents' unfinished sub-DAGs: the DAGs named by `main_dag_id`
/// in the additional data of each agent's unfinished last maintenance DAG.
#[utoipa::path(get, path = "/api/v1/task/dag/agent/main_dags", tag = "task",
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn agent_main_dags(State(state): State<AppState>) -> ApiResult<Contents<DagDetailDto>> {
    let engine = state.agent().engine();
    let mut mains = Vec::new();
    if let Some(dag) = last_maintenance(&state, Scope::Agent, true).await? {
        let main = dag
            .additional_data
            .as_ref()
            .and_then(|data| data.get("main_dag_id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let (false, Some(main)) = (dag.state == "SUCCEED", main) {
            if let Ok(record) = engine.find_dag(&main) {
                mains.push(engine.dag_detail(record.id, true)?);
            }
        }
    }
    listed(mains)
}
