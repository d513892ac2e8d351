//! The API client of the CLI commands: JSON requests with the Bearer key,
//! RFC 9457 problem decoding, and a small server-sent-events reader for
//! following output.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::exit::Exit;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an ordinary (non-streaming) answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence on any connection; the server sends SSE keep-alives
/// every 15 s, so a followed stream that goes quiet this long is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// An error body as the server sends it (lenient: any problem+json, or
/// nothing usable from a proxy in between).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct Problem {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) detail: String,
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) field: Option<String>,
}

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The server answered with an error.
    #[error("{}", problem_line(.problem, *.status))]
    Api {
        status: StatusCode,
        problem: Problem,
    },
    /// No answer: connection refused, timeout, reset.
    #[error("cannot reach the rota server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An answer that is not what the API sends.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
}

fn problem_line(p: &Problem, status: StatusCode) -> String {
    let mut s = if !p.detail.is_empty() {
        p.detail.clone()
    } else if !p.title.is_empty() {
        p.title.clone()
    } else {
        format!("HTTP {status}")
    };
    if let Some(f) = &p.field {
        s.push_str(&format!(" (field: {f})"));
    }
    s
}

impl HttpError {
    /// The exit code this error ends the process with.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            HttpError::Api { status, .. } => match status.as_u16() {
                400 | 413 | 415 | 422 => Exit::Usage,
                502..=504 => Exit::Unreachable,
                _ => Exit::Failure,
            },
            HttpError::Unreachable { .. } => Exit::Unreachable,
            HttpError::Protocol { .. } => Exit::Failure,
        }
    }
}

/// The innermost cause of a transport error: "Connection refused (os error
/// 111)" says more than "error sending request".
fn reason(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        last.to_string()
    }
}

/// A client for one server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
}

impl Api {
    /// A client for the server at `base`, sending `key` as Bearer token.
    pub(crate) fn new(base: Url, key: Option<String>) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("rota/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api { http, base, key })
    }

    /// `base` + `path` (`/v1/...`), keeping a base path prefix such as a
    /// reverse proxy's `/rota`.
    fn url(&self, path: &str, query: &[(String, String)]) -> Url {
        let mut u = self.base.clone();
        let joined = format!("{}{path}", self.base.path().trim_end_matches('/'));
        u.set_path(&joined);
        u.set_query(None);
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        url: &Url,
    ) -> Result<(StatusCode, T), HttpError> {
        let resp = req
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(url, &e))?;
        let resp = self.check(resp, url).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(url, &e))?;
        let body = serde_json::from_slice(&bytes).map_err(|e| HttpError::Protocol {
            url: url.to_string(),
            reason: format!("cannot decode the body: {e}"),
        })?;
        Ok((status, body))
    }

    fn unreachable(&self, url: &Url, e: &reqwest::Error) -> HttpError {
        HttpError::Unreachable {
            url: origin(url),
            reason: reason(e),
        }
    }

    /// Passes successful answers through; turns the others into errors.
    async fn check(
        &self,
        resp: reqwest::Response,
        url: &Url,
    ) -> Result<reqwest::Response, HttpError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        let mut problem: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED && self.key.is_none() {
            problem.detail = format!(
                "{}; pass --api-key or set ROTA_API_KEY",
                if problem.detail.is_empty() {
                    "this server requires an API key"
                } else {
                    &problem.detail
                }
            );
        }
        if status == StatusCode::NOT_FOUND && problem.code.is_none() {
            // Not a Rota problem: probably not a Rota server at all.
            problem.detail = format!("{url} answered 404; is --server a rota server?");
        }
        Err(HttpError::Api { status, problem })
    }

    /// `GET path?query`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, HttpError> {
        let url = self.url(path, query);
        let req = self.request(Method::GET, url.clone());
        Ok(self.send(req, &url).await?.1)
    }

    /// `POST path` with a JSON body; returns the status too (201 vs 200
    /// tells a new job from a unique-key duplicate).
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(StatusCode, T), HttpError> {
        let url = self.url(path, &[]);
        let req = self.request(Method::POST, url.clone()).json(body);
        self.send(req, &url).await
    }

    /// `POST path` without a body (actions: cancel, retry, pause, drain).
    pub(crate) async fn action<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        let url = self.url(path, &[]);
        let req = self.request(Method::POST, url.clone());
        Ok(self.send(req, &url).await?.1)
    }

    /// `POST path?query` without a body, with the answer's status (202
    /// from a stop whose wait ran out).
    pub(crate) async fn action_with<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(StatusCode, T), HttpError> {
        let url = self.url(path, query);
        let req = self.request(Method::POST, url.clone());
        self.send(req, &url).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        let url = self.url(path, &[]);
        let req = self.request(Method::DELETE, url.clone());
        Ok(self.send(req, &url).await?.1)
    }

    /// Opens a server-sent-events stream at `path?query`.
    pub(crate) async fn events(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<EventStream, HttpError> {
        let url = self.url(path, query);
        let resp = self
            .request(Method::GET, url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(&url, &e))?;
        let resp = self.check(resp, &url).await?;
        Ok(EventStream {
            resp,
            buf: Vec::new(),
            url: origin(&url),
        })
    }
}

/// `scheme://host:port` of a URL, for messages.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` name (`message` when absent).
    pub(crate) event: String,
    /// The `data:` lines, joined by newlines.
    pub(crate) data: String,
}

/// Reads events off a `text/event-stream` response.
#[derive(Debug)]
pub(crate) struct EventStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    url: String,
}

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, HttpError> {
        loop {
            if let Some(ev) = take_event(&mut self.buf) {
                return Ok(Some(ev));
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.extend(bytes.iter().filter(|b| **b != b'\r')),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(HttpError::Unreachable {
                        url: self.url.clone(),
                        reason: reason(&e),
                    });
                }
            }
        }
    }
}

/// Removes and parses the first complete event (blocks end with a blank
/// line); comment-only blocks (keep-alives) are skipped.
fn take_event(buf: &mut Vec<u8>) -> Option<SseEvent> {
    loop {
        let end = buf.windows(2).position(|w| w == b"\n\n")?;
        let block: Vec<u8> = buf.drain(..end + 2).collect();
        let text = String::from_utf8_lossy(&block[..end]);
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in text.split('\n') {
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {} // comments (""), id, retry
            }
        }
        if event.is_some() || !data.is_empty() {
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data: data.join("\n"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_parse_across_chunks() {
        let mut buf = b": keep-alive\n\nevent: output\ndata: {\"chunk\":\"a\"}\n".to_vec();
        assert_eq!(take_event(&mut buf), None);
        buf.extend(b"\nevent: end\ndata: {}\ndata: x\n\n");
        assert_eq!(
            take_event(&mut buf),
            Some(SseEvent {
                event: "output".into(),
                data: "{\"chunk\":\"a\"}".into()
            })
        );
        assert_eq!(
            take_event(&mut buf),
            Some(SseEvent {
                event: "end".into(),
                data: "{}\nx".into()
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn problems_read_like_the_brief_says() {
        let p = Problem {
            detail: "must be at least 1".into(),
            field: Some("max_attempts".into()),
            ..Default::default()
        };
        let e = HttpError::Api {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem: p,
        };
        assert_eq!(e.to_string(), "must be at least 1 (field: max_attempts)");
        assert_eq!(e.exit(), Exit::Usage);
        let e = HttpError::Api {
            status: StatusCode::CONFLICT,
            problem: Problem::default(),
        };
        assert_eq!(e.to_string(), "HTTP 409 Conflict");
        assert_eq!(e.exit(), Exit::Failure);
    }

    #[test]
    fn urls_keep_a_base_path() {
        let api = Api::new(Url::parse("http://h:1/rota/").unwrap(), None).unwrap();
        let u = api.url("/v1/jobs", &[("state".into(), "failed,canceled".into())]);
        assert_eq!(
            u.as_str(),
            "http://h:1/rota/v1/jobs?state=failed%2Ccanceled"
        );
    }
}
