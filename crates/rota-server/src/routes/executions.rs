//! `/v1/executions`: create (with jobs), list, get (with job counts), the
//! jobs of one (list, add), stop (optionally waiting), mark.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rota::{Error, ExecutionListParams, ExecutionRequest, ExecutionStatus, MAX_PAGE, Trigger};
use serde_json::Value;

use crate::AppState;
use crate::dto::{
    BatchRequest, BatchResponse, CreateExecutionRequest, CreatedExecution, ExecutionList,
    ExecutionView, JobList, JobView, MarkExecutionRequest,
};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::{
    ApiJson, Id, check_message, check_text, id_page, parse_cursor, parse_limit, query_pairs,
    unknown_parameter,
};
use crate::routes::jobs::{DEFAULT_LIMIT, MAX_BATCH, parse_duration, to_request};

/// Longest owner kind, owner id and attribute name, in bytes.
const MAX_OWNER: usize = 128;
/// Longest status message and attribute value, in bytes.
const MAX_MESSAGE: usize = 4096;
/// Longest `?wait=` of a stop (requests time out after 30 s).
pub(crate) const MAX_STOP_WAIT: Duration = Duration::from_secs(25);

/// Checks user attributes: names 1..=128 bytes without control
/// characters, values without NUL.
pub(crate) fn check_attributes(
    field: &str,
    attributes: &BTreeMap<String, String>,
) -> ApiResult<()> {
    for (k, v) in attributes {
        check_text(field, k, MAX_OWNER, Code::InvalidValue)?;
        check_message(&format!("{field}.{k}"), v, MAX_MESSAGE)?;
    }
    Ok(())
}

/// Checks an owner kind or id: 1..=128 bytes without control characters.
pub(crate) fn check_owner(field: &str, v: &str) -> ApiResult<()> {
    check_text(field, v, MAX_OWNER, Code::InvalidValue)
}

/// Maps an engine error of a job insert: the engine names fields
/// `jobs[i].…` only when there is more than one job.
fn jobs_error(e: Error, n: usize) -> ApiError {
    match e {
        Error::Invalid(v) if n == 1 && !v.field.starts_with("jobs[") => {
            ApiError::invalid(Code::InvalidValue, v.field, v.message).within("jobs[0]")
        }
        other => ApiError::from(other),
    }
}

/// Creates an execution with its jobs in one transaction (all or nothing).
#[utoipa::path(
    post,
    path = "/v1/executions",
    tag = "executions",
    request_body = CreateExecutionRequest,
    responses(
        (status = 201, description = "Created, with its jobs", body = CreatedExecution),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<CreateExecutionRequest>,
) -> ApiResult<Response> {
    let owner_id = req.owner_id.into_string();
    check_owner("owner_kind", &req.owner_kind)?;
    check_owner("owner_id", &owner_id)?;
    let trigger = match req.trigger.as_deref() {
        None => Trigger::Manual,
        Some(t) => Trigger::parse(t).ok_or_else(|| {
            ApiError::invalid(
                Code::InvalidValue,
                "trigger",
                "must be manual, schedule or event",
            )
        })?,
    };
    let attributes = req.attributes.unwrap_or_default();
    check_attributes("attributes", &attributes)?;
    if let Some(m) = &req.status_message {
        check_message("status_message", m, MAX_MESSAGE)?;
    }
    let jobs = req.jobs.unwrap_or_default();
    if jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "jobs",
            format!("must hold at most {MAX_BATCH} jobs"),
        ));
    }
    let kinds = st.client.kinds();
    let requests = jobs
        .into_iter()
        .enumerate()
        .map(|(i, r)| to_request(&st, &kinds, r).map_err(|e| e.within(&format!("jobs[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let n = requests.len();
    let mut request = ExecutionRequest::new(req.owner_kind, owner_id).trigger(trigger);
    request.attributes = attributes;
    request.status_message = req.status_message;
    request.jobs = requests;
    let (execution, inserted) = st
        .client
        .create_execution(request)
        .await
        .map_err(|e| jobs_error(e, n))?;
    let id = execution.id;
    let body = CreatedExecution {
        execution: execution.into(),
        inserted: inserted.iter().map(|j| j.inserted).collect(),
        jobs: inserted.into_iter().map(|j| JobView::from(j.job)).collect(),
    };
    Ok((
        StatusCode::CREATED,
        super::location("/v1/executions", id),
        Json(body),
    )
        .into_response())
}

/// Parses the query of `GET /v1/executions`.
pub(crate) fn list_params(raw: Option<&str>) -> ApiResult<ExecutionListParams> {
    let mut p = ExecutionListParams {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "owner_kind" => {
                check_text("owner_kind", &v, MAX_OWNER, Code::InvalidParameter)?;
                p.owner_kind = Some(v);
            }
            "owner_id" => {
                check_text("owner_id", &v, MAX_OWNER, Code::InvalidParameter)?;
                p.owner_id = Some(v);
            }
            "status" => {
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let status = ExecutionStatus::parse(s).ok_or_else(|| {
                        ApiError::invalid(
                            Code::InvalidParameter,
                            "status",
                            format!(
                                "unknown status {:?}; expected running, succeeded, failed, canceled or error",
                                s.chars().take(64).collect::<String>()
                            ),
                        )
                    })?;
                    if !p.statuses.contains(&status) {
                        p.statuses.push(status);
                    }
                }
            }
            "limit" => p.limit = parse_limit(&v, MAX_PAGE)?,
            "after" => p.before_id = Some(parse_cursor(&v)?),
            _ => match k.strip_prefix("attribute.") {
                Some(name) => {
                    check_text(&k, name, MAX_OWNER, Code::InvalidParameter)?;
                    if v.chars().any(char::is_control) {
                        return Err(ApiError::invalid(
                            Code::InvalidParameter,
                            k,
                            "must not contain control characters",
                        ));
                    }
                    p.attributes.insert(name.to_owned(), v);
                }
                None => {
                    return Err(unknown_parameter(
                        &k,
                        "owner_kind, owner_id, status, attribute.<name>, limit, after",
                    ));
                }
            },
        }
    }
    Ok(p)
}

/// Lists executions, newest first, with keyset pagination.
#[utoipa::path(
    get,
    path = "/v1/executions",
    tag = "executions",
    params(
        ("owner_kind" = Option<String>, Query, description = "Owner type"),
        ("owner_id" = Option<String>, Query, description = "Owner id"),
        ("status" = Option<String>, Query, description = "Comma-separated statuses (repeatable): running, succeeded, failed, canceled, error"),
        ("attribute.{name}" = Option<String>, Query, description = "Attribute equality filter, e.g. `attribute.env=prod` (repeatable, all must match)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=10000 (default 50)"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page"),
    ),
    responses((status = 200, description = "A page of executions", body = ExecutionList)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn list(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ExecutionList>> {
    let params = list_params(q.as_deref())?;
    let rows = st.client.executions(&params).await?;
    let next = (rows.len() == params.limit as usize)
        .then(|| rows.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(ExecutionList {
        executions: rows.into_iter().map(ExecutionView::from).collect(),
        next,
    }))
}

/// One execution with its job counts.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}",
    tag = "executions",
    params(("id" = i64, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionView),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn get_execution(
    State(st): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<ExecutionView>> {
    Ok(Json(st.client.execution(id).await?.into()))
}

/// The jobs of an execution, newest first, with keyset pagination.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/jobs",
    tag = "executions",
    params(
        ("id" = i64, Path, description = "Execution id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=10000 (default 50)"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of its jobs", body = JobList),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn jobs(
    State(st): State<AppState>,
    Id(id): Id,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobList>> {
    let (limit, before) = id_page(q.as_deref())?;
    let page = st.client.execution_jobs(id, before, limit).await?;
    Ok(Json(JobList {
        jobs: page.jobs.into_iter().map(JobView::from).collect(),
        next: page.next.map(|n| n.to_string()),
    }))
}

/// Adds jobs to an execution (all or nothing); it is `running` again until
/// they finish.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/jobs",
    tag = "executions",
    params(("id" = i64, Path, description = "Execution id")),
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Added (at least one job inserted)", body = BatchResponse),
        (status = 200, description = "Every job was a unique-key duplicate", body = BatchResponse),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The execution was marked done without jobs", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn add_jobs(
    State(st): State<AppState>,
    Id(id): Id,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<Response> {
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "jobs",
            format!("must hold 1..={MAX_BATCH} jobs"),
        ));
    }
    let kinds = st.client.kinds();
    let requests = req
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, r)| to_request(&st, &kinds, r).map_err(|e| e.within(&format!("jobs[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let n = requests.len();
    let inserted = st
        .client
        .add_execution_jobs(id, requests)
        .await
        .map_err(|e| jobs_error(e, n))?;
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

/// Stops an execution: every unfinished job is canceled (running ones are
/// asked to stop). With `wait`, answers once the execution has finished,
/// or 202 with its current state when the wait ran out.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/stop",
    tag = "executions",
    params(
        ("id" = i64, Path, description = "Execution id"),
        ("wait" = Option<String>, Query, description = "Wait up to this long (e.g. `5s`, at most 25 s) for the execution to finish"),
    ),
    responses(
        (status = 200, description = "The execution after the stop (finished, when `wait` was given)", body = ExecutionView),
        (status = 202, description = "Stop requested, but running jobs had not ended within `wait`", body = ExecutionView),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn stop(
    State(st): State<AppState>,
    Id(id): Id,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let mut wait = None;
    for (k, v) in query_pairs(q.as_deref())? {
        match k.as_str() {
            "wait" => {
                let d = parse_duration("wait", &Value::String(v))?;
                if d.is_some_and(|d| d > MAX_STOP_WAIT) {
                    return Err(ApiError::invalid(
                        Code::InvalidDuration,
                        "wait",
                        format!(
                            "must be at most {} s (requests time out after 30 s)",
                            MAX_STOP_WAIT.as_secs()
                        ),
                    ));
                }
                wait = d;
            }
            _ => return Err(unknown_parameter(&k, "wait")),
        }
    }
    let Some(wait) = wait else {
        let ex = st.client.stop_execution(id).await?;
        return Ok(Json(ExecutionView::from(ex)).into_response());
    };
    match st.client.stop_execution_and_wait(id, wait).await {
        Ok(ex) => Ok(Json(ExecutionView::from(ex)).into_response()),
        Err(Error::Timeout(_)) => {
            let ex = st.client.execution(id).await?;
            Ok((StatusCode::ACCEPTED, Json(ExecutionView::from(ex))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Marks an execution without jobs `succeeded` or `error`, with a message
/// (the status of one with jobs is derived from them: 409).
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/mark",
    tag = "executions",
    params(("id" = i64, Path, description = "Execution id")),
    request_body = MarkExecutionRequest,
    responses(
        (status = 200, description = "The marked execution", body = ExecutionView),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The execution has jobs", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn mark(
    State(st): State<AppState>,
    Id(id): Id,
    ApiJson(req): ApiJson<MarkExecutionRequest>,
) -> ApiResult<Json<ExecutionView>> {
    let status = match req.status.as_str() {
        "succeeded" => ExecutionStatus::Succeeded,
        "error" => ExecutionStatus::Error,
        _ => {
            return Err(ApiError::invalid(
                Code::InvalidValue,
                "status",
                "must be succeeded or error",
            ));
        }
    };
    if let Some(m) = &req.message {
        check_message("message", m, MAX_MESSAGE)?;
    }
    let ex = st.client.mark_execution(id, status, req.message).await?;
    Ok(Json(ex.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query() {
        let p = list_params(Some(
            "owner_kind=replication&owner_id=42&status=failed,running&status=failed&attribute.env=prod&limit=10&after=99",
        ))
        .unwrap();
        assert_eq!(p.owner_kind.as_deref(), Some("replication"));
        assert_eq!(p.owner_id.as_deref(), Some("42"));
        assert_eq!(
            p.statuses,
            vec![ExecutionStatus::Failed, ExecutionStatus::Running]
        );
        assert_eq!(p.attributes.get("env").map(String::as_str), Some("prod"));
        assert_eq!((p.limit, p.before_id), (10, Some(99)));
        for (q, field) in [
            ("status=bogus", "status"),
            ("limit=0", "limit"),
            ("limit=100000", "limit"),
            ("after=x", "after"),
            ("owner_kind=", "owner_kind"),
            ("owner_id=a%00b", "owner_id"),
            ("attribute.=x", "attribute."),
            ("attribute.k=%00", "attribute.k"),
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
