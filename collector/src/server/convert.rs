//! Conversions between wire types (`vigie_proto::v1`) and the collector's records, at the
//! gRPC edge only.

use jiff::Timestamp;
use vigie_domain::AgentRole;
use vigie_proto::v1;

use crate::alerts::alert::{Alert, Silence, SilenceScope};
use crate::alerts::policy::{Family, covers};
use crate::alerts::summary;
use crate::facts::{self, Fact};
use crate::model::{AgentRecord, Clinic, Disk, SystemSnapshot};

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

pub fn snapshot_from_proto(s: &v1::SystemSnapshot) -> SystemSnapshot {
    SystemSnapshot {
        hostname: s.hostname.clone(),
        os_name: s.os_name.clone(),
        os_version: s.os_version.clone(),
        kernel_version: s.kernel_version.clone(),
        cpu_arch: s.cpu_arch.clone(),
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
            .map(|d| Disk {
                mount_point: d.mount_point.clone(),
                file_system: d.file_system.clone(),
                total_bytes: d.total_bytes,
                available_bytes: d.available_bytes,
                removable: d.removable,
                kind: d.kind.clone(),
            })
            .collect(),
    }
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

/// The facts a payload carries for the alert rules; `None` for payloads rules do not judge.
pub fn fact_from_payload(payload: &v1::report::Payload) -> Option<Fact> {
    use v1::report::Payload;
    Some(match payload {
        Payload::Backup(b) => Fact::Backup {
            // A declared job's last known result counts as a run too (recorded once: runs are
            // keyed by job and end time), so a restarted agent does not look like "never ran".
            runs: b
                .runs
                .iter()
                .chain(b.declared_jobs.iter().filter_map(|j| j.last_run.as_ref()))
                .chain(b.declared_jobs.iter().filter_map(|j| j.last_check.as_ref()))
                .filter_map(backup_run)
                .collect(),
            declared: b
                .declared_jobs
                .iter()
                .map(|j| facts::DeclaredJob {
                    name: j.name.clone(),
                    every_seconds: j.every_seconds,
                    days_of_week: j
                        .days_of_week
                        .iter()
                        .filter_map(|d| u8::try_from(*d).ok())
                        .collect(),
                    check_every_seconds: j.check_every_seconds,
                    last_check: j.last_check.as_ref().and_then(backup_run),
                    last_good_check_at: j
                        .last_good_check_at
                        .as_ref()
                        .and_then(timestamp_from_proto),
                })
                .collect(),
        },
        Payload::OsUpdates(u) => Fact::OsUpdates(facts::OsUpdates {
            manager: u.manager.clone(),
            pending_count: u.pending_count,
            security_count: u.security_count,
            reboot_required: u.reboot_required,
            reboot_reasons: u.reboot_reasons.clone(),
            reboot_required_since: u
                .reboot_required_since
                .as_ref()
                .and_then(timestamp_from_proto),
            pending_since: None,
            security_pending_since: None,
        }),
        Payload::Antivirus(a) => Fact::Antivirus(facts::Antivirus {
            products: a
                .products
                .iter()
                .map(|p| facts::AntivirusProduct {
                    name: p.name.clone(),
                    enabled: p.enabled,
                    realtime_protection: p.realtime_protection,
                    signatures_up_to_date: p.signatures_up_to_date,
                    signatures_updated_at: p
                        .signatures_updated_at
                        .as_ref()
                        .and_then(timestamp_from_proto),
                })
                .collect(),
            none_found: a.none_found,
        }),
        Payload::Software(s) => Fact::Software(facts::Software {
            items: s
                .items
                .iter()
                .map(|i| facts::InstalledSoftware {
                    watch_name: i.watch_name.clone(),
                    name: i.name.clone(),
                    version: i.version.clone(),
                })
                .collect(),
        }),
        Payload::Lan(l) => Fact::Lan(l.devices.iter().map(device).collect()),
        Payload::SystemSnapshot(_) | Payload::CheckFailure(_) => return None,
    })
}

/// A run without an end time cannot be placed in time: rules ignore it.
fn backup_run(r: &v1::BackupRun) -> Option<facts::BackupRun> {
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
        job,
        kind,
        source: r.source.clone(),
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
        target: r.target.clone(),
        message: r.message.chars().take(500).collect(),
        cause: r.cause.chars().take(40).collect(),
        code: r.code,
        failed_items: r.failed_items,
    })
}

fn device(d: &v1::DeviceHealth) -> facts::Device {
    use v1::DeviceState as S;
    facts::Device {
        name: d.name.clone(),
        kind: d.kind.clone(),
        address: d.address.clone(),
        state: match S::try_from(d.state) {
            Ok(S::Up) => facts::DeviceState::Up,
            Ok(S::Degraded) => facts::DeviceState::Degraded,
            Ok(S::Down) => facts::DeviceState::Down,
            _ => facts::DeviceState::Unknown,
        },
        error: d.error.chars().take(500).collect(),
        supplies: d
            .supplies
            .iter()
            .map(|s| facts::Supply {
                description: s.description.clone(),
                percent: s.percent.filter(|p| p.is_finite()),
            })
            .collect(),
        ups: d.ups.as_ref().map(|u| facts::Ups {
            battery_status: u.battery_status.clone(),
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

pub fn silence_to_proto(s: &Silence, now: Timestamp) -> v1::Silence {
    let (clinic_id, agent_id) = match &s.scope {
        SilenceScope::Clinic(id) => (id.clone(), String::new()),
        SilenceScope::Agent(id) => (String::new(), id.clone()),
    };
    v1::Silence {
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

pub fn agent_to_proto(a: &AgentRecord, reports: u64) -> v1::Agent {
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
        let Some(Fact::Backup { runs, declared }) = fact_from_payload(&payload) else {
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
        let Some(Fact::Backup { runs, declared }) = fact_from_payload(&payload) else {
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
