//! The test harness: a real SQLite client on a temp file and the router,
//! driven with `oneshot`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use rota::drivers::sqlite::{SqliteDriver, SqliteOptions, Synchronous};
use rota::{
    Client, Config, JobContext, JobError, JobOutcome, JobResult, RawWorker, Store, async_trait,
};
use rota_server::ServerOptions;
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

use crate::flaky::Flaky;

/// `echo` args: `{"output": "...", "sleep_ms": n, "fail": bool, "exit_code": n}`.
pub(crate) struct Echo;

#[async_trait]
impl RawWorker for Echo {
    async fn work_raw(&self, ctx: &JobContext, args: Value) -> JobResult {
        if let Some(out) = args.get("output").and_then(Value::as_str) {
            ctx.log(out);
        }
        if let Some(ms) = args.get("sleep_ms").and_then(Value::as_u64) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = ctx.cancelled() => return Err(JobError::retry("canceled")),
            }
        }
        if let Some(more) = args.get("then").and_then(Value::as_str) {
            ctx.log(more);
        }
        if let Some(code) = args.get("exit_code").and_then(Value::as_i64) {
            ctx.set_exit_code(code as i32);
        }
        if args.get("fail").and_then(Value::as_bool) == Some(true) {
            return Err(JobError::fatal("boom"));
        }
        Ok(JobOutcome::Done)
    }
}

pub(crate) struct Harness {
    pub(crate) _dir: TempDir,
    pub(crate) client: Client,
    pub(crate) flaky: Arc<Flaky>,
    pub(crate) app: Router,
    pub(crate) token: Option<String>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json body with `status` and `code`; returns it.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(p["type"], format!("urn:rota:problem:{code}"), "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        p
    }
}

pub(crate) fn fast_config() -> Config {
    Config {
        lease: Duration::from_millis(1500),
        heartbeat_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(100),
        promote_interval: Duration::from_millis(50),
        rescue_interval: Duration::from_millis(200),
        leader_ttl: Duration::from_secs(2),
        cancel_grace: Duration::from_secs(2),
        ..Config::default()
    }
}

impl Harness {
    /// A client with an `echo` worker that is not started (jobs stay put).
    pub(crate) async fn new(options: ServerOptions) -> Self {
        Self::build(options, None).await
    }

    /// A started client with `config` (its queues get the `echo` worker).
    pub(crate) async fn with_config(options: ServerOptions, config: Config) -> Self {
        Self::build(options, Some(config)).await
    }

    /// A started client serving queue `default` with the `echo` worker.
    pub(crate) async fn started(options: ServerOptions) -> Self {
        Self::build(options, Some(fast_config().queue("default", 4))).await
    }

    async fn build(options: ServerOptions, config: Option<Config>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rota.db").display());
        let opts = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        };
        let inner = SqliteDriver::open(&url, opts).await.unwrap();
        let flaky = Arc::new(Flaky {
            inner: Arc::new(inner),
            down: false.into(),
        });
        let start = config.is_some();
        let client = Client::builder(Store::custom(flaky.clone()))
            .config(config.unwrap_or_else(fast_config))
            .raw_worker("echo", Echo)
            .build()
            .unwrap();
        if start {
            client.start().await.unwrap();
        }
        let app = rota_server::router(client.clone(), options);
        Self {
            _dir: dir,
            client,
            flaky,
            app,
            token: None,
        }
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.flaky.down.store(down, Ordering::SeqCst);
    }

    pub(crate) async fn send(&self, mut req: Request<Body>) -> Reply {
        if let Some(t) = &self.token
            && !req.headers().contains_key(header::AUTHORIZATION)
        {
            req.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        let res = tokio::time::timeout(Duration::from_secs(30), self.app.clone().oneshot(req))
            .await
            .expect("request timed out")
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(30), res.into_body().collect())
            .await
            .expect("body timed out")
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> Reply {
        self.send(request(method, uri, body)).await
    }

    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    pub(crate) async fn post(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub(crate) async fn post_empty(&self, uri: &str) -> Reply {
        self.call(Method::POST, uri, None).await
    }

    pub(crate) async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, None).await
    }

    /// Enqueues `body` and returns the job id (asserting 201).
    pub(crate) async fn enqueue(&self, body: &str) -> i64 {
        let r = self.post("/v1/jobs", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_i64().unwrap()
    }

    /// Total jobs in the store.
    pub(crate) async fn job_count(&self) -> i64 {
        self.client
            .counts()
            .await
            .unwrap()
            .iter()
            .map(|c| c.count)
            .sum()
    }

    pub(crate) async fn patch(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::PATCH, uri, Some(body)).await
    }

    /// Posts `body` to `uri`, asserts 201 and returns the body.
    pub(crate) async fn created(&self, uri: &str, body: &str) -> Value {
        let r = self.post(uri, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {uri}: {}", r.text());
        r.json()
    }

    /// Everything stored, for "nothing was written" checks (a store error
    /// shows as its message).
    pub(crate) async fn snapshot(&self) -> Value {
        fn show<T: serde::Serialize>(r: rota::Result<T>) -> Value {
            match r {
                Ok(v) => serde_json::to_value(v).unwrap(),
                Err(e) => Value::String(e.to_string()),
            }
        }
        let jobs = self
            .client
            .list(rota::JobListParams {
                limit: rota::MAX_PAGE,
                ..Default::default()
            })
            .await
            .map(|p| p.jobs);
        let executions = self
            .client
            .executions(&rota::ExecutionListParams {
                limit: rota::MAX_PAGE,
                ..Default::default()
            })
            .await;
        serde_json::json!({
            "jobs": show(jobs),
            "executions": show(executions),
            "schedules": show(self.client.schedules().await),
            "webhooks": show(self.client.webhooks().await),
        })
    }

    /// Sends each bad request and checks its problem (status, code,
    /// field) and that nothing was written.
    pub(crate) async fn expect_problems(&self, cases: &[Bad]) {
        let before = self.snapshot().await;
        for c in cases {
            let r = self.call(c.method.clone(), &c.uri, c.body.as_deref()).await;
            assert_eq!(
                r.status.as_u16(),
                c.status,
                "{}: {} {}: {}",
                c.name,
                c.method,
                c.uri,
                r.text()
            );
            let p = r.problem(c.status, c.code);
            assert_eq!(p["field"].as_str(), c.field, "{}: {p}", c.name);
            assert_eq!(self.snapshot().await, before, "{} wrote something", c.name);
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.client.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

pub(crate) fn request(method: Method, uri: &str, body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(body.map_or_else(Body::empty, |s| Body::from(s.to_owned())))
        .unwrap()
}

/// Polls `f` until it returns true or `timeout` passes.
pub(crate) async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A bad request and the problem it must get.
pub(crate) struct Bad {
    pub(crate) name: &'static str,
    pub(crate) method: Method,
    pub(crate) uri: String,
    pub(crate) body: Option<String>,
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) field: Option<&'static str>,
}

pub(crate) fn bad(
    name: &'static str,
    method: Method,
    uri: impl Into<String>,
    body: Option<&str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Bad {
    Bad {
        name,
        method,
        uri: uri.into(),
        body: body.map(str::to_owned),
        status,
        code,
        field,
    }
}
