//! `vigie-bench`: measures Vigie beside the agents MSPs run today and prints a table and JSON
//! with the same figures (see `docs/PERFORMANCE.md`). Not a test: it asserts nothing about
//! timing, it reports. Everything it starts listens on 127.0.0.1 and stops by itself.

#![forbid(unsafe_code)]

mod backlog;
mod collector;
mod console;
mod durability;
mod escalation;
mod fleet;
mod footprint;
mod growth;
mod load;
mod payload;
mod peers;
mod process;
mod procfs;
mod results;
mod stats;
mod throughput;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::results::Results;

#[derive(Debug, Parser)]
#[command(
    name = "vigie-bench",
    about = "Benchmarks of the Vigie agent and collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Part,
    /// Short durations and small fleets: minutes instead of about twenty.
    #[arg(long, global = true)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, global = true, default_value = "bench-results.json")]
    out: PathBuf,
    /// Folder with the release binaries (default: this binary's folder).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// Working folder (default: a temporary one, removed at the end).
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
    /// `growth`: reports already stored before each load, comma-separated (default 0, 10 M,
    /// 50 M; 0, 1 M with --quick).
    #[arg(long, global = true, value_delimiter = ',')]
    stored: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
enum Part {
    /// Everything below but `growth`, in this order.
    All,
    /// Agent footprint beside node_exporter, zabbix_agentd, zabbix_agent2.
    Agent,
    /// Collector throughput, latency, limit, connected agents, backlog drain, failed backup →
    /// webhook latency.
    Collector,
    /// The cost of fsync after each group-commit flush.
    Durability,
    /// Only the failed backup → webhook latency (also part of `collector`), idle and while
    /// ingesting 20,000 reports/s.
    Escalation,
    /// Costs as data grows: ingest with millions of reports stored, bytes per report before
    /// and after retention, one evaluation round over 1,000 / 10,000 agents.
    Growth,
    /// The technician console: 1,000 clinics × 10 agents, a year of backups; server time and
    /// bytes of each page.
    Console,
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let fd_limit = procfs::raise_fd_limit()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(run(cli, fd_limit))
}

async fn run(cli: Cli, fd_limit: u64) -> Result<()> {
    let bin_dir = match cli.bin_dir.clone() {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("binary folder")?
            .to_owned(),
    };
    for name in ["vigie-agent", "vigie-collector", collector::BENCH_COLLECTOR] {
        anyhow::ensure!(
            bin_dir.join(name).exists(),
            "{} is missing: build with `cargo build --release --workspace --bins --features vigie-collector/bench`",
            bin_dir.join(name).display()
        );
    }
    let tmp = tempfile::Builder::new().prefix("vigie-bench-").tempdir()?;
    let work = cli
        .work_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&work)?;
    let q = cli.quick;
    let mut results = Results::default();
    context(&mut results, &cli, fd_limit);
    let started = std::time::Instant::now();

    let want = |part: Part| cli.command == Part::All || cli.command == part;
    if want(Part::Agent) {
        let opts = footprint::Options {
            bin_dir: bin_dir.clone(),
            work: work.clone(),
            t1: Duration::from_secs(if q { 20 } else { 60 }),
            t2: Duration::from_secs(if q { 90 } else { 600 }),
            burst_polls: if q { 50 } else { 300 },
            report_runs: if q { 10 } else { 40 },
        };
        footprint::run(&opts, &mut results).await?;
        footprint::judge(&mut results, !q);
    }
    let load_opts = throughput::Options {
        bin_dir: bin_dir.clone(),
        work: work.clone(),
        agents: if q { 32 } else { 64 },
        batch: 50,
        warmup: Duration::from_secs(if q { 2 } else { 5 }),
        measure: Duration::from_secs(if q { 8 } else { 30 }),
        connected_steps: if q {
            vec![500, 1000]
        } else {
            vec![1000, 10_000]
        },
    };
    if want(Part::Collector) {
        throughput::run(&load_opts, &mut results).await?;
        let backlog = backlog::Options {
            bin_dir: bin_dir.clone(),
            work: work.clone(),
            snapshots: if q { 96 } else { 288 },
            backups: if q { 2 } else { 4 },
        };
        backlog::run(&backlog, &mut results).await?;
        throughput::judge(&mut results, &load_opts.connected_steps);
    }
    if want(Part::Collector) || cli.command == Part::Escalation {
        let escalation = escalation::Options {
            bin_dir: bin_dir.clone(),
            work: work.clone(),
            samples: if q { 15 } else { 50 },
            timeout: Duration::from_secs(10),
            under_load: Some(throughput::GOAL_REPORTS_PER_SECOND),
        };
        escalation::run(&escalation, &mut results).await?;
    }
    if want(Part::Durability) {
        durability::run(&load_opts, &mut results).await?;
    }
    if cli.command == Part::Growth {
        let growth = growth::Options {
            bin_dir: bin_dir.clone(),
            work: work.clone(),
            stored: match &cli.stored {
                Some(list) => list.clone(),
                None if q => vec![0, 1_000_000],
                None => vec![0, 10_000_000, 50_000_000],
            },
            agents: load_opts.agents,
            batch: load_opts.batch,
            warmup: load_opts.warmup,
            measure: load_opts.measure,
            eval_agents: if q { vec![1_000] } else { vec![1_000, 10_000] },
        };
        growth::run(&growth, &mut results).await?;
        growth::judge(&mut results, &growth);
    }
    if want(Part::Console) {
        let console = console::Options {
            bin_dir: bin_dir.clone(),
            work: work.clone(),
            clinics: if q { 100 } else { 1000 },
            agents_per_clinic: 10,
            days: 365,
            samples: if q { 10 } else { 50 },
        };
        console::run(&console, &mut results).await?;
    }

    results.context("load_average_end", json!(procfs::load_average()));
    results.context("duration_s", json!(started.elapsed().as_secs()));
    println!("{}", results.table());
    let text = serde_json::to_string_pretty(&results.to_json())?;
    std::fs::write(&cli.out, text + "\n")
        .with_context(|| format!("write {}", cli.out.display()))?;
    eprintln!("wrote {}", cli.out.display());
    Ok(())
}

fn context(results: &mut Results, cli: &Cli, fd_limit: u64) {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    results.context(
        "command",
        json!(std::env::args().collect::<Vec<_>>().join(" ")),
    );
    results.context("part", json!(format!("{:?}", cli.command).to_lowercase()));
    results.context("quick", json!(cli.quick));
    results.context("started_unix", json!(now));
    results.context(
        "cores",
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    results.context("cpu", json!(cpu));
    results.context("kernel", json!(read("/proc/sys/kernel/osrelease")));
    results.context("load_average_start", json!(procfs::load_average()));
    results.context("fd_limit", json!(fd_limit));
}
