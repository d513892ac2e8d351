//! `rota execution list|show|jobs|stop` against executions created over
//! the HTTP API: stop cancels their jobs (waiting, or timing out with
//! exit 4 on a job that takes its time to stop).

use serde_json::{Value, json};

use crate::common::{Sandbox, eventually, processes_with};

/// `POST /v1/executions` with shell jobs; returns the execution id.
async fn create(url: &str, owner_id: i64, commands: &[Value]) -> String {
    let jobs: Vec<Value> = commands
        .iter()
        .map(|c| json!({"kind": "shell", "args": c, "max_attempts": 1}))
        .collect();
    let body = json!({
        "owner_kind": "replication",
        "owner_id": owner_id,
        "attributes": {"env": "prod"},
        "jobs": jobs,
    });
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/executions"))
        .json(&body)
        .send()
        .await
        .expect("POST /v1/executions");
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    let v: Value = r.json().await.expect("JSON");
    v["execution"]["id"].to_string()
}

async fn execution(sb: &Sandbox, s: &str, id: &str) -> Value {
    sb.run(&["execution", "show", id, "--server", s, "-o", "json"])
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_stop_executions() {
    let sb = Sandbox::new();
    let server = sb.server(&["--shell-kill-grace", "3s"]).await;
    let s = server.url.as_str();
    let id = create(
        s,
        42,
        &[
            json!({"command": ["sleep", "60.111"]}),
            json!({"command": ["sleep", "60.112"]}),
            json!({"command": ["echo", "hi"]}),
        ],
    )
    .await;

    // list with filters, JSON and table.
    let list = |extra: &'static [&'static str]| {
        let mut args = vec!["execution", "list", "--server", s, "-o", "json"];
        args.extend_from_slice(extra);
        let sb = &sb;
        async move { sb.run(&args).await.json()["executions"].clone() }
    };
    let all = list(&[]).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all:#}");
    assert_eq!(all[0]["id"].to_string(), id);
    assert_eq!(all[0]["owner_id"], "42");
    let hits = list(&[
        "--owner-kind",
        "replication",
        "--owner-id",
        "42",
        "--status",
        "running",
        "--attr",
        "env=prod",
    ])
    .await;
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits:#}");
    assert_eq!(list(&["--status", "succeeded"]).await, json!([]));
    assert_eq!(list(&["--attr", "env=dev"]).await, json!([]));
    let out = sb.run(&["execution", "list", "--server", s]).await;
    assert!(
        out.ok().contains("replication/42") && out.stdout.contains("running"),
        "{out:#?}"
    );

    // show: counts, then its jobs.
    eventually(20, "both sleeps running, echo done", || async {
        let e = execution(&sb, s, &id).await;
        (e["counts"] == json!({"running": 2, "succeeded": 1})).then_some(())
    })
    .await;
    let e = execution(&sb, s, &id).await;
    assert_eq!(
        (e["status"].as_str(), e["total_jobs"].as_i64()),
        (Some("running"), Some(3))
    );
    let out = sb.run(&["execution", "show", &id, "--server", s]).await;
    let text = out.ok();
    assert!(
        text.contains("replication/42")
            && text.contains("1/3 finished")
            && text.contains("sleep 60.111")
            && text.contains("env=prod"),
        "{text}"
    );
    let jobs = sb
        .run(&["execution", "jobs", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(3), "{jobs:#}");
    assert!(
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["execution_id"] == id.parse::<i64>().unwrap())
    );

    // stop --wait: every unfinished job ends canceled, no process left.
    let out = sb
        .run(&[
            "execution",
            "stop",
            &id,
            "--wait",
            "--wait-timeout",
            "20s",
            "--server",
            s,
            "-o",
            "json",
        ])
        .await;
    let e = out.json();
    assert_eq!(e["status"], "canceled", "{e:#}");
    assert_eq!(e["counts"], json!({"succeeded": 1, "canceled": 2}));
    assert!(e["ended_at"].is_string());
    eventually(10, "no sleep left", || async {
        (processes_with("sleep", "60.111").is_empty()
            && processes_with("sleep", "60.112").is_empty())
        .then_some(())
    })
    .await;
    let out = sb.run(&["execution", "stop", &id, "--server", s]).await;
    assert!(
        out.ok().contains("canceled"),
        "stopping again is fine: {out:#?}"
    );

    // A job that ignores SIGTERM: waiting 1 s times out (exit 4), the stop
    // goes on and ends it after the kill grace.
    let slow = create(
        s,
        7,
        &[json!({"script": "trap '' TERM; sleep 60.113; sleep 60.113"})],
    )
    .await;
    eventually(20, "the stubborn job running", || async {
        let e = execution(&sb, s, &slow).await;
        (e["counts"]["running"] == 1 && !processes_with("sleep", "60.113").is_empty()).then_some(())
    })
    .await;
    let out = sb
        .run(&[
            "execution",
            "stop",
            &slow,
            "--wait",
            "--wait-timeout",
            "1s",
            "--server",
            s,
        ])
        .await;
    assert_eq!(out.code(), 4, "{out:#?}");
    assert!(out.stdout.contains("stopping"), "{out:#?}");
    assert!(out.stderr.contains("timed out"), "{out:#?}");
    let out = sb
        .run(&["execution", "stop", &slow, "--wait", "--server", s])
        .await;
    assert!(out.ok().contains("canceled"), "{out:#?}");
    assert_eq!(execution(&sb, s, &slow).await["status"], "canceled");
    let hits = list(&["--status", "canceled"]).await;
    assert_eq!(hits.as_array().map(Vec::len), Some(2), "{hits:#}");

    // Unknown ids: exit 1.
    for args in [
        ["execution", "show", "999", "--server", s],
        ["execution", "stop", "999", "--server", s],
    ] {
        let out = sb.run(&args).await;
        assert_eq!(out.code(), 1, "{args:?}: {out:#?}");
        assert!(out.stderr.contains("not found"), "{out:#?}");
    }
}
