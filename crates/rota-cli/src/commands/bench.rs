//! `rota bench`: runs the `rota-bench` workload on a fresh file or schema
//! next to `--database` and prints the figures (table or stable JSON).

use rota_bench::{BenchOptions, PhaseKind};

use super::Ctx;
use crate::cli::{BenchArgs, Format};
use crate::exit::{Exit, Fail};
use crate::output;

pub(crate) async fn run(args: &BenchArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut phases = Vec::new();
    for p in args
        .phases
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some(k) = PhaseKind::parse(p) else {
            return Err(Fail::usage(format!(
                "unknown phase {p:?}: use bulk, single, process, latency"
            ))
            .into());
        };
        phases.push(k);
    }
    let opts = BenchOptions {
        database: ctx.cfg.database()?,
        jobs: args.jobs,
        single: args.single,
        latency: args.latency,
        phases,
        concurrency: args.concurrency,
        history: args.history,
        ..BenchOptions::default()
    };
    output::note("benchmarking on a fresh store next to --database (removed afterwards)...");
    let report = rota_bench::run(&opts).await.map_err(|e| match e {
        rota_bench::BenchError::Invalid { .. } => anyhow::Error::from(Fail::usage(e.to_string())),
        // The engine's own error, so its exit code applies (an unreachable
        // store exits 5).
        rota_bench::BenchError::Rota(e) => anyhow::Error::from(e),
        other => anyhow::Error::from(other),
    })?;
    match ctx.format {
        Format::Json => output::json(&report)?,
        Format::Table => output::raw(&rota_bench::render_table(&report))?,
    }
    Ok(Exit::Success)
}
