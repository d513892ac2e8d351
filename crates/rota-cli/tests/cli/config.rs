//! Settings precedence (defaults < file < env < flags) and errors that
//! name the source of a bad value.

use crate::common::{Sandbox, free_port};

/// `job list` against a server nobody runs: the error names the URL used.
async fn unreachable_url(sb: &Sandbox, env: Option<&str>, flag: Option<&str>) -> String {
    let mut args = vec!["job", "list", "--config", "rota.toml"];
    if let Some(f) = flag {
        args.extend(["--server", f]);
    }
    let mut c = sb.cmd(&args);
    if let Some(e) = env {
        c.env("ROTA_SERVER", e);
    }
    let out = sb.run_cmd(c).await;
    assert_eq!(out.code(), 5, "unreachable exits 5: {out:#?}");
    out.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_then_env_then_flag() {
    let sb = Sandbox::new();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    std::fs::write(
        sb.path().join("rota.toml"),
        format!("server = \"http://127.0.0.1:{p1}\"\n"),
    )
    .unwrap();
    let u2 = format!("127.0.0.1:{p2}");
    let u3 = format!("http://127.0.0.1:{p3}");
    assert!(
        unreachable_url(&sb, None, None)
            .await
            .contains(&format!(":{p1}"))
    );
    assert!(
        unreachable_url(&sb, Some(&u2), None)
            .await
            .contains(&format!(":{p2}"))
    );
    assert!(
        unreachable_url(&sb, Some(&u2), Some(&u3))
            .await
            .contains(&format!(":{p3}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_listens_where_the_top_layer_says() {
    let sb = Sandbox::new();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    std::fs::write(
        sb.path().join("server.toml"),
        format!(
            "listen = \"127.0.0.1:{p1}\"\nqueues = {{ default = 2 }}\nshutdown_grace = \"2s\"\n"
        ),
    )
    .unwrap();
    let l3 = format!("127.0.0.1:{p3}");
    let server = {
        // ROTA_CONFIG names the file, ROTA_LISTEN overrides it, --listen wins.
        let db = sb.db();
        let mut cmd = sb.cmd(&["server", "--listen", &l3, "--database", &db]);
        cmd.env("ROTA_CONFIG", sb.path().join("server.toml"))
            .env("ROTA_LISTEN", format!("127.0.0.1:{p2}"))
            .stderr(std::process::Stdio::null());
        cmd.spawn().unwrap()
    };
    let http = reqwest::Client::new();
    let ok = crate::common::eventually(30, "the server on the flag's port", || async {
        http.get(format!("http://127.0.0.1:{p3}/healthz"))
            .send()
            .await
            .ok()
            .map(|r| r.status())
    })
    .await;
    assert_eq!(ok, 200);
    for p in [p1, p2] {
        assert!(
            http.get(format!("http://127.0.0.1:{p}/healthz"))
                .send()
                .await
                .is_err(),
            "nothing on {p}"
        );
    }
    // The file's queues reached the node.
    let nodes = sb
        .run(&["node", "list", "--server", &l3, "-o", "json"])
        .await
        .json();
    assert_eq!(nodes["nodes"][0]["queues"]["default"], 2, "{nodes:#}");
    drop(server); // kill_on_drop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_name_their_source() {
    let sb = Sandbox::new();
    let db = sb.db();
    let mut c = sb.cmd(&["server", "--database", &db]);
    c.env("ROTA_LISTEN", "x");
    let out = sb.run_cmd(c).await;
    assert_eq!(out.code(), 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("invalid listen address \"x\" from environment variable ROTA_LISTEN"),
        "{out:#?}"
    );

    let out = sb
        .run(&["server", "--database", &db, "--listen", "nope"])
        .await;
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("from flag --listen"), "{out:#?}");

    std::fs::write(sb.path().join("bad.toml"), "shutdown_grace = \"soon\"\n").unwrap();
    let out = sb
        .run(&["worker", "--config", "bad.toml", "--database", &db])
        .await;
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr
            .contains("invalid shutdown grace \"soon\" from config file"),
        "{out:#?}"
    );

    std::fs::write(sb.path().join("typo.toml"), "listn = \"127.0.0.1:1\"\n").unwrap();
    let out = sb.run(&["job", "list", "--config", "typo.toml"]).await;
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("unknown key \"listn\""), "{out:#?}");

    let mut c = sb.cmd(&["worker", "--database", &db]);
    c.env("ROTA_QUEUES", "default=lots");
    let out = sb.run_cmd(c).await;
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr.contains("environment variable ROTA_QUEUES"),
        "{out:#?}"
    );

    let out = sb.run(&["job", "list", "--server", "ftp://x"]).await;
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("flag --server"), "{out:#?}");
}
