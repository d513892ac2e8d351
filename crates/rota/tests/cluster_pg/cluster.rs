//! Cluster behaviour on PostgreSQL with real processes: SIGKILL chaos,
//! leader failover under SIGSTOP, a database restart mid-run, and lease
//! rescue timing. Children are this test binary re-executed to run an
//! ignored `cluster::child_*` test, configured through environment
//! variables.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rota::sqlx::{self, PgPool};
use rota::{
    BackoffPolicy, Config, EnqueueOpts, ErrorKind, JobArgs, JobContext, JobListParams, JobOutcome,
    JobRequest, JobResult, JobState, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, eventually, fast_config};

/// Serializes the tests of this binary (see main.rs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ENV_URL: &str = "ROTA_TEST_CLUSTER_URL";
const ENV_SERVER: &str = "ROTA_TEST_CLUSTER_SERVER";
const ENV_SCHEMA: &str = "ROTA_TEST_CLUSTER_SCHEMA";
const ENV_NODE: &str = "ROTA_TEST_CLUSTER_NODE";
const ENV_ROLE: &str = "ROTA_TEST_CLUSTER_ROLE";

#[derive(Serialize, Deserialize)]
struct Ledgered {
    n: u64,
}
impl JobArgs for Ledgered {
    const KIND: &'static str = "ledgered";
}

/// Appends one ledger row per run, so duplicate runs can be counted.
struct LedgerWorker {
    pool: PgPool,
    schema: String,
    node: String,
}

#[async_trait::async_trait]
impl Worker for LedgerWorker {
    type Args = Ledgered;
    async fn work(&self, ctx: &JobContext, _: Ledgered) -> JobResult {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{}\".ledger (job_id, node) VALUES ($1, $2)",
            self.schema
        )))
        .bind(ctx.id())
        .bind(&self.node)
        .execute(&self.pool)
        .await?;
        Ok(JobOutcome::Done)
    }
}

/// Records each run's start and end (for the `alone` overlap check); runs
/// take 2.5 s when `slow`.
#[derive(Serialize, Deserialize)]
struct Stamped {
    slow: bool,
}
impl JobArgs for Stamped {
    const KIND: &'static str = "stamped";
}

struct Stamp {
    pool: PgPool,
    schema: String,
}

#[async_trait::async_trait]
impl Worker for Stamp {
    type Args = Stamped;
    async fn work(&self, ctx: &JobContext, a: Stamped) -> JobResult {
        let start = jiff::Timestamp::now();
        if a.slow {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        let end = jiff::Timestamp::now();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{}\".runs (job_id, slow, started_us, ended_us) VALUES ($1, $2, $3, $4)",
            self.schema
        )))
        .bind(ctx.id())
        .bind(a.slow)
        .bind(start.as_microsecond())
        .bind(end.as_microsecond())
        .execute(&self.pool)
        .await?;
        Ok(JobOutcome::Done)
    }
}

#[derive(Serialize, Deserialize)]
struct Long {
    millis: u64,
}
impl JobArgs for Long {
    const KIND: &'static str = "long";
}

struct LongWorker;

#[async_trait::async_trait]
impl Worker for LongWorker {
    type Args = Long;
    async fn work(&self, _: &JobContext, a: Long) -> JobResult {
        tokio::time::sleep(Duration::from_millis(a.millis)).await;
        Ok(JobOutcome::Done)
    }
}

/// A child node process, SIGKILLed when dropped: a failing test must not
/// leave nodes behind holding database connections for the next tests.
struct Node(Child);

impl std::ops::Deref for Node {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(db: &Db, node: &str, role: &str) -> Node {
    Node(
        Command::new(std::env::current_exe().unwrap())
            .args(["cluster::child_node", "--exact", "--ignored", "--nocapture"])
            .env(ENV_URL, db.url())
            .env(ENV_SERVER, db.server())
            .env(ENV_SCHEMA, &db.schema)
            .env(ENV_NODE, node)
            .env(ENV_ROLE, role)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// A worker node process: `role` is `ledger` (10 workers appending to the
/// ledger), `leader` (maintenance only) or `long` (serves queue `long`, no
/// maintenance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the cluster tests; run by them"]
async fn child_node() {
    let (Ok(url), Ok(server), Ok(schema), Ok(node), Ok(role)) = (
        std::env::var(ENV_URL),
        std::env::var(ENV_SERVER),
        std::env::var(ENV_SCHEMA),
        std::env::var(ENV_NODE),
        std::env::var(ENV_ROLE),
    ) else {
        return;
    };
    let store = rota::Store::open(&url).await.unwrap();
    let base = Config {
        node_id: node.clone(),
        ..fast_config()
    };
    let builder = rota::Client::builder(store);
    let client = match role.as_str() {
        "ledger" => {
            let pool = PgPool::connect(&server).await.unwrap();
            builder
                .config(Config {
                    claim_batch: 10,
                    backoff: BackoffPolicy {
                        initial_interval: Duration::from_millis(50),
                        jitter: 0.0,
                        ..Default::default()
                    },
                    ..base.queue("default", 10)
                })
                .worker(LedgerWorker { pool, schema, node })
                .build()
                .unwrap()
        }
        "leader" => builder.config(base).build().unwrap(),
        "scheduler" => {
            let pool = PgPool::connect(&server).await.unwrap();
            builder
                .config(base.queue("default", 4))
                .worker(Stamp { pool, schema })
                .build()
                .unwrap()
        }
        _ => builder
            .config(Config {
                maintenance: false,
                ..base.queue("long", 4)
            })
            .worker(LongWorker)
            .build()
            .unwrap(),
    };
    client.start().await.unwrap();
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_sigkill_chaos_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(db) = Db::new() else { return };
    const JOBS: u64 = 50_000;
    const CONCURRENCY: usize = 10;
    let client = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let pool = PgPool::connect(db.server()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".ledger (job_id bigint NOT NULL, node text NOT NULL)",
        db.schema
    )))
    .execute(&pool)
    .await
    .unwrap();
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(10_000) {
        let reqs = chunk
            .iter()
            .map(|&n| JobRequest::new(&Ledgered { n }, EnqueueOpts::default()).unwrap())
            .collect();
        client.enqueue_many(reqs).await.unwrap();
    }
    let mut children: Vec<Node> = (0..3)
        .map(|i| spawn_child(&db, &format!("chaos-{i}"), "ledger"))
        .collect();
    let started = Instant::now();
    let mut kills = 0usize;
    let mut next = 0usize;
    let done = |c: &rota::Client| {
        let c = c.clone();
        async move {
            c.counts()
                .await
                .unwrap()
                .iter()
                .filter(|c| c.state == JobState::Succeeded)
                .map(|c| c.count)
                .sum::<i64>()
        }
    };
    // Chaos phase: a SIGKILL every 2 s (at most MAX_KILLS), then the
    // survivors must finish everything, rescues included.
    const MAX_KILLS: usize = 20;
    while done(&client).await < JOBS as i64 && kills < MAX_KILLS {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if done(&client).await >= JOBS as i64 {
            break;
        }
        // SIGKILL one worker and start a replacement, round robin.
        let victim = next % children.len();
        children[victim].kill().unwrap();
        children[victim].wait().unwrap();
        kills += 1;
        children[victim] = spawn_child(&db, &format!("chaos-{victim}-{kills}"), "ledger");
        next += 1;
    }
    let settle = Instant::now();
    while done(&client).await < JOBS as i64 && settle.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let finished = done(&client).await;
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let counts = client.counts().await.unwrap();
    assert_eq!(
        finished, JOBS as i64,
        "every job must end succeeded: {counts:?}"
    );
    let (rows, distinct): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT job_id) FROM \"{}\".ledger",
        db.schema
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let duplicates = rows - distinct;
    eprintln!(
        "chaos: {JOBS} jobs, {kills} SIGKILLs in {:?}: {duplicates} duplicate runs (bound {})",
        started.elapsed(),
        kills * CONCURRENCY
    );
    assert_eq!(distinct, JOBS as i64, "every job ran at least once");
    assert!(
        kills >= 2,
        "the run was too short to kill anything ({kills})"
    );
    assert!(
        duplicates as usize <= kills * CONCURRENCY,
        "{duplicates} duplicates > {kills} kills × {CONCURRENCY}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstopped_leader_is_replaced_and_terms_never_overlap() {
    let _serial = SERIAL.lock().await;
    let Some(db) = Db::new() else { return };
    let observer = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let mut children: HashMap<String, Node> = (0..3)
        .map(|i| {
            (
                format!("elect-{i}"),
                spawn_child(&db, &format!("elect-{i}"), "leader"),
            )
        })
        .collect();
    let driver = observer.driver().clone();
    let leader_now = || async {
        driver
            .leader_get(jiff::Timestamp::now())
            .await
            .unwrap()
            .map(|t| t.node_id)
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            leader_now().await.is_some()
        })
        .await,
        "nobody was elected"
    );
    let first = leader_now().await.unwrap();
    let stopped = children.get(&first).unwrap();
    signal(stopped, "-STOP");
    // Longer than the 2 s leader lease.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = leader_now().await;
    signal(children.get(&first).unwrap(), "-CONT");
    assert!(
        second.is_some() && second.as_deref() != Some(first.as_str()),
        "leadership did not move: {second:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let terms = driver.leader_terms().await.unwrap();
    for c in children.values_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(terms.len() >= 2, "{terms:?}");
    for w in terms.windows(2) {
        assert!(w[0].term < w[1].term);
        assert!(
            w[0].expires_at <= w[1].elected_at,
            "terms overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_mid_run_recovers_without_help() {
    let _serial = SERIAL.lock().await;
    let Some(db) = Db::new() else { return };
    let Some(restart) = std::env::var("ROTA_TEST_PG_RESTART_CMD")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        if std::env::var("ROTA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("ROTA_TEST_PG_RESTART_CMD must name a command restarting the test server");
        }
        eprintln!("*** SKIPPED: database restart test (set ROTA_TEST_PG_RESTART_CMD) ***");
        return;
    };
    const JOBS: u64 = 20_000;
    let ran = Arc::new(AtomicUsize::new(0));
    struct Count(Arc<AtomicUsize>);
    #[async_trait::async_trait]
    impl Worker for Count {
        type Args = Ledgered;
        async fn work(&self, _: &JobContext, _: Ledgered) -> JobResult {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(JobOutcome::Done)
        }
    }
    let client = db
        .builder()
        .await
        .config(Config {
            // Wake-ups after the restart must come from the re-established
            // listener, not from polling.
            poll_interval: Duration::from_secs(30),
            ..fast_config().queue("default", 20)
        })
        .worker(Count(ran.clone()))
        .build()
        .unwrap();
    let reqs = (0..JOBS)
        .map(|n| JobRequest::new(&Ledgered { n }, EnqueueOpts::default()).unwrap())
        .collect();
    client.enqueue_many(reqs).await.unwrap();
    client.start().await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            ran.load(Ordering::SeqCst) > 2_000
        })
        .await
    );
    let status = Command::new("sh").args(["-c", &restart]).status().unwrap();
    assert!(status.success(), "restart command failed");
    let succeeded = || async {
        client.counts().await.map(|c| {
            c.iter()
                .filter(|c| c.state == JobState::Succeeded)
                .map(|c| c.count)
                .sum::<i64>()
        })
    };
    assert!(
        eventually(Duration::from_secs(120), || async {
            succeeded().await.unwrap_or(0) == JOBS as i64
        })
        .await,
        "not every job succeeded after the restart: {:?}",
        client.counts().await
    );
    // The listener is back: an idle worker starts a new job well before the
    // 30 s poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let id = client
        .enqueue(&Ledgered { n: 0 }, EnqueueOpts::default())
        .await
        .unwrap()
        .job
        .id;
    let job = client.wait(id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "wake-up after restart took {:?}",
        t.elapsed()
    );
    let all = client
        .list(JobListParams {
            states: vec![JobState::Succeeded],
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!all.jobs.is_empty());
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeating_job_is_never_rescued_dead_one_is_rescued_in_time() {
    let _serial = SERIAL.lock().await;
    let Some(db) = Db::new() else { return };
    let cfg = fast_config();
    let (lease, rescue_interval) = (cfg.lease, cfg.rescue_interval);
    let client = db
        .builder()
        .await
        .config(cfg.queue("default", 4))
        .worker(LongWorker)
        .build()
        .unwrap();
    client.start().await.unwrap();
    // Runs for three leases while heartbeating: never rescued.
    let long = client
        .enqueue(
            &Long {
                millis: (lease * 3).as_millis() as u64,
            },
            EnqueueOpts::default(),
        )
        .await
        .unwrap()
        .job
        .id;
    let job = client.wait(long, Duration::from_secs(30)).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 1);
    assert!(job.errors.is_empty(), "{:?}", job.errors);

    // A job held by a process that is then SIGKILLed is rescued within
    // lease + rescue interval (this client leads; the child does no
    // maintenance).
    // Queue `long` is served only by the child.
    let held = client
        .enqueue(
            &Long { millis: 600_000 },
            EnqueueOpts::default().queue("long"),
        )
        .await
        .unwrap()
        .job
        .id;
    let mut child = spawn_child(&db, "doomed", "long");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let j = client.get(held).await.unwrap();
            j.state == JobState::Running && j.node.as_deref() == Some("doomed")
        })
        .await,
        "the child never took the job: {:?}",
        client.get(held).await.unwrap()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    assert!(
        eventually(Duration::from_secs(20), || async {
            client.get(held).await.unwrap().state != JobState::Running
        })
        .await
    );
    let took = killed.elapsed();
    let job = client.get(held).await.unwrap();
    assert!(
        job.errors.iter().any(|e| e.kind == ErrorKind::Rescued),
        "{job:?}"
    );
    assert!(
        took <= lease + rescue_interval + Duration::from_millis(500),
        "rescued after {took:?}; bound is lease {lease:?} + rescue interval {rescue_interval:?}"
    );
    client.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_every_second_once_and_alone_never_overlaps() {
    let _serial = SERIAL.lock().await;
    let Some(db) = Db::new() else { return };
    let admin = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let pool = PgPool::connect(db.server()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{}\".runs (job_id bigint, slow boolean, started_us bigint, ended_us bigint)",
        db.schema
    )))
    .execute(&pool)
    .await
    .unwrap();
    let template = |slow: bool| rota::JobTemplate {
        kind: "stamped".into(),
        args: serde_json::json!({ "slow": slow }),
        queue: None,
        priority: None,
        max_attempts: Some(1),
        timeout_ms: None,
        labels: Default::default(),
        attributes: Default::default(),
    };
    let every = admin
        .create_schedule(rota::ScheduleDefinition {
            spec: rota::ScheduleSpec::new(
                "every-second",
                rota::ScheduleRule::parse("*/1 * * * * *", None).unwrap(),
            ),
            job: template(false),
            execution: None,
            backoff: None,
        })
        .await
        .unwrap();
    let mut alone_spec = rota::ScheduleSpec::new(
        "alone",
        rota::ScheduleRule::parse("*/1 * * * * *", None).unwrap(),
    );
    alone_spec.overlap = rota::OverlapPolicy::Alone;
    let alone = admin
        .create_schedule(rota::ScheduleDefinition {
            spec: alone_spec,
            job: template(true),
            execution: None,
            backoff: None,
        })
        .await
        .unwrap();
    let mut children: Vec<Node> = (0..2)
        .map(|i| spawn_child(&db, &format!("sched-{i}"), "scheduler"))
        .collect();
    // Half way, kill the leader (a leader change) and start a replacement.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let leader = admin
        .driver()
        .leader_get(jiff::Timestamp::now())
        .await
        .unwrap();
    let leading = leader.and_then(|l| ["sched-0", "sched-1"].iter().position(|n| *n == l.node_id));
    assert!(leading.is_some(), "one of the two processes leads");
    if let Some(i) = leading {
        children[i].kill().unwrap();
        children[i].wait().unwrap();
        children[i] = spawn_child(&db, &format!("sched-{i}-b"), "scheduler");
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let fires = admin.schedule_history(every.id, None, 1000).await.unwrap();
    let mut times: Vec<jiff::Timestamp> = fires.iter().map(|f| f.fire_at).collect();
    times.sort();
    let n = times.len();
    times.dedup();
    assert_eq!(
        times.len(),
        n,
        "a (schedule, fire time) pair recorded twice"
    );
    assert!(n >= 25, "only {n} fires in 30 s");
    for w in times.windows(2) {
        assert_eq!(
            w[1].duration_since(w[0]).as_secs(),
            1,
            "missing fire between {} and {}",
            w[0],
            w[1]
        );
    }
    let runs: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT started_us, ended_us FROM \"{}\".runs WHERE slow ORDER BY started_us",
        db.schema
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(runs.len() >= 5, "alone ran {} times", runs.len());
    for w in runs.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "alone runs overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    let alone_fires = admin.schedule_history(alone.id, None, 1000).await.unwrap();
    assert!(
        alone_fires
            .iter()
            .any(|f| f.status == rota::FireStatus::Skipped),
        "overlapping fires were skipped"
    );
    eprintln!(
        "schedules: {n} fires of every-second; alone ran {} times, {} fires skipped",
        runs.len(),
        alone_fires
            .iter()
            .filter(|f| f.status == rota::FireStatus::Skipped)
            .count()
    );
}
