//! `rota schedule ...` against a real server: an every-second schedule
//! fires, its runs succeed, pause stops fires, resume restarts them,
//! trigger adds a run, delete removes it; bad rules are usage errors.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Sandbox, eventually, show};

/// The runs of a schedule, newest first.
async fn runs(sb: &Sandbox, s: &str, schedule: &str) -> Vec<Value> {
    let v = sb
        .run(&["schedule", "runs", schedule, "--server", s, "-o", "json"])
        .await
        .json();
    v["runs"].as_array().expect("runs").clone()
}

fn fired(runs: &[Value]) -> usize {
    runs.iter().filter(|r| r["status"] == "fired").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_fires_pauses_resumes_triggers_and_goes() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();

    let out = sb
        .run(&[
            "schedule", "create", "tick", "--every", "1s", "--server", s, "--", "echo", "tick",
        ])
        .await;
    let id = out.ok().trim().to_owned();
    assert!(id.parse::<i64>().is_ok(), "create prints the id: {out:#?}");
    assert!(out.stderr.contains("next fire"), "{out:#?}");

    // list and show, table and JSON; the next fire is shown.
    let table = sb.run(&["schedule", "list", "--server", s]).await;
    let table = table.ok();
    assert!(
        table.contains("NEXT") && table.contains("tick") && table.contains("every 1s"),
        "{table}"
    );
    let list = sb
        .run(&["schedule", "list", "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(list["schedules"][0]["name"], "tick");
    assert_eq!(list["schedules"][0]["job"]["args"]["command"][1], "tick");
    let shown = sb
        .run(&["schedule", "show", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert!(shown["next_fire_at"].is_string(), "{shown:#}");
    assert_eq!(shown["every"], 1.0);
    let out = sb.run(&["schedule", "show", "tick", "--server", s]).await;
    assert!(out.ok().contains("next fire"), "show by name: {out:#?}");

    // Fired runs whose jobs succeeded, within a few seconds.
    let done = eventually(10, "two succeeded runs", || async {
        let runs = runs(&sb, s, &id).await;
        let ok: Vec<Value> = runs
            .into_iter()
            .filter(|r| r["outcome"] == "succeeded")
            .collect();
        (ok.len() >= 2).then_some(ok)
    })
    .await;
    for r in &done {
        let job = r["job_ids"][0].as_i64().expect("a job per run").to_string();
        let job = show(&sb, s, &job).await;
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["schedule_id"].to_string(), id, "{job:#}");
        assert!(r["duration_seconds"].is_number(), "{r:#}");
    }
    let out = sb.run(&["schedule", "runs", "tick", "--server", s]).await;
    let table = out.ok();
    assert!(
        table.contains("OUTCOME") && table.contains("DURATION") && table.contains("succeeded"),
        "{table}"
    );

    // Pause: no new fires.
    let paused = sb
        .run(&["schedule", "pause", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(paused["paused"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = fired(&runs(&sb, s, &id).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        fired(&runs(&sb, s, &id).await),
        before,
        "a paused schedule does not fire"
    );
    let out = sb.run(&["schedule", "list", "--server", s]).await;
    assert!(out.ok().contains("paused"), "{out:#?}");

    // Resume: fires again.
    let out = sb.run(&["schedule", "resume", "tick", "--server", s]).await;
    assert!(out.ok().contains("active"), "{out:#?}");
    eventually(5, "a fire after resume", || async {
        (fired(&runs(&sb, s, &id).await) > before).then_some(())
    })
    .await;

    // Trigger: a run of its own.
    sb.run(&["schedule", "pause", &id, "--server", s])
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = fired(&runs(&sb, s, &id).await);
    let run = sb
        .run(&["schedule", "trigger", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(run["status"], "fired", "{run:#}");
    assert_eq!(run["job_ids"].as_array().map(Vec::len), Some(1), "{run:#}");
    let after = runs(&sb, s, &id).await;
    assert_eq!(fired(&after), before + 1, "trigger adds one run");
    assert!(after.iter().any(|r| r["fire_at"] == run["fire_at"]));
    let out = sb
        .run(&["schedule", "trigger", "tick", "--server", s])
        .await;
    assert!(out.ok().contains("fired"), "{out:#?}");

    // Delete.
    let gone = sb
        .run(&["schedule", "delete", "tick", "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(gone["name"], "tick");
    let out = sb.run(&["schedule", "show", &id, "--server", s]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
    assert!(out.stderr.contains("not found"), "{out:#?}");
    let out = sb.run(&["schedule", "show", "tick", "--server", s]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
    let list = sb
        .run(&["schedule", "list", "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(list["schedules"], Value::Array(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_usage_errors_naming_the_field() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();
    let create = |extra: &'static [&'static str]| {
        let mut args = vec!["schedule", "create", "bad", "--server", s];
        args.extend_from_slice(extra);
        args.extend(["--", "true"]);
        let sb = &sb;
        async move { sb.run(&args).await }
    };
    for (extra, field) in [
        (&["--cron", "* * *"][..], "(field: cron)"),
        (&["--cron", "61 * * * *"][..], "(field: cron)"),
        (
            &["--cron", "* * * * *", "--tz", "Mars/Olympus"][..],
            "(field: timezone)",
        ),
        (&["--every", "soon"][..], "(field: every)"),
        (
            &["--every", "1s", "--catch-up", "all:0"][..],
            "(field: catch_up.all.limit)",
        ),
        (
            &["--every", "1s", "--max-attempts", "0"][..],
            "max_attempts)",
        ),
    ] {
        let out = create(extra).await;
        assert_eq!(out.code(), 2, "{extra:?}: {out:#?}");
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains(field),
            "{extra:?}: {out:#?}"
        );
    }
    // Refused before any request.
    for extra in [
        &["--every", "1s", "--tz", "UTC"][..],
        &["--every", "1s", "--catch-up", "sometimes"][..],
        &["--every", "1s", "--policy", "never"][..],
        &["--cron", "* * * * *", "--every", "1s"][..],
        &[][..],
    ] {
        let out = create(extra).await;
        assert_eq!(out.code(), 2, "{extra:?}: {out:#?}");
    }
    // Nothing was created; a duplicate name is refused (exit 1).
    let list = sb
        .run(&["schedule", "list", "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(list["schedules"], Value::Array(vec![]));
    let ok = [
        "schedule",
        "create",
        "nightly",
        "--cron",
        "0 30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--policy",
        "alone",
        "--label",
        "k=v",
        "--server",
        s,
        "-o",
        "json",
        "--",
        "true",
    ];
    let v = sb.run(&ok).await.json();
    assert_eq!(v["timezone"], "Europe/Berlin");
    assert_eq!(v["policy"], "alone");
    assert_eq!(v["job"]["labels"]["k"], "v");
    let out = sb.run(&ok).await;
    assert_eq!(out.code(), 1, "{out:#?}");
}
