//! `rota webhook create|list|delete|deliveries` over the HTTP API.

use std::io::Read as _;
use std::path::Path;

use rota::DeliveryStatus;
use rota_server::dto::{
    CreateWebhookRequest, DeliveryList, DeliveryView, WebhookList, WebhookView,
};

use super::{Ctx, fetch_pages};
use crate::cli::{Format, PageArgs, WebhookCommand, WebhookCreateArgs};
use crate::exit::{Exit, Fail};
use crate::http::Api;
use crate::output;

pub(crate) async fn run(cmd: WebhookCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let api = ctx.api()?;
    match cmd {
        WebhookCommand::Create(a) => create(&api, a, ctx.format).await,
        WebhookCommand::List { .. } => list(&api, ctx.format).await,
        WebhookCommand::Delete { id, .. } => delete(&api, id, ctx.format).await,
        WebhookCommand::Deliveries { id, page, .. } => {
            deliveries(&api, id, &page, ctx.format).await
        }
    }
}

fn path(id: i64) -> String {
    format!("/v1/webhooks/{id}")
}

/// The secret from `--secret` or `--secret-file` (`-`: stdin), without
/// trailing newlines of a file.
fn secret(a: &WebhookCreateArgs) -> Result<String, Fail> {
    if let Some(s) = &a.secret {
        return Ok(s.clone());
    }
    let Some(file) = &a.secret_file else {
        return Err(Fail::usage("give --secret or --secret-file"));
    };
    let mut s = String::new();
    let res = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut s).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| s = t)
    };
    res.map_err(|e| {
        Fail::usage(format!(
            "--secret-file: cannot read {}: {e}",
            file.display()
        ))
    })?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

fn some_list(v: &[String]) -> Option<Vec<String>> {
    let v: Vec<String> = v
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!v.is_empty()).then_some(v)
}

async fn create(api: &Api, a: WebhookCreateArgs, format: Format) -> anyhow::Result<Exit> {
    let req = CreateWebhookRequest {
        url: a.url.clone(),
        events: some_list(&a.events),
        kinds: some_list(&a.kinds),
        owner_kinds: some_list(&a.owner_kinds),
        secret: secret(&a)?,
    };
    let (_, w): (_, WebhookView) = api.post("/v1/webhooks", &req).await?;
    match format {
        Format::Json => output::json(&w)?,
        Format::Table => {
            output::line(&w.id.to_string())?;
            output::note(&format!("webhook {}: {} gets {}", w.id, w.url, events(&w)));
        }
    }
    Ok(Exit::Success)
}

fn events(w: &WebhookView) -> String {
    if w.events.is_empty() {
        "every event".to_owned()
    } else {
        w.events.join(",")
    }
}

fn any(v: &[String]) -> String {
    if v.is_empty() {
        "any".to_owned()
    } else {
        v.join(",")
    }
}

async fn list(api: &Api, format: Format) -> anyhow::Result<Exit> {
    let list: WebhookList = api.get("/v1/webhooks", &[]).await?;
    match format {
        Format::Json => output::json(&list)?,
        Format::Table => {
            let mut t = output::table(&["ID", "URL", "EVENTS", "KINDS", "OWNER KINDS", "CREATED"]);
            for w in &list.webhooks {
                t.add_row(vec![
                    w.id.to_string(),
                    w.url.clone(),
                    events(w),
                    any(&w.kinds),
                    any(&w.owner_kinds),
                    format!("{} ago", output::ago(w.created_at)),
                ]);
            }
            output::print_table(&t)?;
        }
    }
    Ok(Exit::Success)
}

async fn delete(api: &Api, id: i64, format: Format) -> anyhow::Result<Exit> {
    let w: WebhookView = api.delete(&path(id)).await?;
    match format {
        Format::Json => output::json(&w)?,
        Format::Table => output::line(&format!("webhook {id} ({}) deleted", w.url))?,
    }
    Ok(Exit::Success)
}

/// What the event is about: `job 12 r3` (entity, id, status revision).
fn subject(d: &DeliveryView) -> String {
    let e = &d.event;
    let text = |k: &str| {
        e.get(k).map(|v| match v.as_str() {
            Some(s) => s.to_owned(),
            None => v.to_string(),
        })
    };
    let mut s = match (text("entity"), text("id")) {
        (Some(entity), Some(id)) => format!("{entity} {id}"),
        _ => String::new(),
    };
    if let Some(r) = text("revision") {
        s.push_str(&format!(" r{r}"));
    }
    output::or_dash(Some(s))
}

/// The last attempt: `HTTP 500`, the error, or `-`.
fn last(d: &DeliveryView) -> String {
    let mut parts = Vec::new();
    if let Some(code) = d.last_status_code {
        parts.push(format!("HTTP {code}"));
    }
    if let Some(e) = &d.last_error {
        let e = e.replace(['\n', '\r'], " ");
        parts.push(if e.chars().count() > 60 {
            format!("{}…", e.chars().take(59).collect::<String>())
        } else {
            e
        });
    }
    output::or_dash(Some(parts.join(": ")))
}

async fn deliveries(api: &Api, id: i64, page: &PageArgs, format: Format) -> anyhow::Result<Exit> {
    let (deliveries, next) = fetch_pages(
        api,
        &format!("{}/deliveries", path(id)),
        Vec::new(),
        page,
        |p: DeliveryList| (p.deliveries, p.next),
    )
    .await?;
    match format {
        Format::Json => output::json(&DeliveryList {
            deliveries,
            next: next.clone(),
        })?,
        Format::Table => {
            let mut t = output::table(&[
                "ID",
                "EVENT",
                "SUBJECT",
                "STATUS",
                "ATTEMPTS",
                "WHEN",
                "LAST ATTEMPT",
            ]);
            for d in &deliveries {
                let when = match (d.status, d.delivered_at, d.next_attempt_at) {
                    (DeliveryStatus::Delivered, Some(t), _) => output::relative(t),
                    (DeliveryStatus::Pending, _, Some(t)) => {
                        format!("next {}", output::relative(t))
                    }
                    _ => output::relative(d.created_at),
                };
                t.add_row(vec![
                    d.id.to_string(),
                    output::or_dash(
                        d.event
                            .get("type")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned),
                    ),
                    subject(d),
                    output::status(d.status.as_str()),
                    d.attempts.to_string(),
                    when,
                    last(d),
                ]);
            }
            output::print_table(&t)?;
            if let Some(n) = &next {
                output::note(&format!("more deliveries: add --after {n} (or --all)"));
            }
        }
    }
    Ok(Exit::Success)
}
