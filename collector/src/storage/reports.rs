//! Reports: `reports` (agent UUID bytes ‖ report UUID bytes → the report as received),
//! `report_counts` (agent UUID bytes → u64 big-endian) and `uninterpreted` (same keys as
//! `reports`, empty values: the reports of kinds this collector did not know when they came),
//! all updated in one transaction, so a count is exact without a scan.
//!
//! A stored value is `0x00`, the time received (microseconds since the epoch, i64
//! big-endian), then the protobuf bytes exactly as the agent sent them, unknown fields
//! included. No protobuf message starts with 0x00 (field number 0 does not exist), so values
//! written before the header existed (bare protobuf) still read, with no time received.

use std::collections::HashSet;

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::{Storage, StorageError, decode, encode, read_counter};
use crate::model::AgentRecord;

/// Marks a stored value that starts with the time received.
const WITH_RECEIVED_AT: u8 = 0x00;
const HEADER_LEN: usize = 9;

/// What happened to one batch of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOutcome {
    /// Reports written now.
    pub new: usize,
    /// Reports that were already stored (or repeated within the batch).
    pub duplicates: usize,
    /// Of the new ones, how many this collector could not interpret.
    pub uninterpreted: usize,
}

/// A report ready to store: its id, its bytes as received, and whether this collector
/// understood its payload.
#[derive(Debug, Clone)]
pub struct EncodedReport {
    pub id: Uuid,
    pub bytes: Vec<u8>,
    pub interpreted: bool,
}

/// A report as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// When the collector received it (`None` for reports stored by older collectors).
    pub received_at: Option<Timestamp>,
    /// The protobuf bytes exactly as received.
    pub bytes: Vec<u8>,
}

impl StoredReport {
    fn encode(received_at: Timestamp, bytes: &[u8]) -> Vec<u8> {
        let mut value = Vec::with_capacity(HEADER_LEN + bytes.len());
        value.push(WITH_RECEIVED_AT);
        value.extend_from_slice(&received_at.as_microsecond().to_be_bytes());
        value.extend_from_slice(bytes);
        value
    }

    pub(super) fn decode(value: &[u8]) -> StoredReport {
        if value.len() >= HEADER_LEN && value[0] == WITH_RECEIVED_AT {
            let mut micros = [0u8; 8];
            micros.copy_from_slice(&value[1..HEADER_LEN]);
            StoredReport {
                received_at: Timestamp::from_microsecond(i64::from_be_bytes(micros)).ok(),
                bytes: value[HEADER_LEN..].to_vec(),
            }
        } else {
            StoredReport {
                received_at: None,
                bytes: value.to_vec(),
            }
        }
    }
}

/// A stored report this collector could not interpret when it arrived.
#[derive(Debug, Clone)]
pub struct UninterpretedReport {
    pub agent_id: String,
    pub id: Uuid,
    pub report: StoredReport,
}

impl Storage {
    /// Stores the reports not already stored for this agent, with the time they were
    /// received, and counts them, in one transaction. Resending a stored id writes nothing.
    pub fn store_reports(
        &self,
        agent_id: &str,
        received_at: Timestamp,
        reports: &[EncodedReport],
    ) -> Result<StoreOutcome, StorageError> {
        self.store_batch(agent_id, received_at, reports, |_| {})
    }

    /// [`Storage::store_reports`], and `note` applied to the agent's record in the same
    /// transaction: nobody sees a batch's reports counted without its contact noted.
    pub fn store_batch(
        &self,
        agent_id: &str,
        received_at: Timestamp,
        reports: &[EncodedReport],
        note: impl Fn(&mut AgentRecord),
    ) -> Result<StoreOutcome, StorageError> {
        let _turn = self.writing();
        let agent = agent_key(agent_id)?;
        let trees = (
            &self.reports,
            &self.report_counts,
            &self.uninterpreted,
            &self.agents,
        );
        let result = trees.transaction(|(stored, counts, uninterpreted, agents)| {
            if let Some(old) = agents.get(agent_id.as_bytes())? {
                let mut record: AgentRecord =
                    decode("agent", &old).map_err(ConflictableTransactionError::Abort)?;
                note(&mut record);
                let new = encode("agent", &record).map_err(ConflictableTransactionError::Abort)?;
                agents.insert(agent_id.as_bytes(), new)?;
            }
            let mut seen = HashSet::new();
            let mut outcome = StoreOutcome::default();
            for report in reports {
                let key = report_key(&agent, &report.id);
                if !seen.insert(report.id) || stored.get(key)?.is_some() {
                    outcome.duplicates += 1;
                    continue;
                }
                stored.insert(
                    key.as_slice(),
                    StoredReport::encode(received_at, &report.bytes),
                )?;
                if !report.interpreted {
                    uninterpreted.insert(key.as_slice(), &[])?;
                    outcome.uninterpreted += 1;
                }
                outcome.new += 1;
            }
            if outcome.new > 0 {
                let count = read_counter("report count", counts.get(agent)?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?
                    .unwrap_or(0);
                let count = count + outcome.new as u64;
                counts.insert(agent.as_slice(), count.to_be_bytes().as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<StorageError>>(outcome)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// How many reports are stored for this agent (kept by [`Storage::store_reports`]).
    pub fn report_count(&self, agent_id: &str) -> Result<u64, StorageError> {
        let agent = agent_key(agent_id)?;
        let count = self.report_counts.get(agent)?;
        Ok(read_counter("report count", count.as_deref())?.unwrap_or(0))
    }

    /// One stored report.
    pub fn report(
        &self,
        agent_id: &str,
        report_id: &Uuid,
    ) -> Result<Option<StoredReport>, StorageError> {
        let agent = agent_key(agent_id)?;
        Ok(self
            .reports
            .get(report_key(&agent, report_id))?
            .map(|v| StoredReport::decode(&v)))
    }

    /// An agent's stored reports, in id (so collection time) order.
    pub fn reports_of(&self, agent_id: &str) -> Result<Vec<(Uuid, StoredReport)>, StorageError> {
        let agent = agent_key(agent_id)?;
        self.reports
            .scan_prefix(agent)
            .map(|item| {
                let (key, value) = item?;
                Ok((report_id_of(&key), StoredReport::decode(&value)))
            })
            .collect()
    }

    /// How many of an agent's reports this collector has not interpreted.
    pub fn uninterpreted_count(&self, agent_id: &str) -> Result<u64, StorageError> {
        let agent = agent_key(agent_id)?;
        Ok(self.uninterpreted.scan_prefix(agent).count() as u64)
    }

    /// The reports not interpreted yet, every agent's, at most `limit`.
    pub fn uninterpreted_reports(
        &self,
        limit: usize,
    ) -> Result<Vec<UninterpretedReport>, StorageError> {
        let _turn = self.writing();
        let mut found = Vec::new();
        for key in self.uninterpreted.iter().keys().take(limit) {
            let key = key?;
            let Some(value) = self.reports.get(&key)? else {
                // Its report is gone (retention): nothing left to interpret.
                self.uninterpreted.remove(&key)?;
                continue;
            };
            found.push(UninterpretedReport {
                agent_id: Uuid::from_slice(&key[..16])
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                id: report_id_of(&key),
                report: StoredReport::decode(&value),
            });
        }
        Ok(found)
    }

    /// Takes a report off the uninterpreted list (an upgraded collector understood it).
    pub fn mark_interpreted(&self, agent_id: &str, report_id: &Uuid) -> Result<(), StorageError> {
        let _turn = self.writing();
        let agent = agent_key(agent_id)?;
        self.uninterpreted.remove(report_key(&agent, report_id))?;
        Ok(())
    }
}

fn agent_key(agent_id: &str) -> Result<[u8; 16], StorageError> {
    Uuid::parse_str(agent_id)
        .map(|id| id.into_bytes())
        .map_err(|_| StorageError::AgentId(agent_id.to_owned()))
}

fn report_key(agent: &[u8; 16], report: &Uuid) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(agent);
    key[16..].copy_from_slice(report.as_bytes());
    key
}

fn report_id_of(key: &[u8]) -> Uuid {
    key.get(16..32)
        .and_then(|b| Uuid::from_slice(b).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_keep_the_bytes_and_the_time_received() {
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        let bytes = [0x0a, 0x03, b'a', b'b', b'c', 0xf8, 0x01, 0x07];
        let stored = StoredReport::decode(&StoredReport::encode(at, &bytes));
        assert_eq!(stored.received_at, Some(at));
        assert_eq!(stored.bytes, bytes);
        // Written by a collector before the header: bare protobuf.
        let legacy = StoredReport::decode(&bytes);
        assert_eq!(legacy.received_at, None);
        assert_eq!(legacy.bytes, bytes);
    }
}
