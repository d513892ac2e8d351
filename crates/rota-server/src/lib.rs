//! # rota-server
//!
//! Rota's HTTP API as an [`axum::Router`]: jobs, executions, schedules,
//! webhooks, queues, nodes, API keys, health, Prometheus metrics, a
//! generated OpenAPI document and a minimal HTML page. `rota server` mounts [`router`] and serves it.
//!
//! - Every error is an RFC 9457 `application/problem+json` body with a
//!   stable `code` (see [`error::Code`]) and, where one is at fault, the
//!   `field`. Nothing is written for a rejected request; no input causes a
//!   500 (and a panic would be caught and answered as one).
//! - With [`ServerOptions::require_auth`], every route but `/healthz` and
//!   `/readyz` needs `Authorization: Bearer <key>` of a sufficient scope
//!   (see [`auth`]).
//! - Cross-site browser requests that would change something are refused
//!   (403 `cross_origin_request`, by `Sec-Fetch-Site` / `Origin`), so a web
//!   page cannot drive a loopback server that runs without keys.
//! - Every request gets an `x-request-id` (kept when the client sends one),
//!   a tracing span, a 30 s time limit, and `rota_http_requests_total` /
//!   `rota_http_request_duration_seconds` metrics.
//!
//! ```no_run
//! # async fn run(client: rota::Client) -> std::io::Result<()> {
//! let app = rota_server::router(client, rota_server::ServerOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7070").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;
mod openapi;
mod routes;
pub mod ui;

pub use error::{ApiError, Code, Problem};
pub use routes::jobs::{DEFAULT_LIMIT, MAX_BATCH, parse_duration, parse_time};

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// How long a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Renders Prometheus text for `GET /metrics`.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;
/// Checks a kind's args (of jobs and of schedule job templates); the
/// error's `field` is relative to the job body (e.g. `args.command`, answered
/// as `job.args.command` for a schedule) and is answered 422.
pub type ArgsValidator =
    Arc<dyn Fn(&str, &serde_json::Value) -> Result<(), rota::ValidationError> + Send + Sync>;

/// How the API behaves.
#[derive(Clone)]
pub struct ServerOptions {
    /// Largest request body in bytes (default 1 MiB); larger ones are 413
    /// without being read whole.
    pub body_limit: usize,
    /// Require an API key on every route except `/healthz` and `/readyz`.
    pub require_auth: bool,
    /// Accept jobs (and schedule job templates) of kinds the client has no
    /// worker for (default false: 422 `unknown_kind`).
    pub accept_unknown_kinds: bool,
    /// Renders Prometheus text for `GET /metrics` (404 when `None`).
    pub metrics: Option<MetricsRender>,
    /// Per-kind args check (e.g. shell args), run before anything is written.
    pub validate_args: Option<ArgsValidator>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            require_auth: false,
            accept_unknown_kinds: false,
            metrics: None,
            validate_args: None,
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("body_limit", &self.body_limit)
            .field("require_auth", &self.require_auth)
            .field("accept_unknown_kinds", &self.accept_unknown_kinds)
            .field("metrics", &self.metrics.is_some())
            .field("validate_args", &self.validate_args.is_some())
            .finish()
    }
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) client: rota::Client,
    pub(crate) options: Arc<ServerOptions>,
    pub(crate) openapi_json: Bytes,
}

/// Every documented route (the OpenAPI paths come from here).
fn api_router() -> OpenApiRouter<AppState> {
    use routes::{executions, health, jobs, keys, nodes, queues, schedules, webhooks};
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(jobs::enqueue, jobs::list))
        .routes(routes!(jobs::enqueue_batch))
        .routes(routes!(jobs::get_job, jobs::delete_job))
        .routes(routes!(jobs::output))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(queues::list))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::drain))
        .routes(routes!(executions::create, executions::list))
        .routes(routes!(executions::get_execution))
        .routes(routes!(executions::jobs, executions::add_jobs))
        .routes(routes!(executions::stop))
        .routes(routes!(executions::mark))
        .routes(routes!(schedules::create, schedules::list))
        .routes(routes!(
            schedules::get_schedule,
            schedules::patch,
            schedules::delete_schedule
        ))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(schedules::trigger))
        .routes(routes!(schedules::runs))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi_json))
        .routes(routes!(ui::index))
}

/// The generated OpenAPI document (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().into_openapi();
    openapi::finish(&mut doc);
    doc
}

async fn route_not_found(req: Request) -> ApiError {
    let path: String = req.uri().path().chars().take(200).collect();
    ApiError::new(
        Code::RouteNotFound,
        format!("no route for {} {path}", req.method()),
    )
}

/// Turns any error response not already problem+json (from the router or a
/// layer: 405, 408, 413, timeouts) into one, keeping its status and headers.
async fn problemize<B>(res: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let res = res.map(axum::body::Body::new);
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(error::PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let code = Code::for_status(status);
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not accept that method; see the Allow header"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body exceeds the size limit",
        StatusCode::REQUEST_TIMEOUT => "the request took too long to arrive",
        StatusCode::SERVICE_UNAVAILABLE => "the server could not answer in time; retry later",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    let (parts, _) = res.into_parts();
    let mut problem = ApiError::new(code, detail).problem();
    problem.status = status.as_u16();
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut out = Response::from_parts(parts, axum::body::Body::from(body));
    let h = out.headers_mut();
    h.remove(header::CONTENT_LENGTH);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(error::PROBLEM_JSON),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE && !h.contains_key(header::RETRY_AFTER) {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(error::RETRY_AFTER_SECS),
        );
    }
    out
}

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic)");
    tracing::error!(panic = msg, "handler panicked");
    ApiError::new(
        Code::Internal,
        "an unexpected error occurred; see the server log",
    )
    .into_response()
}

/// Counts requests per route and status (`rota_http_requests_total`) and
/// records latency (`rota_http_request_duration_seconds`).
async fn track(req: Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("rota_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("rota_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

fn cross_origin(_: tower_http::csrf::ProtectionError) -> Response {
    ApiError::new(
        Code::CrossOriginRequest,
        "cross-site browser requests may not change anything (Sec-Fetch-Site / Origin check)",
    )
    .into_response()
}

fn make_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// The API as a router: mount it, or serve it with `axum::serve`.
pub fn router(client: rota::Client, options: ServerOptions) -> Router {
    let body_limit = options.body_limit;
    let openapi_json = serde_json::to_vec(&openapi()).unwrap_or_default();
    let state = AppState {
        client,
        options: Arc::new(options),
        openapi_json: Bytes::from(openapi_json),
    };
    let (api, _) = api_router().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    api.fallback(route_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(track))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(make_span))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::map_response(problemize))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    REQUEST_TIMEOUT,
                ))
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(CsrfLayer::new().with_rejection_response(cross_origin)),
        )
}
