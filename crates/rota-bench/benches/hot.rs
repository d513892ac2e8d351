//! Criterion benches of the hot pure functions: state transitions, backoff,
//! output capping. Run with `cargo bench -p rota-bench --bench hot`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rota_core::{BackoffPolicy, JobEvent, JobState, OutputBuffer};

fn transitions(c: &mut Criterion) {
    c.bench_function("state: running + error (attempts left)", |b| {
        b.iter(|| {
            black_box(JobState::Running).apply(
                black_box(JobEvent::Error),
                black_box(2),
                black_box(5),
            )
        })
    });
    c.bench_function("state: available + claim", |b| {
        b.iter(|| {
            black_box(JobState::Available).apply(
                black_box(JobEvent::Claim),
                black_box(0),
                black_box(25),
            )
        })
    });
}

fn backoff(c: &mut Criterion) {
    let p = BackoffPolicy::default();
    let now = jiff::Timestamp::UNIX_EPOCH;
    c.bench_function("backoff: next_run_at", |b| {
        b.iter(|| p.next_run_at(black_box(now), black_box(7), black_box(0.37)))
    });
}

fn output(c: &mut Criterion) {
    let line = vec![b'x'; 120];
    c.bench_function("output: push 120 B into a full 1 MiB buffer", |b| {
        let mut buf = OutputBuffer::new(1 << 20);
        for _ in 0..10_000 {
            buf.push(&line);
        }
        b.iter(|| buf.push(black_box(&line)))
    });
    let _ = Duration::ZERO;
}

criterion_group!(benches, transitions, backoff, output);
criterion_main!(benches);
