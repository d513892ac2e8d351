use proptest::prelude::*;

use super::*;

/// The lifecycle edges from PRODUCT.md, written independently of
/// `TRANSITIONS` so the two check each other.
const EDGES: &[(JobState, JobState)] = &[
    (S::Scheduled, S::Available),
    (S::Scheduled, S::Canceled),
    (S::Available, S::Running),
    (S::Available, S::Canceled),
    (S::Running, S::Running),
    (S::Running, S::Succeeded),
    (S::Running, S::Retrying),
    (S::Running, S::Failed),
    (S::Running, S::Canceled),
    (S::Running, S::Scheduled),
    (S::Running, S::Available),
    (S::Retrying, S::Available),
    (S::Retrying, S::Canceled),
    (S::Succeeded, S::Available),
    (S::Failed, S::Available),
    (S::Canceled, S::Available),
];

const EVENTS: [JobEvent; 11] = [
    E::Promote,
    E::Claim,
    E::Succeed,
    E::Error,
    E::Fatal,
    E::Snooze,
    E::Cancel,
    E::CancelAck,
    E::Rescue,
    E::HandBack,
    E::Retry,
];

#[test]
fn table_driven_transitions() {
    // (from, event, attempt, max, expected)
    type Case = (JobState, JobEvent, u32, u32, Option<(JobState, u32)>);
    let cases: &[Case] = &[
        (S::Scheduled, E::Promote, 0, 3, Some((S::Available, 0))),
        (S::Scheduled, E::Claim, 0, 3, None),
        (S::Available, E::Claim, 0, 3, Some((S::Running, 1))),
        (S::Available, E::Claim, 3, 3, None),
        (S::Available, E::Succeed, 0, 3, None),
        (S::Running, E::Succeed, 1, 3, Some((S::Succeeded, 1))),
        (S::Running, E::Error, 1, 3, Some((S::Retrying, 1))),
        (S::Running, E::Error, 3, 3, Some((S::Failed, 3))),
        (S::Running, E::Fatal, 1, 3, Some((S::Failed, 1))),
        (S::Running, E::Snooze, 2, 3, Some((S::Scheduled, 1))),
        (S::Running, E::Cancel, 1, 3, Some((S::Running, 1))),
        (S::Running, E::CancelAck, 1, 3, Some((S::Canceled, 1))),
        (S::Running, E::Rescue, 1, 3, Some((S::Retrying, 1))),
        (S::Running, E::Rescue, 3, 3, Some((S::Failed, 3))),
        (S::Running, E::HandBack, 1, 3, Some((S::Available, 1))),
        (S::Running, E::HandBack, 3, 3, Some((S::Failed, 3))),
        (S::Running, E::Retry, 1, 3, None),
        (S::Retrying, E::Promote, 1, 3, Some((S::Available, 1))),
        (S::Retrying, E::Cancel, 1, 3, Some((S::Canceled, 1))),
        (S::Retrying, E::Retry, 1, 3, Some((S::Available, 1))),
        (S::Succeeded, E::Cancel, 1, 3, None),
        (S::Succeeded, E::Retry, 1, 3, Some((S::Available, 0))),
        (S::Failed, E::Retry, 3, 3, Some((S::Available, 0))),
        (S::Canceled, E::Retry, 1, 3, Some((S::Available, 0))),
        (S::Canceled, E::Cancel, 1, 3, None),
        (S::Failed, E::Promote, 1, 3, None),
        (S::Available, E::Rescue, 1, 3, None),
    ];
    for &(from, event, attempt, max, expected) in cases {
        let got = from
            .apply(event, attempt, max)
            .ok()
            .map(|s| (s.to, s.attempt));
        assert_eq!(
            got, expected,
            "{from} + {event:?} (attempt {attempt}/{max})"
        );
    }
}

#[test]
fn every_transition_is_a_lifecycle_edge() {
    for r in TRANSITIONS {
        assert!(
            EDGES.contains(&(r.from, r.to)),
            "{:?} is not in the lifecycle",
            r
        );
    }
}

#[test]
fn guards_never_overlap() {
    for from in JobState::ALL {
        for event in EVENTS {
            for (attempt, max) in [(0, 1), (1, 1), (2, 1), (1, 3)] {
                let n = TRANSITIONS
                    .iter()
                    .filter(|r| {
                        r.from == from
                            && r.event == event
                            && match r.guard {
                                Guard::Always => true,
                                Guard::AttemptsLeft => attempt < max,
                                Guard::AttemptsExhausted => attempt >= max,
                            }
                    })
                    .count();
                assert!(n <= 1, "{from} + {event:?} is ambiguous");
            }
        }
    }
}

#[test]
fn names_round_trip() {
    for s in JobState::ALL {
        assert_eq!(s.as_str().parse::<JobState>(), Ok(s));
    }
    assert!("done".parse::<JobState>().is_err());
}

fn event() -> impl Strategy<Value = JobEvent> {
    proptest::sample::select(EVENTS.to_vec())
}

proptest! {
    #[test]
    fn random_event_sequences_keep_invariants(
        max in 1u32..6,
        events in proptest::collection::vec(event(), 0..200),
    ) {
        let mut state = JobState::Available;
        let mut attempt = 0u32;
        for event in events {
            match state.apply(event, attempt, max) {
                Ok(step) => {
                    // No transition skips a state.
                    prop_assert!(EDGES.contains(&(state, step.to)), "{state} -> {}", step.to);
                    // Terminal states are left only by an explicit retry.
                    if state.is_finished() {
                        prop_assert_eq!(event, E::Retry);
                        prop_assert_eq!(step.attempt, 0);
                    }
                    // Attempts never exceed the maximum.
                    prop_assert!(step.attempt <= max);
                    // Only a claim starts an attempt.
                    if step.attempt > attempt {
                        prop_assert_eq!(event, E::Claim);
                        prop_assert_eq!(step.attempt, attempt + 1);
                    }
                    state = step.to;
                    attempt = step.attempt;
                }
                Err(e) => {
                    prop_assert_eq!(e.from, state);
                    if state.is_finished() {
                        prop_assert!(event != E::Retry);
                    }
                }
            }
        }
    }
}
