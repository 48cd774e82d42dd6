//! Reports: `reports` (agent UUID bytes ‖ report UUID bytes → protobuf) and `report_counts`
//! (agent UUID bytes → u64 big-endian), updated in one transaction so a count is exact
//! without a scan.

use std::collections::HashSet;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::{Storage, StorageError, read_counter};

/// What happened to one batch of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOutcome {
    /// Reports written now.
    pub new: usize,
    /// Reports that were already stored (or repeated within the batch).
    pub duplicates: usize,
}

/// A report ready to store: its id and its protobuf encoding.
#[derive(Debug, Clone)]
pub struct EncodedReport {
    pub id: Uuid,
    pub bytes: Vec<u8>,
}

impl Storage {
    /// Stores the reports not already stored for this agent, and counts them, in one
    /// transaction. Resending a stored id writes nothing.
    pub fn store_reports(
        &self,
        agent_id: &str,
        reports: &[EncodedReport],
    ) -> Result<StoreOutcome, StorageError> {
        let agent = agent_key(agent_id)?;
        let result = (&self.reports, &self.report_counts).transaction(|(stored, counts)| {
            let mut seen = HashSet::new();
            let mut outcome = StoreOutcome::default();
            for report in reports {
                let key = report_key(&agent, &report.id);
                if !seen.insert(report.id) || stored.get(key)?.is_some() {
                    outcome.duplicates += 1;
                    continue;
                }
                stored.insert(key.as_slice(), report.bytes.as_slice())?;
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

    /// The stored protobuf encoding of one report.
    pub fn report(
        &self,
        agent_id: &str,
        report_id: &Uuid,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let agent = agent_key(agent_id)?;
        Ok(self
            .reports
            .get(report_key(&agent, report_id))?
            .map(|v| v.to_vec()))
    }

    /// The protobuf encodings of an agent's reports, in id (so collection time) order.
    pub fn reports_of(&self, agent_id: &str) -> Result<Vec<(Uuid, Vec<u8>)>, StorageError> {
        let agent = agent_key(agent_id)?;
        self.reports
            .scan_prefix(agent)
            .map(|item| {
                let (key, value) = item?;
                let id = Uuid::from_slice(&key[16..]).unwrap_or_default();
                Ok((id, value.to_vec()))
            })
            .collect()
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
