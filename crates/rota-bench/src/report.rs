//! The report and its table rendering. The JSON form (serde) is stable:
//! fields are only ever added.

use serde::Serialize;

use crate::machine::Machine;

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Clone, Serialize)]
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

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Stable name: `bulk_enqueue`, `single_enqueue`, `single_enqueue_concurrent`,
    /// `raw_insert_baseline`, `process`, `latency`.
    pub name: String,
    /// Jobs handled.
    pub jobs: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Jobs per second (absent for latency).
    pub jobs_per_sec: Option<f64>,
    /// Latency percentiles (latency phase).
    pub latency: Option<Latency>,
    /// Free-form details: concurrency used, ratio to baseline, RSS.
    pub notes: Vec<String>,
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
        "store: {} {}   machine: {} ({} cpus, {} MiB), kernel {}\nsettings: {}\ndisk: 4 KiB write + fdatasync p50 {}\n\n",
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
            .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms:.3} ms"))
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
