//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::dto::Health;
use crate::error::{ApiError, ApiResult, Code, Problem};

/// How long `readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive", body = Health)),
    security(())
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        store: None,
        version: None,
    })
}

fn unavailable() -> ApiError {
    ApiError::new(
        Code::StoreUnavailable,
        "the job store is unreachable; retry later",
    )
}

/// Readiness: the store answers a ping.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The store is reachable", body = Health),
        (status = 503, description = "The store is unreachable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub(crate) async fn readyz(State(st): State<AppState>) -> ApiResult<Json<Health>> {
    let driver = st.client.driver();
    match tokio::time::timeout(READY_TIMEOUT, driver.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store ping failed");
            return Err(unavailable());
        }
        Err(_) => {
            tracing::warn!("readiness: store ping timed out");
            return Err(unavailable());
        }
    }
    let version = match tokio::time::timeout(READY_TIMEOUT, driver.store_info()).await {
        Ok(Ok(info)) => Some(info.version),
        _ => None,
    };
    Ok(Json(Health {
        status: "ready".into(),
        store: Some(driver.name().to_owned()),
        version,
    }))
}

/// Prometheus metrics (text exposition format), when the server exports them.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "Metrics are not enabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn metrics(State(st): State<AppState>) -> ApiResult<Response> {
    let Some(render) = st.options.metrics.clone() else {
        return Err(ApiError::new(
            Code::RouteNotFound,
            "metrics are not enabled on this server",
        ));
    };
    let text = tokio::task::spawn_blocking(move || render())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let ct = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, ct)], text).into_response())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "OpenAPI document", body = Object, content_type = "application/json")),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn openapi_json(State(st): State<AppState>) -> Response {
    let ct = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, ct)], st.openapi_json.clone()).into_response()
}
