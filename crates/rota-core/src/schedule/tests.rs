use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cron(expr: &str, tz: &str) -> CompiledRule {
    ScheduleRule::parse(expr, Some(tz))
        .unwrap()
        .compile()
        .unwrap()
}

fn every(secs: u64) -> CompiledRule {
    ScheduleRule::every(Duration::from_secs(secs))
        .unwrap()
        .compile()
        .unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

/// Every fire in `(from, until]`, by walking `next_after`.
fn walk(rule: &CompiledRule, from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(f) = rule.next_after(t).filter(|&f| f <= until) {
        out.push(f);
        t = f;
    }
    out
}

/// `t` on the wall clock of `tz`, with its offset: `2026-03-29 03:00:00+02:00`.
fn local(t: Timestamp, tz: &str) -> String {
    t.to_zoned(TimeZone::get(tz).unwrap())
        .strftime("%Y-%m-%d %H:%M:%S%:z")
        .to_string()
}

fn locals(fires: &[Timestamp], tz: &str) -> Vec<String> {
    fires.iter().map(|&t| local(t, tz)).collect()
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

#[test]
fn bad_cron_rules_name_their_field_and_reason() {
    let long = format!("{} * * * *", "1,".repeat(200));
    let cases: &[(&str, &str, &str, &str)] = &[
        // (expression, time zone, field, part of the message)
        ("", "UTC", "cron", "must not be empty"),
        ("   ", "UTC", "cron", "must not be empty"),
        ("* * * *", "UTC", "cron", "got 4"),
        ("0 0 0 1 1 * 2030", "UTC", "cron", "got 7"),
        (&long, "UTC", "cron", "at most 256 bytes"),
        ("61 * * * *", "UTC", "cron", "malformed expression"),
        ("* 24 * * *", "UTC", "cron", "malformed expression"),
        ("*/0 * * * *", "UTC", "cron", "malformed expression"),
        ("0/10 * * * *", "UTC", "cron", "malformed expression"),
        ("0 0 * * FUNDAY", "UTC", "cron", "malformed expression"),
        ("@reboot", "UTC", "cron", "malformed expression"),
        ("@every 5m", "UTC", "cron", "malformed expression"),
        ("0 0 30 2 *", "UTC", "cron", "never fires"),
        ("0 0 31 4,6,9,11 *", "UTC", "cron", "never fires"),
        ("0 0 0 30 2 *", "Europe/Berlin", "cron", "never fires"),
        // The expression is checked before the zone.
        ("61 * * * *", "Mars/Olympus", "cron", "malformed expression"),
        (
            "*/5 * * * *",
            "Mars/Olympus",
            "timezone",
            "unknown time zone",
        ),
        ("*/5 * * * *", "", "timezone", "unknown time zone"),
        (
            "*/5 * * * *",
            "Europe/Berlin ",
            "timezone",
            "unknown time zone",
        ),
        (
            "*/5 * * * *",
            "../../etc/passwd",
            "timezone",
            "unknown time zone",
        ),
        (
            "*/5 * * * *",
            "/etc/localtime",
            "timezone",
            "unknown time zone",
        ),
        ("*/5 * * * *", "CEST", "timezone", "unknown time zone"),
    ];
    for &(expr, tz, field, message) in cases {
        let err = ScheduleRule::parse(expr, Some(tz)).unwrap_err();
        assert_eq!(err.field, field, "{expr:?} in {tz:?}: {err}");
        assert!(
            err.message.contains(message),
            "{expr:?} in {tz:?}: {err} lacks {message:?}"
        );
        // `validate` on a rule built by hand agrees with `parse`.
        let rule = ScheduleRule::Cron {
            expr: expr.to_owned(),
            timezone: tz.to_owned(),
        };
        assert_eq!(rule.validate().unwrap_err().field, field);
        assert_eq!(rule.next_after(Timestamp::UNIX_EPOCH), None);
    }
}

#[test]
fn bad_intervals_are_rejected() {
    for interval in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_nanos(1_000_000_001),
        Duration::from_secs(500 * 366 * 86_400),
    ] {
        let err = ScheduleRule::every(interval).unwrap_err();
        assert_eq!(err.field, "interval", "{interval:?}");
    }
    assert!(ScheduleRule::every(Duration::from_secs(1)).is_ok());
    assert!(ScheduleRule::every(Duration::from_millis(1500)).is_ok());
}

#[test]
fn good_cron_rules_validate() {
    let cases = [
        ("*/1 * * * * *", "UTC"),
        ("0 30 2 * * *", "Europe/Berlin"),
        ("@hourly", "UTC"),
        ("@daily", "Europe/Berlin"),
        ("@weekly", "UTC"),
        ("@monthly", "UTC"),
        ("@yearly", "UTC"),
        ("@annually", "UTC"),
        ("0 9 * * mon-fri", "America/New_York"),
        ("0 0 L * *", "UTC"),
        ("0 12 * * 5#L", "Asia/Kathmandu"),
        ("0 0 15W * *", "UTC"),
        ("  */5 * * * *  ", "Australia/Lord_Howe"),
        // Rare but real: 29 February (every 4 years, 8 across 2100), and 29
        // February on a Monday (2016, 2044, …), beyond a 5-year horizon.
        ("0 0 29 2 *", "UTC"),
        ("0 0 29 2 +1", "UTC"),
    ];
    for (expr, tz) in cases {
        let rule = ScheduleRule::parse(expr, Some(tz)).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!(
            rule.next_after(ts("2026-01-01T00:00:00Z")).is_some(),
            "{expr}"
        );
    }
    // Parsing trims; the time zone defaults to UTC.
    assert_eq!(
        ScheduleRule::parse(" @hourly ", None).unwrap(),
        ScheduleRule::Cron {
            expr: "@hourly".into(),
            timezone: "UTC".into()
        }
    );
    let leap_monday = cron("0 0 29 2 +1", "UTC");
    assert_eq!(
        leap_monday.next_after(ts("2017-01-01T00:00:00Z")),
        Some(ts("2044-02-29T00:00:00Z"))
    );
}

#[test]
fn rule_styles() {
    for (expr, cadence) in [
        ("30 2 * * *", false),
        ("0 30 2 * * *", false),
        ("@daily", false),
        ("30 2,14 * * *", false),
        ("0 0-6 * * *", false),
        ("0 9 * * MON-FRI", false),
        ("@hourly", true),
        ("*/5 * * * *", true),
        ("*/1 * * * * *", true),
        ("* 30 2 * * *", true),
        ("*/10 2 * * *", true),
    ] {
        assert_eq!(cron(expr, "UTC").is_cadence(), cadence, "{expr}");
    }
    assert!(every(60).is_cadence());
}

#[test]
fn serde_shapes() {
    let spec: ScheduleSpec = serde_json::from_value(json!({
        "name": "nightly",
        "rule": {"type": "cron", "expr": "@daily"},
    }))
    .unwrap();
    assert_eq!(
        spec,
        ScheduleSpec::new(
            "nightly",
            ScheduleRule::Cron {
                expr: "@daily".into(),
                timezone: "UTC".into()
            }
        )
    );
    assert_eq!(spec.overlap, OverlapPolicy::Interval);
    assert_eq!(spec.on_overlap, OnOverlap::Skip);
    assert_eq!(spec.catch_up, CatchUp::Latest);

    let spec = ScheduleSpec {
        overlap: OverlapPolicy::Alone,
        on_overlap: OnOverlap::Queue,
        catch_up: CatchUp::All { limit: 5 },
        ..ScheduleSpec::new(
            "tick",
            ScheduleRule::every(Duration::from_secs(90)).unwrap(),
        )
    };
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        value,
        json!({
            "name": "tick",
            "rule": {"type": "every", "interval": 90_000},
            "overlap": "alone",
            "on_overlap": "queue",
            "catch_up": {"all": {"limit": 5}},
        })
    );
    assert_eq!(serde_json::from_value::<ScheduleSpec>(value).unwrap(), spec);
    for (policy, text) in [
        (OverlapPolicy::Common, "common"),
        (OverlapPolicy::Alone, "alone"),
        (OverlapPolicy::Interval, "interval"),
    ] {
        assert_eq!(serde_json::to_value(policy).unwrap(), json!(text));
    }
    assert_eq!(serde_json::to_value(CatchUp::None).unwrap(), json!("none"));
    assert_eq!(
        serde_json::to_value(CatchUp::Latest).unwrap(),
        json!("latest")
    );
}

#[test]
fn bad_specs_name_their_field() {
    let ok = ScheduleSpec::new(
        "reports.daily",
        ScheduleRule::parse("@daily", None).unwrap(),
    );
    assert!(ok.validate().is_ok());
    let cases: Vec<(ScheduleSpec, &str)> = vec![
        (
            ScheduleSpec {
                name: String::new(),
                ..ok.clone()
            },
            "name",
        ),
        (
            ScheduleSpec {
                name: "a b".into(),
                ..ok.clone()
            },
            "name",
        ),
        (
            ScheduleSpec {
                name: "x".repeat(129),
                ..ok.clone()
            },
            "name",
        ),
        (
            ScheduleSpec {
                rule: ScheduleRule::Cron {
                    expr: "0 0 30 2 *".into(),
                    timezone: "UTC".into(),
                },
                ..ok.clone()
            },
            "cron",
        ),
        (
            ScheduleSpec {
                rule: ScheduleRule::Cron {
                    expr: "@daily".into(),
                    timezone: "Nowhere/Special".into(),
                },
                ..ok.clone()
            },
            "timezone",
        ),
        (
            ScheduleSpec {
                rule: ScheduleRule::Every {
                    interval: Duration::from_millis(10),
                },
                ..ok.clone()
            },
            "interval",
        ),
        (
            ScheduleSpec {
                catch_up: CatchUp::All { limit: 0 },
                ..ok.clone()
            },
            "catch_up.limit",
        ),
        (
            ScheduleSpec {
                catch_up: CatchUp::All {
                    limit: MAX_CATCH_UP_LIMIT + 1,
                },
                ..ok.clone()
            },
            "catch_up.limit",
        ),
    ];
    for (spec, field) in cases {
        assert_eq!(spec.validate().unwrap_err().field, field, "{spec:?}");
    }
}

// ---------------------------------------------------------------------------
// next_after
// ---------------------------------------------------------------------------

#[test]
fn every_second_rule() {
    let rule = cron("*/1 * * * * *", "UTC");
    let t = ts("2026-05-01T10:00:00Z");
    assert_eq!(rule.next_after(t), Some(ts("2026-05-01T10:00:01Z")));
    // Strictly after, also from within a second.
    assert_eq!(
        rule.next_after(ts("2026-05-01T10:00:00.5Z")),
        Some(ts("2026-05-01T10:00:01Z"))
    );
    assert_eq!(
        rule.next_after(ts("2026-05-01T10:00:00.999999999Z")),
        Some(ts("2026-05-01T10:00:01Z"))
    );
    let fires = walk(&rule, t, t + secs(5));
    assert_eq!(fires, (1..=5).map(|s| t + secs(s)).collect::<Vec<_>>());
    // Six fields with a fixed seconds value.
    let rule = cron("15 * * * * *", "UTC");
    assert_eq!(rule.next_after(t), Some(ts("2026-05-01T10:00:15Z")));
    assert_eq!(
        rule.next_after(ts("2026-05-01T10:00:15Z")),
        Some(ts("2026-05-01T10:01:15Z"))
    );
}

#[test]
fn hourly_and_zoned_rules() {
    let hourly = cron("@hourly", "UTC");
    assert_eq!(
        hourly.next_after(ts("2026-05-01T10:00:00Z")),
        Some(ts("2026-05-01T11:00:00Z"))
    );
    assert_eq!(
        hourly.next_after(ts("2026-05-01T10:59:59.9Z")),
        Some(ts("2026-05-01T11:00:00Z"))
    );
    // Kathmandu is UTC+05:45: its hours start at a quarter past UTC hours.
    let kathmandu = cron("@hourly", "Asia/Kathmandu");
    assert_eq!(
        kathmandu.next_after(ts("2026-05-01T10:00:00Z")),
        Some(ts("2026-05-01T10:15:00Z"))
    );
    // Every 5 minutes in Berlin, winter (CET, +01:00) and summer (CEST).
    let five = cron("*/5 * * * *", "Europe/Berlin");
    assert_eq!(
        walk(
            &five,
            ts("2026-01-15T10:02:00Z"),
            ts("2026-01-15T10:12:00Z")
        ),
        [ts("2026-01-15T10:05:00Z"), ts("2026-01-15T10:10:00Z")]
    );
    assert_eq!(
        locals(
            &walk(
                &five,
                ts("2026-07-15T10:02:00Z"),
                ts("2026-07-15T10:12:00Z")
            ),
            "Europe/Berlin"
        ),
        ["2026-07-15 12:05:00+02:00", "2026-07-15 12:10:00+02:00"]
    );
    // A daily local time moves in UTC with the seasons.
    let nine = cron("0 9 * * *", "America/New_York");
    assert_eq!(
        nine.next_after(ts("2026-01-15T00:00:00Z")),
        Some(ts("2026-01-15T14:00:00Z"))
    );
    assert_eq!(
        nine.next_after(ts("2026-07-15T00:00:00Z")),
        Some(ts("2026-07-15T13:00:00Z"))
    );
}

#[test]
fn intervals_are_aligned_to_the_epoch() {
    let rule = every(90);
    assert_eq!(
        rule.next_after(Timestamp::UNIX_EPOCH),
        Some(Timestamp::from_second(90).unwrap())
    );
    let t = ts("2026-05-01T10:00:00Z"); // a multiple of 90 s
    assert_eq!(t.as_second() % 90, 0);
    assert_eq!(rule.next_after(t), Some(t + secs(90)));
    assert_eq!(rule.next_after(t - secs(1)), Some(t));
    assert_eq!(rule.next_after(t + secs(89)), Some(t + secs(90)));
    let hourly = every(3600);
    assert_eq!(
        hourly.next_after(ts("2026-05-01T10:20:00Z")),
        Some(ts("2026-05-01T11:00:00Z"))
    );
    assert_eq!(rule.next_after(Timestamp::MAX), None);
}

#[test]
fn the_ends_of_time() {
    for rule in [cron("*/1 * * * * *", BERLIN), cron("30 2 * * *", BERLIN)] {
        assert_eq!(rule.next_after(Timestamp::MAX), None);
        // croner searches no further than the end of the year 5000.
        assert_eq!(rule.next_after(ts("5001-01-01T00:00:00Z")), None);
        let early = rule.next_after(Timestamp::MIN);
        assert!(early.is_none_or(|t| t > Timestamp::MIN));
        let plan = due_fires(
            &rule,
            None,
            ts("5000-12-31T23:59:59Z"),
            ts("5001-06-01T00:00:00Z"),
            &CatchUp::None,
        );
        assert_eq!(plan.next_fire, Timestamp::MAX);
    }
}

// ---------------------------------------------------------------------------
// Daylight saving time, Europe/Berlin 2026:
// spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC),
// fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
// ---------------------------------------------------------------------------

const BERLIN: &str = "Europe/Berlin";

#[test]
fn daily_0230_on_spring_forward_fires_once_at_0300() {
    let rule = cron("30 2 * * *", BERLIN);
    let fires = walk(
        &rule,
        ts("2026-03-27T12:00:00Z"),
        ts("2026-03-31T12:00:00Z"),
    );
    assert_eq!(
        locals(&fires, BERLIN),
        [
            "2026-03-28 02:30:00+01:00",
            "2026-03-29 03:00:00+02:00", // 02:30 does not exist: first instant after the jump
            "2026-03-30 02:30:00+02:00",
            "2026-03-31 02:30:00+02:00",
        ]
    );
    assert_eq!(fires[1], ts("2026-03-29T01:00:00Z"));
    // From just before the jump, and from inside the hour before it.
    assert_eq!(
        rule.next_after(ts("2026-03-29T00:59:59Z")),
        Some(ts("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        rule.next_after(ts("2026-03-29T01:00:00Z")),
        Some(ts("2026-03-30T00:30:00Z"))
    );
}

#[test]
fn daily_0230_on_fall_back_fires_once_at_the_first_0230() {
    let rule = cron("30 2 * * *", BERLIN);
    let fires = walk(
        &rule,
        ts("2026-10-23T12:00:00Z"),
        ts("2026-10-27T12:00:00Z"),
    );
    assert_eq!(
        locals(&fires, BERLIN),
        [
            "2026-10-24 02:30:00+02:00",
            "2026-10-25 02:30:00+02:00", // the first 02:30; the second (CET) does not fire
            "2026-10-26 02:30:00+01:00",
            "2026-10-27 02:30:00+01:00",
        ]
    );
    assert_eq!(fires[1], ts("2026-10-25T00:30:00Z"));
    // Asked from within either pass of the repeated hour: the next fire is
    // the following day.
    for after in [
        "2026-10-25T00:30:00Z", // 02:30 CEST, the fire itself
        "2026-10-25T00:40:00Z", // 02:40 CEST, first pass
        "2026-10-25T01:00:00Z", // 02:00 CET, second pass starts
        "2026-10-25T01:10:00Z", // 02:10 CET
        "2026-10-25T01:30:00Z", // 02:30 CET
        "2026-10-25T01:59:59Z", // 02:59:59 CET
    ] {
        assert_eq!(
            rule.next_after(ts(after)),
            Some(ts("2026-10-26T01:30:00Z")),
            "after {after}"
        );
    }
    assert_eq!(
        rule.next_after(ts("2026-10-25T00:29:59Z")),
        Some(ts("2026-10-25T00:30:00Z"))
    );
}

#[test]
fn fixed_time_rule_matches_croner_itself() {
    // For a single fixed time, croner's own zone-aware search gives the same
    // fires as Rota's wall-clock evaluation on both transition days.
    let tz = TimeZone::get(BERLIN).unwrap();
    let raw = Cron::from_str("30 2 * * *").unwrap();
    let rule = cron("30 2 * * *", BERLIN);
    for start in ["2026-03-27T12:00:00Z", "2026-10-23T12:00:00Z"] {
        let mut z: Zoned = ts(start).to_zoned(tz.clone());
        let mut t = ts(start);
        for _ in 0..4 {
            z = raw.find_next_occurrence(&z, false).unwrap();
            t = rule.next_after(t).unwrap();
            assert_eq!(z.timestamp(), t);
        }
    }
}

#[test]
fn listed_hours_get_the_wall_clock_guarantee_croner_alone_would_not_give() {
    let rule = cron("30 2,14 * * *", BERLIN);
    assert!(!rule.is_cadence());
    let spring = walk(
        &rule,
        ts("2026-03-28T22:00:00Z"),
        ts("2026-03-29T21:59:59Z"),
    );
    assert_eq!(
        locals(&spring, BERLIN),
        ["2026-03-29 03:00:00+02:00", "2026-03-29 14:30:00+02:00"]
    );
    let fall = walk(
        &rule,
        ts("2026-10-24T22:00:00Z"),
        ts("2026-10-25T22:59:59Z"),
    );
    assert_eq!(
        locals(&fall, BERLIN),
        ["2026-10-25 02:30:00+02:00", "2026-10-25 14:30:00+01:00"]
    );
    // croner classes this pattern as an interval job: on its own it fires
    // twice at 02:30 on the fall-back day (and skips 02:30 in spring).
    let tz = TimeZone::get(BERLIN).unwrap();
    let raw = Cron::from_str("30 2,14 * * *").unwrap();
    let mut z = ts("2026-10-24T22:00:00Z").to_zoned(tz);
    let mut raw_fall = Vec::new();
    for _ in 0..3 {
        z = raw.find_next_occurrence(&z, false).unwrap();
        raw_fall.push(z.timestamp());
    }
    assert_eq!(
        locals(&raw_fall, BERLIN),
        [
            "2026-10-25 02:30:00+02:00",
            "2026-10-25 02:30:00+01:00",
            "2026-10-25 14:30:00+01:00"
        ]
    );
}

#[test]
fn readings_in_the_gap_and_at_its_end_fire_once() {
    // 02:00 does not exist on 2026-03-29 and maps to 03:00, which the rule
    // also names: one fire.
    let rule = cron("0 2,3 * * *", BERLIN);
    let fires = walk(
        &rule,
        ts("2026-03-28T22:00:00Z"),
        ts("2026-03-30T21:59:59Z"),
    );
    assert_eq!(
        locals(&fires, BERLIN),
        [
            "2026-03-29 03:00:00+02:00",
            "2026-03-30 02:00:00+02:00",
            "2026-03-30 03:00:00+02:00",
        ]
    );
    // A range wholly inside the gap collapses into one fire too.
    let rule = cron("0 0,10,20,30,40,50 2 * * *", BERLIN);
    let fires = walk(
        &rule,
        ts("2026-03-28T22:00:00Z"),
        ts("2026-03-29T21:59:59Z"),
    );
    assert_eq!(locals(&fires, BERLIN), ["2026-03-29 03:00:00+02:00"]);
    // On the fall-back day the same rule fires six times, in the first pass.
    let fires = walk(
        &rule,
        ts("2026-10-24T22:00:00Z"),
        ts("2026-10-25T22:59:59Z"),
    );
    assert_eq!(fires.len(), 6);
    assert!(fires.iter().all(|f| local(*f, BERLIN).ends_with("+02:00")));
}

#[test]
fn cadence_rules_keep_elapsed_time_across_transitions() {
    let hourly = cron("@hourly", BERLIN);
    assert_eq!(
        locals(
            &walk(
                &hourly,
                ts("2026-03-28T23:30:00Z"),
                ts("2026-03-29T02:30:00Z")
            ),
            BERLIN
        ),
        [
            "2026-03-29 01:00:00+01:00",
            "2026-03-29 03:00:00+02:00", // 02:00 does not exist; an hour later
            "2026-03-29 04:00:00+02:00",
        ]
    );
    assert_eq!(
        locals(
            &walk(
                &hourly,
                ts("2026-10-24T23:30:00Z"),
                ts("2026-10-25T02:30:00Z")
            ),
            BERLIN
        ),
        [
            "2026-10-25 02:00:00+02:00",
            "2026-10-25 02:00:00+01:00", // the repeated 02:00 fires again, an hour later
            "2026-10-25 03:00:00+01:00",
        ]
    );
    // Every five minutes: 276 fires on the 23-hour day, 300 on the 25-hour
    // day, 288 on an ordinary one; always five minutes apart.
    let five = cron("*/5 * * * *", BERLIN);
    for (day_start, day_end, n) in [
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 276),
        ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 300),
        ("2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z", 288),
    ] {
        let fires = walk(&five, ts(day_start) - secs(1), ts(day_end) - secs(1));
        assert_eq!(fires.len(), n, "{day_start}");
        assert!(
            fires
                .windows(2)
                .all(|w| w[0].duration_until(w[1]) == secs(300))
        );
    }
    // Every second, straight through both transitions.
    let every_second = cron("*/1 * * * * *", BERLIN);
    for at in ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"] {
        let fires = walk(&every_second, ts(at) - secs(3), ts(at) + secs(2));
        assert_eq!(
            fires,
            (-2..=2).map(|s| ts(at) + secs(s)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn half_hour_transitions_lord_howe() {
    // Lord Howe Island shifts by 30 minutes: +10:30 in winter, +11:00 in
    // summer. 2026-04-05 02:00 -> 01:30; 2026-10-04 02:00 -> 02:30.
    const LH: &str = "Australia/Lord_Howe";
    let gap = cron("15 2 * * *", LH);
    let fires = walk(&gap, ts("2026-10-02T12:00:00Z"), ts("2026-10-04T12:00:00Z"));
    assert_eq!(
        locals(&fires, LH),
        ["2026-10-03 02:15:00+10:30", "2026-10-04 02:30:00+11:00"]
    );
    let fold = cron("45 1 * * *", LH);
    let fires = walk(
        &fold,
        ts("2026-04-04T00:00:00Z"),
        ts("2026-04-06T00:00:00Z"),
    );
    assert_eq!(
        locals(&fires, LH),
        ["2026-04-05 01:45:00+11:00", "2026-04-06 01:45:00+10:30"]
    );
}

// ---------------------------------------------------------------------------
// due_fires
// ---------------------------------------------------------------------------

#[test]
fn due_fires_by_policy() {
    let rule = cron("@hourly", "UTC");
    let h = |s: &str| ts(&format!("2026-05-01T{s}Z"));
    let all = |limit| CatchUp::All { limit };
    // (last_fire, next_fire, now, catch-up, fires, skipped, next)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(Option<&str>, &str, &str, CatchUp, Vec<&str>, u32, &str)> = vec![
        // Nothing due yet: unchanged.
        (
            None,
            "10:00:00",
            "09:59:59",
            CatchUp::None,
            vec![],
            0,
            "10:00:00",
        ),
        // On time (within 60 s): runs under every policy.
        (
            None,
            "10:00:00",
            "10:00:00",
            CatchUp::None,
            vec!["10:00:00"],
            0,
            "11:00:00",
        ),
        (
            None,
            "10:00:00",
            "10:01:00",
            CatchUp::None,
            vec!["10:00:00"],
            0,
            "11:00:00",
        ),
        (
            None,
            "10:00:00",
            "10:01:00",
            CatchUp::Latest,
            vec!["10:00:00"],
            0,
            "11:00:00",
        ),
        (
            None,
            "10:00:00",
            "10:01:00",
            all(3),
            vec!["10:00:00"],
            0,
            "11:00:00",
        ),
        // 61 s late: missed.
        (
            None,
            "10:00:00",
            "10:01:01",
            CatchUp::None,
            vec![],
            1,
            "11:00:00",
        ),
        (
            None,
            "10:00:00",
            "10:01:01",
            CatchUp::Latest,
            vec!["10:00:00"],
            0,
            "11:00:00",
        ),
        // Down from before 10:00 until 13:30: four fires missed.
        (
            None,
            "10:00:00",
            "13:30:00",
            CatchUp::None,
            vec![],
            4,
            "14:00:00",
        ),
        (
            None,
            "10:00:00",
            "13:30:00",
            CatchUp::Latest,
            vec!["13:00:00"],
            3,
            "14:00:00",
        ),
        (
            None,
            "10:00:00",
            "13:30:00",
            all(2),
            vec!["12:00:00", "13:00:00"],
            2,
            "14:00:00",
        ),
        (
            None,
            "10:00:00",
            "13:30:00",
            all(10),
            vec!["10:00:00", "11:00:00", "12:00:00", "13:00:00"],
            0,
            "14:00:00",
        ),
        // Back 45 s after 13:00: that one is on time, the older three missed.
        (
            None,
            "10:00:00",
            "13:00:45",
            CatchUp::None,
            vec!["13:00:00"],
            3,
            "14:00:00",
        ),
        (
            None,
            "10:00:00",
            "13:00:45",
            CatchUp::Latest,
            vec!["13:00:00"],
            3,
            "14:00:00",
        ),
        (
            None,
            "10:00:00",
            "13:00:45",
            all(2),
            vec!["11:00:00", "12:00:00", "13:00:00"],
            1,
            "14:00:00",
        ),
        // A stale next_fire (crash after recording 12:00) never repeats a fire.
        (
            Some("12:00:00"),
            "11:00:00",
            "12:30:00",
            all(10),
            vec![],
            0,
            "13:00:00",
        ),
        (
            Some("12:00:00"),
            "12:00:00",
            "13:00:10",
            all(10),
            vec!["13:00:00"],
            0,
            "14:00:00",
        ),
        // A next_fire off the grid (set by "trigger now") is honoured once.
        (
            Some("10:00:00"),
            "10:17:00",
            "10:17:05",
            CatchUp::None,
            vec!["10:17:00"],
            0,
            "11:00:00",
        ),
        (
            None,
            "10:17:00",
            "11:00:30",
            CatchUp::None,
            vec!["11:00:00"],
            1,
            "12:00:00",
        ),
    ];
    for (last, next, now, catch_up, fires, skipped, next_after) in cases {
        let plan = due_fires(&rule, last.map(h), h(next), h(now), &catch_up);
        let want = FirePlan {
            fires: fires.into_iter().map(h).collect(),
            skipped_missed: skipped,
            next_fire: h(next_after),
        };
        assert_eq!(
            plan, want,
            "last {last:?} next {next} now {now} {catch_up:?}"
        );
    }
}

#[test]
fn long_backlogs_stay_cheap_and_bounded() {
    // A per-second schedule whose schedulers were down for a day.
    let rule = cron("*/1 * * * * *", "UTC");
    let start = ts("2026-05-01T00:00:00Z");
    let now = start + secs(86_400);
    let on_time: Vec<Timestamp> = (0..=60).rev().map(|s| now - secs(s)).collect();

    let none = due_fires(&rule, None, start, now, &CatchUp::None);
    assert_eq!(none.fires, on_time);
    assert_eq!(none.skipped_missed, MAX_COUNTED_MISSED);
    assert_eq!(none.next_fire, now + secs(1));
    // Fires were on time: Latest adds nothing.
    assert_eq!(due_fires(&rule, None, start, now, &CatchUp::Latest), none);

    let limit = MAX_CATCH_UP_LIMIT;
    let plan = due_fires(&rule, None, start, now, &CatchUp::All { limit });
    let want: Vec<Timestamp> = (0..=i64::from(limit) + 60)
        .rev()
        .map(|s| now - secs(s))
        .collect();
    assert_eq!(plan.fires, want);
    assert_eq!(plan.skipped_missed, MAX_COUNTED_MISSED - limit);
    // Limits beyond the maximum are clamped.
    let huge = due_fires(&rule, None, start, now, &CatchUp::All { limit: u32::MAX });
    assert_eq!(huge, plan);

    // The same for an interval rule, whose arithmetic path differs.
    let rule = every(1);
    assert_eq!(
        due_fires(&rule, None, start, now, &CatchUp::All { limit }),
        plan
    );
}

#[test]
fn due_fires_across_fall_back_for_a_wall_clock_rule() {
    // Scheduler ticks every 10 minutes through the night of 2026-10-25:
    // the daily 02:30 fires exactly once.
    let rule = cron("30 2 * * *", BERLIN);
    let mut now = ts("2026-10-24T22:00:00Z");
    let mut next = rule.next_after(now).unwrap();
    let mut last = None;
    let mut fired = Vec::new();
    while now < ts("2026-10-25T06:00:00Z") {
        now += secs(600);
        let plan = due_fires(&rule, last, next, now, &CatchUp::None);
        fired.extend(&plan.fires);
        last = plan.fires.last().copied().or(last);
        next = plan.next_fire;
    }
    assert_eq!(locals(&fired, BERLIN), ["2026-10-25 02:30:00+02:00"]);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Rules exercised by the properties, with the largest scheduler pause used
/// for each (so `All` with the maximum limit never has to drop a fire).
fn sample_rules() -> Vec<(CompiledRule, i64)> {
    vec![
        (cron("*/1 * * * * *", "UTC"), 900),
        (cron("*/7 * * * * *", BERLIN), 5400),
        (cron("*/5 * * * *", BERLIN), 6 * 3600),
        (cron("@hourly", BERLIN), 12 * 3600),
        (cron("30 2 * * *", BERLIN), 36 * 3600),
        (cron("0 2,3 * * *", BERLIN), 36 * 3600),
        (cron("15 1,2 * * *", "Australia/Lord_Howe"), 36 * 3600),
        (every(90), 12 * 3600),
        (every(3600), 36 * 3600),
    ]
}

/// Instants near the 2026 transitions in Berlin and Lord Howe, and an
/// ordinary day.
fn around_transitions() -> impl Strategy<Value = Timestamp> {
    let bases = [
        ts("2026-03-29T01:00:00Z"),
        ts("2026-10-25T01:00:00Z"),
        ts("2026-04-04T15:00:00Z"),
        ts("2026-10-03T15:30:00Z"),
        ts("2026-06-15T12:00:00Z"),
    ];
    (
        0..bases.len(),
        -30 * 3600_i64..30 * 3600,
        0..1_000_000_000_i32,
    )
        .prop_map(move |(i, s, ns)| bases[i] + secs(s) + SignedDuration::from_nanos(i64::from(ns)))
}

fn catch_up_strategy() -> impl Strategy<Value = CatchUp> {
    prop_oneof![
        Just(CatchUp::None),
        Just(CatchUp::Latest),
        (1..5_u32).prop_map(|limit| CatchUp::All { limit }),
        Just(CatchUp::All {
            limit: MAX_CATCH_UP_LIMIT
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `next_after` returns the very next fire: strictly later, itself a
    /// fire, with no fire in between, and non-decreasing.
    #[test]
    fn next_after_is_the_next_fire(
        idx in 0..9_usize,
        t in around_transitions(),
        gap in 0..7200_i64,
    ) {
        let rules = sample_rules();
        let rule = &rules[idx].0;
        let f = rule.next_after(t).unwrap();
        prop_assert!(f > t);
        prop_assert_eq!(rule.next_after(f - SignedDuration::from_nanos(1)), Some(f));
        let t2 = t + secs(gap);
        let f2 = rule.next_after(t2).unwrap();
        prop_assert!(f2 >= f);
        if t2 < f {
            prop_assert_eq!(f2, f);
        }
    }

    /// `last_in` and `count_in` agree with walking forward.
    #[test]
    fn backwards_search_agrees_with_walking(
        idx in 0..9_usize,
        t in around_transitions(),
        len in 0..(3 * 3600_i64),
    ) {
        let rules = sample_rules();
        let rule = &rules[idx].0;
        let upto = t + secs(len);
        let fires = walk(rule, t, upto);
        prop_assert_eq!(rule.last_in(t, upto), fires.last().copied());
        prop_assert_eq!(rule.count_in(t, upto, u32::MAX) as usize, fires.len());
        prop_assert_eq!(rule.count_in(t, upto, 3) as usize, fires.len().min(3));
    }

    /// A scheduler calling `due_fires` again and again, with pauses and
    /// crashes that lose the `next_fire` write, never records a fire twice,
    /// only records real fires, and with `All` (pauses within the limit) or
    /// with short pauses records every fire.
    #[test]
    fn repeated_scheduling_fires_each_time_once(
        idx in 0..9_usize,
        created in around_transitions(),
        steps in prop::collection::vec((0.0..1.0_f64, any::<bool>(), 0..10_u8), 1..30),
        catch_up in catch_up_strategy(),
        short in any::<bool>(),
    ) {
        let rules = sample_rules();
        let (rule, max_pause) = (&rules[idx].0, rules[idx].1);
        let max_pause = if short { 60 } else { max_pause };
        let first = rule.next_after(created).unwrap();
        let (mut last, mut next, mut now) = (None, first, created);
        let mut seen = BTreeSet::new();
        let mut skipped = 0_u64;
        let mut crashed = false;
        for (pause, crash, nanos) in steps {
            now += secs((pause * max_pause as f64) as i64) + SignedDuration::from_nanos(i64::from(nanos));
            let plan = due_fires(rule, last, next, now, &catch_up);
            prop_assert!(plan.next_fire > now);
            prop_assert!(plan.fires.windows(2).all(|w| w[0] < w[1]));
            let due = walk(rule, last.unwrap_or(first - SignedDuration::from_nanos(1)).max(
                next - SignedDuration::from_nanos(1)), now);
            for &f in &plan.fires {
                prop_assert!(f <= now);
                prop_assert!(last.is_none_or(|l| f > l));
                prop_assert!(due.contains(&f), "{} is not a due fire", f);
                prop_assert!(seen.insert(f), "{} recorded twice", f);
            }
            prop_assert_eq!(plan.fires.len() + plan.skipped_missed as usize, due.len());
            if let CatchUp::Latest = catch_up {
                prop_assert_eq!(plan.fires.last(), due.last());
            }
            skipped += u64::from(plan.skipped_missed);
            last = plan.fires.last().copied().or(last);
            if crash && !crashed {
                // The fires were recorded but the new next_fire was lost; the
                // skipped ones will be offered again, so stop the accounting.
                crashed = true;
            } else {
                next = plan.next_fire;
            }
        }
        let all = walk(rule, first - SignedDuration::from_nanos(1), now);
        let complete = matches!(catch_up, CatchUp::All { limit: MAX_CATCH_UP_LIMIT }) || short;
        if complete {
            prop_assert_eq!(seen.iter().copied().collect::<Vec<_>>(), all.clone());
        }
        if !crashed {
            prop_assert_eq!(seen.len() as u64 + skipped, all.len() as u64);
        }
    }
}
