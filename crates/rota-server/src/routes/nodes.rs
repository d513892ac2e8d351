//! `/v1/nodes`: list, drain.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::dto::{NodeList, NodeView};
use crate::error::{ApiResult, Problem};
use crate::extract::PathName;

/// Every registered node, with its heartbeat age.
#[utoipa::path(
    get,
    path = "/v1/nodes",
    tag = "nodes",
    responses((status = 200, description = "Nodes by id", body = NodeList)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<NodeList>> {
    let nodes = st.client.nodes().await?;
    let now = st.client.config().clock.now();
    Ok(Json(NodeList {
        nodes: nodes.into_iter().map(|n| NodeView::new(n, now)).collect(),
    }))
}

/// Asks a node to stop claiming new work; its running jobs finish (admin).
#[utoipa::path(
    post,
    path = "/v1/nodes/{id}/drain",
    tag = "nodes",
    params(("id" = String, Path, description = "Node id")),
    responses(
        (status = 200, description = "The node", body = NodeView),
        (status = 404, description = "No such node", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn drain(
    State(st): State<AppState>,
    PathName(id): PathName,
) -> ApiResult<Json<NodeView>> {
    let node = st.client.drain_node(&id).await?;
    let now = st.client.config().clock.now();
    Ok(Json(NodeView::new(node, now)))
}
