//! Bodies and queries of the task endpoints (`/api/v1/task/...`); the engine's own
//! DTOs (`DagDetailDto`, ...) are answered as they are.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v1/task/dag/:id` and `POST /api/v1/task/node/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorParam {
    /// RETRY, ROLLBACK, CANCEL or PASS, any case.
    #[serde(default)]
    pub operator: Option<String>,
}

/// Query of the task endpoints (`param.TaskQueryParams`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowDetailsQuery {
    /// Include nodes and sub-tasks (default true), parsed like Go's
    /// `strconv.ParseBool` (`1 t T TRUE true True 0 f F FALSE false False`).
    pub show_details: Option<String>,
}
