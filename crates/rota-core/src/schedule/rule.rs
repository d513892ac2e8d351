//! Schedule rules (cron or fixed interval), their validation, and the search
//! for the next fire time.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::job::ValidationError;

/// Time zone of a cron rule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Shortest [`ScheduleRule::Every`] interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest cron expression accepted, in bytes.
pub const MAX_CRON_LEN: usize = 256;
/// Longest time zone name accepted, in bytes.
pub const MAX_TIMEZONE_LEN: usize = 64;
/// How far [`ScheduleRule::validate`] looks for a first fire before calling a
/// rule one that can never fire. Without a year field a cron rule repeats
/// with the Gregorian calendar's 400-year cycle (146 097 days, a whole number
/// of weeks), so a rule with no fire in 400 years has none ever. A shorter
/// horizon would reject rare but real rules such as `0 0 29 2 +1` (29
/// February falling on a Monday, every 28 years or so).
pub const NEVER_FIRES_HORIZON_YEARS: i16 = 401;

/// Fixed starting point of the never-fires check (2000-01-01T00:00:00Z), so
/// validation does not depend on the current time.
const VALIDATION_REFERENCE: Timestamp = Timestamp::constant(946_684_800, 0);

/// Bound on the internal re-search loops; each step strictly advances, and
/// in practice one or two steps suffice.
const MAX_STEPS: usize = 64;

/// When a schedule fires: a cron expression evaluated on the wall clock of a
/// time zone, or a fixed interval.
///
/// Serialized with a `type` tag: `{"type": "cron", "expr": "*/5 * * * *",
/// "timezone": "Europe/Berlin"}` or `{"type": "every", "interval": 60000}`
/// (milliseconds).
///
/// # Cron expressions
///
/// Five fields (`minute hour day-of-month month day-of-week`), or six with a
/// leading seconds field (`*/1 * * * * *` fires every second). No year
/// field. The aliases `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`
/// and `@hourly` are accepted. Syntax is [croner]'s (Vixie cron plus `L`,
/// `W`, `#`, and a `+` prefix on the day-of-week field to AND it with the
/// day-of-month instead of the usual OR); names like `MON` and `JAN` are
/// case-insensitive. Steps must be written `*/n` or `a-b/n`.
///
/// # Time zones and daylight saving time
///
/// The expression matches readings of the wall clock in `timezone` (an IANA
/// name such as `Europe/Berlin`; default `UTC`, which has no transitions).
/// When the zone's clock jumps, what happens depends on the rule's style:
///
/// - **Wall-clock rules**: every rule whose seconds, minutes and hours
///   fields contain no `*` (e.g. `30 2 * * *`, `@daily`, `0 9 * * MON-FRI`,
///   `30 2,14 * * *`, `0 0-6 * * *`). Each matching wall-clock reading fires
///   **at most once**:
///   - a reading that occurs once fires then;
///   - a reading that occurs twice (the clock is set back, e.g. 02:30 on
///     2026-10-25 in Europe/Berlin, first in CEST then in CET) fires once, at
///     its *first* occurrence (02:30 CEST = 00:30 UTC); nothing fires during
///     the repeated stretch's second pass;
///   - a reading that does not occur (the clock jumps forward, e.g. 02:30 on
///     2026-03-29 in Europe/Berlin, where 02:00 CET becomes 03:00 CEST) fires
///     at the first instant after the jump (03:00 CEST = 01:00 UTC), once,
///     even when several skipped readings or the reading right at the jump
///     (`0 2,3 * * *`) match: they coincide and fire once.
///
///   So a daily `30 2 * * *` in Europe/Berlin fires exactly once on each
///   transition day: at 03:00 local on the spring-forward day, at the first
///   02:30 on the fall-back day. No fire is lost or doubled.
///
/// - **Cadence rules**: rules with a `*` (alone or as `*/n`) in the seconds,
///   minutes or hours field (e.g. `*/5 * * * *`, `@hourly`, `*/1 * * * * *`,
///   `*/10 2 * * *`). They describe a rhythm in elapsed time and keep it:
///   readings skipped by a forward jump do not fire (the rhythm carries on
///   after the jump: `@hourly` fires at 01:00 CET then 03:00 CEST, one hour
///   apart), and readings that occur twice fire at both instants (`@hourly`
///   fires at 02:00 CEST and again at 02:00 CET, one hour apart). A 5-minute
///   rule therefore fires 276 times on a 23-hour day and 300 times on a
///   25-hour day. Fire *instants* are still never repeated.
///
/// This is the behaviour of [croner] and Vixie cron (the Open Cron Pattern
/// Specification) for fixed-time and wildcard jobs, with one difference:
/// croner treats a rule as fixed-time only when seconds, minutes and hours
/// each hold a single value, so `30 2,14 * * *` would fire twice on a
/// fall-back day and not at all at 02:30 on a spring-forward day. Rota uses
/// Vixie cron's split instead (a `*` in the time fields makes a cadence
/// rule) and evaluates wall-clock rules itself, so listed and ranged times
/// get the wall-clock guarantee.
///
/// # Intervals
///
/// [`ScheduleRule::Every`] fires at every whole multiple of `interval` since
/// 1970-01-01T00:00:00Z (so `1h` fires on each UTC hour and `1d` at midnight
/// UTC), independent of time zones. Because the grid is fixed, every
/// scheduler computes the same fire times, whenever it looks.
///
/// [croner]: https://docs.rs/croner
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduleRule {
    /// A cron expression in a time zone.
    Cron {
        /// 5 or 6 fields, or an alias such as `@hourly`.
        expr: String,
        /// IANA time zone name; defaults to [`DEFAULT_TIMEZONE`].
        #[serde(default = "default_timezone")]
        timezone: String,
    },
    /// A fixed interval, aligned to the Unix epoch.
    Every {
        /// At least [`MIN_INTERVAL`], a whole number of milliseconds.
        #[serde(with = "crate::backoff::duration_ms")]
        interval: Duration,
    },
}

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_owned()
}

impl ScheduleRule {
    /// A validated cron rule; `timezone` defaults to [`DEFAULT_TIMEZONE`].
    ///
    /// Errors name the field at fault: `cron` for a malformed expression or
    /// one that can never fire, `timezone` for an unknown zone.
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<Self, ValidationError> {
        let rule = Self::Cron {
            expr: expr.trim().to_owned(),
            timezone: timezone.unwrap_or(DEFAULT_TIMEZONE).to_owned(),
        };
        rule.validate()?;
        Ok(rule)
    }

    /// A validated interval rule; the error names the field `interval`.
    pub fn every(interval: Duration) -> Result<Self, ValidationError> {
        let rule = Self::Every { interval };
        rule.validate()?;
        Ok(rule)
    }

    /// Checks the rule: a well-formed expression of 5 or 6 fields, a known
    /// time zone, an interval of at least [`MIN_INTERVAL`], and at least one
    /// fire (within [`NEVER_FIRES_HORIZON_YEARS`], which for these rules
    /// means ever). Independent of the current time.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.compile().map(drop)
    }

    /// Validates the rule and prepares it for repeated evaluation.
    pub fn compile(&self) -> Result<CompiledRule, ValidationError> {
        let compiled = match self {
            Self::Cron { expr, timezone } => {
                let cron = parse_cron(expr)?;
                let tz = parse_timezone(timezone)?;
                let p = &cron.pattern;
                let cadence =
                    p.seconds.from_wildcard || p.minutes.from_wildcard || p.hours.from_wildcard;
                CompiledRule {
                    inner: Inner::Cron {
                        cron: Box::new(cron),
                        tz,
                        cadence,
                    },
                }
            }
            Self::Every { interval } => {
                if *interval < MIN_INTERVAL {
                    return Err(ValidationError::new(
                        "interval",
                        format!("must be at least {} s", MIN_INTERVAL.as_secs()),
                    ));
                }
                if interval.subsec_nanos() % 1_000_000 != 0 {
                    return Err(ValidationError::new(
                        "interval",
                        "must be a whole number of milliseconds",
                    ));
                }
                CompiledRule {
                    inner: Inner::Every {
                        nanos: interval.as_nanos() as i128,
                    },
                }
            }
        };
        let horizon = VALIDATION_REFERENCE
            .to_zoned(TimeZone::UTC)
            .checked_add(jiff::Span::new().years(NEVER_FIRES_HORIZON_YEARS))
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX);
        if compiled
            .next_after(VALIDATION_REFERENCE)
            .is_none_or(|first| first > horizon)
        {
            let field = match self {
                Self::Cron { .. } => "cron",
                Self::Every { .. } => "interval",
            };
            return Err(ValidationError::new(
                field,
                format!("never fires: no occurrence within {NEVER_FIRES_HORIZON_YEARS} years"),
            ));
        }
        Ok(compiled)
    }

    /// The first fire strictly after `after`, or `None` if the rule is
    /// invalid or never fires again. See the type's documentation for the
    /// daylight-saving-time behaviour. For repeated calls, [`compile`] once
    /// and use [`CompiledRule::next_after`].
    ///
    /// [`compile`]: ScheduleRule::compile
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.compile().ok()?.next_after(after)
    }
}

fn parse_cron(expr: &str) -> Result<Cron, ValidationError> {
    let err = |msg: String| ValidationError::new("cron", msg);
    let expr = expr.trim();
    if expr.is_empty() {
        return Err(err("must not be empty".to_owned()));
    }
    if expr.len() > MAX_CRON_LEN {
        return Err(err(format!("must be at most {MAX_CRON_LEN} bytes")));
    }
    if !expr.starts_with('@') {
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(err(format!(
                "malformed expression {expr:?}: expected 5 fields (minute hour \
                 day-of-month month day-of-week) or 6 with a leading seconds field, \
                 got {fields}"
            )));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| err(format!("malformed expression {expr:?}: {e}")))
}

fn parse_timezone(name: &str) -> Result<TimeZone, ValidationError> {
    let unknown = || {
        ValidationError::new(
            "timezone",
            format!(
                "unknown time zone {name:?}; expected an IANA name such as \
                 \"Europe/Berlin\" or \"UTC\""
            ),
        )
    };
    // Names reach the system's zoneinfo lookup: keep them to the IANA
    // alphabet.
    let plausible = !name.is_empty()
        && name.len() <= MAX_TIMEZONE_LEN
        && !name.contains("..")
        && !name.starts_with('/')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !plausible {
        return Err(unknown());
    }
    TimeZone::get(name).map_err(|_| unknown())
}

/// A validated [`ScheduleRule`], ready for repeated evaluation (the
/// expression parsed and the time zone loaded once).
#[derive(Debug, Clone)]
pub struct CompiledRule {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Cron {
        /// Boxed: the parsed pattern is a few hundred bytes.
        cron: Box<Cron>,
        tz: TimeZone,
        /// Cadence rule (a `*` in a time field) rather than a wall-clock rule.
        cadence: bool,
    },
    Every {
        /// The interval in nanoseconds, ≥ 1 s.
        nanos: i128,
    },
}

impl CompiledRule {
    /// Whether the rule keeps an elapsed-time rhythm across clock changes
    /// (intervals and cron cadence rules) rather than firing each wall-clock
    /// reading once (cron wall-clock rules). See [`ScheduleRule`].
    pub fn is_cadence(&self) -> bool {
        match &self.inner {
            Inner::Cron { cadence, .. } => *cadence,
            Inner::Every { .. } => true,
        }
    }

    /// The first fire strictly after `after`; `None` past the last
    /// representable one (around the year 5000 for cron rules).
    ///
    /// Non-decreasing in `after`, and every result `f` is a fire:
    /// `next_after(f - 1ns) == Some(f)`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.inner {
            Inner::Cron {
                cron,
                tz,
                cadence: true,
            } => cadence_next_after(cron, tz, after),
            Inner::Cron {
                cron,
                tz,
                cadence: false,
            } => wall_clock_next_after(cron, tz, after),
            Inner::Every { nanos } => {
                let k = after.as_nanosecond().div_euclid(*nanos) + 1;
                Timestamp::from_nanosecond(k.checked_mul(*nanos)?).ok()
            }
        }
    }

    /// The newest fire in `(after, upto]`, if any.
    pub fn last_in(&self, after: Timestamp, upto: Timestamp) -> Option<Timestamp> {
        if upto <= after {
            return None;
        }
        if let Inner::Every { nanos } = &self.inner {
            let fire =
                Timestamp::from_nanosecond(upto.as_nanosecond().div_euclid(*nanos) * nanos).ok()?;
            return (fire > after).then_some(fire);
        }
        // Bisection on `next_after`, which is non-decreasing: keep
        // `next_after(lo) <= upto < next_after(hi)` (or `None`).
        let fits = |t: Timestamp| self.next_after(t).is_some_and(|f| f <= upto);
        if !fits(after) {
            return None;
        }
        let (mut lo, mut hi) = (after.as_nanosecond(), upto.as_nanosecond());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match Timestamp::from_nanosecond(mid) {
                Ok(t) if fits(t) => lo = mid,
                _ => hi = mid,
            }
        }
        self.next_after(Timestamp::from_nanosecond(lo).ok()?)
    }

    /// How many fires lie in `(after, upto]`, counting at most `cap`.
    pub fn count_in(&self, after: Timestamp, upto: Timestamp, cap: u32) -> u32 {
        if upto <= after {
            return 0;
        }
        if let Inner::Every { nanos } = &self.inner {
            let n =
                upto.as_nanosecond().div_euclid(*nanos) - after.as_nanosecond().div_euclid(*nanos);
            return u32::try_from(n).unwrap_or(u32::MAX).min(cap);
        }
        let mut count = 0;
        let mut t = after;
        while count < cap {
            match self.next_after(t) {
                Some(f) if f <= upto => {
                    count += 1;
                    t = f;
                }
                _ => break,
            }
        }
        count
    }
}

/// Cadence rules: croner's own zone-aware search, which walks real time and
/// visits both passes of a repeated stretch and skips readings in a gap.
fn cadence_next_after(cron: &Cron, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let mut from = after.to_zoned(tz.clone());
    for _ in 0..MAX_STEPS {
        let next = cron.find_next_occurrence(&from, false).ok()?;
        if next.timestamp() > after {
            return Some(next.timestamp());
        }
        from = next;
    }
    None
}

/// Wall-clock rules: croner finds the next matching *reading* (a civil date
/// and time, no zone); this maps each reading to one instant (see
/// [`reading_instant`]). The mapping is non-decreasing in the reading, so the
/// first reading whose instant lies after `after` gives the answer.
fn wall_clock_next_after(cron: &Cron, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let zoned = after.to_zoned(tz.clone());
    let reading = zoned.datetime();
    let (mut from, mut inclusive) = (reading, false);
    if let AmbiguousOffset::Fold {
        before,
        after: later,
    } = tz.to_ambiguous_timestamp(reading).offset()
        && zoned.offset() == later
        && before != later
    {
        // `after` is in the second pass of a repeated stretch, whose readings
        // all fired during the first pass: resume where the repetition ends
        // (the transition instant read with the old offset, e.g. 03:00).
        let first_pass = before.to_timestamp(reading).ok()?;
        let transition = tz.following(first_pass).next()?.timestamp();
        from = before.to_datetime(transition);
        inclusive = true;
    }
    for _ in 0..MAX_STEPS {
        let reading = cron.find_next_occurrence(&from, inclusive).ok()?;
        let (fire, resume) = reading_instant(tz, reading)?;
        if fire > after {
            return Some(fire);
        }
        from = resume;
        inclusive = false;
    }
    None
}

/// The one instant at which a wall-clock reading fires, and the reading to
/// resume the search from if that instant is not late enough.
///
/// - occurs once: that instant;
/// - occurs twice (fold): the earlier instant;
/// - never occurs (gap): the transition, i.e. the first instant after the
///   gap; the search resumes after the gap, whose readings all map there.
fn reading_instant(tz: &TimeZone, reading: DateTime) -> Option<(Timestamp, DateTime)> {
    match tz.to_ambiguous_timestamp(reading).offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            Some((offset.to_timestamp(reading).ok()?, reading))
        }
        AmbiguousOffset::Fold { before, after } => {
            let a = before.to_timestamp(reading).ok()?;
            let b = after.to_timestamp(reading).ok()?;
            Some((a.min(b), reading))
        }
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the new offset, the reading lies just before the
            // transition, which is therefore the next one.
            let before_gap = after.to_timestamp(reading).ok()?;
            let transition = tz.following(before_gap).next()?.timestamp();
            // The last reading of the gap maps to the transition as well;
            // resume from the reading at the transition (exclusive).
            let resume = after.to_datetime(transition);
            Some((transition, resume.max(reading)))
        }
    }
}

/// One nanosecond, for turning inclusive bounds into exclusive ones.
pub(crate) const NANO: SignedDuration = SignedDuration::from_nanos(1);
