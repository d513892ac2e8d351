//! `/v1/schedules`: create, list, get, patch, delete, pause, resume,
//! trigger, run history.
//!
//! The request shape is flat and human-friendly (`cron` or `every`,
//! `timezone`, `policy`, ...) and is mapped onto the engine's
//! [`ScheduleDefinition`]; every check runs before anything is written, and
//! errors name the request's fields (`cron`, `timezone`, `every`,
//! `job.kind`, `catch_up.all.limit`, `backoff.jitter`, ...).

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rota::{
    BackoffPolicy, CatchUp, Error, JobTemplate, MAX_PAGE, OnOverlap, OverlapPolicy,
    ScheduleDefinition, ScheduleRule, ScheduleSpec, ValidationError,
};
use rota_core::schedule::DEFAULT_TIMEZONE;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::dto::{
    BackoffInput, RunList, RunView, ScheduleJob, ScheduleList, SchedulePatch, ScheduleRequest,
    ScheduleView,
};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::extract::{
    ApiJson, Id, check_text, parse_json, parse_limit, query_pairs, unknown_parameter,
};
use crate::routes::executions::{check_attributes, check_owner};
use crate::routes::jobs::{DEFAULT_LIMIT, parse_duration, parse_time};

/// The request's name for an engine field.
fn api_field(field: &str) -> String {
    match field {
        "interval" => "every".to_owned(),
        "catch_up.limit" => "catch_up.all.limit".to_owned(),
        other => other.to_owned(),
    }
}

fn from_validation(e: ValidationError) -> ApiError {
    ApiError::invalid(Code::InvalidValue, api_field(&e.field), e.message)
}

/// A positive duration as whole milliseconds (the engine's unit).
fn whole_ms(field: &str, v: &Value) -> ApiResult<u64> {
    let Some(d) = parse_duration(field, v)? else {
        return Err(ApiError::invalid(
            Code::InvalidDuration,
            field,
            "must be a positive duration",
        ));
    };
    let nanos = d.as_nanos();
    let ms = (nanos + 500_000) / 1_000_000;
    // Tolerate float noise (1.5 s as 1.4999999 s), not real sub-ms parts.
    if nanos.abs_diff(ms * 1_000_000) > 1_000 {
        return Err(ApiError::invalid(
            Code::InvalidDuration,
            field,
            "must be a whole number of milliseconds",
        ));
    }
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| ApiError::invalid(Code::InvalidDuration, field, "must be at least 1 ms"))
}

fn parse_policy(v: &str) -> ApiResult<OverlapPolicy> {
    match v {
        "common" => Ok(OverlapPolicy::Common),
        "alone" => Ok(OverlapPolicy::Alone),
        "interval" => Ok(OverlapPolicy::Interval),
        _ => Err(ApiError::invalid(
            Code::InvalidValue,
            "policy",
            format!(
                "unknown policy {:?}; expected common, alone or interval",
                v.chars().take(64).collect::<String>()
            ),
        )),
    }
}

fn parse_on_overlap(v: &str) -> ApiResult<OnOverlap> {
    match v {
        "skip" => Ok(OnOverlap::Skip),
        "queue" => Ok(OnOverlap::Queue),
        _ => Err(ApiError::invalid(
            Code::InvalidValue,
            "on_overlap",
            format!(
                "unknown value {:?}; expected skip or queue",
                v.chars().take(64).collect::<String>()
            ),
        )),
    }
}

fn parse_catch_up(v: Value) -> ApiResult<CatchUp> {
    let c: CatchUp = serde_json::from_value(v).map_err(|_| {
        ApiError::invalid(
            Code::InvalidValue,
            "catch_up",
            r#"expected "none", "latest" or {"all": {"limit": N}}"#,
        )
    })?;
    c.validate().map_err(from_validation)?;
    Ok(c)
}

fn to_rule(r: &ScheduleRequest) -> ApiResult<ScheduleRule> {
    let rule = match (&r.cron, &r.every) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                Code::InvalidValue,
                "every",
                "give either cron or every, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                Code::MissingField,
                "cron",
                r#"a schedule needs a rule: cron (e.g. "*/5 * * * *") or every (e.g. "30s")"#,
            ));
        }
        (Some(expr), None) => ScheduleRule::Cron {
            expr: expr.trim().to_owned(),
            timezone: r
                .timezone
                .clone()
                .unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned()),
        },
        (None, Some(every)) => {
            if r.timezone.is_some() {
                return Err(ApiError::invalid(
                    Code::InvalidValue,
                    "timezone",
                    "applies only to cron rules (an interval is independent of time zones)",
                ));
            }
            ScheduleRule::Every {
                interval: Duration::from_millis(whole_ms("every", every)?),
            }
        }
    };
    rule.validate().map_err(from_validation)?;
    Ok(rule)
}

fn to_template(st: &AppState, kinds: &[String], j: ScheduleJob) -> ApiResult<JobTemplate> {
    check_text("kind", &j.kind, rota::MAX_NAME_LEN, Code::InvalidValue)?;
    if !st.options.accept_unknown_kinds && !kinds.contains(&j.kind) {
        return Err(ApiError::invalid(
            Code::UnknownKind,
            "kind",
            format!("no worker is registered for kind {:?}", j.kind),
        ));
    }
    if let Some(validate) = &st.options.validate_args {
        validate(&j.kind, &j.args)
            .map_err(|e| ApiError::invalid(Code::InvalidValue, e.field, e.message))?;
    }
    let priority = j
        .priority
        .map(|p| {
            i16::try_from(p)
                .ok()
                .filter(|p| (0..=rota::MAX_PRIORITY).contains(p))
                .ok_or_else(|| {
                    ApiError::invalid(Code::InvalidValue, "priority", "must be between 0 and 9")
                })
        })
        .transpose()?;
    let max_attempts = j
        .max_attempts
        .map(|n| {
            u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::invalid(Code::InvalidValue, "max_attempts", "must be at least 1")
            })
        })
        .transpose()?;
    let timeout_ms = j
        .timeout
        .as_ref()
        .map(|v| whole_ms("timeout", v))
        .transpose()?;
    let labels = j.labels.unwrap_or_default();
    let attributes = j.attributes.unwrap_or_default();
    check_attributes("attributes", &attributes)?;
    Ok(JobTemplate {
        kind: j.kind,
        args: j.args,
        queue: j.queue,
        priority,
        max_attempts,
        timeout_ms,
        labels,
        attributes,
    })
}

fn to_backoff(b: BackoffInput) -> ApiResult<BackoffPolicy> {
    let mut p = BackoffPolicy::default();
    let dur = |name: &str, v: &Value| whole_ms(name, v).map(Duration::from_millis);
    if let Some(v) = &b.initial_interval {
        p.initial_interval = dur("initial_interval", v)?;
    }
    if let Some(m) = b.multiplier {
        p.multiplier = m;
    }
    if let Some(v) = &b.max_interval {
        p.max_interval = dur("max_interval", v)?;
    }
    if let Some(j) = b.jitter {
        p.jitter = j;
    }
    if let Some(n) = b.max_attempts {
        p.max_attempts = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::invalid(Code::InvalidValue, "max_attempts", "must be at least 1")
        })?;
    }
    if let Some(v) = &b.reset_interval {
        p.reset_interval = if v.is_null() {
            None
        } else {
            Some(dur("reset_interval", v)?)
        };
    }
    p.validate()
        .map_err(|e| ApiError::invalid(Code::InvalidValue, e.field, e.message))?;
    Ok(p)
}

/// Turns a request into a validated definition; errors name request
/// fields. Nothing is written.
pub(crate) fn to_definition(
    st: &AppState,
    kinds: &[String],
    r: ScheduleRequest,
) -> ApiResult<ScheduleDefinition> {
    rota_core::schedule::validate_schedule_name(&r.name).map_err(from_validation)?;
    let rule = to_rule(&r)?;
    let overlap = r
        .policy
        .as_deref()
        .map(parse_policy)
        .transpose()?
        .unwrap_or_default();
    let on_overlap = r
        .on_overlap
        .as_deref()
        .map(parse_on_overlap)
        .transpose()?
        .unwrap_or_default();
    let catch_up = r
        .catch_up
        .map(parse_catch_up)
        .transpose()?
        .unwrap_or_default();
    let job = to_template(st, kinds, r.job).map_err(|e| e.within("job"))?;
    let execution = match r.execution {
        None => None,
        Some(o) => {
            let owner_id = o.owner_id.into_string();
            check_owner("execution.owner_kind", &o.owner_kind)?;
            check_owner("execution.owner_id", &owner_id)?;
            Some((o.owner_kind, owner_id))
        }
    };
    let backoff = r
        .backoff
        .map(|b| to_backoff(b).map_err(|e| e.within("backoff")))
        .transpose()?;
    let def = ScheduleDefinition {
        spec: ScheduleSpec {
            name: r.name,
            rule,
            overlap,
            on_overlap,
            catch_up,
        },
        job,
        execution,
        backoff,
    };
    def.validate().map_err(from_validation)?;
    Ok(def)
}

/// A duration as the request gives it: whole seconds, or fractional ones.
fn seconds_value(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}

/// A stored definition in the request's shape (the base a PATCH applies
/// to).
pub(crate) fn request_json(def: &ScheduleDefinition) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(def.spec.name));
    match &def.spec.rule {
        ScheduleRule::Cron { expr, timezone } => {
            m.insert("cron".into(), json!(expr));
            m.insert("timezone".into(), json!(timezone));
        }
        ScheduleRule::Every { interval } => {
            m.insert("every".into(), seconds_value(*interval));
        }
    }
    m.insert("policy".into(), json!(def.spec.overlap));
    m.insert("on_overlap".into(), json!(def.spec.on_overlap));
    m.insert("catch_up".into(), json!(def.spec.catch_up));
    let t = &def.job;
    let mut job = Map::new();
    job.insert("kind".into(), json!(t.kind));
    job.insert("args".into(), t.args.clone());
    if let Some(q) = &t.queue {
        job.insert("queue".into(), json!(q));
    }
    if let Some(p) = t.priority {
        job.insert("priority".into(), json!(p));
    }
    if let Some(n) = t.max_attempts {
        job.insert("max_attempts".into(), json!(n));
    }
    if let Some(ms) = t.timeout_ms {
        job.insert("timeout".into(), seconds_value(Duration::from_millis(ms)));
    }
    job.insert("labels".into(), json!(t.labels));
    job.insert("attributes".into(), json!(t.attributes));
    m.insert("job".into(), Value::Object(job));
    if let Some((kind, id)) = &def.execution {
        m.insert(
            "execution".into(),
            json!({"owner_kind": kind, "owner_id": id}),
        );
    }
    if let Some(b) = &def.backoff {
        m.insert(
            "backoff".into(),
            json!({
                "initial_interval": seconds_value(b.initial_interval),
                "multiplier": b.multiplier,
                "max_interval": seconds_value(b.max_interval),
                "jitter": b.jitter,
                "max_attempts": b.max_attempts,
                "reset_interval": b.reset_interval.map(seconds_value),
            }),
        );
    }
    m
}

/// Applies a PATCH body to the stored request shape: fields replace,
/// `null` removes, `job` and `backoff` merge one level deep, and giving
/// one kind of rule drops the other.
pub(crate) fn merge(base: &mut Map<String, Value>, patch: Map<String, Value>) {
    let sets = |k: &str| patch.get(k).is_some_and(|v| !v.is_null());
    if sets("every") && !sets("cron") {
        base.remove("cron");
        base.remove("timezone");
    }
    if sets("cron") && !sets("every") {
        base.remove("every");
    }
    for (k, v) in patch {
        match v {
            Value::Null => {
                base.remove(&k);
            }
            Value::Object(inner) if k == "job" || k == "backoff" => match base.get_mut(&k) {
                Some(Value::Object(current)) => {
                    for (ik, iv) in inner {
                        if iv.is_null() {
                            current.remove(&ik);
                        } else {
                            current.insert(ik, iv);
                        }
                    }
                }
                _ => {
                    base.insert(k, Value::Object(inner));
                }
            },
            v => {
                base.insert(k, v);
            }
        }
    }
}

fn decode(spec: &Value) -> ApiResult<ScheduleDefinition> {
    serde_json::from_value(spec.clone()).map_err(|e| ApiError::internal(&e))
}

/// The full view of one schedule (with its average run time).
async fn view(st: &AppState, id: i64) -> ApiResult<ScheduleView> {
    let v = st.client.schedule(id).await?;
    Ok(ScheduleView::new(
        v.row,
        v.definition,
        v.average_run_seconds,
    ))
}

/// Creates a schedule; it first fires at the rule's next time.
#[utoipa::path(
    post,
    path = "/v1/schedules",
    tag = "schedules",
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 409, description = "A schedule with this name exists", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ScheduleRequest>,
) -> ApiResult<Response> {
    let kinds = st.client.kinds();
    let def = to_definition(&st, &kinds, req)?;
    let row = st.client.create_schedule(def.clone()).await?;
    let id = row.id;
    let body = ScheduleView::new(row, def, None);
    Ok((
        StatusCode::CREATED,
        super::location("/v1/schedules", id),
        Json(body),
    )
        .into_response())
}

/// Every schedule.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "schedules",
    responses((status = 200, description = "Schedules by id", body = ScheduleList)),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn list(State(st): State<AppState>) -> ApiResult<Json<ScheduleList>> {
    let rows = st.client.schedules().await?;
    let schedules = rows
        .into_iter()
        .map(|row| {
            let def = decode(&row.spec)?;
            Ok(ScheduleView::new(row, def, None))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(ScheduleList { schedules }))
}

/// One schedule with its next and last fire and average run time.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn get_schedule(
    State(st): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(view(&st, id).await?))
}

/// Changes a schedule: the fields given replace the stored ones (`null`
/// resets one; `job` and `backoff` merge field by field; `cron` replaces
/// `every` and vice versa). The next fire is recomputed from now; pause
/// state and history are kept. The name cannot be changed.
#[utoipa::path(
    patch,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    request_body = SchedulePatch,
    responses(
        (status = 200, description = "The changed schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn patch(
    State(st): State<AppState>,
    Id(id): Id,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<ScheduleView>> {
    let Value::Object(changes) = body else {
        return Err(ApiError::new(
            Code::InvalidType,
            "the body must be a JSON object of the fields to change",
        ));
    };
    let current = st.client.schedule(id).await?;
    let mut merged = request_json(&current.definition);
    merge(&mut merged, changes);
    let bytes = serde_json::to_vec(&Value::Object(merged)).map_err(|e| ApiError::internal(&e))?;
    let req: ScheduleRequest = parse_json(&bytes)?;
    let kinds = st.client.kinds();
    let def = to_definition(&st, &kinds, req)?;
    if def.spec.name != current.row.name {
        // The store keeps the name apart from the definition and cannot
        // change it (nor check it for uniqueness) on update.
        return Err(ApiError::invalid(
            Code::InvalidValue,
            "name",
            "a schedule cannot be renamed; create one under the new name and delete this one",
        ));
    }
    st.client.update_schedule(id, def).await?;
    Ok(Json(view(&st, id).await?))
}

/// Deletes a schedule and its run history (the jobs it created stay).
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The deleted schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn delete_schedule(
    State(st): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<ScheduleView>> {
    let row = st.client.delete_schedule(id).await?;
    let def = decode(&row.spec)?;
    Ok(Json(ScheduleView::new(row, def, None)))
}

/// Pauses a schedule: no fires until resumed (idempotent).
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/pause",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The paused schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn pause(State(st): State<AppState>, Id(id): Id) -> ApiResult<Json<ScheduleView>> {
    st.client.pause_schedule(id).await?;
    Ok(Json(view(&st, id).await?))
}

/// Resumes a schedule from now: fires missed while paused are not made up
/// (idempotent).
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/resume",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The resumed schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn resume(
    State(st): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<ScheduleView>> {
    st.client.resume_schedule(id).await?;
    Ok(Json(view(&st, id).await?))
}

/// Fires a schedule now: a manual run, recorded like any other (its
/// overlap policy applies; the regular next fire is unchanged).
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/trigger",
    tag = "schedules",
    params(("id" = i64, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The recorded run (`skipped` when an `alone` run is unfinished)", body = RunView),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The schedule kept changing; trigger again", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub(crate) async fn trigger(State(st): State<AppState>, Id(id): Id) -> ApiResult<Json<RunView>> {
    Ok(Json(st.client.trigger_schedule(id).await?.into()))
}

/// Run history, newest fire first, with outcome and duration.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}/runs",
    tag = "schedules",
    params(
        ("id" = i64, Path, description = "Schedule id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=10000 (default 50)"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page (a fire time)"),
    ),
    responses(
        (status = 200, description = "A page of runs", body = RunList),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn runs(
    State(st): State<AppState>,
    Id(id): Id,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<RunList>> {
    let mut limit = DEFAULT_LIMIT;
    let mut before: Option<Timestamp> = None;
    for (k, v) in query_pairs(q.as_deref())? {
        match k.as_str() {
            "limit" => limit = parse_limit(&v, MAX_PAGE)?,
            "after" => {
                before = Some(parse_time("after", &v).map_err(|_| {
                    ApiError::invalid(
                        Code::InvalidParameter,
                        "after",
                        "must be a cursor from `next` (an RFC 3339 time)",
                    )
                })?);
            }
            _ => return Err(unknown_parameter(&k, "limit, after")),
        }
    }
    if st.client.driver().schedule_get(id).await?.is_none() {
        return Err(Error::Missing {
            entity: "schedule",
            id: id.to_string(),
        }
        .into());
    }
    let fires = st.client.schedule_history(id, before, limit).await?;
    let next = (fires.len() == limit as usize)
        .then(|| fires.last().map(|f| f.fire_at.to_string()))
        .flatten();
    Ok(Json(RunList {
        runs: fires.into_iter().map(RunView::from).collect(),
        next,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn whole_milliseconds() {
        assert_eq!(whole_ms("every", &json!("30s")).unwrap(), 30_000);
        assert_eq!(whole_ms("every", &json!(1.5)).unwrap(), 1_500);
        assert_eq!(whole_ms("every", &json!(0.001)).unwrap(), 1);
        let e = whole_ms("every", &json!(1.0005)).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::InvalidDuration, Some("every"))
        );
        let e = whole_ms("every", &json!("soon")).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::InvalidDuration, Some("every"))
        );
    }

    #[test]
    fn patch_merges() {
        let def = ScheduleDefinition {
            spec: ScheduleSpec::new(
                "n",
                ScheduleRule::parse("0 * * * *", Some("Europe/Berlin")).unwrap(),
            ),
            job: JobTemplate {
                kind: "echo".into(),
                args: json!({"a": 1}),
                queue: Some("q".into()),
                priority: None,
                max_attempts: Some(3),
                timeout_ms: Some(1500),
                labels: BTreeMap::new(),
                attributes: BTreeMap::new(),
            },
            execution: Some(("k".into(), "1".into())),
            backoff: Some(BackoffPolicy::default()),
        };
        let base = request_json(&def);
        // The stored shape parses back to the same definition.
        let req: ScheduleRequest = serde_json::from_value(Value::Object(base.clone())).unwrap();
        assert_eq!(req.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(req.job.timeout, Some(json!(1.5)));

        let mut m = base.clone();
        let Value::Object(p) =
            json!({"every": "5m", "job": {"args": {"b": 2}, "queue": null}, "execution": null})
        else {
            unreachable!()
        };
        merge(&mut m, p);
        assert!(
            !m.contains_key("cron") && !m.contains_key("timezone") && !m.contains_key("execution")
        );
        assert_eq!(m["every"], "5m");
        assert_eq!(m["job"]["args"], json!({"b": 2}));
        assert_eq!(m["job"]["kind"], "echo");
        assert!(m["job"].get("queue").is_none());
        assert_eq!(m["job"]["max_attempts"], 3);

        let mut m = base;
        let Value::Object(p) = json!({"timezone": "UTC", "backoff": {"jitter": 0.5}}) else {
            unreachable!()
        };
        merge(&mut m, p);
        assert_eq!(m["cron"], "0 * * * *");
        assert_eq!(m["timezone"], "UTC");
        assert_eq!(m["backoff"]["jitter"], 0.5);
        assert_eq!(m["backoff"]["max_attempts"], 25);
    }

    #[test]
    fn field_names() {
        assert_eq!(api_field("interval"), "every");
        assert_eq!(api_field("catch_up.limit"), "catch_up.all.limit");
        assert_eq!(api_field("job.queue"), "job.queue");
        let e = parse_catch_up(json!({"all": {"limit": 0}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("catch_up.all.limit"));
        assert_eq!(parse_catch_up(json!("none")).unwrap(), CatchUp::None);
        assert_eq!(
            parse_catch_up(json!({"all": {"limit": 5}})).unwrap(),
            CatchUp::All { limit: 5 }
        );
        assert_eq!(
            parse_catch_up(json!("sometimes"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("catch_up")
        );
    }
}
