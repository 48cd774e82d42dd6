//! What the agent reports: one [`Fact`] variant per payload, wrapped in a [`Report`] with its id
//! and collection time. These are the agent's own types; the protobuf types appear only in
//! [`Report::to_proto`], at the send edge.

mod wire;

pub(crate) use wire::proto_timestamp;
pub mod antivirus;
pub mod backup;
pub mod lan;
pub mod ps_json;
pub mod slow_check;
pub mod software;
pub mod system;
pub mod updates;

#[cfg(test)]
mod robustness;

use jiff::Timestamp;
use serde::Serialize;
use serde::ser::SerializeMap;
use uuid::Uuid;

pub use system::SystemSnapshot;

/// One observation, typed by what it is about. Later capabilities add a variant each (backup
/// result, update status, antivirus, software inventory, LAN probe).
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    SystemSnapshot(SystemSnapshot),
    /// One LAN round: device health and unknown neighbours (`facts/lan/`).
    Lan(lan::LanReport),
    /// Backup runs, declared jobs, unreadable result files (`facts/backup/`).
    Backup(backup::BackupFact),
    /// Pending OS updates, last install, reboot pending (`facts/updates/`).
    OsUpdates(updates::OsUpdateStatus),
    /// Antivirus products found and their state, or none (`facts/antivirus/`).
    Antivirus(antivirus::AntivirusStatus),
    /// Watched business software and its versions (`facts/software/`).
    Software(software::SoftwareInventory),
    /// A check that could not run here: what failed and why.
    CheckFailure(CheckFailure),
}

/// A source that failed or does not exist on this machine: a fact in its own right, so the
/// collector can tell "no data" from "nothing wrong".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckFailure {
    /// The check or source, e.g. `os_updates.apt`.
    pub check: String,
    pub error: String,
}

impl Fact {
    /// The `kind` name in JSON output, also the key holding the payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::SystemSnapshot(_) => "system_snapshot",
            Fact::Lan(_) => "lan",
            Fact::Backup(_) => "backup",
            Fact::OsUpdates(_) => "os_updates",
            Fact::Antivirus(_) => "antivirus",
            Fact::Software(_) => "software",
            Fact::CheckFailure(_) => "check_failure",
        }
    }

    /// An id derived from the fact's source, so that reading it again is a duplicate.
    fn stable_id(&self) -> Option<Uuid> {
        match self {
            Fact::Backup(b) => b.id,
            _ => None,
        }
    }

    /// Bookkeeping once the fact's report is durably queued (a backup result file is cleared
    /// only then).
    pub fn after_queued(&self) {
        if let Fact::Backup(b) = self {
            b.settle();
        }
    }
}

/// A fact ready to queue: the id is the idempotency key the collector deduplicates on.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// UUIDv7: time-ordered, so the outbox iterates oldest first.
    pub id: Uuid,
    pub collected_at: Timestamp,
    pub fact: Fact,
}

impl Report {
    /// Stamps a fact collected just now with a fresh id, or the id the fact derives from its
    /// source (a backup run read twice must keep its id).
    pub fn new(fact: Fact) -> Self {
        Report {
            id: fact.stable_id().unwrap_or_else(Uuid::now_v7),
            collected_at: Timestamp::now(),
            fact,
        }
    }
}

/// `{"id", "collected_at", "kind": K, K: {...}}`: the payload sits under its kind's name so
/// that a reader can pick it without knowing every kind.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("collected_at", &self.collected_at)?;
        map.serialize_entry("kind", self.fact.kind())?;
        match &self.fact {
            Fact::SystemSnapshot(s) => map.serialize_entry(self.fact.kind(), s)?,
            Fact::Lan(l) => map.serialize_entry(self.fact.kind(), l)?,
            Fact::Backup(b) => map.serialize_entry(self.fact.kind(), b)?,
            Fact::OsUpdates(u) => map.serialize_entry(self.fact.kind(), u)?,
            Fact::Antivirus(a) => map.serialize_entry(self.fact.kind(), a)?,
            Fact::Software(s) => map.serialize_entry(self.fact.kind(), s)?,
            Fact::CheckFailure(f) => map.serialize_entry(self.fact.kind(), f)?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            collected_at: "2025-03-01T08:30:00.5Z".parse().expect("timestamp"),
            fact: Fact::SystemSnapshot(system::tests::sample_snapshot()),
        }
    }

    #[test]
    fn json_has_id_time_kind_and_payload_under_kind() {
        let json = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(json["id"], "01900000-0000-7000-8000-000000000001");
        assert_eq!(json["collected_at"], "2025-03-01T08:30:00.5Z");
        assert_eq!(json["kind"], "system_snapshot");
        assert_eq!(json["system_snapshot"]["hostname"], "cab-accueil");
        assert_eq!(json["system_snapshot"]["disks"][0]["kind"], "ssd");
    }

    #[test]
    fn proto_carries_id_time_and_payload() {
        let proto = sample().to_proto();
        assert_eq!(proto.id, "01900000-0000-7000-8000-000000000001");
        let at = proto.collected_at.expect("timestamp");
        assert_eq!((at.seconds, at.nanos), (1_740_817_800, 500_000_000));
        let Some(vigie_proto::v1::report::Payload::SystemSnapshot(s)) = proto.payload else {
            panic!("system snapshot payload expected");
        };
        assert_eq!(s.hostname, "cab-accueil");
        assert_eq!(s.disks[0].kind, "ssd");
    }
}
