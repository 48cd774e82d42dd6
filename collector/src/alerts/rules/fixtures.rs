//! Test facts: an agent record, backup runs, and facts that make each rule fire.

use jiff::{SignedDuration, Timestamp};
use vigie_domain::AgentRole;

use super::AgentFacts;
use crate::alerts::policy::Rule;
use crate::facts::*;
use crate::model::{AgentRecord, Disk, SystemSnapshot};

pub const NOW: i64 = 1_780_000_000; // a Thursday in 2026, 00:26 in La Réunion

pub fn now() -> Timestamp {
    Timestamp::from_second(NOW).expect("ts")
}

pub fn ago(hours: i64) -> Timestamp {
    now() - SignedDuration::from_hours(hours)
}

pub fn agent(role: AgentRole) -> AgentRecord {
    AgentRecord {
        id: "0193a1b2-0000-7000-8000-000000000001".into(),
        clinic_id: "clinic".into(),
        hostname: "PC-ACCUEIL".into(),
        os: "Windows 11".into(),
        role,
        agent_version: "0.1.0".into(),
        enrolled_at: ago(24 * 30),
        last_seen: Some(now()),
        revoked: false,
        revoked_at: None,
        outbox_dropped_total: 0,
        outbox_health: Default::default(),
        snapshot: None,
        snapshot_collected_at: None,
        clock: None,
        config: Default::default(),
    }
}

pub fn run(job: &str, status: BackupStatus, hours_ago: i64) -> BackupRun {
    BackupRun {
        job: job.into(),
        kind: RunKind::Backup,
        source: "spool".into(),
        status,
        started_at: Some(ago(hours_ago) - SignedDuration::from_mins(10)),
        finished_at: ago(hours_ago),
        bytes: Some(1_000_000),
        files: Some(1000),
        target: "\\\\nas\\backup".into(),
        message: String::new(),
        cause: String::new(),
        code: None,
        failed_items: None,
    }
}

/// Daily successes, one a day, the last `first_hours_ago` hours ago.
pub fn daily_successes(job: &str, n: i64, first_hours_ago: i64) -> Vec<BackupRun> {
    (0..n)
        .rev()
        .map(|i| run(job, BackupStatus::Success, first_hours_ago + 24 * i))
        .collect()
}

pub fn with_runs(runs: Vec<BackupRun>) -> AgentFacts {
    let mut facts = AgentFacts {
        agent: Some(agent(AgentRole::Server)),
        ..AgentFacts::default()
    };
    for r in runs {
        facts.backup_runs.entry(r.job.clone()).or_default().push(r);
    }
    facts
}

pub fn device(name: &str, kind: &str, state: DeviceState) -> Device {
    Device {
        name: name.into(),
        kind: kind.into(),
        address: "192.168.1.20".into(),
        state,
        error: String::new(),
        supplies: vec![],
        ups: None,
    }
}

fn stamp<T>(value: T) -> Stamped<T> {
    Stamped {
        collected_at: now(),
        value,
    }
}

/// Facts under which `rule` (and maybe others) holds now.
pub fn firing(rule: Rule) -> AgentFacts {
    use Rule::*;
    let mut facts = with_runs(daily_successes("nightly-nas", 5, 2));
    match rule {
        BackupFailed => facts = with_runs(vec![run("nightly-nas", BackupStatus::Failed, 1)]),
        BackupWarning => facts = with_runs(vec![run("nightly-nas", BackupStatus::Warning, 1)]),
        BackupMissing => facts = with_runs(daily_successes("nightly-nas", 3, 27)),
        BackupCheckFailed => {
            let mut check = run(
                &format!("nightly-nas{CHECK_JOB_SUFFIX}"),
                BackupStatus::Failed,
                1,
            );
            check.kind = RunKind::Check;
            facts = with_runs(vec![check]);
        }
        BackupCheckMissing => {
            facts.declared_jobs = vec![DeclaredJobRecord {
                job: DeclaredJob {
                    name: "nightly-nas".into(),
                    every_seconds: 86_400,
                    days_of_week: vec![],
                    check_every_seconds: 7 * 86_400,
                    last_check: None,
                    last_good_check_at: None,
                },
                first_declared_at: ago(24 * 30),
                declared_at: now(),
            }];
        }
        BackupSuspicious => {
            let mut runs = daily_successes("nightly-nas", 7, 25);
            let mut small = run("nightly-nas", BackupStatus::Success, 1);
            small.bytes = Some(400_000);
            runs.push(small);
            facts = with_runs(runs);
        }
        OsUpdatesPending | SecurityUpdatesPending | RebootPending => {
            facts.os_updates = Some(stamp(OsUpdates {
                manager: "windows_update".into(),
                pending_count: 4,
                security_count: 2,
                reboot_required: true,
                reboot_reasons: vec!["CBS RebootPending".into()],
                reboot_required_since: Some(ago(24 * 40)),
                pending_since: Some(ago(24 * 40)),
                security_pending_since: Some(ago(24 * 40)),
                ..OsUpdates::default()
            }));
        }
        AntivirusRealtimeOff | AntivirusSignaturesStale => {
            facts.antivirus = Some(stamp(Antivirus {
                products: vec![AntivirusProduct {
                    name: "Microsoft Defender".into(),
                    enabled: true,
                    realtime_protection: Some(rule == AntivirusSignaturesStale),
                    signatures_up_to_date: None,
                    signatures_updated_at: Some(ago(24 * 10)),
                }],
                none_found: false,
                ..Antivirus::default()
            }));
        }
        AntivirusMissing => {
            facts.antivirus = Some(stamp(Antivirus {
                products: vec![],
                none_found: true,
                ..Antivirus::default()
            }));
        }
        SoftwareOutdated => {
            facts.software = Some(stamp(Software {
                items: vec![InstalledSoftware {
                    watch_name: "Weda".into(),
                    name: "Weda Connect".into(),
                    version: "4.1.9".into(),
                }],
                ..Software::default()
            }));
        }
        DiskLow => {
            let mut agent = agent(AgentRole::Server);
            agent.snapshot = Some(SystemSnapshot {
                disks: vec![Disk {
                    mount_point: "C:\\".into(),
                    total_bytes: 100 << 30,
                    available_bytes: 2 << 30,
                    ..Disk::default()
                }],
                ..SystemSnapshot::default()
            });
            agent.snapshot_collected_at = Some(now());
            facts.agent = Some(agent);
        }
        LanDeviceDown | PrinterSupplyLow | UpsOnBattery | UpsBatteryLow => {
            let mut printer = device("imprimante-accueil", "printer", DeviceState::Up);
            printer.supplies = vec![Supply {
                description: "Toner noir".into(),
                percent: Some(4.0),
            }];
            let mut ups = device("onduleur", "ups", DeviceState::Up);
            ups.ups = Some(Ups {
                battery_status: "low".into(),
                charge_percent: Some(20.0),
                on_battery: true,
            });
            facts.devices = vec![
                DeviceRecord {
                    device: device("pacs", "pacs", DeviceState::Down),
                    reported_at: now(),
                    down_since: Some(ago(1)),
                },
                DeviceRecord {
                    device: printer,
                    reported_at: now(),
                    down_since: None,
                },
                DeviceRecord {
                    device: ups,
                    reported_at: now(),
                    down_since: None,
                },
            ];
        }
        AgentSilent => {
            let mut agent = agent(AgentRole::Server);
            agent.last_seen = Some(ago(2));
            facts.agent = Some(agent);
        }
        ClockSkew => {
            let mut agent = agent(AgentRole::Workstation);
            agent.clock = Some(crate::agent_clock::ClockReading {
                offset_seconds: 365 * 86_400,
                measured_at: now(),
            });
            facts.agent = Some(agent);
        }
    }
    facts
}
