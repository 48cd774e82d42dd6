//! Conversions between wire types (`vigie_proto::v1`) and the collector's records, at the
//! gRPC edge only.

use jiff::Timestamp;
use vigie_domain::AgentRole;
use vigie_proto::v1;

use crate::alerts::alert::{Alert, MaintenanceScope, MaintenanceWindow};
use crate::alerts::policy::{Family, covers};
use crate::alerts::summary;
use crate::facts::{self, Fact, LanFact};
use crate::limits::{self, Cut};
use crate::model::{AgentRecord, Clinic, Disk, OutboxHealth, SystemSnapshot};

pub fn timestamp_to_proto(ts: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    }
}

/// `None` for a timestamp outside jiff's range (year -9999..=9999) or with bad nanos.
pub fn timestamp_from_proto(ts: &prost_types::Timestamp) -> Option<Timestamp> {
    Timestamp::new(ts.seconds, ts.nanos).ok()
}

pub fn role_from_proto(role: i32) -> AgentRole {
    match v1::AgentRole::try_from(role) {
        Ok(v1::AgentRole::Server) => AgentRole::Server,
        Ok(v1::AgentRole::Imaging) => AgentRole::Imaging,
        _ => AgentRole::Workstation,
    }
}

pub fn role_to_proto(role: AgentRole) -> v1::AgentRole {
    match role {
        AgentRole::Workstation => v1::AgentRole::Workstation,
        AgentRole::Server => v1::AgentRole::Server,
        AgentRole::Imaging => v1::AgentRole::Imaging,
    }
}

/// The collector's snapshot, within `limits.rs`'s bounds; what was left out is in `cut`.
pub fn snapshot_from_proto(s: &v1::SystemSnapshot) -> SystemSnapshot {
    let mut cut = Cut::default();
    cut.field("nom de machine", s.hostname.len(), limits::HOSTNAME_BYTES);
    let label = |t: &str| limits::text(t, limits::LABEL_BYTES);
    SystemSnapshot {
        hostname: limits::text(&s.hostname, limits::HOSTNAME_BYTES),
        os_name: label(&s.os_name),
        os_version: label(&s.os_version),
        kernel_version: label(&s.kernel_version),
        cpu_arch: label(&s.cpu_arch),
        uptime_seconds: s.uptime_seconds,
        cpu_count: s.cpu_count,
        load_1: s.load_1,
        load_5: s.load_5,
        load_15: s.load_15,
        memory_total_bytes: s.memory_total_bytes,
        memory_available_bytes: s.memory_available_bytes,
        swap_total_bytes: s.swap_total_bytes,
        swap_free_bytes: s.swap_free_bytes,
        disks: fullest_disks(&s.disks, &mut cut)
            .into_iter()
            .map(|d| Disk {
                mount_point: limits::text(&d.mount_point, limits::PATH_BYTES),
                file_system: label(&d.file_system),
                total_bytes: d.total_bytes,
                available_bytes: d.available_bytes,
                removable: d.removable,
                kind: label(&d.kind),
            })
            .collect(),
        cut,
    }
}

/// At most [`limits::DISKS`] disks, the fullest ones (so a disk running out is never the one
/// left out), in the agent's order.
fn fullest_disks<'a>(disks: &'a [v1::Disk], cut: &mut Cut) -> Vec<&'a v1::Disk> {
    cut.list("disques", disks.len(), disks.len().min(limits::DISKS));
    if disks.len() <= limits::DISKS {
        return disks.iter().collect();
    }
    let free = |d: &v1::Disk| {
        if d.total_bytes == 0 {
            1.0
        } else {
            d.available_bytes as f64 / d.total_bytes as f64
        }
    };
    let mut order: Vec<usize> = (0..disks.len()).collect();
    order.sort_by(|&a, &b| free(&disks[a]).total_cmp(&free(&disks[b])).then(a.cmp(&b)));
    order.truncate(limits::DISKS);
    order.sort_unstable();
    order.into_iter().map(|i| &disks[i]).collect()
}

pub fn snapshot_to_proto(s: &SystemSnapshot) -> v1::SystemSnapshot {
    v1::SystemSnapshot {
        hostname: s.hostname.clone(),
        os_name: s.os_name.clone(),
        os_version: s.os_version.clone(),
        kernel_version: s.kernel_version.clone(),
        uptime_seconds: s.uptime_seconds,
        cpu_count: s.cpu_count,
        load_1: s.load_1,
        load_5: s.load_5,
        load_15: s.load_15,
        memory_total_bytes: s.memory_total_bytes,
        memory_available_bytes: s.memory_available_bytes,
        swap_total_bytes: s.swap_total_bytes,
        swap_free_bytes: s.swap_free_bytes,
        disks: s
            .disks
            .iter()
            .map(|d| v1::Disk {
                mount_point: d.mount_point.clone(),
                file_system: d.file_system.clone(),
                total_bytes: d.total_bytes,
                available_bytes: d.available_bytes,
                removable: d.removable,
                kind: d.kind.clone(),
            })
            .collect(),
        cpu_arch: s.cpu_arch.clone(),
    }
}

/// The facts a payload carries for the alert rules, within `limits.rs`'s bounds (what was
/// left out is in the fact's `cut`); `None` for payloads rules do not judge.
pub fn fact_from_payload(payload: &v1::report::Payload) -> Option<Fact> {
    use v1::report::Payload;
    let name = |t: &str| limits::text(t, limits::NAME_BYTES);
    let label = |t: &str| limits::text(t, limits::LABEL_BYTES);
    let mut cut = Cut::default();
    Some(match payload {
        Payload::Backup(b) => {
            // A declared job's last known result counts as a run too (recorded once: runs are
            // keyed by job and end time), so a restarted agent does not look like "never ran".
            let all: Vec<&v1::BackupRun> = b
                .runs
                .iter()
                .chain(b.declared_jobs.iter().filter_map(|j| j.last_run.as_ref()))
                .chain(b.declared_jobs.iter().filter_map(|j| j.last_check.as_ref()))
                .collect();
            let runs = limits::list(&all, limits::BACKUP_RUNS, "exécutions", &mut cut, |r| {
                backup_run(r)
            })
            .into_iter()
            .flatten()
            .collect();
            let declared = limits::list(
                &b.declared_jobs,
                limits::DECLARED_JOBS,
                "tâches déclarées",
                &mut cut,
                |j| facts::DeclaredJob {
                    name: name(j.name.trim()),
                    every_seconds: j.every_seconds,
                    days_of_week: (1..=7u8)
                        .filter(|d| j.days_of_week.contains(&u32::from(*d)))
                        .collect(),
                    check_every_seconds: j.check_every_seconds,
                    last_check: j.last_check.as_ref().and_then(|r| backup_run(&r)),
                    last_good_check_at: j
                        .last_good_check_at
                        .as_ref()
                        .and_then(timestamp_from_proto),
                },
            );
            Fact::Backup {
                runs,
                declared,
                cut,
            }
        }
        Payload::OsUpdates(u) => Fact::OsUpdates(facts::OsUpdates {
            manager: label(&u.manager),
            pending_count: u.pending_count,
            security_count: u.security_count,
            reboot_required: u.reboot_required,
            reboot_reasons: limits::list(
                &u.reboot_reasons,
                limits::REBOOT_REASONS,
                "raisons de redémarrage",
                &mut cut,
                |r| limits::text(r, limits::MESSAGE_BYTES),
            ),
            reboot_required_since: u
                .reboot_required_since
                .as_ref()
                .and_then(timestamp_from_proto),
            pending_since: None,
            security_pending_since: None,
            cut,
        }),
        Payload::Antivirus(a) => Fact::Antivirus(facts::Antivirus {
            products: limits::list(
                &a.products,
                limits::ANTIVIRUS_PRODUCTS,
                "antivirus",
                &mut cut,
                |p| facts::AntivirusProduct {
                    name: name(&p.name),
                    enabled: p.enabled,
                    realtime_protection: p.realtime_protection,
                    signatures_up_to_date: p.signatures_up_to_date,
                    signatures_updated_at: p
                        .signatures_updated_at
                        .as_ref()
                        .and_then(timestamp_from_proto),
                },
            ),
            none_found: a.none_found,
            cut,
        }),
        Payload::Software(s) => Fact::Software(facts::Software {
            items: limits::list(
                &s.items,
                limits::SOFTWARE_ITEMS,
                "logiciels",
                &mut cut,
                |i| facts::InstalledSoftware {
                    watch_name: name(&i.watch_name),
                    name: name(&i.name),
                    version: label(&i.version),
                },
            ),
            cut,
        }),
        Payload::Lan(l) => {
            let devices = limits::list(
                &l.devices,
                limits::LAN_DEVICES,
                "équipements",
                &mut cut,
                device,
            );
            let supplies_left_out: usize = l
                .devices
                .iter()
                .take(limits::LAN_DEVICES)
                .map(|d| d.supplies.len().saturating_sub(limits::SUPPLIES))
                .sum();
            if supplies_left_out > 0 {
                cut.0.push(format!(
                    "{supplies_left_out} consommables non pris en compte"
                ));
            }
            // A cut list of targets would make the collector forget the ones left out: over
            // the bound, the report counts as one that does not list its targets.
            let configured = if l.configured_targets.len() > limits::LAN_DEVICES {
                cut.list("cibles configurées", l.configured_targets.len(), 0);
                Vec::new()
            } else {
                l.configured_targets.iter().map(|t| name(t)).collect()
            };
            Fact::Lan(LanFact {
                devices,
                configured,
                cut,
            })
        }
        Payload::SystemSnapshot(_) | Payload::CheckFailure(_) => return None,
    })
}

/// A run without an end time cannot be placed in time: rules ignore it.
fn backup_run(r: &&v1::BackupRun) -> Option<facts::BackupRun> {
    use v1::BackupStatus as S;
    let finished_at = r.finished_at.as_ref().and_then(timestamp_from_proto)?;
    let job = r.job.trim();
    if job.is_empty() {
        return None;
    }
    let kind = match r.kind.trim() {
        "check" => facts::RunKind::Check,
        // Older agents send nothing; an unknown kind is judged as a backup, never dropped.
        _ => facts::RunKind::Backup,
    };
    let job = match kind {
        facts::RunKind::Backup => job.to_owned(),
        facts::RunKind::Check => format!("{job}{}", facts::CHECK_JOB_SUFFIX),
    };
    Some(facts::BackupRun {
        job: limits::text(&job, limits::NAME_BYTES),
        kind,
        source: limits::text(&r.source, limits::PATH_BYTES),
        status: match S::try_from(r.status) {
            Ok(S::Success) => facts::BackupStatus::Success,
            Ok(S::Warning) => facts::BackupStatus::Warning,
            Ok(S::Failed) => facts::BackupStatus::Failed,
            _ => facts::BackupStatus::Unknown,
        },
        started_at: r.started_at.as_ref().and_then(timestamp_from_proto),
        finished_at,
        bytes: r.bytes,
        files: r.files,
        target: limits::text(&r.target, limits::PATH_BYTES),
        message: limits::text(&r.message, limits::MESSAGE_BYTES),
        cause: limits::text(&r.cause, limits::LABEL_BYTES),
        code: r.code,
        failed_items: r.failed_items,
    })
}

fn device(d: &v1::DeviceHealth) -> facts::Device {
    use v1::DeviceState as S;
    let label = |t: &str| limits::text(t, limits::LABEL_BYTES);
    facts::Device {
        name: limits::text(&d.name, limits::NAME_BYTES),
        kind: label(&d.kind),
        address: label(&d.address),
        state: match S::try_from(d.state) {
            Ok(S::Up) => facts::DeviceState::Up,
            Ok(S::Degraded) => facts::DeviceState::Degraded,
            Ok(S::Down) => facts::DeviceState::Down,
            _ => facts::DeviceState::Unknown,
        },
        error: limits::text(&d.error, limits::MESSAGE_BYTES),
        // Over the bound, the first supplies (the printer's order); the report's cut counts
        // the others.
        supplies: d
            .supplies
            .iter()
            .take(limits::SUPPLIES)
            .map(|s| facts::Supply {
                description: label(&s.description),
                percent: s.percent.filter(|p| p.is_finite()),
            })
            .collect(),
        ups: d.ups.as_ref().map(|u| facts::Ups {
            battery_status: label(&u.battery_status),
            charge_percent: u.charge_percent.filter(|p| p.is_finite()),
            on_battery: u.on_battery,
        }),
    }
}

/// An alert as the admin interface shows it; `clinic` is its clinic when it still exists.
pub fn alert_to_proto(a: &Alert, clinic: Option<&Clinic>, now: Timestamp) -> v1::Alert {
    v1::Alert {
        id: a.id,
        clinic_id: a.clinic_id.clone(),
        clinic_name: clinic.map(|c| c.name.clone()).unwrap_or_default(),
        tier: clinic
            .map(|c| c.tier.as_str().to_owned())
            .unwrap_or_default(),
        agent_id: a.agent_id.clone(),
        hostname: a.hostname.clone(),
        device: a.device.clone().unwrap_or_default(),
        rule: a.rule.as_str().to_owned(),
        category: a.rule.category().as_str().to_owned(),
        family: a.rule.family().as_str().to_owned(),
        subject: a.subject.clone(),
        severity: a.severity.as_str().to_owned(),
        state: a.state.as_str().to_owned(),
        summary: summary::summary(a, now),
        detail: a.detail.clone(),
        since: a.since.map(timestamp_to_proto),
        first_seen: Some(timestamp_to_proto(a.first_seen)),
        last_seen: Some(timestamp_to_proto(a.last_seen)),
        count: a.count,
        silenced: a.silenced,
        flapping: a.flapping,
        previous_id: a.previous_id,
        resolved_at: a.resolved_at.map(timestamp_to_proto),
        history: a
            .history
            .iter()
            .map(|h| v1::AlertHistoryEntry {
                at: Some(timestamp_to_proto(h.at)),
                action: h.action.clone(),
                by: h.by.clone(),
                note: h.note.clone(),
            })
            .collect(),
    }
}

pub fn maintenance_window_to_proto(s: &MaintenanceWindow, now: Timestamp) -> v1::MaintenanceWindow {
    let (clinic_id, agent_id) = match &s.scope {
        MaintenanceScope::Clinic(id) => (id.clone(), String::new()),
        MaintenanceScope::Agent(id) => (String::new(), id.clone()),
    };
    v1::MaintenanceWindow {
        id: s.id,
        clinic_id,
        agent_id,
        starts_at: Some(timestamp_to_proto(s.starts_at)),
        ends_at: Some(timestamp_to_proto(s.ends_at)),
        reason: s.reason.clone(),
        created_by: s.created_by.clone(),
        active: s.is_active(now),
    }
}

pub fn policy_to_proto(c: &Clinic, resolved: Vec<u64>) -> v1::ClinicPolicy {
    v1::ClinicPolicy {
        clinic: Some(clinic_to_proto(c)),
        families: Family::ALL
            .iter()
            .map(|&f| v1::FamilyCoverage {
                family: f.as_str().to_owned(),
                category: f.category().as_str().to_owned(),
                alerts: covers(c.tier, &c.rule_overrides, f),
                source: if c.rule_overrides.0.contains_key(&f) {
                    "override"
                } else {
                    "tier"
                }
                .to_owned(),
            })
            .collect(),
        resolved_alert_ids: resolved,
    }
}

pub fn clinic_to_proto(c: &Clinic) -> v1::Clinic {
    v1::Clinic {
        id: c.id.clone(),
        name: c.name.clone(),
        tier: c.tier.as_str().to_owned(),
        created_at: Some(timestamp_to_proto(c.created_at)),
    }
}

/// What a batch says of its agent's outbox beyond the dropped count.
pub fn outbox_health_from_proto(o: &v1::OutboxStatus) -> OutboxHealth {
    OutboxHealth {
        write_failures_total: o.write_failures_total,
        last_write_error: o.last_write_error.clone(),
        quarantined: o.quarantined,
        quarantined_total: o.quarantined_total,
        quarantine_dropped_total: o.quarantine_dropped_total,
        last_quarantine_reason: o.last_quarantine_reason.clone(),
    }
}

/// `fact_cuts`: what the collector left out of the agent's latest facts
/// (`Storage::fact_cuts`); the snapshot's own cuts are added here.
pub fn agent_to_proto(
    a: &AgentRecord,
    reports: u64,
    uninterpreted_reports: u64,
    fact_cuts: Vec<String>,
) -> v1::Agent {
    let truncated = a
        .snapshot
        .iter()
        .flat_map(|s| s.cut.0.iter().map(|note| format!("instantané : {note}")))
        .chain(fact_cuts)
        .collect();
    v1::Agent {
        id: a.id.clone(),
        clinic_id: a.clinic_id.clone(),
        hostname: a.hostname.clone(),
        os: a.os.clone(),
        role: role_to_proto(a.role).into(),
        enrolled_at: Some(timestamp_to_proto(a.enrolled_at)),
        last_seen: a.last_seen.map(timestamp_to_proto),
        reports,
        revoked: a.revoked,
        outbox_dropped_total: a.outbox_dropped_total,
        agent_version: a.agent_version.clone(),
        last_snapshot: a.snapshot.as_ref().map(snapshot_to_proto),
        clock_offset_seconds: a.clock.map(|c| c.offset_seconds),
        uninterpreted_reports,
        outbox: Some(v1::AgentOutbox {
            write_failures_total: a.outbox_health.write_failures_total,
            last_write_error: a.outbox_health.last_write_error.clone(),
            quarantined: a.outbox_health.quarantined,
            quarantined_total: a.outbox_health.quarantined_total,
            quarantine_dropped_total: a.outbox_health.quarantine_dropped_total,
            last_quarantine_reason: a.outbox_health.last_quarantine_reason.clone(),
        }),
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_out_of_range_is_none() {
        let now = Timestamp::now();
        assert_eq!(timestamp_from_proto(&timestamp_to_proto(now)), Some(now));
        let absurd = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(timestamp_from_proto(&absurd), None);
    }

    #[test]
    fn backup_payload_becomes_runs_and_declared_jobs() {
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let run = |job: &str, end| v1::BackupRun {
            job: job.into(),
            status: v1::BackupStatus::Failed.into(),
            finished_at: end,
            ..v1::BackupRun::default()
        };
        let payload = v1::report::Payload::Backup(v1::BackupReport {
            runs: vec![run("a", ts(10)), run("no-end", None), run(" ", ts(5))],
            declared_jobs: vec![v1::DeclaredJob {
                name: "b".into(),
                every_seconds: 86_400,
                last_run: Some(run("b", ts(20))),
                ..v1::DeclaredJob::default()
            }],
            ..v1::BackupReport::default()
        });
        let Some(Fact::Backup { runs, declared, .. }) = fact_from_payload(&payload) else {
            panic!("a backup fact");
        };
        let jobs: Vec<_> = runs.iter().map(|r| r.job.as_str()).collect();
        assert_eq!(
            jobs,
            ["a", "b"],
            "runs without an end or a name are dropped"
        );
        assert_eq!(runs[0].status, facts::BackupStatus::Failed);
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].every_seconds, 86_400);
    }

    #[test]
    fn a_huge_snapshot_is_kept_within_bounds_and_says_what_was_left_out() {
        let disk = |i: u64, free_percent: u64| v1::Disk {
            mount_point: format!("/mnt/{i}"),
            total_bytes: 100 << 30,
            available_bytes: free_percent << 30,
            ..v1::Disk::default()
        };
        let mut disks: Vec<_> = (0..500).map(|i| disk(i, 50)).collect();
        disks[321] = disk(321, 1);
        let wire = v1::SystemSnapshot {
            hostname: "h".repeat(65_536),
            os_name: "Debian".into(),
            disks,
            ..v1::SystemSnapshot::default()
        };
        let s = snapshot_from_proto(&wire);
        assert_eq!(s.hostname.len(), limits::HOSTNAME_BYTES);
        assert!(limits::is_cut(&s.hostname));
        assert_eq!(s.os_name, "Debian");
        assert_eq!(s.disks.len(), limits::DISKS);
        assert!(
            s.disks.iter().any(|d| d.mount_point == "/mnt/321"),
            "the fullest disk is never the one left out"
        );
        assert_eq!(
            s.cut.0,
            [
                "nom de machine tronqué (65536 octets reçus)",
                "500 disques, 64 pris en compte"
            ]
        );
        let again = snapshot_from_proto(&snapshot_to_proto(&s));
        assert!(again.cut.is_empty(), "a bounded snapshot is kept as is");
        assert_eq!(again.hostname, s.hostname);
    }

    #[test]
    fn long_backup_texts_are_cut_but_the_run_is_kept() {
        let ts = Some(prost_types::Timestamp {
            seconds: 10,
            nanos: 0,
        });
        let runs: Vec<_> = (0..300)
            .map(|i| v1::BackupRun {
                job: format!("job-{i}-{}", "j".repeat(1000)),
                message: "m".repeat(100_000),
                finished_at: ts,
                ..v1::BackupRun::default()
            })
            .collect();
        let payload = v1::report::Payload::Backup(v1::BackupReport {
            runs,
            ..v1::BackupReport::default()
        });
        let Some(Fact::Backup { runs, cut, .. }) = fact_from_payload(&payload) else {
            panic!("a backup fact");
        };
        assert_eq!(runs.len(), limits::BACKUP_RUNS);
        assert!(runs[0].job.len() <= limits::NAME_BYTES && limits::is_cut(&runs[0].job));
        assert!(runs[0].message.len() <= limits::MESSAGE_BYTES);
        assert_eq!(cut.0, ["300 exécutions, 256 prises en compte"]);
    }

    #[test]
    fn checks_are_kept_apart_from_backups_and_travel_with_declared_jobs() {
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let check = v1::BackupRun {
            job: "nas".into(),
            kind: "check".into(),
            status: v1::BackupStatus::Failed.into(),
            finished_at: ts(30),
            cause: "repository_damaged".into(),
            ..v1::BackupRun::default()
        };
        let payload = v1::report::Payload::Backup(v1::BackupReport {
            declared_jobs: vec![v1::DeclaredJob {
                name: "nas".into(),
                every_seconds: 86_400,
                check_every_seconds: 30 * 86_400,
                last_check: Some(check),
                last_good_check_at: ts(10),
                ..v1::DeclaredJob::default()
            }],
            ..v1::BackupReport::default()
        });
        let Some(Fact::Backup { runs, declared, .. }) = fact_from_payload(&payload) else {
            panic!("a backup fact");
        };
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].kind, facts::RunKind::Check);
        assert_eq!(runs[0].job, format!("nas{}", facts::CHECK_JOB_SUFFIX));
        assert_eq!(runs[0].job_name(), "nas");
        assert_eq!(runs[0].cause, "repository_damaged");
        assert_eq!(declared[0].check_every_seconds, 30 * 86_400);
        assert_eq!(
            declared[0].last_good_check_at.map(|t| t.as_second()),
            Some(10)
        );
    }

    #[test]
    fn unknown_role_numbers_mean_workstation() {
        assert_eq!(role_from_proto(2), AgentRole::Server);
        assert_eq!(role_from_proto(0), AgentRole::Workstation);
        assert_eq!(role_from_proto(99), AgentRole::Workstation);
    }
}
