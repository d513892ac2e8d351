//! `/v1/keys`: create (token shown once), list, revoke. Admin only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rota::ApiKeyScope;

use crate::AppState;
use crate::dto::{ApiKeyList, ApiKeyView, CreateKeyRequest, CreatedKey};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::{ApiJson, PathName};

/// Creates an API key; the response carries its token, shown only this once.
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    request_body = CreateKeyRequest,
    responses((status = 201, description = "The key and its token", body = CreatedKey)),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let scope = ApiKeyScope::parse(&req.scope).ok_or_else(|| {
        ApiError::invalid(Code::InvalidValue, "scope", "must be read, write or admin")
    })?;
    let created = st.client.create_api_key(&req.name, scope).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: created.key.into(),
            token: created.token,
        }),
    ))
}

/// Every API key (never secrets).
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    responses((status = 200, description = "Keys by creation time", body = ApiKeyList)),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<ApiKeyList>> {
    let keys = st.client.api_keys().await?;
    Ok(Json(ApiKeyList {
        keys: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// Revokes a key (idempotent).
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyView),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn revoke(
    State(st): State<AppState>,
    PathName(id): PathName,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(st.client.revoke_api_key(&id).await?.into()))
}
