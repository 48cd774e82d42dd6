//! Conversions between wire types (`vigie_proto::v1`) and the collector's records, at the
//! gRPC edge only.

use jiff::Timestamp;
use vigie_domain::AgentRole;
use vigie_proto::v1;

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
    fn unknown_role_numbers_mean_workstation() {
        assert_eq!(role_from_proto(2), AgentRole::Server);
        assert_eq!(role_from_proto(0), AgentRole::Workstation);
        assert_eq!(role_from_proto(99), AgentRole::Workstation);
    }
}
