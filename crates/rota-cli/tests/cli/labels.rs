//! Two worker processes on one SQLite file with different labels: a job
//! with a label selector runs only on the matching node; drain stops a
//! node claiming.

use std::time::Duration;

use crate::common::{Sandbox, eventually, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_jobs_run_only_on_matching_nodes() {
    let sb = Sandbox::new();
    // The server works no queue: only the workers run jobs.
    let server = sb.server(&["--queues", ""]).await;
    let url = server.url.clone();
    let common = ["--allow-shell", "--lease", "4s", "--queues", "default=4"];
    let mut us_args = vec!["--labels", "region=us", "--node-id", "node-us"];
    us_args.extend(common);
    let mut eu_args = vec!["--labels", "region=eu,gpu=true", "--node-id", "node-eu"];
    eu_args.extend(common);
    let us = sb.worker("us", &us_args);
    let eu = sb.worker("eu", &eu_args);

    eventually(30, "both workers registered", || async {
        let nodes = sb
            .run(&["node", "list", "--server", &url, "-o", "json"])
            .await
            .json();
        let ids: Vec<String> = nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_owned))
            .collect();
        (ids.contains(&"node-us".to_owned()) && ids.contains(&"node-eu".to_owned())).then_some(())
    })
    .await;
    assert_eq!(
        eu.stdout_text().trim(),
        "node-eu",
        "a worker prints its node id"
    );

    let mut ids = Vec::new();
    for _ in 0..6 {
        let out = sb
            .run(&[
                "job",
                "submit",
                "--server",
                &url,
                "--label",
                "region=eu",
                "--",
                "true",
            ])
            .await;
        ids.push(out.ok().trim().to_owned());
    }
    let nowhere = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &url,
            "--label",
            "region=ap",
            "--",
            "true",
        ])
        .await;
    let nowhere = nowhere.ok().trim().to_owned();

    let mut wait = vec!["job", "wait", "--server", &url, "--timeout", "60s"];
    wait.extend(ids.iter().map(String::as_str));
    let out = sb.run(&wait).await;
    assert_eq!(
        out.code(),
        0,
        "{out:#?}\nus: {}\neu: {}",
        us.log_text(),
        eu.log_text()
    );
    for id in &ids {
        let job = show(&sb, &url, id).await;
        assert_eq!(job["node"], "node-eu", "{job:#}");
        assert_eq!(job["labels"]["region"], "eu");
    }
    // No node is labelled region=ap: that job waits.
    assert_eq!(show(&sb, &url, &nowhere).await["state"], "available");

    // Drained, the eu node claims nothing new (it learns of the drain at
    // its next heartbeat, a second with this lease).
    let out = sb
        .run(&["node", "drain", "node-eu", "--server", &url])
        .await;
    assert!(out.ok().contains("draining"), "{out:#?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = sb
        .run(&[
            "job",
            "submit",
            "--server",
            &url,
            "--label",
            "region=eu",
            "--",
            "true",
        ])
        .await;
    let late = late.ok().trim().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(show(&sb, &url, &late).await["state"], "available");
    let nodes = sb.run(&["node", "list", "--server", &url]).await;
    assert!(nodes.ok().contains("draining"), "{nodes:#?}");
}
