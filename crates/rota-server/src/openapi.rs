//! The OpenAPI document: paths come from the handlers' `#[utoipa::path]`
//! (collected by the router itself, so every route is documented); the
//! error responses every operation can give are added here from the error
//! table.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, SchemaFormat};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::{Code, PROBLEM_JSON, Problem};

/// The static part of the document (info, tags, shared schemas, security).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rota API",
        description = "Durable job queue: enqueue and control jobs, executions, schedules, \
                       webhooks, queues, nodes and API keys. \
                       Errors are RFC 9457 `application/problem+json` bodies with a stable `code` \
                       and, where one is at fault, the `field`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(
        Problem,
        dto::JobStateName,
        dto::ErrorKindName,
        dto::DurationInput,
        dto::ScopeName,
        dto::OutputChunk,
        dto::OutputEnd,
        dto::TriggerName,
        dto::ExecutionStatusName,
        dto::MarkStatusName,
        dto::OwnerIdInput,
        dto::PolicyName,
        dto::OnOverlapName,
        dto::CatchUpName,
        dto::CatchUpLimit,
        dto::CatchUpAll,
        dto::CatchUpPolicy,
        dto::FireStatusName,
        dto::RunOutcome,
        dto::DeliveryStatusName,
    )),
    tags(
        (name = "jobs", description = "Enqueue, query and control jobs"),
        (name = "executions", description = "Executions: runs of an action for an owner, grouping jobs; status derived from them"),
        (name = "schedules", description = "Schedules (distributed cron): rules, pause, resume, trigger, run history"),
        (name = "webhooks", description = "Signed status-change webhooks and their deliveries (admin)"),
        (name = "queues", description = "Queues: counts, pause and resume"),
        (name = "nodes", description = "Worker nodes"),
        (name = "keys", description = "API keys (admin)"),
        (name = "health", description = "Liveness, readiness, metrics, this document"),
        (name = "ui", description = "Placeholder web page"),
    ),
    modifiers(&BearerAuth)
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("rota_<id>_<secret>".into());
        http.description = Some(
            "API key from `rota key create --scope read|write|admin`. GET needs read, other \
             methods write; keys, webhooks and node drain need admin."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

fn problem(description: &str, retry_after: bool) -> utoipa::openapi::Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut b = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    if retry_after {
        let schema = utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int32,
            )))
            .build();
        b = b.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(schema))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    b.build()
}

fn codes_with(status: u16) -> String {
    let codes: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.status().as_u16() == status)
        .map(|c| c.as_str())
        .collect();
    format!("codes: {}", codes.join(", "))
}

fn add(op: &mut Operation, status: u16, what: &str) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let desc = format!("{what} ({})", codes_with(status));
    op.responses
        .responses
        .insert(key, problem(&desc, status == 503).into());
}

fn add_common(path: &str, method: &str, op: &mut Operation) {
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if has_body {
        add(op, 400, "Malformed JSON or unreadable body");
        add(op, 413, "Body over the size limit");
        add(op, 415, "Body is not application/json");
    }
    if has_body || has_params || method != "get" {
        add(op, 422, "Invalid field or parameter (see `field`)");
    }
    if path != "/healthz" && path != "/readyz" {
        add(
            op,
            401,
            "Missing, invalid or revoked API key (when the server requires keys)",
        );
        add(op, 403, "The key's scope does not allow this route");
    }
    add(op, 500, "Unexpected error (details are only logged)");
    if path != "/healthz" {
        add(
            op,
            503,
            "Store unavailable or server overloaded; retry after Retry-After seconds",
        );
    }
}

/// Adds the error responses each operation can give.
pub(crate) fn finish(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
            ("head", &mut item.head),
        ];
        for (method, op) in ops {
            if let Some(op) = op.as_mut() {
                add_common(path, method, op);
            }
        }
    }
}
