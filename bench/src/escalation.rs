//! Failed backup → webhook latency: a fresh collector with one webhook sink (graces 0) that
//! points at a tiny HTTP/1.1 receiver inside the benchmark; an enrolled agent sends, one at a
//! time, a backup report with a failed run of a new job (so a new alert, so a new
//! `ticket.create`), and the time from sending it to the create's request being read in full
//! by the receiver is recorded. Loopback only; every wait is bounded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use vigie_proto::v1;

use crate::collector::{Collector, Switches};
use crate::fleet;
use crate::results::{Results, fmt};
use crate::stats::Latencies;

const SECTION: &str = "collector";
/// Largest request head / body the receiver reads (the collector's bodies are a few KiB).
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Agents that take turns sending the failed backups.
const AGENTS: usize = 2;
const GOAL_P99_MS: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    pub samples: usize,
    /// Longest wait for one webhook request.
    pub timeout: Duration,
    /// Also measure while simulated agents send this many reports/s (open loop, batches of
    /// 50, 64 agents) to the same collector.
    pub under_load: Option<f64>,
}

/// Agents of the background load.
const LOAD_AGENTS: usize = 64;

/// One request the receiver read in full.
#[derive(Debug)]
struct Arrival {
    at: Instant,
    event: String,
    delivery: String,
    subject: String,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Serves one keep-alive connection: reads each request, records it, answers 200 `{}`.
async fn connection(mut stream: TcpStream, arrivals: mpsc::UnboundedSender<Arrival>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = match header(&head, "content-length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(_) => return,
        };
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at = Instant::now();
        let body: Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
        let subject = body["ticket"]["alert"]["subject"]
            .as_str()
            .or_else(|| body["note"]["alert"]["subject"].as_str())
            .unwrap_or_default()
            .to_owned();
        let _ = arrivals.send(Arrival {
            at,
            event: header(&head, "x-vigie-event")
                .unwrap_or_default()
                .to_owned(),
            delivery: header(&head, "x-vigie-delivery")
                .unwrap_or_default()
                .to_owned(),
            subject,
        });
        buf.drain(..head_end + length);
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The receiver on 127.0.0.1 (any free port): its port and the arrivals.
async fn receiver() -> Result<(
    u16,
    mpsc::UnboundedReceiver<Arrival>,
    tokio::task::JoinHandle<()>,
)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the webhook receiver")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream, tx.clone()));
        }
    });
    Ok((port, rx, task))
}

fn failed_backup(job: &str) -> v1::ReportBatch {
    let now = SystemTime::now();
    let report = v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp::from(now)),
        payload: Some(v1::report::Payload::Backup(v1::BackupReport {
            runs: vec![v1::BackupRun {
                job: job.to_owned(),
                source: "robocopy".into(),
                status: v1::BackupStatus::Failed as i32,
                started_at: Some(prost_types::Timestamp::from(now - Duration::from_secs(600))),
                finished_at: Some(prost_types::Timestamp::from(now)),
                bytes: Some(0),
                files: Some(0),
                target: "\\\\NAS-CABINET\\sauvegardes".into(),
                message: "ERREUR 53 : chemin réseau introuvable".into(),
                failed_items: Some(1),
                code: Some(16),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    v1::ReportBatch {
        reports: vec![report],
        outbox: Some(v1::OutboxStatus {
            dropped_total: 0,
            queued: 1,
            ..v1::OutboxStatus::default()
        }),
        agent_version: "bench".into(),
        sent_at: None,
        config_version: 0,
    }
}

fn escalation_section(port: u16) -> String {
    // tick_seconds stays at its default: the worker must be woken by the alert, not the tick.
    format!(
        "\n[escalation]\ntick_seconds = 30\n\
         [escalation.grace_minutes]\ncritical = 0\n\
         [escalation.rule_grace_minutes]\nbackup_failed = 0\n\
         [[escalation.sinks]]\nname = \"bench\"\ntype = \"webhook\"\n\
         url = \"http://127.0.0.1:{port}/hooks/vigie\"\nsecret = \"vigie-bench-secret\"\n\
         timeout_seconds = 5\n"
    )
}

/// Measures failed backup → webhook request; records figures and the goal.
pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    eprintln!(
        "== failed backup → webhook: {} samples, {} agents",
        opts.samples, AGENTS
    );
    let (port, mut arrivals, server) = receiver().await?;
    let mut collector = Collector::start_with(
        &opts.bin_dir,
        &opts.work.join("collector-escalation"),
        Switches::DURABLE,
        &escalation_section(port),
    )
    .await?;
    let outcome = measure(opts, &collector, &mut arrivals).await;
    let loaded = match (opts.under_load, &outcome) {
        (Some(rate), Ok(_)) => {
            Some(measure_loaded(opts, &mut collector, &mut arrivals, rate).await)
        }
        _ => None,
    };
    collector.stop()?;
    server.abort();
    let (latencies, acks, timeouts, others) = outcome?;
    record(
        results,
        opts,
        "alert_webhook",
        "",
        &latencies,
        &acks,
        timeouts,
        others,
    );
    if let Some(loaded) = loaded {
        let (measured, load, collector_cpu, bench_cpu) = loaded?;
        let (latencies, acks, timeouts, others) = measured;
        let label = format!(
            " while ingesting {} reports/s",
            fmt(opts.under_load.unwrap_or(0.0))
        );
        record(
            results,
            opts,
            "alert_webhook_loaded",
            &label,
            &latencies,
            &acks,
            timeouts,
            others,
        );
        results.figure(
            SECTION,
            "alert_webhook_loaded.background_reports_per_s",
            "background load during the loaded webhook samples: reports/s acknowledged",
            load.reports_per_second(),
            "/s",
            &format!(
                "ack p99 {} ms, {} errors; collector {collector_cpu:.1}s CPU, load generator {bench_cpu:.1}s CPU",
                load.latencies.percentile_ms(99.0).map_or("-".into(), fmt),
                load.errors
            ),
        );
    }
    Ok(())
}

type Loaded = (Measured, crate::load::LoadResult, f64, f64);

/// The same samples while a background open loop sends `rate` reports/s.
async fn measure_loaded(
    opts: &Options,
    collector: &mut Collector,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    rate: f64,
) -> Result<Loaded> {
    let fleet = fleet::enroll_and_connect(collector, LOAD_AGENTS, AGENTS).await?;
    let warmup = Duration::from_secs(2);
    // Long enough for every sample (50 ms apart, each a few ms to a few hundred ms).
    let plan = crate::load::Plan {
        batch: 50,
        warmup,
        measure: Duration::from_millis(400) * opts.samples as u32 + Duration::from_secs(5),
        rate: Some(rate),
    };
    let before = collector.sample()?;
    let bench_before = crate::procfs::own_cpu_seconds();
    let load = tokio::spawn(async move { crate::load::run(&fleet, plan).await });
    tokio::time::sleep(warmup).await;
    let measured = measure(opts, collector, arrivals).await;
    let load = load.await.context("background load")??;
    let after = collector.sample()?;
    let bench_cpu = crate::procfs::own_cpu_seconds() - bench_before;
    Ok((
        measured?,
        load,
        after.cpu_seconds - before.cpu_seconds,
        bench_cpu,
    ))
}

type Measured = (Latencies, Latencies, usize, usize);

async fn measure(
    opts: &Options,
    collector: &Collector,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
) -> Result<Measured> {
    let mut agents = fleet::enroll_and_connect(collector, AGENTS, 0).await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut latencies = Vec::with_capacity(opts.samples);
    let mut acks = Vec::with_capacity(opts.samples);
    let mut timeouts = 0;
    // Creates matched to no sample yet (late ones), and requests that were not creates.
    let mut early: HashMap<String, Instant> = HashMap::new();
    let mut others = 0;
    // One warm-up sample (first connection to the receiver, first alert), not counted.
    for i in 0..=opts.samples {
        let job = format!("bench-{}-{i:03}", &run_id[run_id.len() - 8..]);
        let n = agents.len();
        let agent = agents.get_mut(i % n.max(1)).context("no enrolled agent")?;
        let sent = Instant::now();
        let ack = agent
            .client
            .report(failed_backup(&job))
            .await
            .with_context(|| format!("send the failed backup of {job}"))?
            .into_inner();
        let acked = sent.elapsed();
        if !ack.rejected.is_empty() {
            bail!(
                "the collector rejected the failed backup: {:?}",
                ack.rejected
            );
        }
        let deadline = sent + opts.timeout;
        let arrived = loop {
            if let Some(at) = early.remove(&job) {
                break Some(at);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, arrivals.recv()).await {
                Ok(Some(a)) if a.event == "ticket.create" => {
                    early.insert(a.subject, a.at);
                }
                Ok(Some(a)) => {
                    others += 1;
                    eprintln!("   webhook {} {} ({})", a.event, a.delivery, a.subject);
                }
                Ok(None) => bail!("the webhook receiver stopped"),
                Err(_) => break None,
            }
        };
        if i == 0 {
            if arrived.is_none() {
                bail!(
                    "no webhook request within {:?} of the first failed backup; collector log: {}",
                    opts.timeout,
                    collector.data_dir.with_extension("serve.log").display()
                );
            }
            continue;
        }
        match arrived {
            Some(at) => {
                latencies.push(at.saturating_duration_since(sent));
                acks.push(acked);
            }
            None => timeouts += 1,
        }
        // Let the worker finish its round (saving the ticket id) before the next alert.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((latencies.into(), acks.into(), timeouts, others))
}

#[allow(clippy::too_many_arguments)]
fn record(
    results: &mut Results,
    opts: &Options,
    prefix: &str,
    during: &str,
    latencies: &Latencies,
    acks: &Latencies,
    timeouts: usize,
    others: usize,
) {
    let note = "send → ticket.create read by a local HTTP receiver; graces 0";
    let p = |l: &Latencies, q: f64| l.percentile_ms(q);
    for (key, label, value) in [
        (
            "p50_ms",
            "failed backup → webhook request p50",
            p(latencies, 50.0),
        ),
        (
            "p99_ms",
            "failed backup → webhook request p99",
            p(latencies, 99.0),
        ),
        (
            "max_ms",
            "failed backup → webhook request max",
            p(latencies, 100.0),
        ),
        (
            "ack_p50_ms",
            "failed backup: report ack p50 (same samples)",
            p(acks, 50.0),
        ),
    ] {
        let (key, label) = (format!("{prefix}.{key}"), format!("{label}{during}"));
        match value {
            Some(v) => results.figure(SECTION, &key, &label, v, "ms", note),
            None => results.missing(SECTION, &key, &label, "no webhook request arrived"),
        }
    }
    results.figure(
        SECTION,
        &format!("{prefix}.samples"),
        "failed backup → webhook: samples matched",
        latencies.len() as f64,
        "",
        &format!("of {} sent", opts.samples),
    );
    results.figure(
        SECTION,
        &format!("{prefix}.timeouts"),
        "failed backup → webhook: no request within the timeout",
        timeouts as f64,
        "",
        &format!("timeout {} s per sample", opts.timeout.as_secs()),
    );
    results.context(&format!("{prefix}_other_requests"), json!(others));
    let p99 = p(latencies, 99.0);
    let measured = match p99 {
        Some(v) if timeouts == 0 => format!("{} ms", fmt(v)),
        Some(v) => format!("{} ms, {timeouts} timed out", fmt(v)),
        None => "no request arrived".into(),
    };
    results.goal(
        &format!("alert-to-webhook p99{during}"),
        "< 100 ms",
        measured,
        p99.map(|v| v < GOAL_P99_MS && timeouts == 0),
    );
}
