//! Bad input returns a typed error naming the field, and writes nothing.

use std::time::Duration;

use rota::{Config, EnqueueOpts, Error, JobArgs, JobListParams, JobRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{Db, fast_config};

#[derive(Serialize, Deserialize)]
struct Noop;
impl JobArgs for Noop {
    const KIND: &'static str = "noop";
}

fn field(e: Error) -> String {
    match e {
        Error::Invalid(v) => v.field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_jobs_are_rejected_and_write_nothing() {
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let cases: Vec<(JobRequest, &str)> = vec![
        (
            JobRequest::raw("", json!({}), EnqueueOpts::default()),
            "kind",
        ),
        (
            JobRequest::raw("k", json!({}), EnqueueOpts::default().max_attempts(0)),
            "max_attempts",
        ),
        (
            JobRequest::raw(
                "k",
                json!({}),
                EnqueueOpts::default().timeout(Duration::ZERO),
            ),
            "timeout",
        ),
        (
            JobRequest::raw("k", json!({}), EnqueueOpts::default().queue("no spaces")),
            "queue",
        ),
        (
            JobRequest::raw("k", json!({}), EnqueueOpts::default().priority(42)),
            "priority",
        ),
        (
            JobRequest::raw("k", json!({"s": "nul\u{0}"}), EnqueueOpts::default()),
            "args",
        ),
    ];
    for (req, want) in cases {
        let got = field(client.enqueue_many(vec![req]).await.unwrap_err());
        assert_eq!(got, want);
    }
    // One bad job in a batch rejects the whole batch, naming its index.
    let batch = vec![
        JobRequest::new(&Noop, EnqueueOpts::default()).unwrap(),
        JobRequest::raw("k", json!({}), EnqueueOpts::default().max_attempts(0)),
    ];
    assert_eq!(
        field(client.enqueue_many(batch).await.unwrap_err()),
        "jobs[1].max_attempts"
    );
    let all = client
        .list(JobListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        all.jobs.is_empty(),
        "nothing may be written: {:?}",
        all.jobs
    );
    assert_eq!(
        field(
            client
                .list(JobListParams {
                    limit: 0,
                    ..Default::default()
                })
                .await
                .unwrap_err()
        ),
        "limit"
    );
    assert_eq!(
        field(client.pause_queue("bad queue!").await.unwrap_err()),
        "queue"
    );
}

#[tokio::test]
async fn bad_settings_are_rejected_at_build() {
    let Some(db) = Db::new() else { return };
    let cases: Vec<(Config, &str)> = vec![
        (fast_config().queue("q", 0), "queues.q.concurrency"),
        (fast_config().queue("bad name", 1), "queue"),
        (fast_config().queue("q", 1).queue("q", 1), "queues.q"),
        (
            Config {
                lease: Duration::ZERO,
                ..fast_config()
            },
            "lease",
        ),
        (
            Config {
                default_max_attempts: 0,
                ..fast_config()
            },
            "default_max_attempts",
        ),
    ];
    for (cfg, want) in cases {
        let e = db.builder().await.config(cfg).build().unwrap_err();
        assert_eq!(field(e), want);
    }
    // Queues without any worker make no sense.
    let e = db
        .builder()
        .await
        .config(fast_config().queue("q", 1))
        .build()
        .unwrap_err();
    assert_eq!(field(e), "workers");
}

struct NoopWorker;

#[async_trait::async_trait]
impl rota::Worker for NoopWorker {
    type Args = Noop;
    async fn work(&self, _: &rota::JobContext, _: Noop) -> rota::JobResult {
        Ok(rota::JobOutcome::Done)
    }
}

/// An engine does not run on a store with pending migrations: this build
/// relies on its schema (on SQLite an older one would count every state
/// change twice). Once migrated, the same store starts.
#[tokio::test]
async fn a_store_with_pending_migrations_is_refused_at_start() {
    let Some(db) = Db::new() else { return };
    let store = rota::Store::open_with(&db.url(), false).await.unwrap();
    let client = rota::Client::builder(store)
        .config(fast_config().queue("q", 1))
        .worker(NoopWorker)
        .build()
        .unwrap();
    let e = client.start().await.unwrap_err();
    assert!(
        matches!(e, Error::Store(_)) && e.to_string().contains("pending migration"),
        "{e}"
    );
    client.driver().migrate().await.unwrap();
    client.start().await.unwrap();
    client.shutdown(Duration::from_secs(1)).await.unwrap();
}
