//! Collector throughput and latency: simulated agents over real mTLS gRPC against a real
//! `vigie-collector serve`, durable (acknowledged after group commit + fsync) and with storage
//! switched off (the limit of the same gRPC path), plus the collector's memory with many
//! connected agents.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::collector::{Collector, Switches};
use crate::fleet::{self, SimAgent};
use crate::load::{self, LoadResult, Plan};
use crate::payload;
use crate::procfs;
use crate::results::{Results, fmt};

const SECTION: &str = "collector";

/// The throughput goal, also the open-loop rate.
pub const GOAL_REPORTS_PER_SECOND: f64 = 20_000.0;

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    /// Simulated agents sending at once.
    pub agents: usize,
    pub batch: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Connected-agent counts at which the collector's memory is read.
    pub connected_steps: Vec<usize>,
}

/// One load run against a fresh collector, with the collector's CPU over the run.
pub struct Measured {
    pub load: LoadResult,
    pub collector_cpu_s: f64,
    pub bench_cpu_s: f64,
    pub rss_mib: f64,
    /// Bytes the collector wrote to the disk during the run.
    pub disk_write_bytes: u64,
}

/// Starts a collector with `switches`, enrolls and connects `opts.agents` agents, runs `plan`.
pub async fn measure(
    opts: &Options,
    name: &str,
    switches: Switches,
    agents: usize,
    plan: Plan,
) -> Result<Measured> {
    let mut collector = Collector::start(&opts.bin_dir, &opts.work.join(name), switches).await?;
    let fleet = fleet::enroll_and_connect(&collector, agents, 0).await?;
    let before = collector.sample()?;
    let bench_before = procfs::own_cpu_seconds();
    let load = load::run(&fleet, plan).await?;
    let after = collector.sample()?;
    let bench_after = procfs::own_cpu_seconds();
    drop(fleet);
    collector.stop()?;
    if load.batches == 0 {
        bail!(
            "{name}: no batch acknowledged; first error: {:?}",
            load.first_error
        );
    }
    if load.errors > 0 {
        eprintln!(
            "warning: {name}: {} failed batches, first: {:?}",
            load.errors, load.first_error
        );
    }
    Ok(Measured {
        load,
        // The whole run, warm-up included: an upper bound per report.
        collector_cpu_s: after.cpu_seconds - before.cpu_seconds,
        bench_cpu_s: bench_after - bench_before,
        rss_mib: after.rss_mib(),
        disk_write_bytes: after
            .disk_write_bytes
            .saturating_sub(before.disk_write_bytes),
    })
}

fn record(results: &mut Results, key: &str, label: &str, m: &Measured, plan: &Plan) {
    let l = &m.load;
    results.figure(
        SECTION,
        &format!("{key}.reports_per_s"),
        &format!("{label}: reports/s acknowledged"),
        l.reports_per_second(),
        "/s",
        &format!(
            "{} batches of {} in {}s, {} errors",
            l.batches,
            plan.batch,
            l.window.as_secs(),
            l.errors
        ),
    );
    if let Some(p50) = l.latencies.percentile_ms(50.0) {
        results.figure(
            SECTION,
            &format!("{key}.p50_ms"),
            &format!("{label}: ack latency p50"),
            p50,
            "ms",
            "",
        );
    }
    if let Some(p99) = l.latencies.percentile_ms(99.0) {
        results.figure(
            SECTION,
            &format!("{key}.p99_ms"),
            &format!("{label}: ack latency p99"),
            p99,
            "ms",
            &format!("{} samples", l.latencies.len()),
        );
    }
    let total_reports =
        (l.reports_per_second() * (plan.warmup + plan.measure).as_secs_f64()).max(1.0);
    results.figure(
        SECTION,
        &format!("{key}.collector_cpu_us_per_report"),
        &format!("{label}: collector CPU per report"),
        m.collector_cpu_s * 1e6 / total_reports,
        "µs",
        &format!(
            "collector {:.1}s CPU, load generator {:.1}s CPU, same 2 cores; collector RSS {:.0} MiB",
            m.collector_cpu_s, m.bench_cpu_s, m.rss_mib
        ),
    );
    results.figure(
        SECTION,
        &format!("{key}.disk_bytes_per_report"),
        &format!("{label}: bytes written to disk per report"),
        m.disk_write_bytes as f64 / total_reports,
        "B",
        &format!(
            "{:.1} MiB in all (/proc/PID/io write_bytes); mean report {:.0} B as received",
            m.disk_write_bytes as f64 / (1024.0 * 1024.0),
            payload::mean_report_bytes()
        ),
    );
}

pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    results.figure(
        SECTION,
        "report_bytes",
        "mean encoded report size",
        payload::mean_report_bytes(),
        "B",
        "snapshot with 5 disks; 1 in 10 a backup result",
    );
    let closed = Plan {
        batch: opts.batch,
        warmup: opts.warmup,
        measure: opts.measure,
        rate: None,
    };
    eprintln!(
        "collector: durable, closed loop, {} agents ...",
        opts.agents
    );
    let durable = measure(opts, "durable", Switches::DURABLE, opts.agents, closed).await?;
    record(
        results,
        "durable",
        &format!("durable, closed loop ({} agents)", opts.agents),
        &durable,
        &closed,
    );

    eprintln!("collector: no storage (limit), closed loop ...");
    let limit = measure(opts, "limit", Switches::NO_STORAGE, opts.agents, closed).await?;
    record(
        results,
        "limit",
        &format!("no storage (limit), closed loop ({} agents)", opts.agents),
        &limit,
        &closed,
    );

    let open = Plan {
        rate: Some(GOAL_REPORTS_PER_SECOND),
        ..closed
    };
    eprintln!("collector: durable, open loop at {GOAL_REPORTS_PER_SECOND} reports/s ...");
    let at_goal = measure(opts, "durable-open", Switches::DURABLE, opts.agents, open).await?;
    record(
        results,
        "durable_at_goal",
        &format!(
            "durable, open loop at {} reports/s",
            fmt(GOAL_REPORTS_PER_SECOND)
        ),
        &at_goal,
        &open,
    );

    if let Err(error) = connected(opts, results).await {
        // The figures above stay: say what failed rather than lose them.
        eprintln!("warning: connected agents not measured: {error:#}");
        results.missing(
            SECTION,
            "connected.rss_mib",
            "collector RSS with many agents connected",
            &format!("{error:#}"),
        );
    }
    Ok(())
}

/// Collector memory with many agents connected (each enrolled, connected over its own mTLS
/// connection, and having sent one snapshot), read at each step.
async fn connected(opts: &Options, results: &mut Results) -> Result<()> {
    let mut collector = Collector::start(
        &opts.bin_dir,
        &opts.work.join("connected"),
        Switches::DURABLE,
    )
    .await?;
    let idle = collector.sample()?;
    results.figure(
        SECTION,
        "connected_0.rss_mib",
        "collector RSS, no agent connected",
        idle.rss_mib(),
        "MiB",
        "",
    );
    let mut fleet: Vec<SimAgent> = Vec::new();
    for &step in &opts.connected_steps {
        let more = step.saturating_sub(fleet.len());
        eprintln!("collector: connecting agents up to {step} ...");
        let started = std::time::Instant::now();
        let new = fleet::enroll_and_connect(&collector, more, fleet.len()).await?;
        let enroll_s = started.elapsed().as_secs_f64();
        let mut pending = tokio::task::JoinSet::new();
        for mut agent in new.iter().cloned() {
            if pending.len() >= 64 {
                pending.join_next().await;
            }
            pending.spawn(async move {
                let mut seq = 0;
                agent
                    .client
                    .report(payload::batch(agent.index, &mut seq, 1))
                    .await
                    .map(drop)
            });
        }
        let mut failed = 0;
        while let Some(done) = pending.join_next().await {
            if !matches!(done, Ok(Ok(()))) {
                failed += 1;
            }
        }
        fleet.extend(new);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let s = collector.sample()?;
        let note = format!(
            "{} enrolled + connected in {enroll_s:.0}s, {failed} first reports failed; PSS {} MiB",
            more,
            fmt(s.pss_mib())
        );
        results.figure(
            SECTION,
            &format!("connected_{step}.rss_mib"),
            &format!("collector RSS, {step} agents connected"),
            s.rss_mib(),
            "MiB",
            &note,
        );
        results.figure(
            SECTION,
            &format!("connected_{step}.pss_mib"),
            &format!("collector PSS, {step} agents connected"),
            s.pss_mib(),
            "MiB",
            "",
        );
    }
    drop(fleet);
    collector.stop()?;
    Ok(())
}

/// Ratios and goals of the collector, from figures already recorded.
pub fn judge(results: &mut Results, steps: &[usize]) {
    let ratio = results.ratio(
        "durable / no-storage limit (reports/s)",
        "durable.reports_per_s",
        "limit.reports_per_s",
    );
    if let Some(d) = results.value("durable.reports_per_s") {
        results.goal(
            "durable reports/s on 2 cores",
            "≥ 20000/s",
            format!("{}/s", fmt(d)),
            Some(d >= GOAL_REPORTS_PER_SECOND),
        );
    }
    if let Some(r) = ratio {
        results.goal(
            "durable vs no-storage limit",
            "≥ 0.5",
            format!("{r:.3}"),
            Some(r >= 0.5),
        );
    }
    if let (Some(p99), Some(rate)) = (
        results.value("durable_at_goal.p99_ms"),
        results.value("durable_at_goal.reports_per_s"),
    ) {
        let kept_up = rate >= GOAL_REPORTS_PER_SECOND * 0.95;
        let note = if kept_up {
            String::new()
        } else {
            format!(", only {}/s achieved", fmt(rate))
        };
        results.goal(
            "p99 ack at 20000 reports/s",
            "< 50 ms",
            format!("{} ms{note}", fmt(p99)),
            Some(p99 < 50.0 && kept_up),
        );
    }
    let biggest = steps.iter().copied().max().unwrap_or(0);
    if let Some(rss) = results.value(&format!("connected_{biggest}.rss_mib")) {
        let met = (biggest >= 10_000).then_some(rss < 1024.0);
        results.goal(
            &format!("collector RSS with {biggest} agents"),
            "< 1 GiB at 10000",
            format!("{} MiB", fmt(rss)),
            met,
        );
    }
}
