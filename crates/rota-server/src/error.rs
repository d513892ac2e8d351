//! RFC 9457 problem details: one table mapping every error to a stable code
//! and an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rota::{DriverError, Error};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

macro_rules! make_error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => ($status:ident, $code:literal, $title:literal);)*) => {
        /// Every error the API returns, with its stable `code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable machine-readable code (`problem.code`).
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The HTTP status.
            pub const fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)* }
            }

            /// A short human summary (`problem.title`).
            pub const fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }
        }
    };
}

make_error_codes! {
    /// The body is not well-formed JSON (syntax, truncation, nesting too deep).
    InvalidJson => (BAD_REQUEST, "invalid_json", "Malformed JSON body");
    /// The request is malformed in some other way.
    BadRequest => (BAD_REQUEST, "bad_request", "Bad request");
    /// No or an invalid API key.
    Unauthorized => (UNAUTHORIZED, "unauthorized", "Authentication required");
    /// The API key's scope does not allow this route.
    InsufficientScope => (FORBIDDEN, "insufficient_scope", "Insufficient scope");
    /// A browser sent a mutation from another site (CSRF protection).
    CrossOriginRequest => (FORBIDDEN, "cross_origin_request", "Cross-origin request refused");
    /// No job with that id.
    JobNotFound => (NOT_FOUND, "job_not_found", "Job not found");
    /// No node with that id.
    NodeNotFound => (NOT_FOUND, "node_not_found", "Node not found");
    /// No API key with that id.
    ApiKeyNotFound => (NOT_FOUND, "api_key_not_found", "API key not found");
    /// No execution with that id.
    ExecutionNotFound => (NOT_FOUND, "execution_not_found", "Execution not found");
    /// No schedule with that id.
    ScheduleNotFound => (NOT_FOUND, "schedule_not_found", "Schedule not found");
    /// No webhook subscription with that id.
    WebhookNotFound => (NOT_FOUND, "webhook_not_found", "Webhook not found");
    /// No such route (or the feature behind it is disabled).
    RouteNotFound => (NOT_FOUND, "route_not_found", "Not found");
    /// The route exists but not for this method.
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed");
    /// The request took too long to arrive.
    RequestTimeout => (REQUEST_TIMEOUT, "request_timeout", "Request timeout");
    /// The job's state does not allow the action.
    InvalidState => (CONFLICT, "invalid_state", "Invalid state for this action");
    /// A uniqueness rule was broken, or the resource's state does not
    /// allow the change (a duplicate schedule name; marking an execution
    /// that has jobs).
    Conflict => (CONFLICT, "conflict", "Conflict");
    /// The body is larger than the configured limit.
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large");
    /// The body is not `application/json`.
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type");
    /// A JSON value has the wrong type or is out of range for its type.
    InvalidType => (UNPROCESSABLE_ENTITY, "invalid_type", "Invalid type");
    /// A required JSON field is missing.
    MissingField => (UNPROCESSABLE_ENTITY, "missing_field", "Missing field");
    /// The body has a field the API does not know.
    UnknownField => (UNPROCESSABLE_ENTITY, "unknown_field", "Unknown field");
    /// A value breaks a rule (range, name syntax, NUL bytes, ...).
    InvalidValue => (UNPROCESSABLE_ENTITY, "invalid_value", "Invalid value");
    /// A duration is unparseable, zero or negative.
    InvalidDuration => (UNPROCESSABLE_ENTITY, "invalid_duration", "Invalid duration");
    /// A time is not an RFC 3339 timestamp with an offset.
    InvalidTime => (UNPROCESSABLE_ENTITY, "invalid_time", "Invalid time");
    /// No worker is registered for the job's kind.
    UnknownKind => (UNPROCESSABLE_ENTITY, "unknown_kind", "Unknown job kind");
    /// A path or query parameter is invalid or unknown.
    InvalidParameter => (UNPROCESSABLE_ENTITY, "invalid_parameter", "Invalid parameter");
    /// Unexpected server error (details are logged, not returned).
    Internal => (INTERNAL_SERVER_ERROR, "internal", "Internal server error");
    /// The store does not implement this operation.
    NotImplemented => (NOT_IMPLEMENTED, "not_implemented", "Not implemented");
    /// The store cannot be reached right now; retry later.
    StoreUnavailable => (SERVICE_UNAVAILABLE, "store_unavailable", "Store unavailable");
    /// The server is overloaded or the request took too long; retry later.
    ServiceUnavailable => (SERVICE_UNAVAILABLE, "service_unavailable", "Service unavailable");
}

impl Code {
    /// The problem `type` URI for this code.
    pub fn type_uri(self) -> String {
        format!("urn:rota:problem:{}", self.as_str())
    }

    /// The code used for a bare error status produced outside the handlers
    /// (by a layer or the router itself).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::BadRequest,
            401 => Code::Unauthorized,
            403 => Code::InsufficientScope,
            404 => Code::RouteNotFound,
            405 => Code::MethodNotAllowed,
            408 => Code::RequestTimeout,
            409 => Code::Conflict,
            413 => Code::PayloadTooLarge,
            415 => Code::UnsupportedMediaType,
            422 => Code::InvalidValue,
            501 => Code::NotImplemented,
            503 | 504 => Code::ServiceUnavailable,
            _ if status.is_client_error() => Code::BadRequest,
            _ => Code::Internal,
        }
    }
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type: `urn:rota:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// The offending field or parameter (`max_attempts`, `jobs[3].delay`, `id`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Which error.
    pub code: Code,
    /// Human detail.
    pub detail: String,
    /// Offending field, if any.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a detail message.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field: None,
        }
    }

    /// Names the offending field.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty() && f != ".").then_some(f);
        self
    }

    /// A semantic error about `field`.
    pub fn invalid(code: Code, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(code, detail).field(field)
    }

    /// The internal error with a generic detail; the cause is logged.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Code::Internal,
            "an unexpected error occurred; see the server log",
        )
    }

    /// Prefixes the field with `prefix.` (batch items: `jobs[3]`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_owned(),
        });
        self
    }

    /// The body.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            field: self.field.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for ApiError {}

/// Builds a problem+json response (used for errors raised outside handlers too).
pub fn problem_response(err: &ApiError) -> Response {
    let status = err.code.status();
    let body = serde_json::to_vec(&err.problem()).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rota\""),
        );
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(&self)
    }
}

impl From<DriverError> for ApiError {
    fn from(e: DriverError) -> Self {
        ApiError::from(Error::from(e))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "store unavailable");
            return ApiError::new(
                Code::StoreUnavailable,
                "the job store is unavailable; retry later",
            );
        }
        match e {
            Error::Invalid(v) => ApiError::invalid(Code::InvalidValue, v.field, v.message),
            Error::NotFound(id) => {
                ApiError::new(Code::JobNotFound, format!("job {id} not found")).field("id")
            }
            Error::InvalidState { id, state, action } => ApiError::new(
                Code::InvalidState,
                format!("cannot {action} job {id}: it is {state}"),
            ),
            Error::Conflict(m) => ApiError::new(Code::Conflict, m),
            Error::Args(e) => ApiError::invalid(Code::InvalidValue, "args", e.to_string()),
            Error::Missing { entity, id } => {
                let code = match entity {
                    "job" => Code::JobNotFound,
                    "node" => Code::NodeNotFound,
                    "api_key" => Code::ApiKeyNotFound,
                    "execution" => Code::ExecutionNotFound,
                    "schedule" => Code::ScheduleNotFound,
                    "webhook" => Code::WebhookNotFound,
                    _ => Code::RouteNotFound,
                };
                let shown = if id.parse::<i64>().is_ok() {
                    id
                } else {
                    format!("{id:?}")
                };
                ApiError::new(
                    code,
                    format!("{} {shown} not found", entity.replace('_', " ")),
                )
                .field("id")
            }
            Error::Store(DriverError::NotImplemented(what)) => ApiError::new(
                Code::NotImplemented,
                format!("the store does not support {what}"),
            ),
            other => ApiError::internal(&other),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_match() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
        assert_eq!(
            Code::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            Code::PayloadTooLarge
        );
    }

    #[test]
    fn within_prefixes_fields() {
        let e = ApiError::invalid(Code::InvalidDuration, "delay", "bad").within("jobs[2]");
        assert_eq!(e.field.as_deref(), Some("jobs[2].delay"));
        assert_eq!(ApiError::new(Code::Internal, "x").field(".").field, None);
    }
}
