//! Realistic reports for the load generator: mostly system snapshots of a clinic Windows PC
//! (five disks), with a backup result now and then, each with a fresh UUIDv7.

use std::time::SystemTime;

use prost_types::Timestamp;
use vigie_proto::v1;

/// One backup report for this many system snapshots (a clinic PC reports a snapshot every 5
/// minutes and a backup result about once a day; the load is richer in backups on purpose).
const SNAPSHOTS_PER_BACKUP: usize = 10;

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn disk(
    mount: &str,
    fs: &str,
    total_gib: u64,
    free_gib: u64,
    removable: bool,
    kind: &str,
) -> v1::Disk {
    v1::Disk {
        mount_point: mount.into(),
        file_system: fs.into(),
        total_bytes: total_gib << 30,
        available_bytes: free_gib << 30,
        removable,
        kind: kind.into(),
    }
}

/// A system snapshot as a clinic workstation sends it.
pub fn snapshot(host: usize, seq: u64) -> v1::Report {
    let free = 120 + (seq % 7);
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(now()),
        payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
            hostname: format!("CAB-SAINT-DENIS-PC{host:05}"),
            os_name: "Windows 11 Pro".into(),
            os_version: "23H2 (build 22631.4460)".into(),
            kernel_version: "10.0.22631.4460".into(),
            uptime_seconds: 86_400 * 3 + seq * 300,
            cpu_count: 8,
            load_1: 0.0,
            load_5: 0.0,
            load_15: 0.0,
            memory_total_bytes: 16 << 30,
            memory_available_bytes: (7 << 30) + seq * 4096,
            swap_total_bytes: 4 << 30,
            swap_free_bytes: 3 << 30,
            disks: vec![
                disk("C:\\", "NTFS", 476, free, false, "ssd"),
                disk("D:\\", "NTFS", 931, 402, false, "hdd"),
                disk("E:\\ (SAUVEGARDE-USB)", "exFAT", 1863, 915, true, "hdd"),
                disk(
                    "\\\\NAS-CABINET\\imagerie",
                    "NTFS",
                    7452,
                    3120,
                    false,
                    "unknown",
                ),
                disk(
                    "\\\\NAS-CABINET\\sauvegardes",
                    "NTFS",
                    7452,
                    3120,
                    false,
                    "unknown",
                ),
            ],
            cpu_arch: "x86_64".into(),
        })),
    }
}

/// A backup result: one finished run and the declared nightly job.
pub fn backup(host: usize, seq: u64) -> v1::Report {
    let run = v1::BackupRun {
        job: "nightly-nas".into(),
        source: "robocopy".into(),
        status: v1::BackupStatus::Success as i32,
        started_at: Some(now()),
        finished_at: Some(now()),
        bytes: Some(48_000_000_000 + seq),
        files: Some(183_402),
        target: format!("\\\\NAS-CABINET\\sauvegardes\\PC{host:05}"),
        message: "Robocopy terminé : 1 204 fichiers copiés, 0 échec".into(),
        failed_items: Some(0),
        code: Some(1),
        ..Default::default()
    };
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(now()),
        payload: Some(v1::report::Payload::Backup(v1::BackupReport {
            runs: vec![run.clone()],
            declared_jobs: vec![v1::DeclaredJob {
                name: "nightly-nas".into(),
                every_seconds: 0,
                days_of_week: vec![1, 2, 3, 4, 5, 6],
                at: "22:30".into(),
                last_run: Some(run),
                ..Default::default()
            }],
            unreadable: Vec::new(),
        })),
    }
}

/// A batch of `size` reports from agent `host`; `seq` counts the agent's reports so far.
pub fn batch(host: usize, seq: &mut u64, size: usize) -> v1::ReportBatch {
    let reports = (0..size)
        .map(|_| {
            *seq += 1;
            if (*seq as usize).is_multiple_of(SNAPSHOTS_PER_BACKUP) {
                backup(host, *seq)
            } else {
                snapshot(host, *seq)
            }
        })
        .collect();
    v1::ReportBatch {
        reports,
        outbox: Some(v1::OutboxStatus {
            dropped_total: 0,
            queued: size as u64,
            ..v1::OutboxStatus::default()
        }),
        agent_version: "bench".into(),
        sent_at: None,
        config_version: 0,
    }
}

/// Mean encoded size of a report in a typical batch, in bytes.
pub fn mean_report_bytes() -> f64 {
    use prost::Message as _;
    let mut seq = 0;
    let b = batch(1, &mut seq, 100);
    b.reports
        .iter()
        .map(|r| r.encoded_len() as f64)
        .sum::<f64>()
        / b.reports.len() as f64
}
