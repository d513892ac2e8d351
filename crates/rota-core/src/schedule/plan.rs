//! Which fires a scheduler records now: the due fires of a schedule, sorted
//! out by the catch-up policy.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::CatchUp;
use super::rule::{CompiledRule, NANO};
use crate::clock;

/// How late a fire may be recorded and still count as on time rather than
/// missed: 60 s. A fire is on time when `now - fire <= ON_TIME_TOLERANCE`.
///
/// This absorbs scheduler tick lag, a slow transaction, or a leader change,
/// so a schedule is not treated as "missed" because its scheduler looked a
/// few seconds late. On-time fires always run, whatever the [`CatchUp`]
/// policy; only older fires are subject to it.
pub const ON_TIME_TOLERANCE: Duration = Duration::from_secs(60);

/// Most missed fires [`due_fires`] counts in [`FirePlan::skipped_missed`];
/// larger backlogs (a week of a per-second schedule, say) report this
/// number, so that working out a plan stays cheap.
pub const MAX_COUNTED_MISSED: u32 = 10_000;

/// Highest [`CatchUp::All`] limit; [`due_fires`] clamps larger ones to it.
pub const MAX_CATCH_UP_LIMIT: u32 = 1_000;

/// What a scheduler should do for a schedule at one instant: the output of
/// [`due_fires`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirePlan {
    /// Fire times to record now, strictly increasing, each at most `now`.
    /// Record each exactly once, keyed by (schedule, fire time).
    pub fires: Vec<Timestamp>,
    /// Due fires that were missed (older than [`ON_TIME_TOLERANCE`]) and are
    /// not in `fires` because the catch-up policy drops them. Counted up to
    /// [`MAX_COUNTED_MISSED`].
    pub skipped_missed: u32,
    /// The next fire time to store: strictly after `now` (or
    /// [`Timestamp::MAX`] if the rule never fires again).
    pub next_fire: Timestamp,
}

/// Works out which fires of a schedule to record at `now`.
///
/// Inputs are the schedule's stored state:
/// - `next_fire`: the stored time of the next fire (the one that became
///   due). It is trusted as the first due fire even if it is not on the
///   rule's grid (e.g. set by "trigger now" or by an earlier rule); later
///   fires come from [`CompiledRule::next_after`].
/// - `last_fire`: the newest fire already recorded, if any. Fires at or before
///   it are never returned again, even if a crash left `next_fire` stale
///   (≤ `last_fire`): the due fires then start after `last_fire`.
///
/// If `next_fire > now`, nothing is due: no fires, and `next_fire` is
/// returned unchanged. Otherwise the *due* fires are `next_fire` and every
/// rule fire after it up to and including `now`. Each due fire is *on time*
/// if `now - fire <=` [`ON_TIME_TOLERANCE`] (60 s) and *missed* otherwise.
/// On-time fires are always returned; the catch-up policy decides about
/// missed ones:
/// - [`CatchUp::None`]: no missed fire runs.
/// - [`CatchUp::Latest`]: the newest due fire always runs, even if missed;
///   so if no fire is on time, the newest missed one runs and older missed
///   ones are skipped.
/// - [`CatchUp::All`]: the newest `limit` missed fires run (`limit` clamped to
///   [`MAX_CATCH_UP_LIMIT`]); older ones are skipped.
///
/// `fires` are oldest first. The returned `next_fire` is the rule's first
/// fire after `now`.
///
/// A scheduler that stores the returned `next_fire` (and the newest returned
/// fire as `last_fire`) and calls again later with a larger `now` never gets
/// the same fire twice, and with [`CatchUp::All`] and a large enough limit,
/// or with calls less than [`ON_TIME_TOLERANCE`] apart, gets every fire.
///
/// Pure and deterministic: the same inputs give the same plan on every node.
pub fn due_fires(
    rule: &CompiledRule,
    last_fire: Option<Timestamp>,
    next_fire: Timestamp,
    now: Timestamp,
    catch_up: &CatchUp,
) -> FirePlan {
    let first = match last_fire {
        Some(last) if next_fire <= last => rule.next_after(last).unwrap_or(Timestamp::MAX),
        _ => next_fire,
    };
    if first > now {
        return FirePlan {
            fires: Vec::new(),
            skipped_missed: 0,
            next_fire: first,
        };
    }

    // Fires before `boundary` are missed; from it on, on time.
    let boundary = clock::sub(now, ON_TIME_TOLERANCE);
    let mut on_time = Vec::new();
    let mut t = if first >= boundary {
        on_time.push(first);
        first
    } else {
        boundary
            .saturating_sub(NANO)
            .unwrap_or(Timestamp::MIN)
            .max(first)
    };
    while let Some(fire) = rule.next_after(t).filter(|&f| f <= now) {
        on_time.push(fire);
        t = fire;
    }

    let (mut fires, skipped_missed) = if first < boundary {
        let keep = match catch_up {
            CatchUp::None => 0,
            CatchUp::Latest => usize::from(on_time.is_empty()),
            CatchUp::All { limit } => (*limit).min(MAX_CATCH_UP_LIMIT) as usize,
        };
        let end = boundary.saturating_sub(NANO).unwrap_or(Timestamp::MIN);
        let (count, newest) = missed(rule, first, end, keep);
        let skipped = count.saturating_sub(newest.len() as u32);
        (newest, skipped)
    } else {
        (Vec::new(), 0)
    };
    fires.extend(on_time);
    FirePlan {
        fires,
        skipped_missed,
        next_fire: rule.next_after(now).unwrap_or(Timestamp::MAX),
    }
}

/// The missed fires `first` and the rule's fires in `(first, end]`: how many
/// (up to [`MAX_COUNTED_MISSED`]) and the newest `keep` of them, oldest
/// first.
fn missed(
    rule: &CompiledRule,
    first: Timestamp,
    end: Timestamp,
    keep: usize,
) -> (u32, Vec<Timestamp>) {
    let mut newest = VecDeque::with_capacity(keep.min(64));
    let remember = |fire: Timestamp, newest: &mut VecDeque<Timestamp>| {
        if keep > 0 {
            if newest.len() == keep {
                newest.pop_front();
            }
            newest.push_back(fire);
        }
    };
    remember(first, &mut newest);
    let mut count = 1;
    let mut t = first;
    while count < MAX_COUNTED_MISSED {
        match rule.next_after(t).filter(|&f| f <= end) {
            Some(fire) => {
                count += 1;
                remember(fire, &mut newest);
                t = fire;
            }
            None => return (count, newest.into()),
        }
    }
    // The backlog is longer than we walk: find its newest fires backwards.
    let mut newest = Vec::with_capacity(keep);
    let mut upto = end;
    while newest.len() < keep {
        match rule.last_in(first, upto) {
            Some(fire) => {
                newest.push(fire);
                upto = fire.saturating_sub(NANO).unwrap_or(Timestamp::MIN);
            }
            None => {
                newest.push(first);
                break;
            }
        }
    }
    newest.reverse();
    (count, newest)
}
