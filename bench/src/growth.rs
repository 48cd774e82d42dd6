//! Costs as data grows (issue 16): ingest throughput against a database already holding N
//! reports, database bytes per stored report before and after a retention pass, and the CPU
//! of one alert evaluation round over 1,000 / 10,000 agents' facts.
//!
//! The database is filled through the collector's own storage library (`Storage::store_reports`,
//! the code `Ingest.Report` calls), before `serve`, by fake agents whose report ids are spread
//! over the last [`SPREAD_DAYS`] days, so that the default 400-day retention has a fifth to
//! prune. The evaluation round runs the collector's `AlertEngine::evaluate_all` in this process,
//! on agents made with the same storage calls the ingest makes, and is timed with the thread's
//! own CPU clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use prost::Message as _;
use uuid::Uuid;
use vigie_collector::alerts::clock::SystemClock;
use vigie_collector::alerts::engine::AlertEngine;
use vigie_collector::model::{AgentRecord, Clinic, TokenRecord};
use vigie_collector::server::convert::{fact_from_payload, snapshot_from_proto};
use vigie_collector::storage::{EncodedReport, Storage};

use crate::collector::{Collector, Switches};
use crate::fleet;
use crate::load::{self, Plan};
use crate::payload;
use crate::procfs;
use crate::results::{Results, fmt};

const SECTION: &str = "growth";

/// Report ids of the filled database span this many days back from now.
const SPREAD_DAYS: i64 = 500;

/// Fake agents the filled reports belong to.
const FILL_AGENTS: usize = 1_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    /// Reports already stored before each load (the first is usually 0).
    pub stored: Vec<u64>,
    pub agents: usize,
    pub batch: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Agent counts of the evaluation rounds.
    pub eval_agents: Vec<usize>,
}

pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    for &stored in &opts.stored {
        ingest_with(opts, stored, results).await?;
    }
    for &agents in &opts.eval_agents {
        let dir = opts.work.join(format!("eval-{agents}"));
        let (first, steady) = tokio::task::spawn_blocking(move || evaluation_round(&dir, agents))
            .await
            .context("evaluation task")??;
        results.figure(
            SECTION,
            &format!("eval_{agents}.first_cpu_ms"),
            &format!("evaluation round over {agents} agents, first (alerts created): CPU"),
            first.as_secs_f64() * 1e3,
            "ms",
            "one thread, AlertEngine::evaluate_all; a snapshot and a backup job per agent, CMP3",
        );
        results.figure(
            SECTION,
            &format!("eval_{agents}.steady_cpu_ms"),
            &format!("evaluation round over {agents} agents, steady (nothing changes): CPU"),
            steady.as_secs_f64() * 1e3,
            "ms",
            "the timer's round on an unchanged fleet",
        );
    }
    Ok(())
}

/// Judges the growth goals from what was recorded.
pub fn judge(results: &mut Results, opts: &Options) {
    let (Some(&first), Some(&last)) = (opts.stored.first(), opts.stored.last()) else {
        return;
    };
    if first != last
        && let Some(r) = results.ratio(
            &format!(
                "ingest with {} stored / with {} stored",
                fmt(last as f64),
                fmt(first as f64)
            ),
            &format!("stored_{last}.reports_per_s"),
            &format!("stored_{first}.reports_per_s"),
        )
    {
        let full = last >= 50_000_000;
        results.goal(
            &format!("ingest with {} reports stored vs empty", fmt(last as f64)),
            "≥ 0.8 at 50 M",
            format!("{r:.3}"),
            full.then_some(r >= 0.8).or((r < 0.8).then_some(false)),
        );
    }
    if let Some(&biggest) = opts.eval_agents.iter().max()
        && let Some(ms) = results.value(&format!("eval_{biggest}.first_cpu_ms"))
    {
        results.goal(
            &format!("evaluation round over {biggest} agents"),
            "≤ 1 s at 10000",
            format!("{} ms", fmt(ms)),
            (biggest >= 10_000).then_some(ms <= 1000.0),
        );
    }
}

/// A fresh collector whose database holds `stored` reports, a durable closed loop against it,
/// then its size per report, and again after one retention pass.
async fn ingest_with(opts: &Options, stored: u64, results: &mut Results) -> Result<()> {
    let name = format!("growth-{stored}");
    let mut collector =
        Collector::init(&opts.bin_dir, &opts.work.join(&name), Switches::DURABLE, "")?;
    let db = collector.data_dir.join("db");
    // The serving collector must not prune at its start: the retention pass measured below
    // is the one that removes the oldest fifth.
    let config = collector.data_dir.join("collector.toml");
    let text = std::fs::read_to_string(&config)?;
    anyhow::ensure!(
        text.contains("reports_days = 400"),
        "{} has no `reports_days = 400` to lift",
        config.display()
    );
    std::fs::write(
        &config,
        text.replace("reports_days = 400", "reports_days = 36500"),
    )?;
    let fill_s = if stored > 0 {
        eprintln!(
            "growth: filling the database with {} reports ...",
            fmt(stored as f64)
        );
        let db = db.clone();
        tokio::task::spawn_blocking(move || fill(&db, stored))
            .await
            .context("fill task")??
    } else {
        0.0
    };
    let filled_bytes = dir_bytes(&db);
    collector.serve().await?;
    let fleet = fleet::enroll_and_connect(&collector, opts.agents, 0).await?;
    let plan = Plan {
        batch: opts.batch,
        warmup: opts.warmup,
        measure: opts.measure,
        rate: None,
    };
    eprintln!(
        "growth: durable closed loop with {} stored ...",
        fmt(stored as f64)
    );
    let before = collector.sample()?;
    let bench_before = procfs::own_cpu_seconds();
    let load = load::run(&fleet, plan).await?;
    let after = collector.sample()?;
    let bench_cpu = procfs::own_cpu_seconds() - bench_before;
    drop(fleet);
    collector.stop()?;
    results.figure(
        SECTION,
        &format!("stored_{stored}.reports_per_s"),
        &format!("durable closed loop with {} reports stored: reports/s", fmt(stored as f64)),
        load.reports_per_second(),
        "/s",
        &format!(
            "{} agents; p99 {} ms; collector {:.1}s CPU, load generator {:.1}s CPU; fill took {:.0}s",
            opts.agents,
            load.latencies.percentile_ms(99.0).map_or("-".into(), fmt),
            after.cpu_seconds - before.cpu_seconds,
            bench_cpu,
            fill_s
        ),
    );
    if stored == 0 {
        return Ok(());
    }
    // Size per report, then one retention pass (default 400 days: a fifth of the fill is older).
    let total = stored + load.reports_acked;
    let bytes = dir_bytes(&db);
    let (pruned, after_bytes) = tokio::task::spawn_blocking(move || {
        let storage = Storage::open(&db)?;
        let config = vigie_collector::retention::RetentionConfig::default();
        let pruned = storage.prune(&config.cutoffs(Timestamp::now(), u64::MAX))?;
        storage.flush_durably()?;
        drop(storage);
        Ok::<_, anyhow::Error>((pruned.reports, dir_bytes(&db)))
    })
    .await
    .context("retention task")??;
    results.figure(
        SECTION,
        &format!("stored_{stored}.bytes_per_report"),
        &format!(
            "database bytes per stored report ({} stored)",
            fmt(total as f64)
        ),
        bytes as f64 / total.max(1) as f64,
        "B",
        &format!(
            "{} MiB on disk ({} MiB after the fill); mean report {} B as received",
            fmt(bytes as f64 / 1048576.0),
            fmt(filled_bytes as f64 / 1048576.0),
            fmt(payload::mean_report_bytes())
        ),
    );
    let kept = total.saturating_sub(pruned).max(1);
    results.figure(
        SECTION,
        &format!("stored_{stored}.bytes_per_report_after_retention"),
        "database bytes per stored report after a retention pass",
        after_bytes as f64 / kept as f64,
        "B",
        &format!(
            "{} pruned, {} kept; the report log deletes segments no batch points into, sled reuses its freed space without shrinking its file",
            fmt(pruned as f64),
            fmt(kept as f64)
        ),
    );
    Ok(())
}

/// Fills the database in `db` (not open elsewhere) with `count` reports, batches of 50, ids
/// spread over the last [`SPREAD_DAYS`] days; returns the seconds it took.
fn fill(db: &Path, count: u64) -> Result<f64> {
    let started = Instant::now();
    let storage = Storage::open(db)?;
    let per_agent = count.div_ceil(FILL_AGENTS as u64);
    let now = Timestamp::now().as_second();
    let span = SPREAD_DAYS * 86_400;
    let step = (span as f64 / per_agent.max(1) as f64).max(0.001);
    let agents: Vec<String> = (0..FILL_AGENTS)
        .map(|_| Uuid::now_v7().to_string())
        .collect();
    let mut left = count;
    std::thread::scope(|scope| -> Result<()> {
        let mut workers = Vec::new();
        for (w, chunk) in agents.chunks(FILL_AGENTS / 2).enumerate() {
            let storage = storage.clone();
            let n = per_agent.min(left);
            left = left.saturating_sub(n * chunk.len() as u64);
            workers.push(scope.spawn(move || -> Result<()> {
                let mut seq = 0u64;
                for j0 in (0..n).step_by(50) {
                    for (a, agent) in chunk.iter().enumerate() {
                        let host = w * FILL_AGENTS + a;
                        let batch: Vec<EncodedReport> = (j0..(j0 + 50).min(n))
                            .map(|j| {
                                let at = now - span + (j as f64 * step) as i64;
                                let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                                    uuid::NoContext,
                                    at.max(0) as u64,
                                    (j % 1000) as u32 * 1000,
                                ));
                                seq += 1;
                                let mut report = if seq.is_multiple_of(10) {
                                    payload::backup(host, seq)
                                } else {
                                    payload::snapshot(host, seq)
                                };
                                report.id = id.to_string();
                                EncodedReport {
                                    id,
                                    bytes: report.encode_to_vec(),
                                    interpreted: true,
                                }
                            })
                            .collect();
                        storage.store_reports(agent, Timestamp::now(), &batch)?;
                    }
                }
                Ok(())
            }));
        }
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("fill thread panicked"))??;
        }
        Ok(())
    })?;
    storage.flush_durably()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// One CMP3 clinic, `agents` agents each with a snapshot and a backup job (a success), then
/// two evaluation rounds; returns the CPU of each.
fn evaluation_round(dir: &Path, agents: usize) -> Result<(Duration, Duration)> {
    let storage = Storage::open(&dir.join("db"))?;
    let now = Timestamp::now();
    let clinic = Clinic {
        id: Uuid::now_v7().to_string(),
        name: format!("Bench {agents}"),
        tier: vigie_domain::Tier::Cmp3,
        created_at: now,
        rule_overrides: Default::default(),
        contact_email: None,
    };
    storage.add_clinic(&clinic)?;
    for i in 0..agents {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        storage.put_token(
            &hash,
            &TokenRecord {
                clinic_id: clinic.id.clone(),
                created_at: now,
                expires_at: now + jiff::SignedDuration::from_hours(1),
                used: false,
                used_by: None,
            },
        )?;
        let id = Uuid::now_v7().to_string();
        let snapshot = match payload::snapshot(i, 1).payload {
            Some(vigie_proto::v1::report::Payload::SystemSnapshot(s)) => snapshot_from_proto(&s),
            _ => anyhow::bail!("the benchmark snapshot is not a snapshot"),
        };
        storage.enroll_agent(&hash, now, |token| AgentRecord {
            id: id.clone(),
            clinic_id: token.clinic_id.clone(),
            hostname: snapshot.hostname.clone(),
            os: snapshot.os_label(),
            role: vigie_domain::AgentRole::Workstation,
            agent_version: "bench".into(),
            enrolled_at: now,
            last_seen: Some(now),
            revoked: false,
            revoked_at: None,
            outbox_dropped_total: 0,
            outbox_health: Default::default(),
            snapshot: Some(snapshot.clone()),
            snapshot_collected_at: Some(now),
            clock: None,
            config: Default::default(),
        })?;
        if let Some(payload) = payload::backup(i, 1).payload
            && let Some(fact) = fact_from_payload(&payload)
        {
            storage.record_fact(&id, now, &fact)?;
        }
    }
    let engine = AlertEngine::new(storage, Default::default(), Arc::new(SystemClock));
    let first = thread_cpu(|| engine.evaluate_all());
    let steady = thread_cpu(|| engine.evaluate_all());
    Ok((first, steady))
}

fn thread_cpu(f: impl FnOnce() -> usize) -> Duration {
    let cpu = || {
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
            .map(|u| {
                let t = |v: nix::sys::time::TimeVal| {
                    Duration::new(v.tv_sec() as u64, v.tv_usec() as u32 * 1000)
                };
                t(u.user_time()) + t(u.system_time())
            })
            .unwrap_or_default()
    };
    let before = cpu();
    let _ = f();
    cpu() - before
}
