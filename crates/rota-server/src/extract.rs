//! Extractors whose rejections are problem+json: JSON bodies, path ids,
//! query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, Code};

/// Most bytes of a name in a path (queue, node, key id).
const MAX_PATH_NAME: usize = 128;

/// A JSON body. Rejections: 415 for a non-JSON content type, 413 over the
/// body limit (read incrementally, never buffered whole), 400 for malformed
/// JSON, 422 for wrong types, missing or unknown fields (naming the field).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

fn is_json_content_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ok = ct.to_str().is_ok_and(is_json_content_type);
            if !ok {
                return Err(ApiError::new(
                    Code::UnsupportedMediaType,
                    "send the body as application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    Code::PayloadTooLarge,
                    "the request body exceeds the size limit",
                )
            } else {
                ApiError::new(Code::BadRequest, "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The name between the first pair of backticks of a serde message.
fn quoted_name(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else if path == name || path.ends_with(&format!(".{name}")) {
        path.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Parses a JSON body into `T`, classifying errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            Code::InvalidJson,
            "the body is empty; send a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&inner, &path)
    })?;
    de.end().map_err(|e| classify(&e, "."))?;
    Ok(value)
}

fn classify(e: &serde_json::Error, path: &str) -> ApiError {
    match e.classify() {
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("unknown field") {
                let name = quoted_name(&msg).unwrap_or("");
                ApiError::invalid(Code::UnknownField, join(path, name), msg)
            } else if msg.starts_with("missing field") {
                let name = quoted_name(&msg).unwrap_or("");
                ApiError::invalid(Code::MissingField, join(path, name), msg)
            } else {
                ApiError::invalid(Code::InvalidType, path, msg)
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(Code::InvalidJson, format!("malformed JSON: {e}"))
        }
    }
}

/// A numeric job id from the path (`{id}`); anything else is 422 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct JobId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::invalid(Code::InvalidParameter, "id", "invalid path parameter")
            })?;
        raw.parse::<i64>()
            .map(JobId)
            .map_err(|_| ApiError::invalid(Code::InvalidParameter, "id", "a job id is an integer"))
    }
}

/// A numeric id from the path (`{id}` of an execution, schedule or
/// webhook); anything else is 422 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let path = parts.uri.path();
        let noun = if path.starts_with("/v1/executions/") {
            "an execution id"
        } else if path.starts_with("/v1/schedules/") {
            "a schedule id"
        } else if path.starts_with("/v1/webhooks/") {
            "a webhook id"
        } else {
            "an id"
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::invalid(Code::InvalidParameter, "id", "invalid path parameter")
            })?;
        raw.parse::<i64>().map(Id).map_err(|_| {
            ApiError::invalid(
                Code::InvalidParameter,
                "id",
                format!("{noun} is an integer"),
            )
        })
    }
}

/// Checks a free-text message (status messages): at most `max` bytes, no
/// NUL characters (newlines are fine).
pub fn check_message(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() > max {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if s.contains('\0') {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// Parses a page size (`limit`): 1..=`max`.
pub fn parse_limit(v: &str, max: u32) -> Result<u32, ApiError> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                Code::InvalidParameter,
                "limit",
                format!("must be an integer between 1 and {max}"),
            )
        })
}

/// Parses an `after` cursor that is an id.
pub fn parse_cursor(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().map_err(|_| {
        ApiError::invalid(
            Code::InvalidParameter,
            "after",
            "must be a cursor from `next`",
        )
    })
}

/// The `limit` and id `after` of a paged list that takes nothing else;
/// any other parameter is refused.
pub fn id_page(raw: Option<&str>) -> Result<(u32, Option<i64>), ApiError> {
    let mut limit = crate::DEFAULT_LIMIT;
    let mut before = None;
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "limit" => limit = parse_limit(&v, rota::MAX_PAGE)?,
            "after" => before = Some(parse_cursor(&v)?),
            _ => return Err(unknown_parameter(&k, "limit, after")),
        }
    }
    Ok((limit, before))
}

/// An unknown query parameter, naming it and the accepted ones.
pub fn unknown_parameter(name: &str, expected: &str) -> ApiError {
    let field: String = name.chars().take(64).collect();
    ApiError::invalid(
        Code::InvalidParameter,
        field.clone(),
        format!("unknown query parameter {field:?}; expected {expected}"),
    )
}

/// A name from the path (`{name}` or `{id}` of a queue, node or key):
/// 1..=128 bytes without control characters.
#[derive(Debug, Clone)]
pub struct PathName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let field = if parts.uri.path().starts_with("/v1/queues/") {
            "name"
        } else {
            "id"
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::invalid(Code::InvalidParameter, field, "invalid path parameter")
            })?;
        check_text(field, &raw, MAX_PATH_NAME, Code::InvalidParameter)?;
        Ok(PathName(raw))
    }
}

/// Checks a free-text parameter: 1..=`max` bytes, no control characters
/// (NUL included).
pub fn check_text(field: &str, s: &str, max: usize, code: Code) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > max {
        return Err(ApiError::invalid(
            code,
            field,
            format!("must be 1..={max} bytes"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            code,
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The `key=value` pairs of a query string, percent-decoded.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw).map_err(|e| {
        ApiError::new(
            Code::InvalidParameter,
            format!("malformed query string: {e}"),
        )
    })
}

/// Parses a boolean query value.
pub fn parse_bool(field: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "yes" | "" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::invalid(
            Code::InvalidParameter,
            field,
            "must be true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        jobs: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        kind: String,
        priority: Option<i64>,
    }

    #[test]
    fn errors_name_their_field() {
        let e = parse_json::<Outer>(br#"{"jobs":[{"kind":"a"},{"kind":"b","priority":"x"}]}"#)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::InvalidType, Some("jobs[1].priority"))
        );
        let e = parse_json::<Outer>(br#"{"jobs":[{"kind":"a","nope":1}]}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::UnknownField, Some("jobs[0].nope"))
        );
        let e = parse_json::<Outer>(br#"{"jobs":[{}]}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::MissingField, Some("jobs[0].kind"))
        );
        let e = parse_json::<Outer>(br#"{"jobs":[]} x"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidJson);
        let e = parse_json::<Outer>(b"").unwrap_err();
        assert_eq!(e.code, Code::InvalidJson);
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
    }
}
