//! `rota webhook create|list|deliveries|delete` (no receiver: deliveries
//! stay pending), and progress check-ins shown by `rota job show`.

use serde_json::{Value, json};

use crate::common::{Sandbox, eventually, free_port, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_their_deliveries() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();
    // Nobody listens there: deliveries are attempted and stay pending.
    let target = format!("http://127.0.0.1:{}/hook", free_port());

    let hook = sb
        .run(&[
            "webhook",
            "create",
            &target,
            "--event",
            "job.*",
            "--kind",
            "shell",
            "--secret",
            "0123456789abcdef-secret",
            "--server",
            s,
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(hook["url"], target.as_str());
    assert_eq!(hook["events"], json!(["job.*"]));
    assert_eq!(hook["kinds"], json!(["shell"]));
    assert!(hook.get("secret").is_none(), "never the secret: {hook:#}");
    let id = hook["id"].to_string();

    std::fs::write(sb.path().join("secret"), "another-secret-0123456789\n").unwrap();
    let out = sb
        .run(&[
            "webhook",
            "create",
            &target,
            "--event",
            "execution.*,job.failed",
            "--secret-file",
            "secret",
            "--server",
            s,
        ])
        .await;
    let second = out.ok().trim().to_owned();
    assert!(
        second.parse::<i64>().is_ok(),
        "create prints the id: {out:#?}"
    );

    let list = sb
        .run(&["webhook", "list", "--server", s, "-o", "json"])
        .await
        .json();
    let hooks = list["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{list:#}");
    assert_eq!(hooks[1]["events"], json!(["execution.*", "job.failed"]));
    let out = sb.run(&["webhook", "list", "--server", s]).await;
    assert!(
        out.ok().contains(&target) && out.stdout.contains("job.*"),
        "{out:#?}"
    );

    // A job with a progress check-in: shown by `job show`, and delivered
    // (pending here) as events of the first subscription.
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            s,
            "--wait",
            "--script",
            "echo '::progress:: {\"pct\": 50}'; echo done",
        ])
        .await;
    assert!(out.ok().contains("done"), "{out:#?}");
    let job = show(&sb, s, "1").await;
    assert_eq!(job["progress"], json!({"pct": 50}), "{job:#}");
    let out = sb.run(&["job", "show", "1", "--server", s]).await;
    assert!(
        out.ok()
            .lines()
            .any(|l| l.contains("progress") && l.contains(r#"{"pct":50}"#)),
        "{out:#?}"
    );

    let deliveries = eventually(10, "deliveries of the job's events", || async {
        let v = sb
            .run(&["webhook", "deliveries", &id, "--server", s, "-o", "json"])
            .await
            .json();
        let d = v["deliveries"].as_array().cloned().unwrap_or_default();
        let types: Vec<String> = d
            .iter()
            .filter_map(|d| d["event"]["type"].as_str().map(str::to_owned))
            .collect();
        (types.iter().any(|t| t == "job.succeeded") && types.iter().any(|t| t == "job.progress"))
            .then_some(d)
    })
    .await;
    for d in &deliveries {
        assert_eq!(d["webhook_id"].to_string(), id);
        assert!(
            d["event"]["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("job.")),
            "{d:#}"
        );
        assert_eq!(d["event"]["id"], 1);
        assert!(
            ["pending", "dead", "delivered"].contains(&d["status"].as_str().unwrap_or("")),
            "{d:#}"
        );
    }
    let out = sb
        .run(&["webhook", "deliveries", &id, "--server", s, "--limit", "2"])
        .await;
    let text = out.ok();
    assert!(
        text.contains("EVENT") && text.contains("job 1") && text.lines().count() == 3,
        "{out:#?}"
    );
    assert!(out.stderr.contains("--after"), "a next page: {out:#?}");
    // The second one wants only failures and executions: nothing.
    let v = sb
        .run(&[
            "webhook",
            "deliveries",
            &second,
            "--server",
            s,
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(v["deliveries"], json!([]));

    // Bad input: exit 2 naming the field, or refused before any request.
    let out = sb
        .run(&[
            "webhook", "create", &target, "--secret", "short", "--server", s,
        ])
        .await;
    assert_eq!(out.code(), 2, "{out:#?}");
    assert!(out.stderr.contains("(field: secret)"), "{out:#?}");
    let out = sb.run(&["webhook", "create", &target, "--server", s]).await;
    assert_eq!(out.code(), 2, "a secret is required: {out:#?}");

    // Delete.
    let gone = sb
        .run(&["webhook", "delete", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(gone["id"].to_string(), id);
    let out = sb.run(&["webhook", "delete", &second, "--server", s]).await;
    assert!(out.ok().contains("deleted"), "{out:#?}");
    let list = sb
        .run(&["webhook", "list", "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(list["webhooks"], Value::Array(vec![]));
    let out = sb.run(&["webhook", "deliveries", &id, "--server", s]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
}
