//! The report and its table rendering. The JSON form (serde) is stable:
//! fields are only ever added. What a script reads (concurrency, the ratio
//! to the raw loop, RSS, end-to-end latency) is a field of its own; the
//! `notes` are for people and may be reworded.

use serde::Serialize;

use crate::machine::Machine;

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Sample size.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    pub(crate) fn from_samples(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let pick = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((ms.len() as f64 - 1.0) * p).round() as usize;
            ms[i.min(ms.len() - 1)]
        };
        Self {
            samples: ms.len(),
            p50_ms: pick(0.5),
            p90_ms: pick(0.9),
            p99_ms: pick(0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// One measured figure. The optional fields are left out of the JSON in
/// the phases they do not apply to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Stable name: `bulk_enqueue`, `single_enqueue`, `single_enqueue_concurrent`,
    /// `raw_insert_baseline`, `process`, `latency`, `history_load`.
    pub name: String,
    /// Jobs handled.
    pub jobs: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Jobs per second (absent for latency).
    pub jobs_per_sec: Option<f64>,
    /// Latency percentiles (latency phase): enqueue returned (committed) ->
    /// handler start.
    pub latency: Option<Latency>,
    /// Free-form details for people; scripts read the fields below.
    pub notes: Vec<String>,
    /// Jobs run at once (`process`) or concurrent callers
    /// (`single_enqueue_concurrent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Most jobs one claim takes (`process`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_batch: Option<u32>,
    /// This phase's rate over `raw_insert_baseline`'s, measured in turns
    /// with it (`single_enqueue`; the target is a share of this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    /// The bench process's resident memory (`process`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<Rss>,
    /// Enqueue called -> handler start, the insert's own commit included
    /// (`latency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<Latency>,
}

/// Resident memory of the whole bench process, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rss {
    /// When the worker started (the queued jobs already enqueued).
    pub start_mib: f64,
    /// The most seen while the worker ran.
    pub peak_mib: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Machine and store.
    pub machine: Machine,
    /// Figures in the order measured.
    pub phases: Vec<Phase>,
}

/// A plain-text table of the report.
pub fn render_table(r: &BenchReport) -> String {
    let m = &r.machine;
    let mut out = format!(
        "store: {} {}   machine: {} ({} cpus, {} MiB), kernel {}\nsettings: {}\ndisk: 4 KiB write + fdatasync p50 {}\nruntime: {} worker threads\n\n",
        m.store,
        m.store_version,
        m.cpu,
        m.cpus,
        m.memory_mib,
        m.kernel,
        m.settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        m.fsync_p50_ms
            .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms:.3} ms")),
        m.runtime_workers
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string())
    );
    out.push_str(&format!(
        "{:<28} {:>9} {:>9} {:>12}  {}\n",
        "phase", "jobs", "seconds", "jobs/s", "notes"
    ));
    for p in &r.phases {
        let rate = p
            .jobs_per_sec
            .map_or_else(String::new, |r| format!("{r:.0}"));
        let mut notes = p.notes.join("; ");
        if let Some(l) = &p.latency {
            notes = format!(
                "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms{}{}",
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms,
                if notes.is_empty() { "" } else { "; " },
                notes
            );
        }
        out.push_str(&format!(
            "{:<28} {:>9} {:>9.2} {:>12}  {}\n",
            p.name, p.jobs, p.seconds, rate, notes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Scripts depend on these names: renaming one breaks them, so this
    /// test must only ever gain names.
    #[test]
    fn the_json_field_names_are_pinned() {
        let bare = serde_json::to_value(Phase {
            name: "bulk_enqueue".into(),
            ..Phase::default()
        })
        .unwrap();
        assert_eq!(
            keys(&bare),
            [
                "jobs",
                "jobs_per_sec",
                "latency",
                "name",
                "notes",
                "seconds"
            ]
        );
        let lat = Latency::from_samples(vec![1.0, 2.0]);
        let full = serde_json::to_value(Phase {
            latency: Some(lat.clone()),
            concurrency: Some(1),
            claim_batch: Some(1),
            ratio_to_baseline: Some(0.5),
            rss: Some(Rss {
                start_mib: 1.0,
                peak_mib: 2.0,
            }),
            end_to_end: Some(lat),
            ..Phase::default()
        })
        .unwrap();
        assert_eq!(
            keys(&full),
            [
                "claim_batch",
                "concurrency",
                "end_to_end",
                "jobs",
                "jobs_per_sec",
                "latency",
                "name",
                "notes",
                "ratio_to_baseline",
                "rss",
                "seconds"
            ]
        );
        let latency_keys = ["max_ms", "p50_ms", "p90_ms", "p99_ms", "samples"];
        assert_eq!(keys(&full["latency"]), latency_keys);
        assert_eq!(keys(&full["end_to_end"]), latency_keys);
        assert_eq!(keys(&full["rss"]), ["peak_mib", "start_mib"]);

        let report = serde_json::to_value(BenchReport {
            machine: Machine {
                cpu: String::new(),
                cpus: 2,
                memory_mib: 1,
                kernel: String::new(),
                store: "sqlite".into(),
                store_version: String::new(),
                settings: Default::default(),
                fsync_p50_ms: None,
                runtime_workers: None,
            },
            phases: Vec::new(),
        })
        .unwrap();
        assert_eq!(keys(&report), ["machine", "phases"]);
        assert_eq!(
            keys(&report["machine"]),
            [
                "cpu",
                "cpus",
                "fsync_p50_ms",
                "kernel",
                "memory_mib",
                "runtime_workers",
                "settings",
                "store",
                "store_version"
            ]
        );
    }

    #[test]
    fn percentiles_take_the_rounded_linear_rank() {
        let l = Latency::from_samples((1..=100).rev().map(f64::from).collect());
        assert_eq!(l.samples, 100);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (51.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Latency::from_samples(Vec::new()), Latency::default());
    }
}
