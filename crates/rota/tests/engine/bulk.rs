//! `Client::enqueue_all`: every chunk committed, duplicates counted, later
//! chunks claimed after earlier ones, and a failing chunk stops it with
//! exactly the requests that were not enqueued reported.

use rota::{BULK_CHUNK, Client, Config, EnqueueOpts, Error, JobRequest};
use serde_json::json;

use crate::common::{Db, fast_config};

async fn client(db: &Db) -> Client {
    db.builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap()
}

fn request(i: usize) -> JobRequest {
    JobRequest::raw("bulk", json!({ "i": i }), EnqueueOpts::default())
}

/// Every stored job, page by page.
async fn all_jobs(client: &Client) -> Vec<rota::Job> {
    let mut jobs = Vec::new();
    let mut before_id = None;
    loop {
        let page = client
            .list(rota::JobListParams {
                limit: rota::MAX_PAGE,
                before_id,
                ..Default::default()
            })
            .await
            .unwrap();
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => before_id = Some(next),
            None => return jobs,
        }
    }
}

async fn stored(client: &Client) -> i64 {
    client.counts().await.unwrap().iter().map(|c| c.count).sum()
}

#[tokio::test]
async fn every_chunk_commits_later_chunks_run_later_and_duplicates_are_counted() {
    let Some(db) = Db::new() else { return };
    let client = client(&db).await;
    let n = 2 * BULK_CHUNK + 345;
    // One held key, asked for again in the second chunk.
    let requests = (0..n).map(|i| {
        let opts = if i == 3 || i == BULK_CHUNK + 3 {
            EnqueueOpts::default().unique_key("once")
        } else {
            EnqueueOpts::default()
        };
        Ok::<_, Error>(JobRequest::raw("bulk", json!({ "i": i }), opts))
    });
    let done = client.enqueue_all(requests).await.unwrap();
    assert_eq!(done.inserted, n as u64 - 1);
    assert_eq!(done.duplicates, 1);
    assert_eq!(stored(&client).await, n as i64 - 1);
    // A later chunk's jobs run later: the first request's job has the
    // earliest run_at, the last one's the latest.
    let mut jobs = all_jobs(&client).await;
    let holder: Vec<i64> = jobs
        .iter()
        .filter(|j| j.unique_key.as_deref() == Some("once"))
        .map(|j| j.args["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        holder,
        [3],
        "the first request of a key in input order wins"
    );
    jobs.sort_by_key(|j| (j.run_at, j.id));
    let order: Vec<i64> = jobs.iter().map(|j| j.args["i"].as_i64().unwrap()).collect();
    let chunks: Vec<i64> = order.iter().map(|i| i / BULK_CHUNK as i64).collect();
    assert!(
        chunks.windows(2).all(|w| w[0] <= w[1]),
        "claim order follows the chunks"
    );
}

#[tokio::test]
async fn an_invalid_request_stops_it_after_the_chunks_before_its_own() {
    let Some(db) = Db::new() else { return };
    let client = client(&db).await;
    let bad = BULK_CHUNK + 7;
    let requests = (0..3 * BULK_CHUNK).map(|i| {
        Ok::<_, Error>(if i == bad {
            JobRequest::raw("bulk", json!({}), EnqueueOpts::default().queue("no spaces"))
        } else {
            request(i)
        })
    });
    let e = client.enqueue_all(requests).await.unwrap_err();
    assert_eq!(e.committed.inserted, BULK_CHUNK as u64);
    assert_eq!(e.failed.len(), 1);
    assert_eq!(e.failed[0], BULK_CHUNK..2 * BULK_CHUNK);
    assert_eq!(
        e.read,
        2 * BULK_CHUNK,
        "nothing after the failing chunk is read"
    );
    match e.source {
        Error::Invalid(v) => assert_eq!(v.field, format!("jobs[{bad}].queue")),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(stored(&client).await, BULK_CHUNK as i64);
}

#[tokio::test]
async fn an_error_from_the_input_stops_it_too() {
    let Some(db) = Db::new() else { return };
    let client = client(&db).await;
    let requests = (0..BULK_CHUNK + 10).map(|i| {
        if i == BULK_CHUNK + 1 {
            Err(Error::Lifecycle("the input ran dry"))
        } else {
            Ok(request(i))
        }
    });
    let e = client.enqueue_all(requests).await.unwrap_err();
    assert!(matches!(e.source, Error::Lifecycle(_)), "{e}");
    assert_eq!(e.committed.inserted, BULK_CHUNK as u64);
    assert_eq!(e.failed.len(), 1);
    assert_eq!(e.failed[0], BULK_CHUNK..BULK_CHUNK + 2);
    assert_eq!(e.read, BULK_CHUNK + 2);
    assert_eq!(stored(&client).await, BULK_CHUNK as i64);
    // Nothing at all is fine.
    let none = client
        .enqueue_all(std::iter::empty::<Result<JobRequest, Error>>())
        .await
        .unwrap();
    assert_eq!(none, rota::BulkEnqueued::default());
}

#[tokio::test]
async fn on_sqlite_the_ids_of_a_bulk_load_rise_in_input_order() {
    let Some(db) = Db::new() else { return };
    if !db.url().starts_with("sqlite") {
        // PostgreSQL's two chunks in flight take ids from one sequence
        // at once; their claim order still follows the chunks (above).
        return;
    }
    let client = client(&db).await;
    let n = 4 * BULK_CHUNK + 7;
    let done = client
        .enqueue_all((0..n).map(|i| Ok::<_, Error>(request(i))))
        .await
        .unwrap();
    assert_eq!(done.inserted, n as u64);
    let mut jobs = all_jobs(&client).await;
    jobs.sort_by_key(|j| j.id);
    let order: Vec<i64> = jobs.iter().map(|j| j.args["i"].as_i64().unwrap()).collect();
    assert_eq!(order, (0..n as i64).collect::<Vec<_>>());
}
