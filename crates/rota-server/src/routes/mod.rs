//! Route handlers, one module per resource.

pub(crate) mod executions;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod nodes;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod webhooks;

/// A `Location` header for a created resource at `base/id` (falls back to
/// `base` itself, which is always a valid header value).
pub(crate) fn location(
    base: &'static str,
    id: i64,
) -> [(axum::http::header::HeaderName, axum::http::HeaderValue); 1] {
    let v = axum::http::HeaderValue::from_str(&format!("{base}/{id}"))
        .unwrap_or(axum::http::HeaderValue::from_static(base));
    [(axum::http::header::LOCATION, v)]
}
