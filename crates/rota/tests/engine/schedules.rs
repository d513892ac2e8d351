//! Schedules: each second fires exactly once even with several schedulers
//! racing, `alone` never overlaps, DST behaviour with an injected clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rota::maintenance::Service;
use rota::{
    Config, JobArgs, JobContext, JobOutcome, JobResult, JobTemplate, ManualClock, OnOverlap,
    OverlapPolicy, ScheduleDefinition, ScheduleRule, ScheduleSpec, Worker,
};
use serde::{Deserialize, Serialize};

use crate::common::{Db, fast_config};

#[derive(Serialize, Deserialize)]
struct Tick;
impl JobArgs for Tick {
    const KIND: &'static str = "tick";
}

struct Ticker;

#[async_trait::async_trait]
impl Worker for Ticker {
    type Args = Tick;
    async fn work(&self, _: &JobContext, _: Tick) -> JobResult {
        Ok(JobOutcome::Done)
    }
}

fn definition(name: &str, cron: &str, tz: Option<&str>) -> ScheduleDefinition {
    ScheduleDefinition {
        spec: ScheduleSpec::new(name, ScheduleRule::parse(cron, tz).unwrap()),
        job: JobTemplate {
            kind: "tick".into(),
            args: serde_json::json!(null),
            queue: None,
            priority: None,
            max_attempts: None,
            timeout_ms: None,
            labels: Default::default(),
            attributes: Default::default(),
        },
        execution: None,
        backoff: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_fire_each_second_exactly_once() {
    let Some(db) = Db::new() else { return };
    let client = db
        .builder()
        .await
        .config(Config {
            maintenance: false,
            ..fast_config().queue("default", 4)
        })
        .worker(Ticker)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let s = client
        .create_schedule(definition("every-second", "*/1 * * * * *", None))
        .await
        .unwrap();
    // Three schedulers racing (as on three nodes).
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < end {
                c.services().scheduler.run_once().await.unwrap();
                tokio::time::sleep(Duration::from_millis(70)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let fires = client.schedule_history(s.id, None, 100).await.unwrap();
    let times: Vec<Timestamp> = fires.iter().map(|f| f.fire_at).rev().collect();
    let unique: BTreeSet<Timestamp> = times.iter().copied().collect();
    assert_eq!(unique.len(), times.len(), "a fire time recorded twice");
    assert!(times.len() >= 4, "{times:?}");
    for w in times.windows(2) {
        assert_eq!(
            w[1].duration_since(w[0]).as_secs(),
            1,
            "a second is missing: {times:?}"
        );
    }
    // One job per fire.
    let jobs = client
        .list(rota::JobListParams {
            schedule_id: Some(s.id),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.jobs.len(), times.len());
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dst_transitions_follow_the_documented_rule() {
    let Some(db) = Db::new() else { return };
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let clock = ManualClock::new(at("2026-03-28T12:00:00Z"));
    let client = db
        .builder()
        .await
        .config(Config {
            clock: Arc::new(clock.clone()),
            schedule_on_db_clock: false,
            maintenance: false,
            ..fast_config()
        })
        .build()
        .unwrap();
    let scheduler = client.services().scheduler.clone();

    // Spring forward: 02:30 does not exist on 2026-03-29; it fires once at 03:00 CEST.
    let spring = client
        .create_schedule(definition("spring", "30 2 * * *", Some("Europe/Berlin")))
        .await
        .unwrap();
    assert_eq!(spring.next_fire_at, Some(at("2026-03-29T01:00:00Z")));
    clock.set(at("2026-03-29T01:00:05Z"));
    scheduler.run_once().await.unwrap();
    let fires = client.schedule_history(spring.id, None, 10).await.unwrap();
    assert_eq!(
        fires.iter().map(|f| f.fire_at).collect::<Vec<_>>(),
        vec![at("2026-03-29T01:00:00Z")]
    );
    assert_eq!(
        client.schedule(spring.id).await.unwrap().row.next_fire_at,
        Some(at("2026-03-30T00:30:00Z"))
    );
    client.pause_schedule(spring.id).await.unwrap();

    // Fall back: 02:30 happens twice on 2026-10-25; it fires once, at the first.
    clock.set(at("2026-10-24T12:00:00Z"));
    let fall = client
        .create_schedule(definition("fall", "30 2 * * *", Some("Europe/Berlin")))
        .await
        .unwrap();
    assert_eq!(fall.next_fire_at, Some(at("2026-10-25T00:30:00Z")));
    clock.set(at("2026-10-25T00:30:05Z"));
    scheduler.run_once().await.unwrap();
    clock.set(at("2026-10-25T01:30:05Z")); // the second 02:30 (CET)
    scheduler.run_once().await.unwrap();
    let fires = client.schedule_history(fall.id, None, 10).await.unwrap();
    assert_eq!(
        fires.iter().map(|f| f.fire_at).collect::<Vec<_>>(),
        vec![at("2026-10-25T00:30:00Z")]
    );
    assert_eq!(
        client.schedule(fall.id).await.unwrap().row.next_fire_at,
        Some(at("2026-10-26T01:30:00Z"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_skips_while_a_run_is_unfinished_and_bad_rules_are_refused() {
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
    let mut def = definition("lonely", "*/1 * * * * *", None);
    def.spec.overlap = OverlapPolicy::Alone;
    def.spec.on_overlap = OnOverlap::Skip;
    let s = client.create_schedule(def).await.unwrap();
    // No worker runs "tick" here, so the first run stays unfinished.
    let end = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < end {
        client.services().scheduler.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fires = client.schedule_history(s.id, None, 100).await.unwrap();
    let fired = fires
        .iter()
        .filter(|f| f.status == rota::FireStatus::Fired)
        .count();
    let skipped = fires
        .iter()
        .filter(|f| f.status == rota::FireStatus::Skipped)
        .count();
    assert_eq!(fired, 1, "{fires:?}");
    assert!(skipped >= 2, "{fires:?}");
    assert!(
        fires
            .iter()
            .filter(|f| f.status == rota::FireStatus::Skipped)
            .all(|f| f.reason.is_some())
    );

    // Bad definitions: a typed error naming the field, nothing stored.
    for (cron, tz, field) in [
        ("not a cron", None, "cron"),
        ("*/5 * * * *", Some("Mars/Olympus"), "timezone"),
        ("0 0 30 2 *", None, "cron"),
    ] {
        match ScheduleRule::parse(cron, tz) {
            Err(e) => assert_eq!(e.field, field, "{cron}"),
            Ok(rule) => {
                let mut d = definition("bad", "* * * * *", None);
                d.spec.rule = rule;
                match client.create_schedule(d).await {
                    Err(rota::Error::Invalid(e)) => assert_eq!(e.field, field),
                    other => panic!("{cron}: expected invalid, got {other:?}"),
                }
            }
        }
    }
    assert_eq!(client.schedules().await.unwrap().len(), 1);
}

#[derive(Serialize, Deserialize)]
struct Flaky;
impl JobArgs for Flaky {
    const KIND: &'static str = "flaky_tick";
}

struct FlakyTicker(Arc<std::sync::atomic::AtomicBool>);

#[async_trait::async_trait]
impl Worker for FlakyTicker {
    type Args = Flaky;
    async fn work(&self, _: &JobContext, _: Flaky) -> JobResult {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(rota::JobError::fatal("target down"));
        }
        Ok(JobOutcome::Done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_schedule_backs_off_and_resets_after_sustained_health() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(db) = Db::new() else { return };
    let t0: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let clock = ManualClock::new(t0);
    let failing = Arc::new(AtomicBool::new(true));
    let client = db
        .builder()
        .await
        .config(Config {
            clock: Arc::new(clock.clone()),
            schedule_on_db_clock: false,
            maintenance: false,
            ..fast_config().queue("default", 2)
        })
        .worker(FlakyTicker(failing.clone()))
        .build()
        .unwrap();
    client.start().await.unwrap();
    let mut def = definition("flaky", "* * * * *", None);
    def.spec.rule = ScheduleRule::every(Duration::from_secs(10)).unwrap();
    def.job.kind = "flaky_tick".into();
    def.backoff = Some(rota::BackoffPolicy {
        initial_interval: Duration::from_secs(60),
        multiplier: 2.0,
        max_interval: Duration::from_secs(3600),
        jitter: 0.0,
        max_attempts: 100,
        reset_interval: Some(Duration::from_secs(120)),
    });
    let s = client.create_schedule(def).await.unwrap();
    // Steps the clock 10 s at a time, fires, and waits for the fire's jobs.
    let step = |secs: i64| {
        let client = client.clone();
        let clock = clock.clone();
        async move {
            clock.set(
                t0.checked_add(jiff::SignedDuration::from_secs(secs))
                    .unwrap(),
            );
            client.services().scheduler.run_once().await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let h = client.schedule_history(s.id, None, 1).await.unwrap();
                if h.first().is_none_or(|f| f.unfinished == 0)
                    || tokio::time::Instant::now() > deadline
                {
                    return h.into_iter().next();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let fired = |f: &Option<rota::FireRow>, at: i64| {
        f.as_ref().is_some_and(|f| {
            f.fire_at == t0.checked_add(jiff::SignedDuration::from_secs(at)).unwrap()
                && f.status == rota::FireStatus::Fired
        })
    };
    // The first fire fails; the failure is noticed at the next tick (t=20),
    // which backs off for 60 s: fires at 20..=70 are skipped.
    assert!(fired(&step(10).await, 10));
    for t in (20..=70).step_by(10) {
        let f = step(t).await.unwrap();
        assert_eq!(f.status, rota::FireStatus::Skipped, "t={t}: {f:?}");
        assert!(
            f.reason.as_deref().unwrap_or("").contains("backing off"),
            "{f:?}"
        );
    }
    // Backoff over (20 + 60 = 80): it fires again — and fails again, so the
    // next backoff doubles to 120 s (from t=90: skipped until 210).
    assert!(fired(&step(80).await, 80));
    for t in (90..=200).step_by(10) {
        assert_eq!(
            step(t).await.unwrap().status,
            rota::FireStatus::Skipped,
            "t={t}"
        );
    }
    // The target recovers: fires succeed from t=210 on for over the reset
    // interval (120 s).
    failing.store(false, Ordering::SeqCst);
    for t in (210..=360).step_by(10) {
        assert!(fired(&step(t).await, t), "t={t}");
    }
    // A new failure after sustained health starts the backoff afresh: 60 s
    // again, not 240 s.
    failing.store(true, Ordering::SeqCst);
    assert!(fired(&step(370).await, 370));
    for t in (380..=430).step_by(10) {
        assert_eq!(
            step(t).await.unwrap().status,
            rota::FireStatus::Skipped,
            "t={t}"
        );
    }
    assert!(
        fired(&step(440).await, 440),
        "after a fresh 60 s backoff it fires again"
    );
    client.shutdown(Duration::from_secs(5)).await.unwrap();
}
