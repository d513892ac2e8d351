//! `GET /`: a minimal server-rendered placeholder page (job counts per queue
//! and state). No JavaScript; every value is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;
use rota::JobState;

use crate::AppState;
use crate::error::ApiResult;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the page from `(queue, state, count)` rows and paused queues.
pub fn render(counts: &[(String, JobState, i64)], paused: &[String]) -> String {
    let mut by_queue: BTreeMap<&str, BTreeMap<JobState, i64>> = BTreeMap::new();
    for (q, s, n) in counts {
        *by_queue.entry(q).or_default().entry(*s).or_default() += n;
    }
    for q in paused {
        by_queue.entry(q).or_default();
    }
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rota</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}th:first-child,td:first-child{text-align:left}</style>\
         </head><body><h1>Rota</h1><h2>Jobs per queue and state</h2>\n",
    );
    if by_queue.is_empty() {
        html.push_str("<p>No jobs yet.</p>\n");
    } else {
        html.push_str("<table><thead><tr><th>queue</th>");
        for s in JobState::ALL {
            let _ = write!(html, "<th>{}</th>", s.as_str());
        }
        html.push_str("</tr></thead><tbody>\n");
        for (q, states) in &by_queue {
            let mark = if paused.iter().any(|p| p == q) {
                " (paused)"
            } else {
                ""
            };
            let _ = write!(html, "<tr><td>{}{mark}</td>", escape(q));
            for s in JobState::ALL {
                let _ = write!(html, "<td>{}</td>", states.get(&s).copied().unwrap_or(0));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str(
        "<p>API: <a href=\"/openapi.json\">/openapi.json</a> · <a href=\"/v1/jobs\">/v1/jobs</a> · \
         <a href=\"/v1/queues\">/v1/queues</a> · <a href=\"/v1/nodes\">/v1/nodes</a></p></body></html>\n",
    );
    html
}

/// The placeholder dashboard.
#[utoipa::path(
    get,
    path = "/",
    tag = "ui",
    responses((status = 200, description = "HTML page with job counts", body = String, content_type = "text/html")),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn index(State(st): State<AppState>) -> ApiResult<Html<String>> {
    let counts: Vec<_> = st
        .client
        .counts()
        .await?
        .into_iter()
        .map(|c| (c.queue, c.state, c.count))
        .collect();
    let paused: Vec<String> = st
        .client
        .queues()
        .await?
        .into_iter()
        .filter(|q| q.paused_at.is_some())
        .map(|q| q.name)
        .collect();
    Ok(Html(render(&counts, &paused)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_names() {
        let html = render(&[("<script>&\"'".into(), JobState::Failed, 3)], &[]);
        assert!(html.contains("&lt;script&gt;&amp;&quot;&#39;"));
        assert!(!html.contains("<script>"));
        assert!(render(&[], &[]).contains("No jobs yet"));
    }
}
