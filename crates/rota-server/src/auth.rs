//! Bearer API keys and scopes: read < write < admin.
//!
//! When [`ServerOptions::require_auth`](crate::ServerOptions::require_auth)
//! is set, every route except `/healthz` and `/readyz` needs
//! `Authorization: Bearer rota_<id>_<secret>`; `GET`/`HEAD` need `read`,
//! other methods `write`; key management, webhooks (they carry signing
//! secrets) and node drain need `admin`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rota::ApiKeyScope;

use crate::AppState;
use crate::error::{ApiError, Code};

/// Longest bearer token considered (longer ones are refused unhashed).
const MAX_TOKEN_LEN: usize = 512;

/// The scope a request needs, or `None` for unauthenticated routes.
pub fn required_scope(method: &Method, path: &str) -> Option<ApiKeyScope> {
    if path == "/healthz" || path == "/readyz" {
        return None;
    }
    let admin_only = ["/v1/keys", "/v1/webhooks"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')));
    if admin_only {
        return Some(ApiKeyScope::Admin);
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(ApiKeyScope::Read);
    }
    if path.starts_with("/v1/nodes/") && path.ends_with("/drain") {
        return Some(ApiKeyScope::Admin);
    }
    Some(ApiKeyScope::Write)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated key, stored in request extensions for handlers.
#[derive(Debug, Clone)]
pub struct Authenticated(pub rota::ApiKeyRow);

/// Middleware: checks the bearer key against the route's scope.
pub(crate) async fn authenticate(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !st.options.require_auth {
        return next.run(req).await;
    }
    let Some(needed) = required_scope(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let Some(token) = bearer(req.headers()) else {
        return ApiError::new(
            Code::Unauthorized,
            "this server requires an API key: send Authorization: Bearer <key>",
        )
        .into_response();
    };
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return ApiError::new(Code::Unauthorized, "invalid API key").into_response();
    }
    match st.client.verify_api_key(token).await {
        Ok(Some(key)) if key.scope >= needed => {
            req.extensions_mut().insert(Authenticated(key));
            next.run(req).await
        }
        Ok(Some(key)) => ApiError::new(
            Code::InsufficientScope,
            format!(
                "this route needs a key with scope {}; this key has {}",
                needed.as_str(),
                key.scope.as_str()
            ),
        )
        .into_response(),
        Ok(None) => ApiError::new(Code::Unauthorized, "invalid or revoked API key").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_by_route() {
        use ApiKeyScope::*;
        let cases = [
            (Method::GET, "/healthz", None),
            (Method::GET, "/readyz", None),
            (Method::GET, "/v1/jobs", Some(Read)),
            (Method::HEAD, "/v1/jobs/1", Some(Read)),
            (Method::POST, "/v1/jobs", Some(Write)),
            (Method::DELETE, "/v1/jobs/1", Some(Write)),
            (Method::POST, "/v1/queues/q/pause", Some(Write)),
            (Method::POST, "/v1/nodes/n/drain", Some(Admin)),
            (Method::GET, "/v1/nodes", Some(Read)),
            (Method::GET, "/v1/keys", Some(Admin)),
            (Method::DELETE, "/v1/keys/abc", Some(Admin)),
            (Method::GET, "/metrics", Some(Read)),
            (Method::GET, "/v1/executions", Some(Read)),
            (Method::POST, "/v1/executions/1/stop", Some(Write)),
            (Method::GET, "/v1/schedules/1/runs", Some(Read)),
            (Method::PATCH, "/v1/schedules/1", Some(Write)),
            (Method::POST, "/v1/schedules/1/trigger", Some(Write)),
            (Method::GET, "/v1/webhooks", Some(Admin)),
            (Method::GET, "/v1/webhooks/1/deliveries", Some(Admin)),
            (Method::POST, "/v1/webhooks", Some(Admin)),
            (Method::DELETE, "/v1/webhooks/1", Some(Admin)),
            (Method::GET, "/v1/webhooksx", Some(Read)),
        ];
        for (m, p, s) in cases {
            assert_eq!(required_scope(&m, p), s, "{m} {p}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer  rota_a_b".parse().unwrap());
        assert_eq!(bearer(&h), Some("rota_a_b"));
        h.insert(header::AUTHORIZATION, "Basic x".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
