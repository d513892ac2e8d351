//! `/v1/queues`: list, pause, resume.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::dto::{QueueList, QueueView};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::PathName;

/// Every queue with its pause state and job counts.
#[utoipa::path(
    get,
    path = "/v1/queues",
    tag = "queues",
    responses((status = 200, description = "Queues by name", body = QueueList)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<QueueList>> {
    let queues = st.client.queues().await?;
    Ok(Json(QueueList {
        queues: queues.into_iter().map(QueueView::from).collect(),
    }))
}

fn check_name(name: &str) -> ApiResult<()> {
    rota_core::validate_queue_name(name)
        .map_err(|e| ApiError::invalid(Code::InvalidParameter, "name", e.message))
}

async fn view(st: &AppState, name: String) -> ApiResult<QueueView> {
    let found = st
        .client
        .queues()
        .await?
        .into_iter()
        .find(|q| q.name == name);
    Ok(match found {
        Some(q) => q.into(),
        None => QueueView {
            name,
            paused: false,
            paused_at: None,
            counts: Default::default(),
        },
    })
}

/// Pauses a queue on every node (idempotent): nothing more is claimed from it.
#[utoipa::path(
    post,
    path = "/v1/queues/{name}/pause",
    tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 422, description = "Invalid queue name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn pause(
    State(st): State<AppState>,
    PathName(name): PathName,
) -> ApiResult<Json<QueueView>> {
    check_name(&name)?;
    st.client.pause_queue(&name).await?;
    Ok(Json(view(&st, name).await?))
}

/// Resumes a paused queue (idempotent).
#[utoipa::path(
    post,
    path = "/v1/queues/{name}/resume",
    tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 422, description = "Invalid queue name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn resume(
    State(st): State<AppState>,
    PathName(name): PathName,
) -> ApiResult<Json<QueueView>> {
    check_name(&name)?;
    st.client.resume_queue(&name).await?;
    Ok(Json(view(&st, name).await?))
}
