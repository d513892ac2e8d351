//! Bulk loading: any number of jobs, in chunks committed one after the
//! other, each chunk built while the store writes the previous one.

use std::collections::HashMap;

use rota_driver::InsertedJob;

use crate::client::Client;
use crate::enqueue::JobRequest;
use crate::error::{Error, Result};

/// Jobs per chunk of [`Client::enqueue_all`]: a commit per chunk costs
/// little against 5,000 rows, and building one chunk takes about as long
/// as the store takes to write the previous one.
pub const BULK_CHUNK: usize = 5_000;

/// What [`Client::enqueue_all`] committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkEnqueued {
    /// New jobs.
    pub inserted: u64,
    /// Requests not inserted because an unfinished job held their unique
    /// key.
    pub duplicates: u64,
}

impl BulkEnqueued {
    fn add(&mut self, other: BulkEnqueued) {
        self.inserted += other.inserted;
        self.duplicates += other.duplicates;
    }
}

/// [`Client::enqueue_all`] stopped at a chunk that failed: every chunk
/// before it is committed (counted in `committed`), nothing of it or after
/// it is.
#[derive(Debug, thiserror::Error)]
#[error(
    "bulk enqueue stopped after {} committed requests: {source}",
    .committed.inserted + .committed.duplicates
)]
pub struct BulkError {
    /// What the chunks before the failing one committed.
    pub committed: BulkEnqueued,
    /// Why the chunk failed (an invalid request names its position in
    /// the whole input, e.g. `jobs[12345].queue`).
    #[source]
    pub source: Error,
}

impl Client {
    /// Enqueues any number of jobs, the fastest way there is: in chunks of
    /// [`BULK_CHUNK`], each committed on its own, validating and building
    /// each chunk on this task while the store writes the previous one.
    ///
    /// Unlike [`enqueue_many`](Client::enqueue_many) the whole is not
    /// atomic: at the first chunk that fails (a request that does not
    /// validate, the store unavailable), it stops and reports what the
    /// chunks before it committed. Chunks are written in order, one at a
    /// time. Requests come from an iterator, so they need not all be in
    /// memory at once.
    ///
    /// ```no_run
    /// # async fn demo(client: rota::Client) -> Result<(), rota::BulkError> {
    /// use rota::{EnqueueOpts, JobRequest};
    /// let done = client
    ///     .enqueue_all((0..1_000_000).map(|i| {
    ///         Ok::<_, rota::Error>(JobRequest::raw(
    ///             "resize",
    ///             serde_json::json!({ "image": i }),
    ///             EnqueueOpts::default(),
    ///         ))
    ///     }))
    ///     .await?;
    /// println!("{} enqueued", done.inserted);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_all<I, E>(
        &self,
        requests: I,
    ) -> std::result::Result<BulkEnqueued, BulkError>
    where
        I: IntoIterator<Item = std::result::Result<JobRequest, E>>,
        E: Into<Error>,
    {
        let mut requests = requests.into_iter();
        let mut committed = BulkEnqueued::default();
        let mut writing: Option<tokio::task::JoinHandle<Result<BulkEnqueued>>> = None;
        let mut position = 0usize;
        loop {
            // Built while the previous chunk is being written.
            let built = self.next_chunk(&mut requests, position);
            if let Some(previous) = writing.take() {
                committed.add(
                    joined(previous)
                        .await
                        .map_err(|source| BulkError { committed, source })?,
                );
            }
            let params = built.map_err(|source| BulkError { committed, source })?;
            if params.is_empty() {
                return Ok(committed);
            }
            position += params.len();
            let driver = self.driver().clone();
            writing = Some(tokio::spawn(async move {
                Ok(tally(&driver.job_insert_many(params).await?))
            }));
        }
    }

    /// The next chunk's validated insert parameters (empty at the end);
    /// errors name the request's position in the whole input.
    fn next_chunk<E: Into<Error>>(
        &self,
        requests: &mut impl Iterator<Item = std::result::Result<JobRequest, E>>,
        position: usize,
    ) -> Result<Vec<rota_driver::JobInsertParams>> {
        let mut chunk = Vec::with_capacity(BULK_CHUNK);
        for request in requests.by_ref().take(BULK_CHUNK) {
            chunk.push(request.map_err(Into::into)?);
        }
        self.insert_params_at(chunk, Some(position))
    }
}

/// Waits for a chunk's write; a panicked or cancelled task is an error.
async fn joined(task: tokio::task::JoinHandle<Result<BulkEnqueued>>) -> Result<BulkEnqueued> {
    task.await
        .map_err(|_| Error::Lifecycle("a bulk enqueue chunk's task ended without an answer"))?
}

/// Counts what an insert did, and the enqueue metric once per queue.
pub(crate) fn tally(inserted: &[InsertedJob]) -> BulkEnqueued {
    let mut per_queue: HashMap<&str, u64> = HashMap::new();
    let mut done = BulkEnqueued::default();
    for j in inserted {
        if j.inserted {
            done.inserted += 1;
            *per_queue.entry(j.job.queue.as_str()).or_default() += 1;
        } else {
            done.duplicates += 1;
        }
    }
    for (queue, n) in per_queue {
        metrics::counter!("rota_jobs_enqueued_total", "queue" => queue.to_owned()).increment(n);
    }
    done
}
