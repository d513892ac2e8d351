//! Bulk loading: any number of jobs, in chunks that are each committed on
//! their own, built on the caller's task while the store writes earlier
//! ones.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use rota_driver::InsertedJob;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::enqueue::JobRequest;
use crate::error::{Error, Result};

/// Jobs per chunk of [`Client::enqueue_all`]: a commit per chunk costs
/// little against 5,000 rows, and building one chunk takes less time than
/// the store takes to write one.
pub const BULK_CHUNK: usize = 5_000;

/// Chunks [`Client::enqueue_all`] has the store write at once. Two: on
/// PostgreSQL one `COPY` keeps one server process busy, and a second
/// connection writing the next chunk raised a 2-core machine's bulk rate
/// by ~48 % (a third added ~3 %); SQLite's single writer takes them one
/// after the other either way.
pub const BULK_IN_FLIGHT: usize = 2;

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

/// [`Client::enqueue_all`] stopped at a chunk that failed. Of the requests
/// it read (`read`, from the start of the input), those at the positions
/// in `failed` were not enqueued and every other one was.
#[derive(Debug, thiserror::Error)]
#[error(
    "bulk enqueue stopped: {} of the first {read} requests committed, {failed:?} not: {source}",
    .committed.inserted + .committed.duplicates
)]
pub struct BulkError {
    /// What the chunks that committed did.
    pub committed: BulkEnqueued,
    /// Positions of the requests not enqueued, in order: the failing
    /// chunk, any chunk written alongside it that failed too, and a chunk
    /// read but not sent because of the failure.
    pub failed: Vec<Range<usize>>,
    /// Requests read from the input; none after them was.
    pub read: usize,
    /// Why the first of the `failed` chunks failed (an invalid request
    /// names its position in the whole input, e.g. `jobs[12345].queue`).
    #[source]
    pub source: Error,
}

/// A chunk the store is writing: its positions, whether it must be
/// written alone, and its task.
struct Writing {
    positions: Range<usize>,
    exclusive: bool,
    task: JoinHandle<Result<BulkEnqueued>>,
}

impl Client {
    /// Enqueues any number of jobs, the fastest way there is: in chunks of
    /// [`BULK_CHUNK`], each committed on its own, [`BULK_IN_FLIGHT`] of
    /// them written at once while this task validates and builds the
    /// next. Requests come from an iterator, so they need not all be in
    /// memory at once.
    ///
    /// Unlike [`enqueue_many`](Client::enqueue_many) the whole is not
    /// atomic. At the first chunk that fails (a request that does not
    /// validate, an error from the input, the store unavailable) it reads
    /// and sends no more chunks, waits for the ones being written, and
    /// returns which requests were enqueued ([`BulkError`]). A later
    /// chunk's jobs get a later default `run_at` than an earlier one's, so
    /// they are claimed after them. Chunks reach the store in input order
    /// (on SQLite ids therefore rise in input order; on PostgreSQL the ids
    /// of two chunks written at once may interleave). A chunk holding
    /// unique keys is written alone, so the
    /// first request of a key in input order is the one inserted.
    ///
    /// Dropping the returned future stops reading, but chunks already
    /// sent to the store may still commit.
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
        // Fused: after the end, never read again.
        let mut requests = requests.into_iter().fuse();
        let mut outcome = Outcome::default();
        let mut writing: VecDeque<Writing> = VecDeque::with_capacity(BULK_IN_FLIGHT);
        // Fires when the last chunk sent has taken its first step.
        let mut previous_started: Option<tokio::sync::oneshot::Receiver<()>> = None;
        loop {
            // Built while the chunks in `writing` are being written.
            let start = outcome.read;
            let (read, built) = self.next_chunk(&mut requests, start);
            outcome.read += read;
            let positions = start..start + read;
            let params = match built {
                Ok(params) if !params.is_empty() => params,
                Ok(_) => return outcome.finish(writing).await,
                Err(e) => {
                    outcome.failed.push((positions, e));
                    return outcome.finish(writing).await;
                }
            };
            // A chunk with unique keys is written alone: two chunks
            // holding the same keys in opposite orders could deadlock on
            // PostgreSQL, and input order decides which request of a key
            // is the duplicate.
            let exclusive = params.iter().any(|p| p.unique_key.is_some());
            let room = if exclusive || writing.iter().any(|w| w.exclusive) {
                1
            } else {
                BULK_IN_FLIGHT
            };
            // Chunks already done are collected first, so a failure stops
            // this one from being sent.
            while let Some(at) = writing
                .iter()
                .position(|w| w.task.is_finished() || writing.len() >= room)
            {
                if let Some(done) = writing.remove(at) {
                    outcome.wait(done).await;
                }
            }
            if outcome.failing() {
                outcome.failed.push((
                    positions,
                    Error::Lifecycle("not sent: an earlier chunk failed"),
                ));
                return outcome.finish(writing).await;
            }
            let driver = self.driver().clone();
            let (started, next) = tokio::sync::oneshot::channel();
            let previous = previous_started.replace(next);
            writing.push_back(Writing {
                positions,
                exclusive,
                task: tokio::spawn(async move {
                    // Chunks reach the store in input order: after the
                    // previous chunk's first step. On SQLite that step
                    // builds the statements and queues them for the
                    // writer, so ids rise in input order, and the claim
                    // index (ordered by `run_at`, one per chunk) is only
                    // ever appended to (inserting a chunk before the one
                    // written ahead of it cost ~1.5k instructions per row).
                    if let Some(previous) = previous {
                        let _ = previous.await;
                    }
                    let mut insert = std::pin::pin!(driver.job_insert_many(params));
                    let first =
                        std::future::poll_fn(|cx| std::task::Poll::Ready(insert.as_mut().poll(cx)))
                            .await;
                    let _ = started.send(());
                    let inserted = match first {
                        std::task::Poll::Ready(r) => r?,
                        std::task::Poll::Pending => insert.await?,
                    };
                    Ok(tally(&inserted))
                }),
            });
        }
    }

    /// Reads and validates the next chunk, starting at position `start`:
    /// how many requests it read, and their insert parameters (empty at
    /// the end). Errors name the request's position in the whole input.
    fn next_chunk<E: Into<Error>>(
        &self,
        requests: &mut impl Iterator<Item = std::result::Result<JobRequest, E>>,
        start: usize,
    ) -> (usize, Result<Vec<rota_driver::JobInsertParams>>) {
        let mut chunk = Vec::with_capacity(BULK_CHUNK);
        for request in requests.by_ref().take(BULK_CHUNK) {
            match request {
                Ok(r) => chunk.push(r),
                Err(e) => return (chunk.len() + 1, Err(e.into())),
            }
        }
        let read = chunk.len();
        (read, self.insert_params_at(chunk, Some(start)))
    }
}

/// What [`Client::enqueue_all`] has done so far.
#[derive(Default)]
struct Outcome {
    committed: BulkEnqueued,
    read: usize,
    /// The chunks that failed, with why.
    failed: Vec<(Range<usize>, Error)>,
}

impl Outcome {
    fn failing(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Waits for one chunk's write; a panicked or cancelled task is an
    /// error like the store's.
    async fn wait(&mut self, chunk: Writing) {
        match chunk.task.await {
            Ok(Ok(done)) => self.committed.add(done),
            Ok(Err(e)) => self.failed.push((chunk.positions, e)),
            Err(_) => self.failed.push((
                chunk.positions,
                Error::Lifecycle("a bulk enqueue chunk's task ended without an answer"),
            )),
        }
    }

    /// Waits for every chunk still being written, then reports.
    async fn finish(
        mut self,
        writing: VecDeque<Writing>,
    ) -> std::result::Result<BulkEnqueued, BulkError> {
        for chunk in writing {
            self.wait(chunk).await;
        }
        self.failed.sort_by_key(|(positions, _)| positions.start);
        let mut failed = self.failed.into_iter();
        let Some((first, source)) = failed.next() else {
            return Ok(self.committed);
        };
        Err(BulkError {
            committed: self.committed,
            failed: std::iter::once(first)
                .chain(failed.map(|(positions, _)| positions))
                .collect(),
            read: self.read,
            source,
        })
    }
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
