//! Agent facts → protobuf, in one place: the only module under `facts/` that names the wire
//! types. Each check's types stay plain; `Report::to_proto` is what the outbox stores.

#![allow(clippy::wildcard_imports)]

use vigie_proto::v1;

use super::antivirus::*;
use super::backup::*;
use super::lan::snmp::*;
use super::lan::*;
use super::software::*;
use super::system::*;
use super::updates::*;
use super::*;

/// A timestamp as protobuf carries it.
pub(crate) fn proto_timestamp(t: &jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn timestamp_to_proto(t: jiff::Timestamp) -> prost_types::Timestamp {
    proto_timestamp(&t)
}

impl AntivirusStatus {
    pub fn to_proto(&self) -> v1::AntivirusStatus {
        v1::AntivirusStatus {
            products: self
                .products
                .iter()
                .map(|p| v1::AntivirusProduct {
                    name: p.name.clone(),
                    source: p.source.clone(),
                    enabled: p.enabled,
                    realtime_protection: p.realtime_protection,
                    signatures_up_to_date: p.signatures_up_to_date,
                    signature_version: p.signature_version.clone(),
                    signatures_updated_at: p.signatures_updated_at.as_ref().map(proto_timestamp),
                    engine_version: p.engine_version.clone(),
                    service_running: p.service_running,
                })
                .collect(),
            none_found: self.none_found,
        }
    }
}

impl OsUpdateStatus {
    pub fn to_proto(&self) -> v1::OsUpdateStatus {
        v1::OsUpdateStatus {
            manager: self.manager.clone(),
            pending_count: self.pending_count,
            security_count: self.security_count,
            pending: self
                .pending
                .iter()
                .map(|p| v1::PendingUpdate {
                    title: p.title.clone(),
                    classification: p.classification.as_str().to_owned(),
                    id: p.id.clone(),
                })
                .collect(),
            last_install_at: self.last_install_at.as_ref().map(proto_timestamp),
            reboot_required: self.reboot_required,
            reboot_reasons: self.reboot_reasons.clone(),
            reboot_required_since: self.reboot_required_since.as_ref().map(proto_timestamp),
        }
    }
}

impl LanReport {
    pub fn to_proto(&self) -> v1::LanReport {
        v1::LanReport {
            devices: self.devices.iter().map(DeviceHealth::to_proto).collect(),
            discovered: self
                .discovered
                .iter()
                .map(|d| v1::DiscoveredDevice {
                    ip: d.ip.clone(),
                    mac: d.mac.clone(),
                    state: d.state.clone(),
                })
                .collect(),
            configured_targets: self.configured.clone(),
        }
    }
}

impl DeviceHealth {
    fn to_proto(&self) -> v1::DeviceHealth {
        let state = match self.state {
            DeviceState::Up => v1::DeviceState::Up,
            DeviceState::Degraded => v1::DeviceState::Degraded,
            DeviceState::Down => v1::DeviceState::Down,
        };
        v1::DeviceHealth {
            name: self.name.clone(),
            kind: self.kind.as_str().to_owned(),
            address: self.address.clone(),
            state: state.into(),
            latency_ms: self.latency_ms,
            probes: self
                .probes
                .iter()
                .map(|p| v1::ProbeResult {
                    probe: p.probe.clone(),
                    ok: p.ok,
                    latency_ms: p.latency_ms,
                    error: p.error.clone(),
                    details: p.details.clone().into_iter().collect(),
                })
                .collect(),
            supplies: self
                .supplies
                .iter()
                .map(snmp::PrinterSupply::to_proto)
                .collect(),
            ups: self.ups.as_ref().map(snmp::UpsStatus::to_proto),
            storage: self
                .storage
                .iter()
                .map(snmp::StorageUse::to_proto)
                .collect(),
            sys_descr: self.sys_descr.clone().unwrap_or_default(),
            uptime_seconds: self.uptime_seconds,
            error: self.error.clone(),
        }
    }
}

impl UpsStatus {
    pub fn to_proto(&self) -> v1::UpsStatus {
        v1::UpsStatus {
            battery_status: self.battery_status.clone(),
            charge_percent: self.charge_percent,
            on_battery: self.on_battery,
            minutes_remaining: self.minutes_remaining,
        }
    }
}

impl PrinterSupply {
    pub fn to_proto(&self) -> v1::PrinterSupply {
        v1::PrinterSupply {
            description: self.description.clone(),
            percent: self.percent,
            level: self.level,
            max_capacity: self.max_capacity,
        }
    }
}

impl StorageUse {
    pub fn to_proto(&self) -> v1::StorageUse {
        v1::StorageUse {
            description: self.description.clone(),
            total_bytes: self.total_bytes,
            used_bytes: self.used_bytes,
        }
    }
}

impl Fact {
    fn to_proto(&self) -> v1::report::Payload {
        match self {
            Fact::SystemSnapshot(s) => v1::report::Payload::SystemSnapshot(s.to_proto()),
            Fact::Lan(l) => v1::report::Payload::Lan(l.to_proto()),
            Fact::Backup(b) => v1::report::Payload::Backup(b.report.to_proto()),
            Fact::OsUpdates(u) => v1::report::Payload::OsUpdates(u.to_proto()),
            Fact::Antivirus(a) => v1::report::Payload::Antivirus(a.to_proto()),
            Fact::Software(s) => v1::report::Payload::Software(s.to_proto()),
            Fact::CheckFailure(f) => v1::report::Payload::CheckFailure(v1::CheckFailure {
                check: f.check.clone(),
                error: f.error.clone(),
            }),
        }
    }
}

impl Report {
    pub fn to_proto(&self) -> v1::Report {
        v1::Report {
            id: self.id.to_string(),
            collected_at: Some(prost_types::Timestamp {
                seconds: self.collected_at.as_second(),
                nanos: self.collected_at.subsec_nanosecond(),
            }),
            payload: Some(self.fact.to_proto()),
        }
    }
}

impl SystemSnapshot {
    pub fn to_proto(&self) -> v1::SystemSnapshot {
        v1::SystemSnapshot {
            hostname: self.hostname.clone(),
            os_name: self.os_name.clone(),
            os_version: self.os_version.clone(),
            kernel_version: self.kernel_version.clone(),
            uptime_seconds: self.uptime_seconds,
            cpu_count: self.cpu_count,
            load_1: self.load_1,
            load_5: self.load_5,
            load_15: self.load_15,
            memory_total_bytes: self.memory_total_bytes,
            memory_available_bytes: self.memory_available_bytes,
            swap_total_bytes: self.swap_total_bytes,
            swap_free_bytes: self.swap_free_bytes,
            disks: self
                .disks
                .iter()
                .map(|d| v1::Disk {
                    mount_point: d.mount_point.clone(),
                    file_system: d.file_system.clone(),
                    total_bytes: d.total_bytes,
                    available_bytes: d.available_bytes,
                    removable: d.removable,
                    kind: d.kind.as_str().to_owned(),
                })
                .collect(),
            cpu_arch: self.cpu_arch.clone(),
        }
    }
}

impl BackupStatus {
    fn to_proto(self) -> v1::BackupStatus {
        match self {
            BackupStatus::Success => v1::BackupStatus::Success,
            BackupStatus::Warning => v1::BackupStatus::Warning,
            BackupStatus::Failed => v1::BackupStatus::Failed,
        }
    }
}

impl BackupRun {
    pub fn to_proto(&self) -> v1::BackupRun {
        v1::BackupRun {
            job: self.job.clone(),
            source: self.source.clone(),
            status: self.status.to_proto() as i32,
            started_at: self.started_at.map(timestamp_to_proto),
            finished_at: self.finished_at.map(timestamp_to_proto),
            bytes: self.bytes,
            files: self.files,
            target: self.target.clone(),
            message: self.message.clone(),
            failed_items: self.failed_items,
            code: self.code,
            kind: match self.kind {
                RunKind::Backup => String::new(),
                RunKind::Check => "check".to_owned(),
            },
            cause: self.cause.clone(),
            signal: self.signal,
            paths_removed: self.paths_removed,
        }
    }
}

impl BackupReport {
    pub fn to_proto(&self) -> v1::BackupReport {
        v1::BackupReport {
            runs: self.runs.iter().map(BackupRun::to_proto).collect(),
            declared_jobs: self
                .declared_jobs
                .iter()
                .map(|d| v1::DeclaredJob {
                    name: d.name.clone(),
                    every_seconds: d.every_seconds.unwrap_or(0),
                    days_of_week: d.days_of_week.clone(),
                    at: d.at.clone().unwrap_or_default(),
                    last_run: d.last_run.as_ref().map(BackupRun::to_proto),
                    check_every_seconds: d.check_every_seconds.unwrap_or(0),
                    last_check: d.last_check.as_ref().map(BackupRun::to_proto),
                    last_good_check_at: d.last_good_check_at.map(timestamp_to_proto),
                })
                .collect(),
            unreadable: self
                .unreadable
                .iter()
                .map(|f| v1::CheckFailure {
                    check: f.check.clone(),
                    error: f.error.clone(),
                })
                .collect(),
        }
    }
}

impl SoftwareInventory {
    pub fn to_proto(&self) -> v1::SoftwareInventory {
        v1::SoftwareInventory {
            items: self
                .items
                .iter()
                .map(|i| v1::InstalledSoftware {
                    watch_name: i.watch_name.clone(),
                    name: i.name.clone(),
                    version: i.version.clone(),
                    publisher: i.publisher.clone(),
                })
                .collect(),
            not_found: self.not_found.clone(),
        }
    }
}
