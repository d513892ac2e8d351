//! The measured phases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota::{
    BULK_CHUNK, BULK_IN_FLIGHT, Client, Config, EnqueueOpts, JobArgs, JobContext, JobListParams,
    JobOutcome, JobRequest, JobResult, JobState, Store, Worker,
};
use serde::{Deserialize, Serialize};

use crate::baseline::Baseline;
use crate::fresh::FreshStore;
use crate::machine::{Machine, rss_mib};
use crate::report::{BenchReport, Latency, Phase, Rss};
use crate::{BenchError, BenchOptions, PhaseKind};

const Q_BULK: &str = "bench_process";
const Q_SINGLE: &str = "bench_single";
const Q_LATENCY: &str = "bench_latency";
const Q_HISTORY: &str = "bench_history";
/// Turns Rota's single-enqueue loop and the raw loop take (see `single`).
const SINGLE_ROUNDS: u64 = 10;

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl JobArgs for Noop {
    const KIND: &'static str = "bench_noop";
}

/// Does nothing; counts runs and optionally records when each job started.
struct NoopWorker(Option<Arc<Mutex<HashMap<i64, Instant>>>>, Arc<AtomicU64>);

#[rota::async_trait]
impl Worker for NoopWorker {
    type Args = Noop;
    async fn work(&self, ctx: &JobContext, _: Noop) -> JobResult {
        self.1.fetch_add(1, Ordering::Relaxed);
        if let Some(starts) = &self.0 {
            let now = Instant::now();
            if let Ok(mut s) = starts.lock() {
                s.insert(ctx.id(), now);
            }
        }
        Ok(JobOutcome::Done)
    }
}

/// No-op requests `range` for `queue`, built as they are consumed.
fn requests(
    queue: &str,
    range: std::ops::Range<u64>,
) -> impl Iterator<Item = Result<JobRequest, serde_json::Error>> + '_ {
    range.map(move |n| JobRequest::new(&Noop { n }, EnqueueOpts::default().queue(queue)))
}

fn rate(jobs: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| jobs as f64 / secs)
}

async fn count(client: &Client, queue: &str, state: Option<JobState>) -> Result<i64, BenchError> {
    Ok(client
        .counts()
        .await?
        .iter()
        .filter(|c| c.queue == queue && state.is_none_or(|s| c.state == s))
        .map(|c| c.count)
        .sum())
}

/// Whether `queue` still holds a running job: asked once every handler has
/// run, when the only unfinished jobs left are those whose results are
/// still being written (a no-op handler never fails; the exact succeeded
/// count checked afterwards catches any that did). One state, so the
/// question is answered from the store's index of running jobs where it
/// has one, not by a scan of the history inside the timing.
async fn has_running(client: &Client, queue: &str) -> Result<bool, BenchError> {
    let page = client
        .list(JobListParams {
            queue: Some(queue.to_owned()),
            states: vec![JobState::Running],
            limit: 1,
            ..JobListParams::default()
        })
        .await?;
    Ok(!page.jobs.is_empty())
}

fn plain_client(store: Store) -> Result<Client, BenchError> {
    Ok(Client::builder(store)
        .config(Config {
            maintenance: false,
            ..Config::default()
        })
        .build()?)
}

pub(crate) async fn run_all(
    opts: &BenchOptions,
    fresh: &FreshStore,
) -> Result<BenchReport, BenchError> {
    let store = fresh.open().await?;
    let info = store
        .driver()
        .store_info()
        .await
        .map_err(rota::Error::from)?;
    let client = plain_client(store)?;
    let mut phases = Vec::new();
    if opts.history > 0 {
        phases.push(history(opts, fresh, &client).await?);
    }
    let mut bulk_loaded = false;
    for kind in &opts.phases {
        match kind {
            PhaseKind::Bulk => {
                phases.push(bulk(opts, &client).await?);
                bulk_loaded = true;
            }
            PhaseKind::Single => phases.extend(single(opts, &client, fresh).await?),
            PhaseKind::Process => {
                if !bulk_loaded {
                    bulk(opts, &client).await?;
                }
                phases.push(process(opts, fresh).await?);
            }
            PhaseKind::Latency => phases.push(latency(opts, fresh).await?),
        }
    }
    Ok(BenchReport {
        machine: Machine::read(info, &fresh.probe_dir()),
        phases,
    })
}

async fn bulk(opts: &BenchOptions, client: &Client) -> Result<Phase, BenchError> {
    let before = count(client, Q_BULK, None).await?;
    let t = Instant::now();
    // Requests are built as they are consumed (timed: building them is
    // part of enqueueing), so the bench's own memory stays flat at any N.
    client.enqueue_all(requests(Q_BULK, 0..opts.jobs)).await?;
    let secs = t.elapsed().as_secs_f64();
    let after = count(client, Q_BULK, None).await?;
    if after - before != opts.jobs as i64 {
        return Err(BenchError::Check(format!(
            "bulk: {} rows stored, {} enqueued",
            after - before,
            opts.jobs
        )));
    }
    Ok(Phase {
        name: "bulk_enqueue".into(),
        jobs: opts.jobs,
        seconds: secs,
        jobs_per_sec: rate(opts.jobs, secs),
        latency: None,
        notes: vec![format!(
            "enqueue_all (chunks of {BULK_CHUNK}, {BULK_IN_FLIGHT} written at once while the next is built); rows counted after"
        )],
        ..Phase::default()
    })
}

async fn single(
    opts: &BenchOptions,
    client: &Client,
    fresh: &FreshStore,
) -> Result<Vec<Phase>, BenchError> {
    let n = opts.single;
    // Rota's loop and the raw loop take turns, a slice each per round, so
    // both see the same disk: run one after the other, a drift in fsync
    // time between them (common on a shared VM) moved the ratio by 20
    // points.
    let mut base = Baseline::open(fresh).await?;
    let (mut ours, mut raw) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    for round in 0..SINGLE_ROUNDS {
        let upto = n * (round + 1) / SINGLE_ROUNDS;
        let t = Instant::now();
        for i in done..upto {
            client
                .enqueue(&Noop { n: i }, EnqueueOpts::default().queue(Q_SINGLE))
                .await?;
        }
        ours += t.elapsed();
        raw += base.run(upto - done).await?;
        done = upto;
    }
    let seq_secs = ours.as_secs_f64();
    let base_secs = raw.as_secs_f64();

    let callers = u64::from(opts.callers);
    let per = n.div_ceil(callers);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                client
                    .enqueue(
                        &Noop { n: c * per + i },
                        EnqueueOpts::default().queue(Q_SINGLE),
                    )
                    .await?;
            }
            Ok::<(), rota::Error>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| BenchError::Check(format!("caller task: {e}")))??;
    }
    let conc_secs = t.elapsed().as_secs_f64();
    let stored = count(client, Q_SINGLE, None).await?;
    if stored != (n + per * callers) as i64 {
        return Err(BenchError::Check(format!(
            "single: {stored} stored, {} acknowledged",
            n + per * callers
        )));
    }
    let base_rate = rate(n, base_secs);
    let seq_rate = rate(n, seq_secs);
    let ratio = match (seq_rate, base_rate) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    Ok(vec![
        Phase {
            name: "single_enqueue".into(),
            jobs: n,
            seconds: seq_secs,
            jobs_per_sec: seq_rate,
            latency: None,
            notes: vec![
                "sequential, each acknowledged after its commit".into(),
                ratio.map_or_else(String::new, |r| {
                    format!("{:.0}% of the raw loop", r * 100.0)
                }),
                format!("in {SINGLE_ROUNDS} rounds taking turns with the raw loop"),
            ],
            ratio_to_baseline: ratio,
            ..Phase::default()
        },
        Phase {
            name: "single_enqueue_concurrent".into(),
            jobs: per * callers,
            seconds: conc_secs,
            jobs_per_sec: rate(per * callers, conc_secs),
            latency: None,
            notes: vec![format!("{callers} concurrent callers (group commit)")],
            concurrency: Some(opts.callers),
            ..Phase::default()
        },
        Phase {
            name: "raw_insert_baseline".into(),
            jobs: n,
            seconds: base_secs,
            jobs_per_sec: base_rate,
            latency: None,
            notes: vec![base.note().into()],
            ..Phase::default()
        },
    ])
}

async fn process(opts: &BenchOptions, fresh: &FreshStore) -> Result<Phase, BenchError> {
    let ran = Arc::new(AtomicU64::new(0));
    let store = fresh.open().await?;
    let config = Config {
        claim_batch: 1000,
        ..Config::default().queue(Q_BULK, opts.concurrency)
    };
    // The engine claims at most half the slots at once.
    let claim_size = config.claim_size(opts.concurrency);
    let client = Client::builder(store)
        .config(config)
        .worker(NoopWorker(None, ran.clone()))
        .build()?;
    let waiting = count(&client, Q_BULK, Some(JobState::Available)).await?;
    let t = Instant::now();
    client.start().await?;
    let deadline = t + opts.phase_timeout;
    // RSS before the worker starts (the enqueued jobs were loaded by this
    // process), so growth during the run can be told from the baseline.
    let start = rss_mib();
    let start_rss = start.unwrap_or(0.0);
    let mut peak_rss: f64 = start_rss;
    loop {
        peak_rss = peak_rss.max(rss_mib().unwrap_or(0.0));
        // Only ask the store once the handlers have seen every job, so
        // measuring does not slow the run; then ask the cheap question
        // (any job of the queue still running?) and count exactly after
        // the clock stops: a full count scans the whole table, history
        // included, and would be charged to the run.
        if ran.load(Ordering::Relaxed) >= waiting as u64 && !has_running(&client, Q_BULK).await? {
            break;
        }
        if Instant::now() > deadline {
            let done = count(&client, Q_BULK, Some(JobState::Succeeded)).await?;
            client.shutdown(Duration::from_secs(5)).await?;
            return Err(BenchError::Check(format!(
                "process: only {done} of {waiting} succeeded in time"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let succeeded = count(&client, Q_BULK, Some(JobState::Succeeded)).await?;
    client.shutdown(Duration::from_secs(5)).await?;
    if succeeded != waiting {
        return Err(BenchError::Check(format!(
            "process: {succeeded} of {waiting} jobs succeeded"
        )));
    }
    Ok(Phase {
        name: "process".into(),
        jobs: waiting as u64,
        seconds: secs,
        jobs_per_sec: rate(waiting as u64, secs),
        latency: None,
        notes: vec![
            format!("concurrency {}", opts.concurrency),
            format!("claim batch {claim_size}"),
            format!(
                "peak RSS {peak_rss:.0} MiB, {start_rss:.0} MiB at worker start (whole bench process)"
            ),
        ],
        concurrency: Some(opts.concurrency),
        claim_batch: Some(claim_size),
        // Absent where the OS does not tell (`rss_mib` reads /proc).
        rss: start.map(|start_mib| Rss {
            start_mib,
            peak_mib: peak_rss,
        }),
        ..Phase::default()
    })
}

async fn latency(opts: &BenchOptions, fresh: &FreshStore) -> Result<Phase, BenchError> {
    let starts: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let store = fresh.open().await?;
    let client = Client::builder(store)
        .config(Config::default().queue(Q_LATENCY, 4))
        .worker(NoopWorker(Some(starts.clone()), Arc::default()))
        .build()?;
    client.start().await?;
    // Let the producer go idle (and a PostgreSQL listener connect).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut committed = Vec::with_capacity(opts.latency as usize);
    let t = Instant::now();
    for n in 0..opts.latency {
        let called = Instant::now();
        let id = client
            .enqueue(&Noop { n }, EnqueueOpts::default().queue(Q_LATENCY))
            .await?
            .job
            .id;
        committed.push((id, called, Instant::now()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while starts.lock().map(|s| s.len()).unwrap_or(0) < committed.len() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    client.shutdown(Duration::from_secs(5)).await?;
    let starts = starts.lock().map(|s| s.clone()).unwrap_or_default();
    let since = |pick: fn(&(i64, Instant, Instant)) -> Instant| -> Vec<f64> {
        committed
            .iter()
            .filter_map(|c| {
                starts
                    .get(&c.0)
                    .map(|s| s.saturating_duration_since(pick(c)).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    let samples = since(|c| c.2);
    // Enqueue called -> handler start: includes the insert's own commit,
    // so it cannot hide work inside the enqueue call.
    let end_to_end = Latency::from_samples(since(|c| c.1));
    if samples.len() != committed.len() {
        return Err(BenchError::Check(format!(
            "latency: {} of {} jobs started",
            samples.len(),
            committed.len()
        )));
    }
    Ok(Phase {
        name: "latency".into(),
        jobs: opts.latency,
        seconds: secs,
        jobs_per_sec: None,
        latency: Some(Latency::from_samples(samples)),
        notes: vec![
            "idle worker; enqueue returned (committed) -> handler start; 10 ms apart".into(),
            format!(
                "enqueue called -> handler start p50 {:.2} ms p99 {:.2} ms",
                end_to_end.p50_ms, end_to_end.p99_ms
            ),
        ],
        end_to_end: Some(end_to_end),
        ..Phase::default()
    })
}

/// Fills the table with `history` finished jobs (enqueued and run in their
/// own queue), so later phases measure against a long history.
async fn history(
    opts: &BenchOptions,
    fresh: &FreshStore,
    client: &Client,
) -> Result<Phase, BenchError> {
    let t = Instant::now();
    client
        .enqueue_all(requests(Q_HISTORY, 0..opts.history))
        .await?;
    let ran = Arc::new(AtomicU64::new(0));
    let worker = Client::builder(fresh.open().await?)
        .config(Config {
            claim_batch: 1000,
            maintenance: false,
            ..Config::default().queue(Q_HISTORY, 200)
        })
        .worker(NoopWorker(None, ran.clone()))
        .build()?;
    worker.start().await?;
    let deadline = Instant::now() + opts.phase_timeout;
    while ran.load(Ordering::Relaxed) < opts.history
        || count(client, Q_HISTORY, Some(JobState::Succeeded)).await? < opts.history as i64
    {
        if Instant::now() > deadline {
            worker.shutdown(Duration::from_secs(5)).await?;
            return Err(BenchError::Check("history: loading took too long".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown(Duration::from_secs(5)).await?;
    let secs = t.elapsed().as_secs_f64();
    Ok(Phase {
        name: "history_load".into(),
        jobs: opts.history,
        seconds: secs,
        jobs_per_sec: rate(opts.history, secs),
        latency: None,
        notes: vec![
            "finished jobs put in the table before the measured phases (not a target)".into(),
        ],
        ..Phase::default()
    })
}
