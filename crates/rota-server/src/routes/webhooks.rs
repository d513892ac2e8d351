//! `/v1/webhooks`: subscribe (secret never returned), list, delete,
//! deliveries. Admin only.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rota::{Error, WebhookRequest};

use crate::AppState;
use crate::dto::{CreateWebhookRequest, DeliveryList, DeliveryView, WebhookList, WebhookView};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::{ApiJson, Id, check_text, id_page};

/// Longest target URL, in bytes.
const MAX_URL: usize = 2048;
/// Shortest and longest signing secret, in bytes.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=1024;
/// Most entries of `events`, `kinds`, `owner_kinds`.
const MAX_FILTERS: usize = 100;
/// Longest filter entry, in bytes.
const MAX_FILTER_LEN: usize = 128;

fn check_list(field: &str, items: &[String]) -> ApiResult<()> {
    if items.len() > MAX_FILTERS {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            field,
            format!("must hold at most {MAX_FILTERS} entries"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        check_text(
            &format!("{field}[{i}]"),
            item,
            MAX_FILTER_LEN,
            Code::InvalidValue,
        )?;
    }
    Ok(())
}

/// Subscribes a URL to job and execution status events. Deliveries are
/// signed with the secret, which is never returned.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses((status = 201, description = "The subscription (without its secret)", body = WebhookView)),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> ApiResult<Response> {
    check_text("url", &req.url, MAX_URL, Code::InvalidValue)?;
    if !SECRET_LEN.contains(&req.secret.len()) {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "secret",
            format!(
                "must be {}..={} bytes",
                SECRET_LEN.start(),
                SECRET_LEN.end()
            ),
        ));
    }
    if req.secret.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "secret",
            "must not contain control characters",
        ));
    }
    let events = req.events.unwrap_or_default();
    let kinds = req.kinds.unwrap_or_default();
    let owner_kinds = req.owner_kinds.unwrap_or_default();
    check_list("events", &events)?;
    check_list("kinds", &kinds)?;
    check_list("owner_kinds", &owner_kinds)?;
    let row = st
        .client
        .create_webhook(WebhookRequest {
            url: req.url,
            events,
            kinds,
            owner_kinds,
            secret: req.secret,
        })
        .await?;
    let location = HeaderValue::from_str(&format!("/v1/webhooks/{}", row.id))
        .unwrap_or(HeaderValue::from_static("/v1/webhooks"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WebhookView::from(row)),
    )
        .into_response())
}

/// Every subscription (never secrets).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "Subscriptions by id", body = WebhookList)),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<WebhookList>> {
    let rows = st.client.webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: rows.into_iter().map(WebhookView::from).collect(),
    }))
}

/// Removes a subscription and its deliveries.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The deleted subscription", body = WebhookView),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn delete_webhook(
    State(st): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(st.client.delete_webhook(id).await?.into()))
}

/// Deliveries of a subscription, newest first, with their attempts.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=10000 (default 50)"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(crate) async fn deliveries(
    State(st): State<AppState>,
    Id(id): Id,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DeliveryList>> {
    let (limit, before) = id_page(q.as_deref())?;
    if !st.client.webhooks().await?.iter().any(|w| w.id == id) {
        return Err(Error::Missing {
            entity: "webhook",
            id: id.to_string(),
        }
        .into());
    }
    let rows = st.client.webhook_deliveries(id, before, limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: rows.into_iter().map(DeliveryView::from).collect(),
        next,
    }))
}
