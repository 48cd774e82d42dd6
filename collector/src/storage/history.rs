//! What the monthly report needs and the other trees forget: `fact_history` (agent ␟ topic ␟
//! time → JSON value), a change log. Topics: `device␟NAME` (a LAN device's state: a
//! transition log, for availability over a month), `os_updates`, `antivirus`, `software`
//! (the fact as it changed, for the state at a month's end). An entry is written only when the
//! value differs from the topic's latest entry, so a device probed every minute costs one
//! entry per transition, not per probe. Entries older than [`HISTORY_KEPT`] are pruned as
//! new ones are written.
//!
//! Also `report_deliveries` (clinic ␟ month → ReportDelivery): the schedule's durable marker
//! that a clinic's monthly report was generated and sent (see `report/schedule.rs`).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SEP, Storage, StorageError, decode, encode};
use crate::facts::{DeviceRecord, DeviceState, Fact, OsUpdates, Stamped};
use crate::report::schedule::ReportDelivery;

const HISTORY_TREE: &str = "fact_history";
const DELIVERY_TREE: &str = "report_deliveries";

/// How long the change log keeps an entry: a year and a month, so last year's same month can
/// still be reported.
pub const HISTORY_KEPT: SignedDuration = SignedDuration::from_hours(400 * 24);

/// One LAN device state change, as the report reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTransition {
    pub at: Timestamp,
    pub state: DeviceState,
}

/// The topics of the change log for machine facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryTopic {
    OsUpdates,
    Antivirus,
    Software,
}

impl HistoryTopic {
    fn name(self) -> &'static str {
        match self {
            HistoryTopic::OsUpdates => "os_updates",
            HistoryTopic::Antivirus => "antivirus",
            HistoryTopic::Software => "software",
        }
    }
}

fn time_key(at: Timestamp) -> [u8; 8] {
    // Big-endian with the sign bit flipped: byte order is time order.
    ((at.as_second() as u64) ^ (1 << 63)).to_be_bytes()
}

fn key_time(bytes: &[u8]) -> Option<Timestamp> {
    let tail: [u8; 8] = bytes.get(bytes.len().checked_sub(8)?..)?.try_into().ok()?;
    Timestamp::from_second((u64::from_be_bytes(tail) ^ (1 << 63)) as i64).ok()
}

impl Storage {
    fn history(&self) -> Result<sled::Tree, StorageError> {
        Ok(self.db.open_tree(HISTORY_TREE)?)
    }

    fn deliveries(&self) -> Result<sled::Tree, StorageError> {
        Ok(self.db.open_tree(DELIVERY_TREE)?)
    }

    /// The hook `record_fact` calls: keeps the changes of the facts the report shows at a
    /// month's end. The caller holds the write gate.
    pub(super) fn note_fact_history(
        &self,
        agent_id: &str,
        at: Timestamp,
        fact: &Fact,
    ) -> Result<(), StorageError> {
        match fact {
            Fact::OsUpdates(v) => {
                // Only what the report shows: the "since" times derived later change nothing.
                let shown = OsUpdates {
                    pending_since: None,
                    security_pending_since: None,
                    ..v.clone()
                };
                self.note_change(agent_id, HistoryTopic::OsUpdates.name(), at, &shown)
            }
            Fact::Antivirus(v) => self.note_change(agent_id, HistoryTopic::Antivirus.name(), at, v),
            Fact::Software(v) => self.note_change(agent_id, HistoryTopic::Software.name(), at, v),
            Fact::Backup { .. } | Fact::Lan(_) => Ok(()),
        }
    }

    /// The hook `note_devices` calls for each device it updates (write gate held).
    pub(super) fn note_device_history(
        &self,
        agent_id: &str,
        record: &DeviceRecord,
    ) -> Result<(), StorageError> {
        let topic = format!("device{SEP}{}", record.device.name);
        self.note_change(agent_id, &topic, record.reported_at, &record.device.state)
    }

    fn note_change<T: Serialize + DeserializeOwned + PartialEq>(
        &self,
        agent_id: &str,
        topic: &str,
        at: Timestamp,
        value: &T,
    ) -> Result<(), StorageError> {
        let tree = self.history()?;
        let prefix = format!("{agent_id}{SEP}{topic}{SEP}");
        // The entry in force at `at`: a report older than the latest entry still lands in order.
        let mut upto = prefix.clone().into_bytes();
        upto.extend_from_slice(&time_key(at));
        let before = tree
            .range(prefix.as_bytes()..=upto.as_slice())
            .next_back()
            .transpose()?;
        if let Some((_, bytes)) = &before
            && decode::<T>("history", bytes).ok().as_ref() == Some(value)
        {
            return Ok(());
        }
        tree.insert(upto, encode("history", value)?)?;
        // Prune: keep the newest entry older than the horizon (the state in force then).
        if let Ok(horizon) = at.checked_sub(HISTORY_KEPT) {
            let mut end = prefix.clone().into_bytes();
            end.extend_from_slice(&time_key(horizon));
            let old: Vec<_> = tree
                .range(prefix.as_bytes()..end.as_slice())
                .keys()
                .collect::<Result<_, _>>()?;
            for key in old.iter().rev().skip(1) {
                tree.remove(key)?;
            }
        }
        Ok(())
    }

    fn changes<T: DeserializeOwned>(
        &self,
        agent_id: &str,
        topic: &str,
    ) -> Result<Vec<Stamped<T>>, StorageError> {
        let prefix = format!("{agent_id}{SEP}{topic}{SEP}");
        let mut out = Vec::new();
        for item in self.history()?.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item?;
            // A key's last 8 bytes are its time; a name containing SEP cannot fake one.
            if key.len() != prefix.len() + 8 {
                continue;
            }
            let Some(at) = key_time(&key) else { continue };
            out.push(Stamped {
                collected_at: at,
                value: decode("history", &value)?,
            });
        }
        Ok(out)
    }

    /// A LAN device's state changes, oldest first.
    pub fn device_transitions(
        &self,
        agent_id: &str,
        device: &str,
    ) -> Result<Vec<DeviceTransition>, StorageError> {
        Ok(self
            .changes::<DeviceState>(agent_id, &format!("device{SEP}{device}"))?
            .into_iter()
            .map(|s| DeviceTransition {
                at: s.collected_at,
                state: s.value,
            })
            .collect())
    }

    /// The devices an agent has a history for (some may have left its configuration since).
    pub fn devices_with_history(&self, agent_id: &str) -> Result<Vec<String>, StorageError> {
        let prefix = format!("{agent_id}{SEP}device{SEP}");
        let mut names = Vec::new();
        for key in self.history()?.scan_prefix(prefix.as_bytes()).keys() {
            let key = key?;
            let Some(name) = key.get(prefix.len()..key.len().saturating_sub(9)) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// The value of a machine fact in force at `at` (the latest change at or before it).
    pub fn fact_at<T: DeserializeOwned>(
        &self,
        agent_id: &str,
        topic: HistoryTopic,
        at: Timestamp,
    ) -> Result<Option<Stamped<T>>, StorageError> {
        Ok(self
            .changes::<T>(agent_id, topic.name())?
            .into_iter()
            .rfind(|s| s.collected_at <= at))
    }

    // ---- the schedule's delivery markers ----

    pub fn report_delivery(
        &self,
        clinic_id: &str,
        month: &str,
    ) -> Result<Option<ReportDelivery>, StorageError> {
        self.deliveries()?
            .get(format!("{clinic_id}{SEP}{month}").as_bytes())?
            .map(|v| decode("report delivery", &v))
            .transpose()
    }

    pub fn put_report_delivery(
        &self,
        clinic_id: &str,
        month: &str,
        delivery: &ReportDelivery,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        self.deliveries()?.insert(
            format!("{clinic_id}{SEP}{month}").as_bytes(),
            encode("report delivery", delivery)?,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Device, LanFact};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("ts")
    }

    fn lan(state: DeviceState) -> Fact {
        Fact::Lan(LanFact {
            devices: vec![Device {
                name: "pacs".into(),
                kind: "pacs".into(),
                address: "10.0.0.5".into(),
                state,
                error: String::new(),
                supplies: vec![],
                ups: None,
            }],
            configured: vec!["pacs".into()],
            cut: Default::default(),
        })
    }

    #[test]
    fn device_history_keeps_transitions_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let agent = "0190aaaa-0000-7000-8000-000000000001";
        for (s, state) in [
            (0, DeviceState::Up),
            (60, DeviceState::Up),
            (120, DeviceState::Down),
            (180, DeviceState::Down),
            (240, DeviceState::Up),
        ] {
            storage.record_fact(agent, t(s), &lan(state)).expect("fact");
        }
        let got = storage.device_transitions(agent, "pacs").expect("history");
        assert_eq!(
            got,
            vec![
                DeviceTransition {
                    at: t(0),
                    state: DeviceState::Up
                },
                DeviceTransition {
                    at: t(120),
                    state: DeviceState::Down
                },
                DeviceTransition {
                    at: t(240),
                    state: DeviceState::Up
                },
            ]
        );
        assert_eq!(
            storage.devices_with_history(agent).expect("names"),
            vec!["pacs".to_owned()]
        );
    }

    #[test]
    fn fact_at_month_end_is_the_change_in_force_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let agent = "0190aaaa-0000-7000-8000-000000000002";
        let updates = |n| {
            Fact::OsUpdates(OsUpdates {
                manager: "apt".into(),
                pending_count: n,
                ..OsUpdates::default()
            })
        };
        storage.record_fact(agent, t(0), &updates(3)).expect("fact");
        storage
            .record_fact(agent, t(100), &updates(3))
            .expect("fact");
        storage
            .record_fact(agent, t(200), &updates(0))
            .expect("fact");
        let at: Option<Stamped<OsUpdates>> = storage
            .fact_at(agent, HistoryTopic::OsUpdates, t(150))
            .expect("read");
        let at = at.expect("a value");
        assert_eq!((at.collected_at, at.value.pending_count), (t(0), 3));
        let later: Option<Stamped<OsUpdates>> = storage
            .fact_at(agent, HistoryTopic::OsUpdates, t(250))
            .expect("read");
        assert_eq!(later.map(|s| s.value.pending_count), Some(0));
    }
}
