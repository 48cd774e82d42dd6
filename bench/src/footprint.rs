//! Agent footprint: the real release `vigie-agent run` (enrolled with a real local collector,
//! default checks, a system snapshot every `INTERVAL`) beside node_exporter, zabbix_agentd and
//! zabbix_agent2, all polled at that same interval. RSS and PSS of each at T1 and T2, CPU per
//! cycle or poll over the window T1..T2, then a burst of back-to-back polls for a precise CPU
//! per poll, `vigie-agent report --json` (system check only) for the agent's own cycle in
//! isolation, and the binaries' sizes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::collector::{Collector, Switches};
use crate::peers::{Kind, Peer};
use crate::process::{self, Daemon};
use crate::procfs::{self, Sample};
use crate::results::{Results, fmt};

/// The agent's snapshot interval (its minimum) and the peers' poll interval.
pub const INTERVAL: Duration = Duration::from_secs(10);
const SECTION: &str = "agent footprint";

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    /// First and second sample.
    pub t1: Duration,
    pub t2: Duration,
    /// Back-to-back polls per peer for the precise CPU figure.
    pub burst_polls: usize,
    /// `report --json` runs (and as many `--version` runs) for the isolated cycle.
    pub report_runs: usize,
}

struct Subject {
    name: &'static str,
    pid: u32,
    series: Vec<(f64, Sample)>,
}

pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    let dir = opts.work.join("footprint");
    std::fs::create_dir_all(&dir)?;
    let mut collector =
        Collector::start(&opts.bin_dir, &dir.join("collector"), Switches::DURABLE).await?;
    let token = collector.tokens(1).await?.pop().context("no token made")?;
    let agent_bin = opts.bin_dir.join("vigie-agent");
    let state = dir.join("agent-state");
    process::run(
        Command::new(&agent_bin)
            .args(["enroll", "--token", &token, "--role", "workstation"])
            .arg("--state-dir")
            .arg(&state)
            .env("VIGIE_LOG", "warn"),
        Duration::from_secs(60),
    )?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "# vigie-bench: default checks, the shortest snapshot interval.\n\
             [collection]\nsnapshot_interval = \"{}s\"\n",
            INTERVAL.as_secs()
        ),
    )?;
    let mut agent = Daemon::spawn(
        "vigie-agent run",
        Command::new(&agent_bin)
            .arg("run")
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&config),
        &dir.join("agent.log"),
    )?;

    let mut peers = Vec::new();
    for kind in Kind::ALL {
        match Peer::start(kind, &dir) {
            Ok(peer) => peers.push(peer),
            Err(error) => {
                eprintln!("warning: {} not measured: {error:#}", kind.name());
                results.missing(
                    SECTION,
                    &format!("{}.rss_t2_mib", kind.name()),
                    &format!("{} RSS", kind.name()),
                    &format!("not running: {error:#}"),
                );
            }
        }
    }

    let mut subjects = vec![Subject {
        name: "vigie-agent",
        pid: agent.pid(),
        series: Vec::new(),
    }];
    for peer in &peers {
        subjects.push(Subject {
            name: peer.kind.name(),
            pid: peer.daemon.pid(),
            series: Vec::new(),
        });
    }

    // The timeline: one tick per interval; every peer is polled at each tick, as the agent
    // collects at each of its own ticks.
    let start = Instant::now();
    // The agent process alone beside its tree: the tree also holds the programs its checks
    // run for a while (`apt-get -s`, `dpkg-query`), whose memory is not the agent's and whose
    // CPU leaves the tree sum when they exit.
    let mut agent_own: Vec<OwnSample> = Vec::new();
    let ticks = opts.t2.as_secs() / INTERVAL.as_secs();
    let t1_tick = opts.t1.as_secs() / INTERVAL.as_secs();
    let mut reports_at = BTreeMap::new();
    eprintln!(
        "footprint: sampling for {}s (T1 = {}s) ...",
        opts.t2.as_secs(),
        opts.t1.as_secs()
    );
    for tick in 0..=ticks {
        tokio::time::sleep_until((start + INTERVAL * tick as u32).into()).await;
        agent.check_alive()?;
        let at = start.elapsed().as_secs_f64();
        for s in &mut subjects {
            s.series.push((at, procfs::sample_tree(s.pid)?));
        }
        agent_own.push(OwnSample::of(agent.pid())?);
        if tick == t1_tick || tick == ticks {
            let count: u64 = collector
                .report_counts()
                .await?
                .iter()
                .map(|(_, n)| n)
                .sum();
            reports_at.insert(tick, count);
        }
        if tick < ticks {
            for peer in &mut peers {
                peer.poll()
                    .with_context(|| format!("poll {}", peer.kind.name()))?;
            }
        }
    }
    let window_cycles = (ticks - t1_tick) as f64;
    let window_s = (INTERVAL * (ticks - t1_tick) as u32).as_secs();

    for s in &subjects {
        let (_, first) = s.series[t1_tick as usize];
        let (_, last) = s.series[ticks as usize];
        let n = s.name;
        let note_t1 = format!("at {}s", opts.t1.as_secs());
        let note_t2 = format!("at {}s", opts.t2.as_secs());
        if last.processes > 1 {
            results.figure(
                SECTION,
                &format!("{n}.processes"),
                &format!("{n} processes"),
                last.processes as f64,
                "",
                "all counted below",
            );
        }
        results.figure(
            SECTION,
            &format!("{n}.rss_t1_mib"),
            &format!("{n} RSS"),
            first.rss_mib(),
            "MiB",
            &note_t1,
        );
        results.figure(
            SECTION,
            &format!("{n}.pss_t1_mib"),
            &format!("{n} PSS"),
            first.pss_mib(),
            "MiB",
            &note_t1,
        );
        results.figure(
            SECTION,
            &format!("{n}.rss_t2_mib"),
            &format!("{n} RSS"),
            last.rss_mib(),
            "MiB",
            &note_t2,
        );
        results.figure(
            SECTION,
            &format!("{n}.pss_t2_mib"),
            &format!("{n} PSS"),
            last.pss_mib(),
            "MiB",
            &note_t2,
        );
        results.figure(
            SECTION,
            &format!("{n}.anon_t2_mib"),
            &format!("{n} anonymous memory (heap, stacks)"),
            last.anon_mib(),
            "MiB",
            &format!("{note_t2}; the rest of RSS is mapped code and libraries"),
        );
        let growth = last.rss_kib as f64 - first.rss_kib as f64;
        results.figure(
            SECTION,
            &format!("{n}.rss_growth_kib"),
            &format!("{n} RSS growth T1→T2"),
            growth,
            "KiB",
            &format!("over {window_s}s"),
        );
        let max = s.series[t1_tick as usize..]
            .iter()
            .map(|(_, x)| x.rss_kib)
            .max()
            .unwrap_or(0);
        results.figure(
            SECTION,
            &format!("{n}.rss_max_window_mib"),
            &format!("{n} highest RSS in window"),
            max as f64 / 1024.0,
            "MiB",
            "",
        );
        let cpu_ms = (last.cpu_seconds - first.cpu_seconds) * 1000.0;
        let (label, note) = if n == "vigie-agent" {
            (
                "vigie-agent CPU per snapshot cycle (run, window)".to_owned(),
                format!(
                    "{} ms over {window_cycles} cycles: collect, outbox fsync, send, ack, idle",
                    fmt(cpu_ms)
                ),
            )
        } else {
            (
                format!("{n} CPU per poll (window)"),
                format!("{} ms over {window_cycles} polls, 10 ms ticks", fmt(cpu_ms)),
            )
        };
        results.figure(
            SECTION,
            &format!("{n}.cpu_per_cycle_ms"),
            &label,
            cpu_ms / window_cycles,
            "ms",
            &note,
        );
    }
    own_figures(
        results,
        &agent_own[t1_tick as usize..=ticks as usize],
        window_cycles,
        opts,
    );
    if let (Some(a), Some(b)) = (reports_at.get(&t1_tick), reports_at.get(&ticks)) {
        results.figure(
            SECTION,
            "vigie-agent.reports_in_window",
            "vigie-agent reports acknowledged in window",
            (b - a) as f64,
            "",
            &format!("{window_cycles} snapshot ticks"),
        );
    }
    results.context(
        "agent_series_rss_kib",
        json!(
            subjects
                .iter()
                .map(|s| (
                    s.name,
                    s.series
                        .iter()
                        .map(|(t, x)| json!([t, x.rss_kib, x.pss_kib]))
                        .collect::<Vec<_>>()
                ))
                .collect::<BTreeMap<_, _>>()
        ),
    );

    // Precise CPU per poll: back-to-back polls, many ticks' worth of CPU.
    for peer in &mut peers {
        let n = peer.kind.name();
        let before = procfs::sample_tree(peer.daemon.pid())?;
        let started = Instant::now();
        for _ in 0..opts.burst_polls {
            peer.poll()?;
        }
        let wall = started.elapsed();
        let after = procfs::sample_tree(peer.daemon.pid())?;
        let cpu_ms = (after.cpu_seconds - before.cpu_seconds) * 1000.0;
        results.figure(
            SECTION,
            &format!("{n}.cpu_per_poll_burst_ms"),
            &format!("{n} CPU per {} (burst)", peer.kind.poll_unit()),
            cpu_ms / opts.burst_polls as f64,
            "ms",
            &format!(
                "{} polls back to back in {:.1}s",
                opts.burst_polls,
                wall.as_secs_f64()
            ),
        );
    }

    for peer in peers {
        peer.daemon.stop(Duration::from_secs(10))?;
    }
    agent.stop(Duration::from_secs(20))?;
    collector.stop()?;

    report_cycle(opts, &dir, results)?;
    binary_sizes(opts, results);
    Ok(())
}

/// One sample of the agent process itself (not its children).
struct OwnSample {
    rss_kib: u64,
    pss_kib: u64,
    anon_kib: u64,
    /// Time on CPU of its own threads, to the nanosecond (`/proc/PID/task/*/schedstat`; the
    /// clock ticks of `stat` are 10 ms, too coarse for a few ms per cycle). A thread that
    /// exits takes its time with it: the agent's blocking threads live 15 minutes.
    cpu_seconds: f64,
    /// cutime + cstime: the programs it ran and waited for.
    children_cpu_seconds: f64,
}

impl OwnSample {
    fn of(pid: u32) -> Result<Self> {
        let (rss_kib, pss_kib, anon_kib) = procfs::smaps_rollup(pid)?;
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        // After the command name in parentheses: field 3 onwards; cutime, cstime are 16, 17.
        let rest = &text[text.rfind(')').context("stat without a command name")? + 1..];
        let children_ticks: Vec<u64> = rest
            .split_whitespace()
            .skip(13)
            .take(2)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        anyhow::ensure!(children_ticks.len() == 2, "short {path}");
        let mut on_cpu_ns = 0u64;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
            // Gone between the listing and the read: its time is lost either way.
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            on_cpu_ns += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
        // USER_HZ is 100 on Linux.
        Ok(OwnSample {
            rss_kib,
            pss_kib,
            anon_kib,
            cpu_seconds: on_cpu_ns as f64 / 1e9,
            children_cpu_seconds: children_ticks.iter().sum::<u64>() as f64 / 100.0,
        })
    }
}

/// `window`: one sample per tick from T1 to T2.
fn own_figures(results: &mut Results, window: &[OwnSample], window_cycles: f64, opts: &Options) {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return;
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let t2 = format!("at {}s; the agent process alone", opts.t2.as_secs());
    for (key, label, value) in [
        (
            "own_rss_t1_mib",
            "vigie-agent process RSS",
            mib(first.rss_kib),
        ),
        (
            "own_rss_t2_mib",
            "vigie-agent process RSS",
            mib(last.rss_kib),
        ),
        (
            "own_pss_t2_mib",
            "vigie-agent process PSS",
            mib(last.pss_kib),
        ),
        (
            "own_anon_t2_mib",
            "vigie-agent process anonymous memory",
            mib(last.anon_kib),
        ),
    ] {
        let note = if key.contains("t1") {
            format!("at {}s; the agent process alone", opts.t1.as_secs())
        } else {
            t2.clone()
        };
        results.figure(
            SECTION,
            &format!("vigie-agent.{key}"),
            label,
            value,
            "MiB",
            &note,
        );
    }
    results.figure(
        SECTION,
        "vigie-agent.own_rss_growth_kib",
        "vigie-agent process RSS growth T1→T2",
        last.rss_kib as f64 - first.rss_kib as f64,
        "KiB",
        "the agent process alone",
    );
    let cpu_ms = (last.cpu_seconds - first.cpu_seconds) * 1000.0;
    results.figure(
        SECTION,
        "vigie-agent.own_cpu_per_cycle_ms",
        "vigie-agent process CPU per snapshot cycle (window)",
        cpu_ms / window_cycles,
        "ms",
        &format!(
            "{} ms over {window_cycles} cycles, its own threads: collect, outbox fsync, send, ack, idle",
            fmt(cpu_ms)
        ),
    );
    // The typical cycle: the window's mean also holds what runs once after the start (the
    // updates and software checks parse their programs' output) or every few cycles.
    let mut per_tick: Vec<f64> = window
        .windows(2)
        .map(|pair| (pair[1].cpu_seconds - pair[0].cpu_seconds) * 1000.0)
        .collect();
    per_tick.sort_by(f64::total_cmp);
    if let Some(median) = per_tick.get(per_tick.len() / 2) {
        results.figure(
            SECTION,
            "vigie-agent.own_cpu_cycle_median_ms",
            "vigie-agent process CPU per snapshot cycle (median tick)",
            *median,
            "ms",
            &format!(
                "median of {} ticks; least {} ms, most {} ms",
                per_tick.len(),
                fmt(per_tick[0]),
                fmt(per_tick[per_tick.len() - 1])
            ),
        );
    }
    results.figure(
        SECTION,
        "vigie-agent.children_cpu_window_ms",
        "CPU of the programs the agent's checks ran (window)",
        (last.children_cpu_seconds - first.children_cpu_seconds) * 1000.0,
        "ms",
        "reaped in the window (apt-get -s, dpkg-query, ...)",
    );
}

/// CPU of `vigie-agent report --json` with only the system check, minus that of
/// `vigie-agent --version` (process start, runtime-free), over many runs of each.
fn report_cycle(opts: &Options, dir: &Path, results: &mut Results) -> Result<()> {
    let agent_bin = opts.bin_dir.join("vigie-agent");
    let config = dir.join("system-only.toml");
    std::fs::write(
        &config,
        "# vigie-bench: the system snapshot alone.\n[updates]\nenabled = false\n\
         [antivirus]\nenabled = false\n[software]\nenabled = false\n",
    )?;
    let state = dir.join("report-state");
    let measure = |args: &[&str]| -> Result<f64> {
        let before = procfs::cpu_of_children()?;
        for _ in 0..opts.report_runs {
            process::run(
                Command::new(&agent_bin)
                    .args(args)
                    .env("VIGIE_LOG", "error"),
                Duration::from_secs(60),
            )?;
        }
        let after = procfs::cpu_of_children()?;
        Ok((after - before).as_secs_f64() * 1000.0 / opts.report_runs as f64)
    };
    let state_s = state.display().to_string();
    let config_s = config.display().to_string();
    let report = measure(&[
        "report",
        "--json",
        "--state-dir",
        &state_s,
        "--config",
        &config_s,
    ])?;
    let start_only = measure(&["--version"])?;
    results.figure(
        SECTION,
        "vigie-agent.report_process_ms",
        "vigie-agent report --json (system only): whole process",
        report,
        "ms CPU",
        &format!("mean of {} runs", opts.report_runs),
    );
    results.figure(
        SECTION,
        "vigie-agent.start_process_ms",
        "vigie-agent --version: process start",
        start_only,
        "ms CPU",
        &format!("mean of {} runs", opts.report_runs),
    );
    results.figure(
        SECTION,
        "vigie-agent.report_cycle_ms",
        "vigie-agent system snapshot alone (report − start)",
        report - start_only,
        "ms CPU",
        "incl. runtime start and first sysinfo refresh",
    );
    Ok(())
}

fn binary_sizes(opts: &Options, results: &mut Results) {
    let mut sizes: Vec<(&str, PathBuf)> = vec![
        ("vigie-agent", opts.bin_dir.join("vigie-agent")),
        ("vigie-collector", opts.bin_dir.join("vigie-collector")),
    ];
    for kind in Kind::ALL {
        sizes.push((kind.name(), kind.binary().to_owned()));
    }
    for (name, path) in sizes {
        let Some(bytes) = procfs::file_size(&path) else {
            results.missing(
                SECTION,
                &format!("{name}.binary_mib"),
                &format!("{name} binary size"),
                &format!("{} missing", path.display()),
            );
            continue;
        };
        let note = if procfs::has_symtab(&path) {
            "NOT stripped"
        } else {
            "stripped"
        };
        results.figure(
            SECTION,
            &format!("{name}.binary_mib"),
            &format!("{name} binary size"),
            bytes as f64 / (1024.0 * 1024.0),
            "MiB",
            note,
        );
    }
}

/// Ratios and goals of the footprint, from figures already recorded.
pub fn judge(results: &mut Results, full_length: bool) {
    for peer in ["node_exporter", "zabbix_agentd", "zabbix_agent2"] {
        for (m, what) in [
            ("rss_t2_mib", "RSS"),
            ("pss_t2_mib", "PSS"),
            ("anon_t2_mib", "anonymous"),
        ] {
            results.ratio(
                &format!("vigie-agent {what} / {peer} {what}"),
                &format!("vigie-agent.{m}"),
                &format!("{peer}.{m}"),
            );
        }
        results.ratio(
            &format!("vigie-agent CPU per cycle / {peer} CPU per poll (window)"),
            "vigie-agent.cpu_per_cycle_ms",
            &format!("{peer}.cpu_per_cycle_ms"),
        );
        results.ratio(
            &format!("vigie-agent snapshot alone / {peer} CPU per poll (burst)"),
            "vigie-agent.report_cycle_ms",
            &format!("{peer}.cpu_per_poll_burst_ms"),
        );
        results.ratio(
            &format!("vigie-agent binary / {peer} binary"),
            "vigie-agent.binary_mib",
            &format!("{peer}.binary_mib"),
        );
    }
    // Issue 16's goals, on the agent process itself (its tree also holds the programs its
    // checks run for a while; see `OwnSample`).
    for (peer, m, what) in [
        ("node_exporter", "rss_t2_mib", "RSS"),
        ("zabbix_agentd", "pss_t2_mib", "PSS"),
    ] {
        results.ratio(
            &format!("vigie-agent process {what} / {peer} {what}"),
            &format!("vigie-agent.own_{m}"),
            &format!("{peer}.{m}"),
        );
    }
    let ratio_of = |results: &Results, numerator: &str, denominator: &str| {
        results
            .ratios
            .iter()
            .find(|r| r.numerator == numerator && r.denominator == denominator)
            .and_then(|r| r.value)
    };
    if let Some(rss) = results.value("vigie-agent.own_rss_t2_mib") {
        results.goal(
            "agent steady RSS (process)",
            "≤ 6 MiB",
            format!("{} MiB", fmt(rss)),
            Some(rss <= 6.0),
        );
    }
    if let Some(r) = ratio_of(
        results,
        "vigie-agent.own_rss_t2_mib",
        "node_exporter.rss_t2_mib",
    ) {
        results.goal(
            "agent RSS vs node_exporter",
            "≤ 0.3",
            format!("{r:.3}"),
            Some(r <= 0.3),
        );
    }
    if let Some(r) = ratio_of(
        results,
        "vigie-agent.own_pss_t2_mib",
        "zabbix_agentd.pss_t2_mib",
    ) {
        results.goal(
            "agent PSS vs zabbix_agentd (all its processes)",
            "≤ 1",
            format!("{r:.3}"),
            Some(r <= 1.0),
        );
    }
    if let Some(cpu) = results.value("vigie-agent.own_cpu_per_cycle_ms") {
        results.goal(
            "CPU per full snapshot cycle (process)",
            "≤ 2 ms",
            format!("{} ms", fmt(cpu)),
            Some(cpu <= 2.0),
        );
    }
    if let (Some(growth), Some(rss1)) = (
        results.value("vigie-agent.own_rss_growth_kib"),
        results.value("vigie-agent.own_rss_t1_mib"),
    ) {
        let tolerance = (rss1 * 1024.0 * 0.02).max(64.0);
        let met = growth <= tolerance;
        let span = if full_length {
            "over 9 min"
        } else {
            "quick run: short window only"
        };
        results.goal(
            "no RSS growth (T1→T2, process)",
            "≤ 2 % of RSS at T1",
            format!("{} KiB ({span})", fmt(growth)),
            Some(met),
        );
    }
}
