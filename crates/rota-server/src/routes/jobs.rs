//! `/v1/jobs`: enqueue, batch, list, get, output (+ SSE follow), cancel,
//! retry, delete.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use rota::{Client, EnqueueOpts, Error, Job, JobListParams, JobRequest, JobState, MAX_PAGE};
use serde_json::Value;

use crate::AppState;
use crate::dto::{
    BatchRequest, BatchResponse, EnqueueRequest, JobList, JobView, OutputChunk, OutputEnd,
    OutputView,
};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::{ApiJson, JobId, check_text, parse_bool, query_pairs};

/// Most jobs in one batch.
pub const MAX_BATCH: usize = 10_000;
/// Default page size of `GET /v1/jobs`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Longest accepted delay or timeout (100 years).
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How often a followed job's output is polled.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

const DURATION_HINT: &str =
    "a positive duration: integer seconds or a string like \"30s\", \"10m\", \"1h30m\"";

/// Parses `delay` / `timeout`: integer seconds, or a human / ISO 8601
/// duration. Zero, negative and unparseable values are errors naming `field`.
pub fn parse_duration(field: &str, v: &Value) -> Result<Option<Duration>, ApiError> {
    let bad = |why: &str| {
        ApiError::invalid(
            Code::InvalidDuration,
            field,
            format!("{why}; expected {DURATION_HINT}"),
        )
    };
    let d = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Duration::from_secs(u)
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f > 0.0) {
                Duration::try_from_secs_f64(f).map_err(|_| bad("out of range"))?
            } else {
                return Err(bad("must be positive"));
            }
        }
        Value::String(s) => parse_duration_text(s).map_err(|why| bad(&why))?,
        _ => return Err(bad("wrong type")),
    };
    if d.is_zero() {
        return Err(bad("must be positive"));
    }
    if d > MAX_DURATION {
        return Err(bad("must be at most 100 years"));
    }
    Ok(Some(d))
}

fn parse_duration_text(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| "out of range".into());
    }
    let signed = match t.parse::<SignedDuration>() {
        Ok(d) => d,
        // Days and weeks ("2d") parse as a span; a day is 24 hours here.
        Err(_) => t
            .parse::<Span>()
            .map_err(|_| format!("cannot parse {t:?}"))?
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| format!("cannot use {t:?} (months and years are not fixed lengths)"))?,
    };
    if signed.is_negative() {
        return Err("must not be negative".into());
    }
    Duration::try_from(signed).map_err(|_| "out of range".into())
}

/// Parses `run_at`: RFC 3339 with an offset (`Z` or `+02:00`).
pub fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    s.parse::<Timestamp>().map_err(|_| {
        ApiError::invalid(
            Code::InvalidTime,
            field,
            format!(
                "{:?} is not an RFC 3339 time with an offset, e.g. 2030-01-02T03:04:05Z",
                truncate(s, 64)
            ),
        )
    })
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Turns one request body into an engine request; errors name fields
/// relative to the job.
pub(crate) fn to_request(
    st: &AppState,
    kinds: &[String],
    r: EnqueueRequest,
) -> Result<JobRequest, ApiError> {
    check_text(
        "kind",
        &r.kind,
        rota_core::job::MAX_NAME_LEN,
        Code::InvalidValue,
    )?;
    if !st.options.accept_unknown_kinds && !kinds.contains(&r.kind) {
        return Err(ApiError::invalid(
            Code::UnknownKind,
            "kind",
            format!("no worker is registered for kind {:?}", r.kind),
        ));
    }
    if let Some(validate) = &st.options.validate_args {
        validate(&r.kind, &r.args)
            .map_err(|e| ApiError::invalid(Code::InvalidValue, e.field, e.message))?;
    }
    let priority = match r.priority {
        None => None,
        Some(p) => Some(
            i16::try_from(p)
                .ok()
                .filter(|p| (0..=rota_core::MAX_PRIORITY).contains(p))
                .ok_or_else(|| {
                    ApiError::invalid(Code::InvalidValue, "priority", "must be between 0 and 9")
                })?,
        ),
    };
    let max_attempts = match r.max_attempts {
        None => None,
        Some(n) => Some(u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::invalid(Code::InvalidValue, "max_attempts", "must be at least 1")
        })?),
    };
    let run_at = r
        .run_at
        .as_deref()
        .map(|s| parse_time("run_at", s))
        .transpose()?;
    let delay = r
        .delay
        .as_ref()
        .map(|v| parse_duration("delay", v))
        .transpose()?
        .flatten();
    let timeout = r
        .timeout
        .as_ref()
        .map(|v| parse_duration("timeout", v))
        .transpose()?
        .flatten();
    let opts = EnqueueOpts {
        queue: r.queue,
        priority,
        run_at,
        delay,
        max_attempts,
        timeout,
        unique_key: r.unique_key,
        labels: r.labels.unwrap_or_default(),
        attributes: r.attributes.unwrap_or_default(),
        trace_context: None,
    };
    Ok(JobRequest::raw(r.kind, r.args, opts))
}

/// Enqueues one job.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = EnqueueRequest,
    responses(
        (status = 201, description = "Enqueued", body = JobView),
        (status = 200, description = "A unique-key duplicate: the existing job", body = JobView),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn enqueue(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<EnqueueRequest>,
) -> ApiResult<Response> {
    let kinds = st.client.kinds();
    let request = to_request(&st, &kinds, req)?;
    let mut inserted = st.client.enqueue_many(vec![request]).await?;
    let Some(job) = inserted.pop() else {
        return Err(ApiError::internal(&"store returned no row for an insert"));
    };
    let status = if job.inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        super::location("/v1/jobs", job.job.id),
        Json(JobView::from(job.job)),
    )
        .into_response())
}

/// Enqueues many jobs in one transaction: all or nothing.
#[utoipa::path(
    post,
    path = "/v1/jobs/batch",
    tag = "jobs",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Enqueued (at least one job inserted)", body = BatchResponse),
        (status = 200, description = "Every job was a unique-key duplicate", body = BatchResponse),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn enqueue_batch(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<Response> {
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "jobs",
            format!("must hold 1..={MAX_BATCH} jobs"),
        ));
    }
    let single = req.jobs.len() == 1;
    let kinds = st.client.kinds();
    let requests = req
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, r)| to_request(&st, &kinds, r).map_err(|e| e.within(&format!("jobs[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let inserted = st.client.enqueue_many(requests).await.map_err(|e| {
        // The client prefixes `jobs[i].` itself only for more than one job.
        match e {
            Error::Invalid(v) if single && !v.field.starts_with("jobs[") => {
                ApiError::invalid(Code::InvalidValue, v.field, v.message).within("jobs[0]")
            }
            other => ApiError::from(other),
        }
    })?;
    let status = if inserted.iter().any(|j| j.inserted) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = BatchResponse {
        inserted: inserted.iter().map(|j| j.inserted).collect(),
        jobs: inserted.into_iter().map(|j| JobView::from(j.job)).collect(),
    };
    Ok((status, Json(body)).into_response())
}

/// Parses the query of `GET /v1/jobs`.
pub(crate) fn list_params(raw: Option<&str>) -> Result<JobListParams, ApiError> {
    let mut p = JobListParams {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "state" => {
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let st = s.parse::<JobState>().map_err(|e| {
                        ApiError::invalid(Code::InvalidParameter, "state", e.to_string())
                    })?;
                    if !p.states.contains(&st) {
                        p.states.push(st);
                    }
                }
            }
            "queue" => {
                rota_core::validate_queue_name(&v)
                    .map_err(|e| ApiError::invalid(Code::InvalidParameter, "queue", e.message))?;
                p.queue = Some(v);
            }
            "kind" => {
                check_text(
                    "kind",
                    &v,
                    rota_core::job::MAX_NAME_LEN,
                    Code::InvalidParameter,
                )?;
                p.kind = Some(v);
            }
            "limit" => {
                p.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            Code::InvalidParameter,
                            "limit",
                            format!("must be an integer between 1 and {MAX_PAGE}"),
                        )
                    })?;
            }
            "after" => {
                p.before_id = Some(v.parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        Code::InvalidParameter,
                        "after",
                        "must be a cursor from `next`",
                    )
                })?);
            }
            _ => {
                if let Some(name) = k.strip_prefix("attribute.") {
                    check_text(
                        &k,
                        name,
                        rota_core::job::MAX_NAME_LEN,
                        Code::InvalidParameter,
                    )?;
                    if v.chars().any(char::is_control) {
                        return Err(ApiError::invalid(
                            Code::InvalidParameter,
                            k,
                            "must not contain control characters",
                        ));
                    }
                    p.attributes.insert(name.to_owned(), v);
                } else {
                    let field = truncate(&k, 64);
                    return Err(ApiError::invalid(
                        Code::InvalidParameter,
                        field.clone(),
                        format!(
                            "unknown query parameter {field:?}; expected state, queue, kind, attribute.<name>, limit, after"
                        ),
                    ));
                }
            }
        }
    }
    Ok(p)
}

/// Lists jobs, newest first, with keyset pagination.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(
        ("state" = Option<String>, Query, description = "Comma-separated states (repeatable): scheduled, available, running, retrying, succeeded, failed, canceled"),
        ("queue" = Option<String>, Query, description = "Queue name"),
        ("kind" = Option<String>, Query, description = "Job kind"),
        ("attribute.{name}" = Option<String>, Query, description = "Attribute equality filter, e.g. `attribute.team=billing` (repeatable, all must match)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=10000 (default 50)"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page"),
    ),
    responses((status = 200, description = "A page of jobs", body = JobList)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn list(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobList>> {
    let params = list_params(q.as_deref())?;
    let page = st.client.list(params).await?;
    Ok(Json(JobList {
        jobs: page.jobs.into_iter().map(JobView::from).collect(),
        next: page.next.map(|n| n.to_string()),
    }))
}

/// One job.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn get_job(
    State(st): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<JobView>> {
    Ok(Json(st.client.get(id).await?.into()))
}

/// Deletes a finished job.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The deleted job", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn delete_job(
    State(st): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<JobView>> {
    Ok(Json(st.client.delete(id).await?.into()))
}

/// Cancels a job (a running job ends `canceled` once its handler stops).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job after the request", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job already finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn cancel(
    State(st): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<JobView>> {
    Ok(Json(st.client.cancel(id).await?.into()))
}

/// Runs a job again now (finished jobs start with a fresh attempt count).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, available again", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is available or running, or its unique key is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn retry(
    State(st): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<JobView>> {
    Ok(Json(st.client.retry(id).await?.into()))
}

/// A job's stored output; with `follow=true` a `text/event-stream` of
/// `output` events (`{"chunk": ...}`) ending with one `end` event
/// (`{"state", "exit_code"}`) when the job finishes.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/output",
    tag = "jobs",
    params(
        ("id" = i64, Path, description = "Job id"),
        ("follow" = Option<bool>, Query, description = "Stream new output with server-sent events until the job finishes"),
    ),
    responses(
        (status = 200, description = "Stored output (or, with follow=true, an SSE stream of `output` events carrying OutputChunk and a final `end` event carrying OutputEnd)", content(
            (OutputView = "application/json"),
            (OutputChunk = "text/event-stream"),
        )),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn output(
    State(st): State<AppState>,
    JobId(id): JobId,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let mut follow = false;
    for (k, v) in query_pairs(q.as_deref())? {
        match k.as_str() {
            "follow" => follow = parse_bool("follow", &v)?,
            _ => {
                return Err(ApiError::invalid(
                    Code::InvalidParameter,
                    truncate(&k, 64),
                    "unknown query parameter; expected follow",
                ));
            }
        }
    }
    let job = st.client.get(id).await?;
    if !follow {
        return Ok(Json(OutputView {
            output: job.output.unwrap_or_default(),
            exit_code: job.exit_code,
            state: job.state,
        })
        .into_response());
    }
    Ok(Sse::new(follow_stream(st.client.clone(), job, FOLLOW_POLL))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// What to send after `prev` was sent and the output is now `cur`.
fn delta(prev: &str, cur: &str) -> String {
    if let Some(rest) = cur.strip_prefix(prev) {
        return rest.to_owned();
    }
    // The output was capped: the head stays, the tail rolls. Find where the
    // last sent bytes reappear in the new tail and send what follows.
    let marker = rota_core::output::CUT_MARKER;
    let tail = cur.rfind(marker).map_or(cur, |i| &cur[i + marker.len()..]);
    let prev_tail = prev
        .rfind(marker)
        .map_or(prev, |i| &prev[i + marker.len()..]);
    let mut start = prev_tail.len() - (prev_tail.len() / 2).min(64);
    while !prev_tail.is_char_boundary(start) {
        start += 1;
    }
    let probe = &prev_tail[start..];
    if !probe.is_empty()
        && let Some(i) = tail.rfind(probe)
    {
        return tail[i + probe.len()..].to_owned();
    }
    format!("{marker}{tail}")
}

struct Follow {
    client: Client,
    id: i64,
    sent: String,
    first: Option<Job>,
    done: bool,
    poll: Duration,
}

fn event<T: serde::Serialize>(name: &str, data: &T) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_default()
}

async fn follow_step(mut f: Follow) -> Option<(Vec<Event>, Follow)> {
    if f.done {
        return None;
    }
    let job = match f.first.take() {
        Some(j) => j,
        None => {
            tokio::time::sleep(f.poll).await;
            match f.client.get(f.id).await {
                Ok(j) => j,
                Err(Error::NotFound(_)) => {
                    f.done = true;
                    let end = OutputEnd {
                        state: None,
                        exit_code: None,
                    };
                    return Some((vec![event("end", &end)], f));
                }
                Err(e) if e.is_transient() => return Some((Vec::new(), f)),
                Err(e) => {
                    f.done = true;
                    let p = ApiError::from(e).problem();
                    return Some((vec![event("error", &p)], f));
                }
            }
        }
    };
    let mut events = Vec::new();
    let cur = job.output.unwrap_or_default();
    if cur != f.sent {
        let chunk = delta(&f.sent, &cur);
        if !chunk.is_empty() {
            events.push(event("output", &OutputChunk { chunk }));
        }
        f.sent = cur;
    }
    if job.state.is_finished() {
        f.done = true;
        events.push(event(
            "end",
            &OutputEnd {
                state: Some(job.state),
                exit_code: job.exit_code,
            },
        ));
    }
    Some((events, f))
}

fn follow_stream(
    client: Client,
    job: Job,
    poll: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let f = Follow {
        client,
        id: job.id,
        sent: String::new(),
        first: Some(job),
        done: false,
        poll,
    };
    stream::unfold(f, follow_step)
        .map(|events| stream::iter(events.into_iter().map(Ok)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations() {
        let ok = |v: Value| parse_duration("delay", &v).unwrap().unwrap();
        assert_eq!(ok(json!("10m")), Duration::from_secs(600));
        assert_eq!(ok(json!("30s")), Duration::from_secs(30));
        assert_eq!(ok(json!("1h30m")), Duration::from_secs(5400));
        assert_eq!(ok(json!("1h 30m")), Duration::from_secs(5400));
        assert_eq!(ok(json!("PT10M")), Duration::from_secs(600));
        assert_eq!(ok(json!("2d")), Duration::from_secs(2 * 86400));
        assert_eq!(ok(json!("45")), Duration::from_secs(45));
        assert_eq!(ok(json!(45)), Duration::from_secs(45));
        assert_eq!(ok(json!(1.5)), Duration::from_millis(1500));
        assert_eq!(parse_duration("delay", &Value::Null).unwrap(), None);
        for bad in [
            json!(0),
            json!(-5),
            json!("0s"),
            json!("-10m"),
            json!("soon"),
            json!(""),
            json!("1 month"),
            json!(true),
            json!([1]),
            json!("a\u{0}b"),
            json!(1e300),
            json!("999999999999h"),
        ] {
            let e = parse_duration("timeout", &bad).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (Code::InvalidDuration, Some("timeout")),
                "{bad}"
            );
        }
    }

    #[test]
    fn times() {
        assert!(parse_time("run_at", "2030-01-02T03:04:05Z").is_ok());
        assert!(parse_time("run_at", "2030-01-02T03:04:05+02:00").is_ok());
        assert_eq!(
            parse_time("run_at", "2030-01-02").unwrap_err().code,
            Code::InvalidTime
        );
        assert_eq!(
            parse_time("run_at", "tomorrow").unwrap_err().code,
            Code::InvalidTime
        );
    }

    #[test]
    fn output_delta() {
        assert_eq!(delta("", "abc"), "abc");
        assert_eq!(delta("abc", "abcdef"), "def");
        let marker = rota_core::output::CUT_MARKER;
        let prev = format!("head{marker}line1\nline2\n");
        let cur = format!("head{marker}line2\nline3\n");
        assert_eq!(delta(&prev, &cur), "line3\n");
        assert_eq!(
            delta("head0123", &format!("head{marker}zzz")),
            format!("{marker}zzz")
        );
    }

    #[test]
    fn list_query() {
        let p = list_params(Some(
            "state=failed,retrying&state=failed&queue=q&attribute.team=a%22b&limit=10&after=99",
        ))
        .unwrap();
        assert_eq!(p.states, vec![JobState::Failed, JobState::Retrying]);
        assert_eq!(p.attributes.get("team").map(String::as_str), Some("a\"b"));
        assert_eq!((p.limit, p.before_id), (10, Some(99)));
        for (q, field) in [
            ("state=bogus", "state"),
            ("limit=0", "limit"),
            ("limit=100000", "limit"),
            ("limit=x", "limit"),
            ("after=x", "after"),
            ("queue=%27%3B%20DROP", "queue"),
            ("kind=a%00b", "kind"),
            ("attribute.=x", "attribute."),
            ("nope=1", "nope"),
        ] {
            let e = list_params(Some(q)).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (Code::InvalidParameter, Some(field)),
                "{q}"
            );
        }
    }
}
