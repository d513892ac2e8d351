//! What the figures were measured on.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

/// The machine and store a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// Store version.
    pub store_version: String,
    /// Durability settings (journal mode, synchronous, fsync, ...).
    pub settings: std::collections::BTreeMap<String, String>,
    /// Median time of one 4 KiB write + `fdatasync` in the bench's
    /// directory (SQLite: next to the database; PostgreSQL: the system temp
    /// directory, meaningful when the server shares the disk). Durable
    /// commits cost at least this, so it explains much of the variance
    /// between runs on shared machines.
    pub fsync_p50_ms: Option<f64>,
    /// Worker threads of the async runtime the engine ran on (Tokio reads
    /// `TOKIO_WORKER_THREADS`; the default is one per CPU). On a small
    /// machine they compete with SQLite's writer thread or a local
    /// PostgreSQL server for the cores, which moves processing figures
    /// (docs/benchmarks.md, round 14).
    pub runtime_workers: Option<usize>,
}

impl Machine {
    pub(crate) fn read(info: rota::StoreInfo, probe_dir: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            store: info.store,
            store_version: info.version,
            settings: info.settings,
            fsync_p50_ms: fsync_p50_ms(probe_dir),
            runtime_workers: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().num_workers()),
        }
    }
}

/// Median of 200 appends of 4 KiB, each followed by `fdatasync`, in `dir`.
fn fsync_p50_ms(dir: &Path) -> Option<f64> {
    let path = dir.join(format!("rota-bench-fsync-{}", std::process::id()));
    let probe = || -> std::io::Result<Vec<f64>> {
        let mut file = std::fs::File::create(&path)?;
        let block = [0u8; 4096];
        let mut samples = Vec::with_capacity(200);
        for _ in 0..200 {
            let t = std::time::Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(samples)
    };
    let samples = probe();
    let _ = std::fs::remove_file(&path);
    let mut samples = samples.ok()?;
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied()
}

/// Resident set size of this process in MiB (Linux), if known.
pub(crate) fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
