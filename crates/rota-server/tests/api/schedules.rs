//! `/v1/schedules`: create, get, list, patch, pause, resume, trigger, runs,
//! delete; rule and policy errors; scopes.

use std::time::Duration;

use axum::http::{Method, header};
use jiff::Timestamp;
use rota::ApiKeyScope;
use rota_server::ServerOptions;
use serde_json::{Value, json};

use crate::common::{Harness, bad, eventually};

fn time(v: &Value) -> Timestamp {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(s.ends_with('Z'), "{s} is not UTC");
    s.parse().unwrap()
}

const NIGHTLY: &str = r#"{
    "name": "nightly-report",
    "cron": "30 2 * * *",
    "timezone": "Europe/Berlin",
    "policy": "alone",
    "on_overlap": "queue",
    "catch_up": {"all": {"limit": 3}},
    "job": {"kind": "echo", "args": {"x": 1}, "queue": "cron", "priority": 2,
            "max_attempts": 3, "timeout": "10m", "labels": {"region": "eu"},
            "attributes": {"team": "ops"}},
    "execution": {"owner_kind": "report", "owner_id": 7},
    "backoff": {"initial_interval": "1m", "max_interval": "2h", "reset_interval": null}
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_lifecycle() {
    let h = Harness::new(ServerOptions::default()).await;
    let now = Timestamp::now();
    let r = h.post("/v1/schedules", NIGHTLY).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json();
    let id = s["id"].as_i64().unwrap();
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/schedules/{id}").as_str()
    );
    assert_eq!(s["name"], "nightly-report");
    assert_eq!(s["cron"], "30 2 * * *");
    assert_eq!(s["timezone"], "Europe/Berlin");
    assert_eq!(s["every"], Value::Null);
    assert_eq!(s["policy"], "alone");
    assert_eq!(s["on_overlap"], "queue");
    assert_eq!(s["catch_up"], json!({"all": {"limit": 3}}));
    assert_eq!(
        s["job"],
        json!({"kind": "echo", "args": {"x": 1}, "queue": "cron", "priority": 2,
               "max_attempts": 3, "timeout": 600.0, "labels": {"region": "eu"},
               "attributes": {"team": "ops"}})
    );
    assert_eq!(
        s["execution"],
        json!({"owner_kind": "report", "owner_id": "7"})
    );
    assert_eq!(s["backoff"]["initial_interval"], 60.0);
    assert_eq!(s["backoff"]["max_interval"], 7200.0);
    assert_eq!(s["backoff"]["reset_interval"], Value::Null);
    assert_eq!(s["backoff"]["multiplier"], 2.0);
    assert_eq!(s["paused"], false);
    assert_eq!(s["last_fire_at"], Value::Null);
    assert_eq!(s["average_run_seconds"], Value::Null);
    // 02:30 in Berlin is 00:30 or 01:30 UTC (01:00 on a spring-forward day).
    let next = time(&s["next_fire_at"]);
    assert!(
        next > now && next.duration_since(now).as_hours() < 26,
        "{next}"
    );
    let utc = next.to_zoned(jiff::tz::TimeZone::UTC);
    assert!(
        [(0, 30), (1, 30), (1, 0)].contains(&(utc.hour(), utc.minute())),
        "{next}"
    );

    // GET and list.
    let g = h.get(&format!("/v1/schedules/{id}")).await;
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.json(), s);
    let list = h.get("/v1/schedules").await.json();
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(list["schedules"][0]["id"], id);

    // PATCH: switch to an interval, change args; the rest is kept.
    let r = h
        .patch(
            &format!("/v1/schedules/{id}"),
            r#"{"every":"30s","job":{"args":{"x":2}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(
        (p["cron"].clone(), p["timezone"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(p["every"], 30.0);
    assert_eq!(p["job"]["args"], json!({"x": 2}));
    assert_eq!(p["job"]["queue"], "cron");
    assert_eq!(p["job"]["timeout"], 600.0);
    assert_eq!(p["policy"], "alone");
    let next = time(&p["next_fire_at"]);
    assert!(
        next.duration_since(Timestamp::now()).as_secs() <= 30,
        "{next}"
    );
    // Back to cron (UTC by default); drop the execution wrapper and backoff.
    let p = h
        .patch(
            &format!("/v1/schedules/{id}"),
            r#"{"cron":"*/5 * * * * *","execution":null,"backoff":null}"#,
        )
        .await
        .json();
    assert_eq!(p["cron"], "*/5 * * * * *");
    assert_eq!(p["timezone"], "UTC");
    assert_eq!(p["every"], Value::Null);
    assert_eq!(p["execution"], Value::Null);
    assert_eq!(p["backoff"], Value::Null);
    // merge-patch content type works too.
    let mut req = crate::common::request(
        Method::PATCH,
        &format!("/v1/schedules/{id}"),
        Some(r#"{"timezone":"America/New_York"}"#),
    );
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/merge-patch+json".parse().unwrap(),
    );
    let r = h.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["timezone"], "America/New_York");

    // Pause and resume.
    let r = h.post_empty(&format!("/v1/schedules/{id}/pause")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["paused"], true);
    time(&r.json()["paused_at"]);
    assert_eq!(
        h.get(&format!("/v1/schedules/{id}")).await.json()["paused"],
        true
    );
    let r = h.post_empty(&format!("/v1/schedules/{id}/resume")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["paused"], false);
    assert_eq!(r.json()["paused_at"], Value::Null);
    assert!(r.json()["next_fire_at"].is_string());

    // No runs yet.
    let runs = h.get(&format!("/v1/schedules/{id}/runs")).await;
    assert_eq!(runs.status, 200, "{}", runs.text());
    assert_eq!(runs.json(), json!({"runs": [], "next": null}));

    // Delete: gone.
    let r = h.delete(&format!("/v1/schedules/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id);
    assert_eq!(r.json()["name"], "nightly-report");
    h.get(&format!("/v1/schedules/{id}"))
        .await
        .problem(404, "schedule_not_found");
    h.get(&format!("/v1/schedules/{id}/runs"))
        .await
        .problem(404, "schedule_not_found");
    assert_eq!(h.get("/v1/schedules").await.json()["schedules"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_and_run_history() {
    let h = Harness::new(ServerOptions::default()).await;
    let s = h
        .created(
            "/v1/schedules",
            r#"{"name":"alone","every":"1h","policy":"alone","on_overlap":"queue",
                "job":{"kind":"echo","args":{"x":2},"queue":"cron","labels":{"region":"eu"}}}"#,
        )
        .await;
    let id = s["id"].as_i64().unwrap();

    // Trigger: a manual run creates the job now.
    let r = h.post_empty(&format!("/v1/schedules/{id}/trigger")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let run = r.json();
    assert_eq!(run["schedule_id"], id);
    assert_eq!(run["status"], "fired");
    assert_eq!(run["outcome"], "running");
    assert_eq!(run["reason"], "manual trigger");
    assert_eq!(run["unfinished"], 1);
    assert_eq!(h.job_count().await, 1, "one trigger, one run, one job");
    let job_id = run["job_ids"][0].as_i64().unwrap();
    let job = h.get(&format!("/v1/jobs/{job_id}")).await.json();
    assert_eq!(job["schedule_id"], id);
    assert_eq!(job["queue"], "cron");
    assert_eq!(job["args"], json!({"x": 2}));
    assert_eq!(job["labels"], json!({"region": "eu"}));
    // `alone`: a second trigger while the first run is unfinished is
    // recorded as skipped.
    let run2 = h
        .post_empty(&format!("/v1/schedules/{id}/trigger"))
        .await
        .json();
    assert_eq!(run2["status"], "skipped", "{run2}");
    assert_eq!(run2["outcome"], "skipped");
    assert_eq!(run2["job_ids"], json!([]));

    // History, newest first, paginated by fire time.
    let runs = h.get(&format!("/v1/schedules/{id}/runs")).await;
    assert_eq!(runs.status, 200, "{}", runs.text());
    let runs = runs.json();
    let all = runs["runs"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{runs}");
    assert_eq!(all[0]["fire_at"], run2["fire_at"]);
    assert_eq!(all[1]["fire_at"], run["fire_at"]);
    let page = h
        .get(&format!("/v1/schedules/{id}/runs?limit=1"))
        .await
        .json();
    let next = page["next"].as_str().unwrap();
    assert_eq!(page["runs"][0]["fire_at"], run2["fire_at"]);
    let page = h
        .get(&format!("/v1/schedules/{id}/runs?limit=1&after={next}"))
        .await
        .json();
    assert_eq!(page["runs"][0]["fire_at"], run["fire_at"]);

    // Delete: gone, the jobs it created stay.
    let r = h.delete(&format!("/v1/schedules/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id);
    h.get(&format!("/v1/schedules/{id}"))
        .await
        .problem(404, "schedule_not_found");
    h.get(&format!("/v1/schedules/{id}/runs"))
        .await
        .problem(404, "schedule_not_found");
    assert_eq!(h.get(&format!("/v1/jobs/{job_id}")).await.status, 200);
    assert_eq!(h.get("/v1/schedules").await.json()["schedules"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_scheduler_fires_and_reports_runs() {
    let h = Harness::started(ServerOptions::default()).await;
    let s = h
        .created(
            "/v1/schedules",
            r#"{"name":"tick","cron":"*/1 * * * * *","job":{"kind":"echo","args":{"sleep_ms":50}}}"#,
        )
        .await;
    let uri = format!("/v1/schedules/{}", s["id"]);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let v = h.get(&uri).await.json();
            v["average_run_seconds"].is_number() && v["last_fire_at"].is_string()
        })
        .await,
        "{}",
        h.get(&uri).await.text()
    );
    let v = h.get(&uri).await.json();
    assert!(v["average_run_seconds"].as_f64().unwrap() >= 0.05, "{v}");
    let runs = h.get(&format!("{uri}/runs")).await.json();
    let done = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "succeeded")
        .unwrap_or_else(|| panic!("{runs}"));
    assert_eq!(done["status"], "fired");
    assert!(done["duration_seconds"].as_f64().unwrap() >= 0.05, "{done}");
    assert_eq!(done["unfinished"], 0);
    // Paused: no new fires.
    h.post_empty(&format!("{uri}/pause")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = h.get(&format!("{uri}/runs?limit=10000")).await.json()["runs"]
        .as_array()
        .unwrap()
        .len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = h.get(&format!("{uri}/runs?limit=10000")).await.json()["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, m, "fired while paused");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_run_of_an_execution_schedule() {
    let h = Harness::new(ServerOptions::default()).await;
    let s = h
        .created(
            "/v1/schedules",
            r#"{"name":"sync","every":"1h","job":{"kind":"echo","args":{}},
                "execution":{"owner_kind":"sync","owner_id":"eu"}}"#,
        )
        .await;
    assert_eq!(s["every"], 3600.0);
    assert_eq!(s["timezone"], Value::Null);
    assert_eq!(s["policy"], "interval");
    assert_eq!(s["on_overlap"], "skip");
    assert_eq!(s["catch_up"], "latest");
    let run = h
        .post_empty(&format!("/v1/schedules/{}/trigger", s["id"]))
        .await
        .json();
    let ex = run["execution_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{run}"));
    let e = h.get(&format!("/v1/executions/{ex}")).await.json();
    assert_eq!(e["trigger"], "schedule");
    assert_eq!(e["owner_kind"], "sync");
    assert_eq!(e["owner_id"], "eu");
    assert_eq!(e["total_jobs"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedule_requests() {
    let h = Harness::new(ServerOptions::default()).await;
    let fixture = h
        .created(
            "/v1/schedules",
            r#"{"name":"taken","cron":"0 * * * *","job":{"kind":"echo","args":{}}}"#,
        )
        .await;
    let id = fixture["id"].as_i64().unwrap();
    h.created(
        "/v1/schedules",
        r#"{"name":"other","cron":"0 * * * *","job":{"kind":"echo","args":{}}}"#,
    )
    .await;
    let sched =
        |extra: &str| format!(r#"{{"name":"s1","job":{{"kind":"echo","args":{{}}}}{extra}}}"#);
    let cron = |extra: &str| sched(&format!(r#","cron":"*/5 * * * *"{extra}"#));
    use Method as M;
    let post = |name, body: &str, code, field| {
        bad(name, M::POST, "/v1/schedules", Some(body), 422, code, field)
    };
    let uri = format!("/v1/schedules/{id}");
    let patch = |name, body: &str, status, code, field| {
        bad(name, M::PATCH, uri.clone(), Some(body), status, code, field)
    };
    let cases = vec![
        post(
            "malformed cron",
            &sched(r#","cron":"every day""#),
            "invalid_value",
            Some("cron"),
        ),
        post(
            "cron with 3 fields",
            &sched(r#","cron":"* * *""#),
            "invalid_value",
            Some("cron"),
        ),
        post(
            "cron out of range",
            &sched(r#","cron":"61 * * * *""#),
            "invalid_value",
            Some("cron"),
        ),
        post(
            "empty cron",
            &sched(r#","cron":"""#),
            "invalid_value",
            Some("cron"),
        ),
        post(
            "never fires",
            &sched(r#","cron":"0 0 30 2 *""#),
            "invalid_value",
            Some("cron"),
        ),
        post(
            "unknown time zone",
            &cron(r#","timezone":"Mars/Olympus""#),
            "invalid_value",
            Some("timezone"),
        ),
        post(
            "path in time zone",
            &cron(r#","timezone":"../../etc/passwd""#),
            "invalid_value",
            Some("timezone"),
        ),
        post(
            "both cron and every",
            &cron(r#","every":"30s""#),
            "invalid_value",
            Some("every"),
        ),
        post(
            "neither cron nor every",
            &sched(""),
            "missing_field",
            Some("cron"),
        ),
        post(
            "time zone with every",
            &sched(r#","every":"30s","timezone":"UTC""#),
            "invalid_value",
            Some("timezone"),
        ),
        post(
            "bad interval",
            &sched(r#","every":"soon""#),
            "invalid_duration",
            Some("every"),
        ),
        post(
            "zero interval",
            &sched(r#","every":0"#),
            "invalid_duration",
            Some("every"),
        ),
        post(
            "interval under 1 s",
            &sched(r#","every":"500ms""#),
            "invalid_value",
            Some("every"),
        ),
        post(
            "bad policy",
            &cron(r#","policy":"sometimes""#),
            "invalid_value",
            Some("policy"),
        ),
        post(
            "policy wrong type",
            &cron(r#","policy":1"#),
            "invalid_type",
            Some("policy"),
        ),
        post(
            "bad on_overlap",
            &cron(r#","on_overlap":"wait""#),
            "invalid_value",
            Some("on_overlap"),
        ),
        post(
            "bad catch_up",
            &cron(r#","catch_up":"always""#),
            "invalid_value",
            Some("catch_up"),
        ),
        post(
            "catch_up limit 0",
            &cron(r#","catch_up":{"all":{"limit":0}}"#),
            "invalid_value",
            Some("catch_up.all.limit"),
        ),
        post(
            "unknown field",
            &cron(r#","bogus":1"#),
            "unknown_field",
            Some("bogus"),
        ),
        post(
            "unknown job field",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo","args":{},"nope":1}}"#,
            "unknown_field",
            Some("job.nope"),
        ),
        post(
            "missing job",
            r#"{"name":"s1","cron":"* * * * *"}"#,
            "missing_field",
            Some("job"),
        ),
        post(
            "missing args",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo"}}"#,
            "missing_field",
            Some("job.args"),
        ),
        post(
            "missing name",
            r#"{"cron":"* * * * *","job":{"kind":"echo","args":{}}}"#,
            "missing_field",
            Some("name"),
        ),
        post(
            "bad name",
            r#"{"name":"a b","cron":"* * * * *","job":{"kind":"echo","args":{}}}"#,
            "invalid_value",
            Some("name"),
        ),
        post(
            "unknown kind",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"nope","args":{}}}"#,
            "unknown_kind",
            Some("job.kind"),
        ),
        post(
            "bad job queue",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo","args":{},"queue":"a b"}}"#,
            "invalid_value",
            Some("job.queue"),
        ),
        post(
            "bad job priority",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo","args":{},"priority":10}}"#,
            "invalid_value",
            Some("job.priority"),
        ),
        post(
            "bad job timeout",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo","args":{},"timeout":"-1m"}}"#,
            "invalid_duration",
            Some("job.timeout"),
        ),
        post(
            "NUL in job args",
            r#"{"name":"s1","cron":"* * * * *","job":{"kind":"echo","args":{"a":"\u0000"}}}"#,
            "invalid_value",
            Some("job.args"),
        ),
        post(
            "bad owner",
            &cron(r#","execution":{"owner_kind":"","owner_id":"1"}"#),
            "invalid_value",
            Some("execution.owner_kind"),
        ),
        post(
            "bad jitter",
            &cron(r#","backoff":{"jitter":2}"#),
            "invalid_value",
            Some("backoff.jitter"),
        ),
        post(
            "bad multiplier",
            &cron(r#","backoff":{"multiplier":0.5}"#),
            "invalid_value",
            Some("backoff.multiplier"),
        ),
        post(
            "bad backoff duration",
            &cron(r#","backoff":{"initial_interval":"x"}"#),
            "invalid_duration",
            Some("backoff.initial_interval"),
        ),
        post(
            "unknown backoff field",
            &cron(r#","backoff":{"initial":"1s"}"#),
            "unknown_field",
            Some("backoff.initial"),
        ),
        bad(
            "duplicate name",
            M::POST,
            "/v1/schedules",
            Some(r#"{"name":"taken","every":60,"job":{"kind":"echo","args":{}}}"#),
            409,
            "conflict",
            None,
        ),
        patch(
            "patch malformed cron",
            r#"{"cron":"nope"}"#,
            422,
            "invalid_value",
            Some("cron"),
        ),
        patch(
            "patch unknown time zone",
            r#"{"timezone":"Mars/Olympus"}"#,
            422,
            "invalid_value",
            Some("timezone"),
        ),
        patch(
            "patch never fires",
            r#"{"cron":"0 0 30 2 *"}"#,
            422,
            "invalid_value",
            Some("cron"),
        ),
        patch(
            "patch both rules",
            r#"{"cron":"* * * * *","every":"1m"}"#,
            422,
            "invalid_value",
            Some("every"),
        ),
        patch(
            "patch every keeping time zone",
            r#"{"every":"1m","timezone":"UTC"}"#,
            422,
            "invalid_value",
            Some("timezone"),
        ),
        patch(
            "patch bad policy",
            r#"{"policy":"never"}"#,
            422,
            "invalid_value",
            Some("policy"),
        ),
        patch(
            "patch bad duration",
            r#"{"job":{"timeout":"forever"}}"#,
            422,
            "invalid_duration",
            Some("job.timeout"),
        ),
        patch(
            "patch unknown field",
            r#"{"paused":true}"#,
            422,
            "unknown_field",
            Some("paused"),
        ),
        patch(
            "patch unknown job field",
            r#"{"job":{"delay":"1m"}}"#,
            422,
            "unknown_field",
            Some("job.delay"),
        ),
        patch(
            "patch removes name",
            r#"{"name":null}"#,
            422,
            "missing_field",
            Some("name"),
        ),
        patch("patch not an object", r#"[1]"#, 422, "invalid_type", None),
        patch(
            "patch renames (not supported by the store yet)",
            r#"{"name":"other"}"#,
            422,
            "invalid_value",
            Some("name"),
        ),
        patch(
            "patch unknown kind",
            r#"{"job":{"kind":"zzz"}}"#,
            422,
            "unknown_kind",
            Some("job.kind"),
        ),
        bad(
            "patch unknown id",
            M::PATCH,
            "/v1/schedules/999999",
            Some("{}"),
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "get unknown id",
            M::GET,
            "/v1/schedules/999999",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "delete unknown id",
            M::DELETE,
            "/v1/schedules/999999",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "pause unknown id",
            M::POST,
            "/v1/schedules/999999/pause",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "resume unknown id",
            M::POST,
            "/v1/schedules/999999/resume",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "trigger unknown id",
            M::POST,
            "/v1/schedules/999999/trigger",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "runs of unknown id",
            M::GET,
            "/v1/schedules/999999/runs",
            None,
            404,
            "schedule_not_found",
            Some("id"),
        ),
        bad(
            "non-numeric id",
            M::GET,
            "/v1/schedules/nightly",
            None,
            422,
            "invalid_parameter",
            Some("id"),
        ),
        bad(
            "runs bad limit",
            M::GET,
            format!("/v1/schedules/{id}/runs?limit=0"),
            None,
            422,
            "invalid_parameter",
            Some("limit"),
        ),
        bad(
            "runs bad cursor",
            M::GET,
            format!("/v1/schedules/{id}/runs?after=yesterday"),
            None,
            422,
            "invalid_parameter",
            Some("after"),
        ),
        bad(
            "runs unknown parameter",
            M::GET,
            format!("/v1/schedules/{id}/runs?status=fired"),
            None,
            422,
            "invalid_parameter",
            Some("status"),
        ),
    ];
    h.expect_problems(&cases).await;
    // The fixture is unchanged (a rejected PATCH writes nothing).
    assert_eq!(h.get(&uri).await.json(), fixture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_and_args_checks_follow_server_options() {
    let h = Harness::new(ServerOptions {
        accept_unknown_kinds: true,
        validate_args: Some(std::sync::Arc::new(|_: &str, args: &Value| {
            if args.get("command").is_some_and(|c| !c.is_array()) {
                return Err(rota::ValidationError::new(
                    "args.command",
                    "must be an array of strings",
                ));
            }
            Ok(())
        })),
        ..ServerOptions::default()
    })
    .await;
    let s = h
        .created(
            "/v1/schedules",
            r#"{"name":"remote","cron":"@hourly","job":{"kind":"elsewhere","args":{"command":["ls"]}}}"#,
        )
        .await;
    assert_eq!(s["job"]["kind"], "elsewhere");
    let before = h.snapshot().await;
    let r = h
        .post(
            "/v1/schedules",
            r#"{"name":"bad","cron":"@hourly","job":{"kind":"shell","args":{"command":"ls"}}}"#,
        )
        .await;
    assert_eq!(r.problem(422, "invalid_value")["field"], "job.args.command");
    let r = h
        .patch(
            &format!("/v1/schedules/{}", s["id"]),
            r#"{"job":{"args":{"command":1}}}"#,
        )
        .await;
    assert_eq!(r.problem(422, "invalid_value")["field"], "job.args.command");
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_key_cannot_mutate_schedules() {
    let mut h = Harness::new(ServerOptions {
        require_auth: true,
        ..ServerOptions::default()
    })
    .await;
    let read = h
        .client
        .create_api_key("r", ApiKeyScope::Read)
        .await
        .unwrap();
    let write = h
        .client
        .create_api_key("w", ApiKeyScope::Write)
        .await
        .unwrap();
    h.token = Some(write.token);
    let id = h
        .created(
            "/v1/schedules",
            r#"{"name":"s","every":"1h","job":{"kind":"echo","args":{}}}"#,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    h.token = Some(read.token);
    assert_eq!(h.get("/v1/schedules").await.status, 200);
    assert_eq!(h.get(&format!("/v1/schedules/{id}")).await.status, 200);
    assert_eq!(h.get(&format!("/v1/schedules/{id}/runs")).await.status, 200);
    let before = h.snapshot().await;
    let body = r#"{"name":"t","every":"1h","job":{"kind":"echo","args":{}}}"#;
    for (m, uri, b) in [
        (Method::POST, "/v1/schedules".to_owned(), Some(body)),
        (
            Method::PATCH,
            format!("/v1/schedules/{id}"),
            Some(r#"{"every":"2h"}"#),
        ),
        (Method::DELETE, format!("/v1/schedules/{id}"), None),
        (Method::POST, format!("/v1/schedules/{id}/pause"), None),
        (Method::POST, format!("/v1/schedules/{id}/resume"), None),
        (Method::POST, format!("/v1/schedules/{id}/trigger"), None),
    ] {
        h.call(m, &uri, b).await.problem(403, "insufficient_scope");
    }
    assert_eq!(h.snapshot().await, before);
}
