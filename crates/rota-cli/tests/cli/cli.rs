//! The CLI surface: JSON output, colours, exit codes, completions,
//! migrations.

use crate::common::{Sandbox, free_port, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_everywhere() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();
    let job = sb
        .run(&[
            "job", "submit", "--server", s, "-o", "json", "--attr", "team=a", "--", "echo", "hi",
        ])
        .await
        .json();
    assert_eq!(job["kind"], "shell");
    assert_eq!(job["args"]["command"][0], "echo");
    assert_eq!(job["attributes"]["team"], "a");
    let id = job["id"].to_string();
    let waited = sb
        .run(&["job", "wait", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(waited[0]["state"], "succeeded");
    let logs = sb
        .run(&["job", "logs", &id, "--server", s, "-o", "json"])
        .await
        .json();
    assert_eq!(logs["output"], "hi\n");
    let list = sb
        .run(&[
            "job",
            "list",
            "--server",
            s,
            "--attr",
            "team=a",
            "--state",
            "succeeded",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    for args in [
        vec!["queue", "list", "--server", s, "-o", "json"],
        vec!["node", "list", "--server", s, "-o", "json"],
        vec!["job", "show", &id, "--server", s, "-o", "json"],
    ] {
        let v = sb.run(&args).await.json();
        assert!(v.is_object(), "{args:?}: {v}");
    }
    let db = sb.db();
    assert!(
        sb.run(&["key", "list", "--database", &db, "-o", "json"])
            .await
            .json()["keys"]
            .is_array()
    );
    assert!(
        sb.run(&["migrate", "status", "--database", &db, "-o", "json"])
            .await
            .json()
            .is_array()
    );

    // --wait with -o json: one document with the job and its output.
    let done = sb
        .run(&[
            "job", "submit", "--server", s, "--wait", "-o", "json", "--", "echo", "there",
        ])
        .await
        .json();
    assert_eq!(done["job"]["state"], "succeeded");
    assert_eq!(done["output"], "there\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_follows_flags_and_no_color() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();
    sb.run(&["job", "submit", "--server", s, "--wait", "--", "true"])
        .await
        .ok();
    let list = |color: Option<&'static str>, env: &'static [(&'static str, &'static str)]| {
        let mut args = vec!["job", "list", "--server", s];
        if let Some(c) = color {
            args.extend(["--color", c]);
        }
        let mut c = sb.cmd(&args);
        for (k, v) in env {
            c.env(k, v);
        }
        let sb = &sb;
        async move { sb.run_cmd(c).await.ok().to_owned() }
    };
    let esc = "\u{1b}[";
    assert!(
        !list(None, &[]).await.contains(esc),
        "no colour into a pipe"
    );
    assert!(list(Some("always"), &[]).await.contains(esc));
    assert!(list(None, &[("CLICOLOR_FORCE", "1")]).await.contains(esc));
    assert!(
        !list(None, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
            .await
            .contains(esc),
        "NO_COLOR wins"
    );
    assert!(
        !list(Some("never"), &[("CLICOLOR_FORCE", "1")])
            .await
            .contains(esc)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_as_documented() {
    let sb = Sandbox::new();
    let server = sb.server(&[]).await;
    let s = server.url.as_str();

    // 2: usage and invalid input.
    assert_eq!(sb.run(&["job", "submit", "--server", s]).await.code(), 2);
    assert_eq!(sb.run(&["jobz"]).await.code(), 2);
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            s,
            "--max-attempts",
            "0",
            "--",
            "true",
        ])
        .await;
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr.contains("error: ") && out.stderr.contains("(field: max_attempts)"),
        "{out:#?}"
    );
    let out = sb
        .run(&["job", "submit", "--server", s, "--in", "soon", "--", "true"])
        .await;
    assert_eq!(out.code(), 2, "{out:#?}");
    assert!(out.stderr.contains("(field: delay)"), "{out:#?}");
    let out = sb
        .run(&[
            "job", "submit", "--server", s, "--env", "1BAD=x", "--", "true",
        ])
        .await;
    assert_eq!(out.code(), 2, "{out:#?}");
    assert!(
        out.stderr.contains("(field: args.env"),
        "shell args are checked up front: {out:#?}"
    );

    // 1: a failed job, an unknown id, an illegal state change.
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            s,
            "--wait",
            "--max-attempts",
            "1",
            "--",
            "sh",
            "-c",
            "echo boom; exit 7",
        ])
        .await;
    assert_eq!(out.code(), 1, "{out:#?}");
    assert!(out.stdout.contains("boom"), "{out:#?}");
    assert!(out.stderr.contains("exit code 7"), "{out:#?}");
    let out = sb.run(&["job", "show", "999", "--server", s]).await;
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("job 999 not found"), "{out:#?}");

    // 4: gave up waiting (the job goes on; then 409 on deleting it, 1).
    let out = sb
        .run(&[
            "job",
            "submit",
            "--server",
            s,
            "--wait",
            "--wait-timeout",
            "1s",
            "--",
            "sleep",
            "30.789",
        ])
        .await;
    assert_eq!(out.code(), 4, "{out:#?}");
    let out = sb.run(&["job", "delete", "2", "--server", s]).await;
    assert_eq!(out.code(), 1, "{out:#?}");
    assert_eq!(show(&sb, s, "2").await["state"], "running");
    sb.run(&["job", "cancel", "2", "--server", s]).await.ok();
    let out = sb
        .run(&["job", "wait", "2", "--server", s, "--timeout", "30s"])
        .await;
    assert_eq!(out.code(), 3, "{out:#?}");

    // 5: nobody there.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = sb.run(&["job", "list", "--server", &nobody]).await;
    assert_eq!(out.code(), 5, "{out:#?}");
    assert!(out.stderr.contains("cannot reach"), "{out:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_migrations() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.run(&["completions", shell]).await;
        assert!(out.ok().contains("rota"), "{shell}");
    }
    let db = sb.db();
    let status = sb
        .run(&["migrate", "status", "--database", &db, "-o", "json"])
        .await
        .json();
    let pending = status.as_array().unwrap();
    assert!(!pending.is_empty());
    assert!(
        pending.iter().all(|m| m["applied_at"].is_null()),
        "status changes nothing: {status}"
    );
    sb.run(&["migrate", "--database", &db]).await.ok();
    let status = sb
        .run(&["migrate", "status", "--database", &db, "-o", "json"])
        .await
        .json();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m["applied_at"].is_null()),
        "{status}"
    );
}
