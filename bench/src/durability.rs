//! What durability costs: the same load against a collector that `fsync`s after each
//! group-commit flush (the default, survives a power cut) and one that stops after sled's own
//! flush (`sync_file_range`: survives a process crash only, sled issue #1452). Under load many
//! batches share one flush; a lone agent pays a whole flush per batch.

use std::io::Write as _;
use std::time::Instant;

use anyhow::Result;

use crate::collector::Switches;
use crate::load::Plan;
use crate::results::Results;
use crate::stats::Latencies;
use crate::throughput::{self, Options};

const SECTION: &str = "durability";

/// Appends 4 KiB and `fsync`s, `count` times, in the work folder: what one flush to this disk
/// costs, whatever sled does around it.
fn raw_fsync(opts: &Options, count: usize) -> Result<Latencies> {
    let path = opts.work.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5au8; 4096];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&block)?;
        let started = Instant::now();
        file.sync_all()?;
        times.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Latencies::from(times))
}

pub async fn run(opts: &Options, results: &mut Results) -> Result<()> {
    let probe = raw_fsync(opts, 500)?;
    if let (Some(p50), Some(p99)) = (probe.percentile_ms(50.0), probe.percentile_ms(99.0)) {
        results.figure(
            SECTION,
            "raw_fsync.p50_ms",
            "this disk: fsync after a 4 KiB append, p50",
            p50,
            "ms",
            &format!("p99 {p99:.3} ms over 500; a virtual disk may not flush anything"),
        );
    }
    let loaded = Plan {
        batch: opts.batch,
        warmup: opts.warmup,
        measure: opts.measure,
        rate: None,
    };
    let lone = Plan { batch: 1, ..loaded };
    for (key, label, switches) in [
        ("fsync_on", "fsync on", Switches::DURABLE),
        ("fsync_off", "fsync off", Switches::NO_FSYNC),
    ] {
        eprintln!("durability: {label}, {} agents ...", opts.agents);
        let m = throughput::measure(
            opts,
            &format!("{key}-loaded"),
            switches,
            opts.agents,
            loaded,
        )
        .await?;
        results.figure(
            SECTION,
            &format!("{key}.reports_per_s"),
            &format!(
                "{label}: reports/s, {} agents × {}",
                opts.agents, opts.batch
            ),
            m.load.reports_per_second(),
            "/s",
            &format!("{} errors", m.load.errors),
        );
        if let Some(p99) = m.load.latencies.percentile_ms(99.0) {
            results.figure(
                SECTION,
                &format!("{key}.p99_ms"),
                &format!("{label}: ack p99, {} agents", opts.agents),
                p99,
                "ms",
                "",
            );
        }
        eprintln!("durability: {label}, one agent, batches of 1 ...");
        let m = throughput::measure(opts, &format!("{key}-lone"), switches, 1, lone).await?;
        if let Some(p50) = m.load.latencies.percentile_ms(50.0) {
            results.figure(
                SECTION,
                &format!("{key}.lone_p50_ms"),
                &format!("{label}: ack p50, one agent, one report per batch"),
                p50,
                "ms",
                &format!("{} batches", m.load.batches),
            );
        }
    }
    results.ratio(
        "fsync on / off: reports/s under load",
        "fsync_on.reports_per_s",
        "fsync_off.reports_per_s",
    );
    results.ratio(
        "fsync on / off: p99 under load",
        "fsync_on.p99_ms",
        "fsync_off.p99_ms",
    );
    results.ratio(
        "fsync on / off: lone-batch p50 latency",
        "fsync_on.lone_p50_ms",
        "fsync_off.lone_p50_ms",
    );
    Ok(())
}
