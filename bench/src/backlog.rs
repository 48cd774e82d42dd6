//! Time to drain a 24 h backlog of one real agent: with its collector stopped, the real
//! `vigie-agent run --once` queues one system snapshot per run (288 runs = 24 h at 5 min) and
//! some backup results from its spool; then the collector comes back and one `run --once`
//! delivers everything. A second `run --once` (one new snapshot) is the baseline: process
//! start, collection and connection without the backlog.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::collector::{Collector, Switches};
use crate::process;
use crate::results::Results;

const SECTION: &str = "collector";

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    pub snapshots: usize,
    pub backups: usize,
}

fn summary(stdout: &str) -> Option<(u64, u64)> {
    stdout.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("sent ")?;
        let (sent, queued) = rest.split_once(", queued ")?;
        Some((sent.trim().parse().ok()?, queued.trim().parse().ok()?))
    })
}

pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    let dir = opts.work.join("backlog");
    std::fs::create_dir_all(&dir)?;
    let mut collector =
        Collector::start(&opts.bin_dir, &dir.join("collector"), Switches::DURABLE).await?;
    let token = collector.tokens(1).await?.pop().context("no token made")?;
    let agent = opts.bin_dir.join("vigie-agent");
    let state = dir.join("agent-state");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        "# vigie-bench: system snapshots and backup results only.\n[updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n",
    )?;
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&agent);
        c.args(args)
            .arg("--state-dir")
            .arg(&state)
            .env("VIGIE_LOG", "error");
        c
    };
    let with_config = |args: &[&str]| {
        let mut c = cmd(args);
        c.arg("--config").arg(&config);
        c
    };
    process::run(
        &mut cmd(&["enroll", "--token", &token, "--role", "workstation"]),
        Duration::from_secs(60),
    )?;
    collector.stop()?;

    eprintln!(
        "backlog: queueing {} snapshots with the collector down ...",
        opts.snapshots
    );
    let every = (opts.snapshots / opts.backups.max(1)).max(1);
    let mut backups = 0;
    for i in 0..opts.snapshots {
        if backups < opts.backups && i % every == every / 2 {
            process::run(
                &mut with_config(&[
                    "backup-result",
                    "--job",
                    "nightly-nas",
                    "--status",
                    "success",
                    "--bytes",
                    "48000000000",
                    "--files",
                    "183402",
                    "--target",
                    "\\\\NAS-CABINET\\sauvegardes",
                ]),
                Duration::from_secs(30),
            )?;
            backups += 1;
        }
        // Fails to deliver (collector down) and says so; what matters is what it queued.
        let out = with_config(&["run", "--once"]).output()?;
        if i == 0 && summary(&String::from_utf8_lossy(&out.stdout)).is_none() {
            bail!(
                "run --once printed no summary: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    collector.serve().await?;
    let started = Instant::now();
    let out = process::run(
        &mut with_config(&["run", "--once"]),
        Duration::from_secs(300),
    )?;
    let drain = started.elapsed();
    let (sent, queued) = summary(&out).context("no summary from the draining run")?;
    let started = Instant::now();
    let out = process::run(
        &mut with_config(&["run", "--once"]),
        Duration::from_secs(300),
    )?;
    let baseline = started.elapsed();
    let (sent_after, _) = summary(&out).context("no summary from the baseline run")?;
    collector.stop()?;

    let note = format!(
        "{sent} reports sent ({} snapshot runs, {backups} backup results), {queued} left",
        opts.snapshots
    );
    results.figure(
        SECTION,
        "backlog.drain_s",
        "24 h backlog of one agent: run --once wall time",
        drain.as_secs_f64(),
        "s",
        &note,
    );
    results.figure(
        SECTION,
        "backlog.baseline_s",
        "run --once without backlog (baseline)",
        baseline.as_secs_f64(),
        "s",
        &format!("{sent_after} reports sent"),
    );
    results.figure(
        SECTION,
        "backlog.extra_s",
        "time the backlog adds",
        (drain.saturating_sub(baseline)).as_secs_f64(),
        "s",
        "",
    );
    Ok(())
}
