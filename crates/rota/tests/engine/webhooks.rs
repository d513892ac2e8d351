//! Webhooks against a real receiver: every status change delivered, signed,
//! with increasing revisions; a receiver down for 10 s gets everything once
//! it is back. Also in-process job status hooks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use rota::{
    BackoffPolicy, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, JobState,
    JobStatusEvent, WebhookRequest, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

const SECRET: &str = "a-very-secret-signing-key";

#[derive(Serialize, Deserialize)]
struct Ping;
impl JobArgs for Ping {
    const KIND: &'static str = "ping";
}

struct Pong;

#[async_trait::async_trait]
impl Worker for Pong {
    type Args = Ping;
    async fn work(&self, ctx: &JobContext, _: Ping) -> JobResult {
        ctx.checkin(serde_json::json!({"half": true}))
            .await
            .map_err(rota::JobError::retry)?;
        Ok(JobOutcome::Done)
    }
}

#[derive(Clone, Default)]
struct Receiver {
    down: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
    bad_signatures: Arc<Mutex<u32>>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if r.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let sig = headers
        .get("rota-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = jiff::Timestamp::now().as_second();
    if !rota::verify_webhook(SECRET, sig, &body, now, Duration::from_secs(300)) {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        headers
            .get("rota-revision")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Some(v["revision"].to_string())
    );
    r.got.lock().unwrap().push(v);
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), r)
}

/// Job ids → revisions received, for `job.succeeded` checks.
fn per_job(got: &[serde_json::Value]) -> BTreeMap<i64, Vec<(i64, String)>> {
    let mut m: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for v in got.iter().filter(|v| v["entity"] == "job") {
        m.entry(v["id"].as_i64().unwrap()).or_default().push((
            v["revision"].as_i64().unwrap(),
            v["status"].as_str().unwrap().to_owned(),
        ));
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_delivered_signed_in_revision_order_even_after_downtime() {
    let Some(db) = Db::new() else { return };
    let (url, receiver) = start_receiver().await;
    let local: Arc<Mutex<Vec<JobStatusEvent>>> = Arc::default();
    let l = local.clone();
    let client = db
        .builder()
        .await
        .config(Config {
            webhook_interval: Duration::from_millis(50),
            webhook_backoff: BackoffPolicy {
                initial_interval: Duration::from_millis(200),
                multiplier: 2.0,
                max_interval: Duration::from_secs(2),
                jitter: 0.0,
                max_attempts: 100,
                reset_interval: None,
            },
            ..fast_config().queue("default", 4)
        })
        .worker(Pong)
        .on_job_status(
            Some("ping"),
            Arc::new(move |e: &JobStatusEvent| l.lock().unwrap().push(e.clone())),
        )
        .on_job_status(
            None,
            Arc::new(|_: &JobStatusEvent| panic!("a failing hook never loses the change")),
        )
        .build()
        .unwrap();
    client
        .create_webhook(WebhookRequest {
            url: url.clone(),
            events: vec!["job.*".into()],
            kinds: vec![],
            owner_kinds: vec![],
            secret: SECRET.into(),
        })
        .await
        .unwrap();
    client.start().await.unwrap();

    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            client
                .enqueue(&Ping, EnqueueOpts::default())
                .await
                .unwrap()
                .job
                .id,
        );
    }
    for id in &ids {
        assert_eq!(
            client
                .wait(*id, Duration::from_secs(10))
                .await
                .unwrap()
                .state,
            JobState::Succeeded
        );
    }
    // Receiver down for 10 s while more jobs run.
    receiver.down.store(true, Ordering::SeqCst);
    let mut late = Vec::new();
    for _ in 0..10 {
        late.push(
            client
                .enqueue(&Ping, EnqueueOpts::default())
                .await
                .unwrap()
                .job
                .id,
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    receiver.down.store(false, Ordering::SeqCst);
    ids.extend(&late);

    let all_in = eventually(Duration::from_secs(30), || async {
        let m = per_job(&receiver.got.lock().unwrap());
        ids.iter().all(|id| {
            m.get(id)
                .is_some_and(|v| v.iter().any(|(_, s)| s == "succeeded"))
        })
    })
    .await;
    assert!(all_in, "not every job's success was delivered");
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    let m = per_job(&receiver.got.lock().unwrap());
    for id in &ids {
        let events = &m[id];
        // Each status change has its own revision, delivered once; a
        // progress check-in is not a status change and carries the current
        // one.
        let changes: Vec<i64> = events
            .iter()
            .filter(|(_, s)| s != "progress")
            .map(|(r, _)| *r)
            .collect();
        let revs: BTreeSet<i64> = changes.iter().copied().collect();
        assert_eq!(
            revs.len(),
            changes.len(),
            "job {id}: each revision delivered once: {events:?}"
        );
        // Every change: inserted (available), running, progress, succeeded.
        let statuses: BTreeSet<&str> = events.iter().map(|(_, s)| s.as_str()).collect();
        for s in ["available", "running", "progress", "succeeded"] {
            assert!(statuses.contains(s), "job {id} missing {s}: {events:?}");
        }
        // The final state carries the highest state revision.
        let succeeded = events.iter().find(|(_, s)| s == "succeeded").unwrap().0;
        let running = events.iter().find(|(_, s)| s == "running").unwrap().0;
        assert!(succeeded > running, "revisions increase: {events:?}");
    }
    let hooks = client.webhooks().await.unwrap();
    let deliveries = client
        .webhook_deliveries(hooks[0].id, None, 1000)
        .await
        .unwrap();
    assert!(
        deliveries.iter().any(|d| d.attempts > 1),
        "the downtime forced retries"
    );

    // In-process hooks saw claims, progress and successes of this process.
    let local = local.lock().unwrap().clone();
    for id in ids {
        assert!(
            local
                .iter()
                .any(|e| e.job_id == id && e.state == JobState::Succeeded)
        );
        assert!(local.iter().any(|e| e.job_id == id && e.progress.is_some()));
    }
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
