//! Reports, as received. Since issue 16 one value per stored batch:
//!
//! - `report_batches`: agent UUID bytes ‖ smallest report id of the batch → the batch (see
//!   [`batch`]): a table of (report id, time received, length) sorted by id, the compact index
//!   idempotency reads, then every report's protobuf bytes exactly as received. Invariant: the
//!   id ranges `[first, last]` of one agent's batches never overlap, so the only batch that can
//!   hold an id is the one with the greatest first id ≤ it (one reverse seek); a backlog that
//!   falls between stored ids is merged into the batch whose range it falls in.
//! - `reports`: the format before issue 16 (agent ‖ report id → `0x00`, time received, bytes;
//!   or bare protobuf from older collectors): still read, deduplicated against and pruned.
//! - `report_counts` (agent → u64 big-endian) and `uninterpreted` (agent ‖ report id → empty:
//!   reports of kinds this collector did not know when they came), written in the same
//!   transaction as the batch and the agent record, so a count is exact without a scan.
//! - `facts_pending` (agent ‖ first new id → JSON [`PendingFacts`]): the batches whose facts
//!   the ingest records after the acknowledgement; written with the batch, removed once those
//!   facts were flushed, replayed at start after a crash.
//!
//! Writes of one agent's reports hold that agent's lock (one of [`AgentLocks`]): deduplication
//! reads the batches outside the transaction that writes them.

use std::collections::HashSet;

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::{Storage, StorageError, decode, encode, read_counter};
use crate::agent_clock::ClockReading;
use crate::model::AgentRecord;

/// Marks a legacy stored value that starts with the time received.
const WITH_RECEIVED_AT: u8 = 0x00;
const HEADER_LEN: usize = 9;

/// Stripes of the per-agent write lock.
const LOCK_STRIPES: usize = 64;

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
    /// The legacy per-report value (still read; written only by tests of the old format).
    #[cfg(test)]
    pub(super) fn encode_legacy(received_at: Timestamp, bytes: &[u8]) -> Vec<u8> {
        let mut value = Vec::with_capacity(HEADER_LEN + bytes.len());
        value.push(WITH_RECEIVED_AT);
        value.extend_from_slice(&received_at.as_microsecond().to_be_bytes());
        value.extend_from_slice(bytes);
        value
    }

    fn decode_legacy(value: &[u8]) -> StoredReport {
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

    fn of_entry(entry: &batch::Entry<'_>) -> StoredReport {
        StoredReport {
            received_at: Timestamp::from_microsecond(entry.received_at).ok(),
            bytes: entry.bytes.to_vec(),
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

/// Reports of a stored batch whose facts are recorded after the acknowledgement: what is
/// needed to record them again from the stored reports after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFacts {
    pub agent_id: String,
    /// Key of the marker in `facts_pending`.
    pub key: [u8; 32],
    pub received_at: Timestamp,
    /// The batch's clock reading (trusted times depend on it).
    pub clock: Option<ClockReading>,
    /// The reports whose facts are to record, in the batch's order.
    pub ids: Vec<Uuid>,
}

impl PendingFacts {
    /// received_at (8) ‖ clock flag (1) ‖ offset (8) ‖ measured_at (8) ‖ ids (16 each).
    fn encode(received_at: Timestamp, clock: Option<&ClockReading>, ids: &[Uuid]) -> Vec<u8> {
        let mut value = Vec::with_capacity(25 + 16 * ids.len());
        value.extend_from_slice(&received_at.as_microsecond().to_be_bytes());
        value.push(u8::from(clock.is_some()));
        let (offset, measured) = clock.map_or((0, 0), |c| {
            (c.offset_seconds, c.measured_at.as_microsecond())
        });
        value.extend_from_slice(&offset.to_be_bytes());
        value.extend_from_slice(&measured.to_be_bytes());
        for id in ids {
            value.extend_from_slice(id.as_bytes());
        }
        value
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<PendingFacts, StorageError> {
        let damaged = || StorageError::CorruptBatch("facts_pending marker");
        let key: [u8; 32] = key.try_into().map_err(|_| damaged())?;
        if value.len() < 25 || !(value.len() - 25).is_multiple_of(16) {
            return Err(damaged());
        }
        let int = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&value[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let received_at = Timestamp::from_microsecond(int(0)).map_err(|_| damaged())?;
        let clock = match value[8] {
            0 => None,
            _ => Some(ClockReading {
                offset_seconds: int(9),
                measured_at: Timestamp::from_microsecond(int(17)).map_err(|_| damaged())?,
            }),
        };
        let ids = value[25..]
            .chunks_exact(16)
            .map(|b| Uuid::from_slice(b).unwrap_or_default())
            .collect();
        Ok(PendingFacts {
            agent_id: Uuid::from_slice(&key[..16])
                .map(|id| id.to_string())
                .unwrap_or_default(),
            key,
            received_at,
            clock,
            ids,
        })
    }
}

/// The facts of a batch the ingest records after the acknowledgement.
#[derive(Debug, Clone, Copy)]
pub struct DeferredFacts<'a> {
    pub clock: Option<&'a ClockReading>,
    /// Reports whose facts are to record (empty: no marker is written).
    pub ids: &'a [Uuid],
}

/// Per-agent write locks (striped): a batch's deduplication reads, then its transaction
/// writes; two batches of one agent must not interleave there.
#[derive(Debug)]
pub(super) struct AgentLocks([parking_lot::Mutex<()>; LOCK_STRIPES]);

impl Default for AgentLocks {
    fn default() -> Self {
        AgentLocks([const { parking_lot::Mutex::new(()) }; LOCK_STRIPES])
    }
}

impl AgentLocks {
    pub(super) fn of(&self, agent: &[u8; 16]) -> parking_lot::MutexGuard<'_, ()> {
        // UUIDv7: the last bytes are random.
        self.0[usize::from(agent[15]) % LOCK_STRIPES].lock()
    }
}

/// The batch value: `0x01` ‖ count (u32) ‖ count × (id 16 ‖ received µs i64 ‖ length u32),
/// sorted by id ‖ the reports' bytes in the same order. All big-endian.
mod batch {
    use uuid::Uuid;

    const FORMAT: u8 = 0x01;
    const ENTRY: usize = 28;
    const HEAD: usize = 5;

    #[derive(Debug, Clone, Copy)]
    pub(super) struct Entry<'a> {
        pub id: Uuid,
        pub received_at: i64,
        pub bytes: &'a [u8],
    }

    /// `entries` sorted by id, ids unique.
    pub(super) fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
        let total: usize = entries.iter().map(|e| ENTRY + e.bytes.len()).sum();
        let mut value = Vec::with_capacity(HEAD + total);
        value.push(FORMAT);
        value.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            value.extend_from_slice(e.id.as_bytes());
            value.extend_from_slice(&e.received_at.to_be_bytes());
            value.extend_from_slice(&(e.bytes.len() as u32).to_be_bytes());
        }
        for e in entries {
            value.extend_from_slice(e.bytes);
        }
        value
    }

    fn count(value: &[u8]) -> Result<usize, &'static str> {
        if value.len() < HEAD || value[0] != FORMAT {
            return Err("unknown batch format");
        }
        let n = u32::from_be_bytes([value[1], value[2], value[3], value[4]]) as usize;
        if value.len() < HEAD + n * ENTRY {
            return Err("batch index cut short");
        }
        Ok(n)
    }

    fn row(value: &[u8], i: usize) -> (Uuid, i64, usize) {
        let at = HEAD + i * ENTRY;
        let mut id = [0u8; 16];
        id.copy_from_slice(&value[at..at + 16]);
        let mut micros = [0u8; 8];
        micros.copy_from_slice(&value[at + 16..at + 24]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&value[at + 24..at + 28]);
        (
            Uuid::from_bytes(id),
            i64::from_be_bytes(micros),
            u32::from_be_bytes(len) as usize,
        )
    }

    pub(super) fn decode(value: &[u8]) -> Result<Vec<Entry<'_>>, &'static str> {
        let n = count(value)?;
        let mut offset = HEAD + n * ENTRY;
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let (id, received_at, len) = row(value, i);
            let bytes = value
                .get(offset..offset + len)
                .ok_or("batch bytes cut short")?;
            offset += len;
            entries.push(Entry {
                id,
                received_at,
                bytes,
            });
        }
        Ok(entries)
    }

    /// The ids of the batch, sorted (reads only the index).
    pub(super) fn ids(value: &[u8]) -> Result<Vec<Uuid>, &'static str> {
        let n = count(value)?;
        Ok((0..n).map(|i| row(value, i).0).collect())
    }

    /// The greatest id of the batch.
    pub(super) fn last_id(value: &[u8]) -> Result<Option<Uuid>, &'static str> {
        let n = count(value)?;
        Ok(n.checked_sub(1).map(|i| row(value, i).0))
    }

    pub(super) fn find<'a>(value: &'a [u8], id: &Uuid) -> Result<Option<Entry<'a>>, &'static str> {
        let n = count(value)?;
        if !(0..n).any(|i| row(value, i).0 == *id) {
            return Ok(None);
        }
        Ok(decode(value)?.into_iter().find(|e| e.id == *id))
    }
}

fn corrupt(reason: &'static str) -> StorageError {
    StorageError::CorruptBatch(reason)
}

/// One write of a batch plan: a value under a key of `report_batches`.
struct BatchWrite {
    key: [u8; 32],
    value: Vec<u8>,
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
        self.store_batch(agent_id, received_at, reports, None, |_| {})
            .map(|(outcome, _)| outcome)
    }

    /// [`Storage::store_reports`], and `note` applied to the agent's record in the same
    /// transaction: nobody sees a batch's reports counted without its contact noted. With
    /// `deferred`, a `facts_pending` marker is written in the same transaction too; its key is
    /// returned, for [`Storage::facts_recorded`].
    pub fn store_batch(
        &self,
        agent_id: &str,
        received_at: Timestamp,
        reports: &[EncodedReport],
        deferred: Option<DeferredFacts<'_>>,
        note: impl Fn(&mut AgentRecord),
    ) -> Result<(StoreOutcome, Option<[u8; 32]>), StorageError> {
        let _turn = self.writing();
        let agent = agent_key(agent_id)?;
        let _agent_turn = self.report_locks.of(&agent);
        let mut outcome = StoreOutcome::default();

        // The first copy of an id wins; then what the legacy tree holds is a duplicate.
        let mut seen = HashSet::with_capacity(reports.len());
        let mut fresh: Vec<&EncodedReport> = Vec::with_capacity(reports.len());
        for report in reports {
            if seen.insert(report.id) {
                fresh.push(report);
            } else {
                outcome.duplicates += 1;
            }
        }
        if self.reports.scan_prefix(agent).next().is_some() {
            let before = fresh.len();
            let mut kept = Vec::with_capacity(before);
            for report in fresh {
                if !self.reports.contains_key(report_key(&agent, &report.id))? {
                    kept.push(report);
                }
            }
            outcome.duplicates += before - kept.len();
            fresh = kept;
        }
        fresh.sort_by_key(|r| r.id);
        let micros = received_at.as_microsecond();
        let (writes, stored) = self.plan_batches(&agent, &fresh, micros, &mut outcome)?;
        let uninterpreted: Vec<[u8; 32]> = stored
            .iter()
            .filter(|r| !r.interpreted)
            .map(|r| report_key(&agent, &r.id))
            .collect();
        outcome.new = stored.len();
        outcome.uninterpreted = uninterpreted.len();
        let marker = deferred.filter(|d| !d.ids.is_empty()).map(|d| {
            (
                report_key(&agent, &d.ids[0]),
                PendingFacts::encode(received_at, d.clock, d.ids),
            )
        });

        let trees = (
            &self.report_batches,
            &self.report_counts,
            &self.uninterpreted,
            &self.agents,
            &self.facts_pending,
        );
        let result = trees.transaction(|(batches, counts, unread, agents, pending)| {
            if let Some(old) = agents.get(agent_id.as_bytes())? {
                let mut record: AgentRecord =
                    decode("agent", &old).map_err(ConflictableTransactionError::Abort)?;
                note(&mut record);
                let new = encode("agent", &record).map_err(ConflictableTransactionError::Abort)?;
                agents.insert(agent_id.as_bytes(), new)?;
            }
            for write in &writes {
                batches.insert(write.key.as_slice(), write.value.as_slice())?;
            }
            for key in &uninterpreted {
                unread.insert(key.as_slice(), &[])?;
            }
            if let Some((key, value)) = &marker {
                pending.insert(key.as_slice(), value.as_slice())?;
            }
            if outcome.new > 0 {
                let count = read_counter("report count", counts.get(agent)?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?
                    .unwrap_or(0);
                let count = count + outcome.new as u64;
                counts.insert(agent.as_slice(), count.to_be_bytes().as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<StorageError>>(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })?;
        Ok((outcome, marker.map(|(key, _)| key)))
    }

    /// Which batch values to write for `fresh` (sorted by id, unique): usually one new batch;
    /// ids inside a stored batch's range are checked against it (a duplicate) or merged into
    /// it, the rest become new batches in the gaps between stored ranges. Returns the writes
    /// and the reports they store.
    fn plan_batches<'r>(
        &self,
        agent: &[u8; 16],
        fresh: &[&'r EncodedReport],
        micros: i64,
        outcome: &mut StoreOutcome,
    ) -> Result<(Vec<BatchWrite>, Vec<&'r EncodedReport>), StorageError> {
        let (Some(first), Some(last)) = (fresh.first(), fresh.last()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (low, high) = (report_key(agent, &first.id), report_key(agent, &last.id));
        // Stored batches whose range meets [first, last]: the one starting at or before
        // `first` if it reaches it, and every one starting inside.
        let mut overlapping: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        if let Some(item) = self
            .report_batches
            .range(report_key(agent, &Uuid::nil())..=low)
            .next_back()
        {
            let (key, value) = item?;
            if batch::last_id(&value).map_err(corrupt)? >= Some(first.id) {
                overlapping.push((key, value));
            }
        }
        for item in self.report_batches.range((
            std::ops::Bound::Excluded(low),
            std::ops::Bound::Included(high),
        )) {
            overlapping.push(item?);
        }
        let new_entry = |r: &'r EncodedReport| batch::Entry {
            id: r.id,
            received_at: micros,
            bytes: &r.bytes,
        };
        if overlapping.is_empty() {
            let entries: Vec<_> = fresh.iter().map(|r| new_entry(r)).collect();
            return Ok((
                vec![BatchWrite {
                    key: low,
                    value: batch::encode(&entries),
                }],
                fresh.to_vec(),
            ));
        }

        // Ranges of the stored batches, in key (so id) order, disjoint.
        let mut ranges = Vec::with_capacity(overlapping.len());
        for (key, value) in &overlapping {
            let ids = batch::ids(value).map_err(corrupt)?;
            let start = report_id_of(key);
            let end = ids.last().copied().unwrap_or(start);
            ranges.push((start, end, ids));
        }
        let mut merged: Vec<Vec<&'r EncodedReport>> = vec![Vec::new(); ranges.len()];
        let mut gaps: std::collections::BTreeMap<usize, Vec<&'r EncodedReport>> =
            Default::default();
        let mut stored = Vec::with_capacity(fresh.len());
        for report in fresh {
            // Stored ranges starting at or before this id.
            let at = ranges.partition_point(|(start, _, _)| *start <= report.id);
            match at.checked_sub(1).map(|i| (i, &ranges[i])) {
                Some((i, (_, end, ids))) if report.id <= *end => {
                    if ids.binary_search(&report.id).is_ok() {
                        outcome.duplicates += 1;
                    } else {
                        merged[i].push(report);
                        stored.push(*report);
                    }
                }
                _ => {
                    gaps.entry(at).or_default().push(report);
                    stored.push(*report);
                }
            }
        }
        let mut writes = Vec::new();
        for (i, additions) in merged.iter().enumerate() {
            if additions.is_empty() {
                continue;
            }
            let (key, value) = &overlapping[i];
            let mut entries = batch::decode(value).map_err(corrupt)?;
            entries.extend(additions.iter().map(|r| new_entry(r)));
            entries.sort_by_key(|e| e.id);
            writes.push(BatchWrite {
                key: key.as_ref().try_into().map_err(|_| corrupt("batch key"))?,
                value: batch::encode(&entries),
            });
        }
        for run in gaps.values() {
            let entries: Vec<_> = run.iter().map(|r| new_entry(r)).collect();
            writes.push(BatchWrite {
                key: report_key(agent, &run[0].id),
                value: batch::encode(&entries),
            });
        }
        Ok((writes, stored))
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
        self.stored_report(&agent_key(agent_id)?, report_id)
    }

    fn stored_report(
        &self,
        agent: &[u8; 16],
        id: &Uuid,
    ) -> Result<Option<StoredReport>, StorageError> {
        // Ranges never overlap: only the batch starting at or before the id can hold it.
        if let Some(item) = self
            .report_batches
            .range(report_key(agent, &Uuid::nil())..=report_key(agent, id))
            .next_back()
        {
            let (_, value) = item?;
            if let Some(entry) = batch::find(&value, id).map_err(corrupt)? {
                return Ok(Some(StoredReport::of_entry(&entry)));
            }
        }
        Ok(self
            .reports
            .get(report_key(agent, id))?
            .map(|v| StoredReport::decode_legacy(&v)))
    }

    /// An agent's stored reports, in id (so collection time) order.
    pub fn reports_of(&self, agent_id: &str) -> Result<Vec<(Uuid, StoredReport)>, StorageError> {
        let agent = agent_key(agent_id)?;
        let mut found = Vec::new();
        for item in self.reports.scan_prefix(agent) {
            let (key, value) = item?;
            found.push((report_id_of(&key), StoredReport::decode_legacy(&value)));
        }
        for item in self.report_batches.scan_prefix(agent) {
            let (_, value) = item?;
            for entry in batch::decode(&value).map_err(corrupt)? {
                found.push((entry.id, StoredReport::of_entry(&entry)));
            }
        }
        found.sort_by_key(|(id, _)| *id);
        Ok(found)
    }

    /// An agent's newest `limit` stored reports, newest first (the console draws the disk
    /// free-space trend from their system snapshots). Batches are newer than the values of
    /// collectors from before them, so those are read only when the batches do not suffice.
    pub fn newest_reports(
        &self,
        agent_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredReport>, StorageError> {
        let agent = agent_key(agent_id)?;
        let mut found = Vec::new();
        for item in self.report_batches.scan_prefix(agent).rev() {
            if found.len() >= limit {
                return Ok(found);
            }
            let (_, value) = item?;
            let entries = batch::decode(&value).map_err(corrupt)?;
            found.extend(
                entries
                    .iter()
                    .rev()
                    .take(limit - found.len())
                    .map(StoredReport::of_entry),
            );
        }
        for item in self.reports.scan_prefix(agent).rev() {
            if found.len() >= limit {
                break;
            }
            let (_, value) = item?;
            found.push(StoredReport::decode_legacy(&value));
        }
        Ok(found)
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
            let Ok(agent) = <[u8; 16]>::try_from(&key[..key.len().min(16)]) else {
                self.uninterpreted.remove(&key)?;
                continue;
            };
            let id = report_id_of(&key);
            let Some(report) = self.stored_report(&agent, &id)? else {
                // Its report is gone (retention): nothing left to interpret.
                self.uninterpreted.remove(&key)?;
                continue;
            };
            found.push(UninterpretedReport {
                agent_id: Uuid::from_bytes(agent).to_string(),
                id,
                report,
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

    /// Batches whose facts are still to record (a crash came before they were flushed).
    pub fn pending_facts(&self, limit: usize) -> Result<Vec<PendingFacts>, StorageError> {
        self.facts_pending
            .iter()
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                PendingFacts::decode(&key, &value)
            })
            .collect()
    }

    /// The facts of these batches are recorded and flushed: their markers go.
    pub fn facts_recorded(&self, keys: &[[u8; 32]]) -> Result<(), StorageError> {
        let _turn = self.writing();
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key.as_slice());
        }
        self.facts_pending.apply_batch(batch)?;
        Ok(())
    }

    /// Removes reports whose id is before `bound` from the batches of one agent: whole batches
    /// whose last id is before it, and the old part of the one that straddles it (kept under
    /// its new first id). Returns how many reports went; the count drops by as many.
    pub(super) fn prune_report_batches(
        &self,
        agent: &[u8; 16],
        bound: &Uuid,
        per_pass: usize,
    ) -> Result<u64, StorageError> {
        let mut removed = 0;
        loop {
            let _turn = self.writing();
            let _agent_turn = self.report_locks.of(agent);
            let found: Vec<(sled::IVec, sled::IVec)> = self
                .report_batches
                .range(report_key(agent, &Uuid::nil())..report_key(agent, bound))
                .take(per_pass)
                .collect::<Result<_, _>>()?;
            if found.is_empty() {
                return Ok(removed);
            }
            let mut removes: Vec<sled::IVec> = Vec::new();
            let mut rewrites: Vec<BatchWrite> = Vec::new();
            let mut gone_ids: Vec<[u8; 32]> = Vec::new();
            for (key, value) in &found {
                let entries = batch::decode(value).map_err(corrupt)?;
                let (old, kept): (Vec<_>, Vec<_>) =
                    entries.into_iter().partition(|e| e.id < *bound);
                gone_ids.extend(old.iter().map(|e| report_key(agent, &e.id)));
                removes.push(key.clone());
                if let Some(first) = kept.first() {
                    rewrites.push(BatchWrite {
                        key: report_key(agent, &first.id),
                        value: batch::encode(&kept),
                    });
                }
            }
            let gone = gone_ids.len() as u64;
            let trees = (
                &self.report_batches,
                &self.report_counts,
                &self.uninterpreted,
            );
            let result = trees.transaction(|(batches, counts, unread)| {
                for key in &removes {
                    batches.remove(key)?;
                }
                for write in &rewrites {
                    batches.insert(write.key.as_slice(), write.value.as_slice())?;
                }
                for key in &gone_ids {
                    unread.remove(key.as_slice())?;
                }
                if gone > 0 {
                    let count = read_counter("report count", counts.get(agent)?.as_deref())
                        .map_err(ConflictableTransactionError::Abort)?
                        .unwrap_or(0);
                    counts.insert(
                        agent.as_slice(),
                        count.saturating_sub(gone).to_be_bytes().as_slice(),
                    )?;
                }
                Ok(())
            });
            result.map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StorageError::Sled(e),
            })?;
            removed += gone;
        }
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

    fn open() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        (dir, storage)
    }

    fn encoded(ids: &[Uuid]) -> Vec<EncodedReport> {
        ids.iter()
            .map(|id| EncodedReport {
                id: *id,
                bytes: id.as_bytes()[8..].to_vec(),
                interpreted: true,
            })
            .collect()
    }

    #[test]
    fn legacy_values_keep_the_bytes_and_the_time_received() {
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        let bytes = [0x0a, 0x03, b'a', b'b', b'c', 0xf8, 0x01, 0x07];
        let stored = StoredReport::decode_legacy(&StoredReport::encode_legacy(at, &bytes));
        assert_eq!(stored.received_at, Some(at));
        assert_eq!(stored.bytes, bytes);
        // Written by a collector before the header: bare protobuf.
        let legacy = StoredReport::decode_legacy(&bytes);
        assert_eq!(legacy.received_at, None);
        assert_eq!(legacy.bytes, bytes);
    }

    #[test]
    fn a_batch_is_one_value_and_every_report_reads_back_exactly() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        // Out of order on the wire: stored sorted, read back by id.
        let mut wire = encoded(&ids);
        wire.reverse();
        let outcome = storage.store_reports(&agent, at, &wire).expect("store");
        assert_eq!(outcome.new, 50);
        assert_eq!(storage.report_batches.len(), 1);
        assert_eq!(storage.reports.len(), 0);
        for id in &ids {
            let stored = storage.report(&agent, id).expect("get").expect("found");
            assert_eq!(stored.bytes, id.as_bytes()[8..]);
            assert_eq!(stored.received_at, Some(at));
        }
        let all = storage.reports_of(&agent).expect("all");
        assert_eq!(all.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn overlapping_resends_are_duplicates_and_gaps_are_merged_exactly() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let ids: Vec<Uuid> = (0..12).map(|_| Uuid::now_v7()).collect();
        let t = |s| Timestamp::from_second(s).expect("ts");
        // Stored: {0,2,4} and {8,9}.
        let pick = |ix: &[usize]| encoded(&ix.iter().map(|i| ids[*i]).collect::<Vec<_>>());
        storage
            .store_reports(&agent, t(1), &pick(&[0, 2, 4]))
            .expect("a");
        storage
            .store_reports(&agent, t(2), &pick(&[8, 9]))
            .expect("b");
        // 1 and 3 fall inside the first range, 5-7 between ranges, 10-11 after; 2, 8 stored.
        let outcome = storage
            .store_reports(&agent, t(3), &pick(&[11, 1, 2, 3, 5, 6, 7, 8, 10]))
            .expect("c");
        assert_eq!((outcome.new, outcome.duplicates), (7, 2));
        assert_eq!(storage.report_count(&agent).expect("count"), 12);
        let all = storage.reports_of(&agent).expect("all");
        assert_eq!(all.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
        // Each keeps its own time received, merged or not.
        let at = |i: usize| {
            storage
                .report(&agent, &ids[i])
                .expect("get")
                .expect("some")
                .received_at
        };
        assert_eq!(
            (at(0), at(1), at(8), at(5), at(11)),
            (Some(t(1)), Some(t(3)), Some(t(2)), Some(t(3)), Some(t(3)))
        );
        // Everything again: nothing new.
        let again = storage
            .store_reports(&agent, t(4), &encoded(&ids))
            .expect("again");
        assert_eq!((again.new, again.duplicates), (0, 12));
        // The ranges stay disjoint: every id is found by its one seek.
        for id in &ids {
            assert!(storage.report(&agent, id).expect("get").is_some());
        }
    }

    #[test]
    fn reports_stored_by_the_previous_format_still_read_and_stay_unique() {
        let (_dir, storage) = open();
        let agent_id = Uuid::now_v7().to_string();
        let agent = agent_key(&agent_id).expect("agent");
        let (old, new) = (Uuid::now_v7(), Uuid::now_v7());
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        // As today's collector wrote it: one key per report, and its count.
        storage
            .reports
            .insert(
                report_key(&agent, &old),
                StoredReport::encode_legacy(at, b"old"),
            )
            .expect("legacy");
        storage
            .report_counts
            .insert(agent, 1u64.to_be_bytes().as_slice())
            .expect("count");
        let outcome = storage
            .store_reports(&agent_id, at, &encoded(&[old, new]))
            .expect("store");
        assert_eq!((outcome.new, outcome.duplicates), (1, 1));
        assert_eq!(storage.report_count(&agent_id).expect("count"), 2);
        let old_read = storage.report(&agent_id, &old).expect("get").expect("some");
        assert_eq!(
            (old_read.bytes.as_slice(), old_read.received_at),
            (b"old".as_slice(), Some(at))
        );
        assert_eq!(storage.reports_of(&agent_id).expect("all").len(), 2);
    }

    #[test]
    fn pruning_splits_a_straddling_batch_and_keeps_counts_exact() {
        let (_dir, storage) = open();
        let agent_id = Uuid::now_v7().to_string();
        let agent = agent_key(&agent_id).expect("agent");
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        storage
            .store_reports(&agent_id, at, &encoded(&ids[..4]))
            .expect("a");
        let mut second = encoded(&ids[4..]);
        second[1].interpreted = false;
        storage.store_reports(&agent_id, at, &second).expect("b");
        assert_eq!(storage.uninterpreted_count(&agent_id).expect("n"), 1);
        // Cut between ids 5 and 6: the first batch goes, the second loses 4 and 5.
        let removed = storage
            .prune_report_batches(&agent, &ids[6], 1)
            .expect("prune");
        assert_eq!(removed, 6);
        assert_eq!(storage.report_count(&agent_id).expect("count"), 4);
        assert_eq!(storage.uninterpreted_count(&agent_id).expect("n"), 0);
        let left: Vec<Uuid> = storage
            .reports_of(&agent_id)
            .expect("all")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, ids[6..]);
        assert!(storage.report(&agent_id, &ids[5]).expect("get").is_none());
        assert_eq!(
            storage
                .prune_report_batches(&agent, &ids[6], 1)
                .expect("again"),
            0
        );
    }

    #[test]
    fn pending_facts_markers_round_trip() {
        let (_dir, storage) = open();
        let agent_id = Uuid::now_v7().to_string();
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        let clock = ClockReading {
            offset_seconds: -3600,
            measured_at: at,
        };
        let (_, key) = storage
            .store_batch(
                &agent_id,
                at,
                &encoded(&ids),
                Some(DeferredFacts {
                    clock: Some(&clock),
                    ids: &ids[1..],
                }),
                |_| {},
            )
            .expect("store");
        let pending = storage.pending_facts(10).expect("pending");
        assert_eq!(
            pending,
            [PendingFacts {
                agent_id: agent_id.clone(),
                key: key.expect("marker"),
                received_at: at,
                clock: Some(clock),
                ids: ids[1..].to_vec(),
            }]
        );
        storage.facts_recorded(&[pending[0].key]).expect("done");
        assert!(storage.pending_facts(10).expect("pending").is_empty());
    }
}
