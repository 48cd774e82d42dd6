//! One agent cannot grow the database or the collector: a hostname of 64 KiB and 500 disks
//! at 1 % free, ten times, with the alert evaluator running every second, are kept within the
//! collector's documented bounds (shown to the technician), and old reports and alert events
//! are pruned by `[retention]`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use vigie_proto::v1;
use vigie_tests::alerts::{alerts, send_as, wait_for_alerts};
use vigie_tests::{Agent, Collector};

const MIB: u64 = 1024 * 1024;

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// `VmRSS` and `VmHWM` (peak) of a process, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A collector with `replace` applied to the `collector.toml` `init` wrote.
fn collector_with(replace: &[(&str, &str)]) -> (tempfile::TempDir, Collector) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    let path = collector.data_dir.join("collector.toml");
    let mut text = std::fs::read_to_string(&path).expect("collector.toml");
    for (from, to) in replace {
        assert!(text.contains(from), "init writes {from:?}:\n{text}");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).expect("write collector.toml");
    collector.serve();
    (tmp, collector)
}

fn huge_snapshot(seq: u64) -> v1::Report {
    let disks = (0..500)
        .map(|i| v1::Disk {
            mount_point: format!("/srv/volume-{i:03}"),
            file_system: "ext4".into(),
            total_bytes: 100 << 30,
            available_bytes: 1 << 30,
            removable: false,
            kind: "SSD".into(),
        })
        .collect();
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp::from(
            SystemTime::now() - Duration::from_secs(60 - seq),
        )),
        payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
            hostname: "H".repeat(64 * 1024),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            cpu_count: 4,
            disks,
            ..Default::default()
        })),
    }
}

#[tokio::test]
async fn one_agent_cannot_grow_the_database_or_the_collector() {
    let (_tmp, collector) =
        collector_with(&[("evaluate_every_seconds = 60", "evaluate_every_seconds = 1")]);
    let clinic = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let db = collector.data_dir.join("db");
    let before = dir_bytes(&db);

    // Ten snapshots, each a repeat of every disk alert (new evidence: a newer snapshot).
    let mut open = Vec::new();
    for seq in 0..10 {
        send_as(&collector, &agent, vec![huge_snapshot(seq)]).await;
        open = wait_for_alerts(&collector, |a| {
            let disks: Vec<_> = a.iter().filter(|a| a["rule"] == "disk_low").collect();
            disks.len() == 64 && disks.iter().all(|a| a["count"].as_u64() == Some(seq + 1))
        });
    }
    // Repeated evaluations (every second) on the same facts.
    std::thread::sleep(Duration::from_secs(5));
    let after = dir_bytes(&db);
    let pid = collector.pid();
    let (rss_now, rss_peak) = rss(pid);
    println!(
        "database: {before} bytes before, {after} after (+{:.2} MiB); collector RSS {:.1} MiB, peak {:.1} MiB",
        (after.saturating_sub(before)) as f64 / MIB as f64,
        rss_now as f64 / MIB as f64,
        rss_peak as f64 / MIB as f64
    );
    assert!(
        after.saturating_sub(before) < 10 * MIB,
        "the database grew by {} bytes",
        after - before
    );
    assert!(rss_peak < 200 * MIB, "collector peak RSS {rss_peak} bytes");

    // What the technician sees: the cut hostname and disks, said as such.
    let listed = collector.agent(&agent_id);
    let hostname = listed["hostname"].as_str().expect("hostname");
    assert!(
        hostname.len() <= 253 && hostname.ends_with(" […]"),
        "{hostname:?}"
    );
    let truncated: Vec<&str> = listed["truncated"]
        .as_array()
        .expect("truncated")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert_eq!(
        truncated,
        [
            "instantané : nom de machine tronqué (65536 octets reçus)",
            "instantané : 500 disques, 64 pris en compte"
        ]
    );
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(
        table.contains("Données tronquées par le collecteur"),
        "{table}"
    );
    assert!(table.contains("500 disques, 64 pris en compte"), "{table}");
    assert_eq!(
        open.iter().filter(|a| a["rule"] == "disk_low").count(),
        64,
        "one alert per disk kept, not 500"
    );
    for alert in open.iter().filter(|a| a["rule"] == "disk_low") {
        assert!(alert["hostname"].as_str().is_some_and(|h| h.len() <= 253));
        assert_eq!(
            alert["detail"],
            "nom de machine tronqué (65536 octets reçus) ; 500 disques, 64 pris en compte"
        );
    }
    let shown = collector.admin(&["alerts"]).ok().stdout;
    assert!(shown.contains("HHHH"), "{shown}");

    // The snapshot is still fully usable: a later, normal snapshot replaces it.
    let normal = vigie_tests::grpc::snapshot_report(uuid::Uuid::now_v7(), "SRV-PACS");
    send_as(&collector, &agent, vec![normal]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector.agent(&agent_id)["hostname"] != "SRV-PACS" {
        assert!(
            Instant::now() < deadline,
            "the normal snapshot never replaced the cut one"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        collector.agent(&agent_id)["truncated"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

/// A report id (UUIDv7) made `days` ago.
fn old_report(days: u64, job: &str) -> v1::Report {
    let at = SystemTime::now() - Duration::from_secs(days * 86_400);
    let unix = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        unix.as_secs(),
        unix.subsec_nanos(),
    ));
    let mut report =
        vigie_tests::alerts::backup_report(job, v1::BackupStatus::Failed, "NAS injoignable");
    report.id = id.to_string();
    report.collected_at = Some(prost_types::Timestamp::from(at));
    report
}

#[tokio::test]
async fn retention_prunes_old_reports_and_alert_events_and_counts_stay_exact() {
    let (_tmp, collector) = collector_with(&[
        ("prune_every_seconds = 3600", "prune_every_seconds = 1"),
        ("alert_events_days = 90", "alert_events_days = 0"),
    ]);
    let clinic = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");

    // Five reports made 500 and 450 days ago (an agent's backlog, or an old database), three now.
    let mut reports: Vec<_> = [500, 500, 450, 450, 401]
        .iter()
        .map(|d| old_report(*d, "archive"))
        .collect();
    reports.extend((0..3).map(|_| old_report(0, "nightly-nas")));
    send_as(&collector, &agent, reports).await;
    wait_for_alerts(&collector, |a| {
        a.iter().any(|a| a["rule"] == "backup_failed")
    });

    // Pruned: the five old reports, and the alert events (no ticket sink waits for them).
    let pruned_events = |log: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("retention: pruned"))
            .filter_map(|l| l.split("alert_events=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while collector.reports_of(&agent_id) != 3 || pruned_events(&collector.log()) == 0 {
        assert!(
            Instant::now() < deadline,
            "old reports or events never pruned: {} reports left\n{}",
            collector.reports_of(&agent_id),
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = collector.log();
    assert!(log.contains("reports=5"), "{log}");
    // The alert stays (open), and so does what the rules need.
    assert!(
        alerts(&collector, &[])
            .iter()
            .any(|a| a["rule"] == "backup_failed")
    );
}
