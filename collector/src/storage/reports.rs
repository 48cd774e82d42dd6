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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

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

/// One batch for [`Storage::store_batches`]: [`Storage::store_batch`]'s arguments.
pub struct BatchInput<'a> {
    pub agent_id: &'a str,
    pub received_at: Timestamp,
    pub reports: &'a [EncodedReport],
    pub deferred: Option<DeferredFacts<'a>>,
    /// Applied to the agent's record in the batch's transaction.
    pub note: &'a dyn Fn(&mut AgentRecord),
}

/// What storing a batch did, and the key of its `facts_pending` marker if it wrote one.
pub type BatchStored = (StoreOutcome, Option<[u8; 32]>);

/// A batch deduplicated, planned and its bytes appended: what its transaction writes.
struct Prepared {
    agent: [u8; 16],
    outcome: StoreOutcome,
    /// The agent's [`StoredIds`] once the transaction committed.
    newest: Option<Uuid>,
    legacy: bool,
    writes: Vec<BatchWrite>,
    uninterpreted: Vec<[u8; 32]>,
    count_delta: i64,
    marker: Option<([u8; 32], Vec<u8>)>,
}

/// What the ingest remembers of one agent's stored reports, so that a batch newer than all of
/// them (nearly every batch) skips the reads that could not find anything.
#[derive(Debug, Clone, Copy)]
pub(super) struct StoredIds {
    /// At least the greatest report id stored for the agent: only `store_batches` adds ids (and
    /// raises it), retention only removes them, so a batch whose ids are all greater overlaps
    /// no stored batch.
    newest: Option<Uuid>,
    /// Whether the format before issue 16 holds reports of this agent (that tree is never
    /// written any more).
    legacy: bool,
}

type Stripe = HashMap<[u8; 16], StoredIds>;

/// Per-agent write locks (striped): a batch's deduplication reads, then its transaction
/// writes; two batches of one agent must not interleave there. Each stripe also keeps the
/// [`StoredIds`] of the agents it covers, read and updated under the same lock.
#[derive(Debug)]
pub(super) struct AgentLocks([parking_lot::Mutex<Stripe>; LOCK_STRIPES]);

fn stripe_index(agent: &[u8; 16]) -> usize {
    // UUIDv7: the last bytes are random.
    usize::from(agent[15]) % LOCK_STRIPES
}

/// Stripes locked by [`AgentLocks::of_all`].
pub(super) struct HeldStripes<'a>(BTreeMap<usize, parking_lot::MutexGuard<'a, Stripe>>);

impl HeldStripes<'_> {
    /// The stripe of an agent given to [`AgentLocks::of_all`].
    fn of(&mut self, agent: &[u8; 16]) -> &mut Stripe {
        match self.0.get_mut(&stripe_index(agent)) {
            Some(stripe) => stripe,
            // `of_all` locked the stripe of every agent it was given.
            None => unreachable!("stripe of an agent not locked"),
        }
    }
}

impl Default for AgentLocks {
    fn default() -> Self {
        AgentLocks(std::array::from_fn(|_| parking_lot::Mutex::default()))
    }
}

impl AgentLocks {
    pub(super) fn of(&self, agent: &[u8; 16]) -> parking_lot::MutexGuard<'_, Stripe> {
        self.0[stripe_index(agent)].lock()
    }

    /// The stripes of several agents, each locked once, in stripe order (so that two callers
    /// holding several never wait on each other in a cycle).
    pub(super) fn of_all<'k>(&self, agents: impl Iterator<Item = &'k [u8; 16]>) -> HeldStripes<'_> {
        let indexes: std::collections::BTreeSet<usize> = agents.map(stripe_index).collect();
        HeldStripes(indexes.into_iter().map(|i| (i, self.0[i].lock())).collect())
    }

    /// Forgets what is remembered (an import wrote the trees behind the ingest's back).
    pub(super) fn forget(&self) {
        for stripe in &self.0 {
            stripe.lock().clear();
        }
    }
}

/// The batch values. Two formats, both with a table of rows sorted by id:
/// - inline (`0x01`, before the report log, and what an export writes): `0x01` ‖ count (u32)
///   ‖ count × (id 16 ‖ received µs i64 ‖ length u32) ‖ the reports' bytes in row order;
/// - located (`0x02`, written since the report log): `0x02` ‖ count (u32) ‖ segment (u32) ‖
///   offset (u64) ‖ count × (id 16 ‖ received µs i64 ‖ length u32 ‖ CRC-32 u32); the bytes
///   are in the report log, in row order from that place.
///
/// All big-endian.
mod batch {
    use uuid::Uuid;

    use super::super::report_log::Place;

    const INLINE: u8 = 0x01;
    const LOCATED: u8 = 0x02;
    const INLINE_ROW: usize = 28;
    const LOCATED_ROW: usize = 32;
    const INLINE_HEAD: usize = 5;
    const LOCATED_HEAD: usize = 17;

    #[derive(Debug, Clone, Copy)]
    pub(super) struct Row {
        pub id: Uuid,
        pub received_at: i64,
        pub len: usize,
        /// Only located rows carry one.
        pub crc: Option<u32>,
    }

    /// Where a batch's bytes are.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Body {
        /// In the value, from this offset.
        Inline(usize),
        Located(Place),
    }

    /// A report to write: its id, time received and bytes.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Entry<'a> {
        pub id: Uuid,
        pub received_at: i64,
        pub bytes: &'a [u8],
    }

    /// `entries` sorted by id, ids unique: an inline value.
    pub(super) fn encode_inline(entries: &[Entry<'_>]) -> Vec<u8> {
        let total: usize = entries.iter().map(|e| INLINE_ROW + e.bytes.len()).sum();
        let mut value = Vec::with_capacity(INLINE_HEAD + total);
        value.push(INLINE);
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

    /// `rows` sorted by id, ids unique, each with its CRC: a located value.
    pub(super) fn encode_located(place: Place, rows: &[Row]) -> Vec<u8> {
        let mut value = Vec::with_capacity(LOCATED_HEAD + rows.len() * LOCATED_ROW);
        value.push(LOCATED);
        value.extend_from_slice(&(rows.len() as u32).to_be_bytes());
        value.extend_from_slice(&place.segment.to_be_bytes());
        value.extend_from_slice(&place.offset.to_be_bytes());
        for r in rows {
            value.extend_from_slice(r.id.as_bytes());
            value.extend_from_slice(&r.received_at.to_be_bytes());
            value.extend_from_slice(&(r.len as u32).to_be_bytes());
            value.extend_from_slice(&r.crc.unwrap_or(0).to_be_bytes());
        }
        value
    }

    fn be<const N: usize>(value: &[u8], at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&value[at..at + N]);
        out
    }

    /// Format, count, table offset and row size.
    fn shape(value: &[u8]) -> Result<(u8, usize, usize, usize), &'static str> {
        let (head, row) = match value.first() {
            Some(&INLINE) => (INLINE_HEAD, INLINE_ROW),
            Some(&LOCATED) => (LOCATED_HEAD, LOCATED_ROW),
            _ => return Err("unknown batch format"),
        };
        if value.len() < head {
            return Err("batch header cut short");
        }
        let n = u32::from_be_bytes(be(value, 1)) as usize;
        if value.len() < head + n * row {
            return Err("batch index cut short");
        }
        Ok((value[0], n, head, row))
    }

    fn row_at(value: &[u8], format: u8, at: usize) -> Row {
        Row {
            id: Uuid::from_bytes(be(value, at)),
            received_at: i64::from_be_bytes(be(value, at + 16)),
            len: u32::from_be_bytes(be(value, at + 24)) as usize,
            crc: (format == LOCATED).then(|| u32::from_be_bytes(be(value, at + 28))),
        }
    }

    /// The rows and where their bytes are.
    pub(super) fn rows(value: &[u8]) -> Result<(Vec<Row>, Body), &'static str> {
        let (format, n, head, size) = shape(value)?;
        let rows = (0..n)
            .map(|i| row_at(value, format, head + i * size))
            .collect();
        let body = if format == LOCATED {
            Body::Located(Place {
                segment: u32::from_be_bytes(be(value, 5)),
                offset: u64::from_be_bytes(be(value, 9)),
            })
        } else {
            let body = head + n * size;
            let total: usize = (0..n)
                .map(|i| row_at(value, format, head + i * size).len)
                .sum();
            if value.len() < body + total {
                return Err("batch bytes cut short");
            }
            Body::Inline(body)
        };
        Ok((rows, body))
    }

    /// The greatest id of the batch.
    pub(super) fn last_id(value: &[u8]) -> Result<Option<Uuid>, &'static str> {
        let (format, n, head, size) = shape(value)?;
        Ok(n.checked_sub(1)
            .map(|i| row_at(value, format, head + i * size).id))
    }

    /// The segment a located value's bytes are in.
    pub(super) fn segment(value: &[u8]) -> Option<u32> {
        (value.first() == Some(&LOCATED) && value.len() >= LOCATED_HEAD)
            .then(|| u32::from_be_bytes(be(value, 5)))
    }
}

/// One report of a batch as read back: `bytes` is `None` when they fail their CRC or cannot
/// be read (a batch whose index reached the disk without its bytes: never acknowledged).
#[derive(Debug, Clone)]
struct LoadedEntry {
    id: Uuid,
    received_at: i64,
    bytes: Option<Vec<u8>>,
}

impl LoadedEntry {
    fn into_stored(self) -> Option<StoredReport> {
        let received_at = Timestamp::from_microsecond(self.received_at).ok();
        self.bytes.map(|bytes| StoredReport { received_at, bytes })
    }
}

/// An inline batch value of the readable ones of `entries` (sorted by id).
fn inline_value(entries: &[LoadedEntry]) -> Vec<u8> {
    let kept: Vec<batch::Entry<'_>> = entries
        .iter()
        .filter_map(|e| {
            e.bytes.as_deref().map(|bytes| batch::Entry {
                id: e.id,
                received_at: e.received_at,
                bytes,
            })
        })
        .collect();
    batch::encode_inline(&kept)
}

/// Counts the reports of a batch that cannot be read back (they are skipped and logged).
fn warn_damaged(entries: &[LoadedEntry]) {
    let damaged = entries.iter().filter(|e| e.bytes.is_none()).count();
    if damaged > 0 {
        tracing::error!(
            damaged,
            first = %entries.iter().find(|e| e.bytes.is_none()).map(|e| e.id).unwrap_or_default(),
            "stored reports whose bytes fail their checksum are skipped (never acknowledged; the agent sends them again)"
        );
    }
}

fn corrupt(reason: &'static str) -> StorageError {
    StorageError::CorruptBatch(reason)
}

/// One write of a batch plan: the reports of one value of `report_batches`, sorted by id.
struct PlannedWrite<'r> {
    key: [u8; 32],
    entries: Vec<(Uuid, i64, Cow<'r, [u8]>)>,
    /// The located value this one replaces: its segment loses a batch.
    replaces_segment: Option<u32>,
}

/// What a batch plan writes and how the agent's count changes.
struct BatchPlan<'r> {
    writes: Vec<PlannedWrite<'r>>,
    /// The reports written now (new ones, and fresh copies of damaged ones).
    stored: Vec<&'r EncodedReport>,
    /// New ids, minus damaged reports dropped from a rewritten batch.
    count_delta: i64,
}

/// One value to write, with the change of its segments' counts.
struct BatchWrite {
    key: [u8; 32],
    value: Vec<u8>,
    segment: Option<u32>,
    replaces_segment: Option<u32>,
}

/// Adds `delta` to the batch count of a segment (removing the key at zero).
fn count_segment(
    segments: &sled::transaction::TransactionalTree,
    segment: u32,
    delta: i64,
) -> Result<(), ConflictableTransactionError<StorageError>> {
    let key = segment.to_be_bytes();
    let count = read_counter("segment count", segments.get(key)?.as_deref())
        .map_err(ConflictableTransactionError::Abort)?
        .unwrap_or(0);
    let count = count.saturating_add_signed(delta);
    if count == 0 {
        segments.remove(key.as_slice())?;
    } else {
        segments.insert(key.as_slice(), count.to_be_bytes().as_slice())?;
    }
    Ok(())
}

/// Net change of each segment's batch count for these writes.
fn segment_deltas(writes: &[BatchWrite]) -> BTreeMap<u32, i64> {
    let mut deltas = BTreeMap::new();
    for write in writes {
        if let Some(s) = write.segment {
            *deltas.entry(s).or_insert(0) += 1;
        }
        if let Some(s) = write.replaces_segment {
            *deltas.entry(s).or_insert(0) -= 1;
        }
    }
    deltas.retain(|_, d| *d != 0);
    deltas
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
    ) -> Result<BatchStored, StorageError> {
        let input = BatchInput {
            agent_id,
            received_at,
            reports,
            deferred,
            note: &note,
        };
        let mut results = self.store_batches(std::slice::from_ref(&input));
        results.pop().unwrap_or(Err(StorageError::CorruptBatch(
            "no result for a stored batch",
        )))
    }

    /// [`Storage::store_batch`] for several batches (of several agents) at once: one
    /// transaction for all of them, because every sled transaction writes out sled's I/O
    /// buffer twice (`pin_log` in sled 0.34), whatever it holds. One result per input, in
    /// order; a batch that fails alone (a damaged record) does not fail the others.
    pub fn store_batches(
        &self,
        inputs: &[BatchInput<'_>],
    ) -> Vec<Result<BatchStored, StorageError>> {
        let _turn = self.writing();
        let mut results: Vec<Option<Result<BatchStored, StorageError>>> =
            inputs.iter().map(|_| None).collect();
        // One batch per agent and round, in arrival order: a batch is planned against what the
        // trees hold, which must include the same agent's batch before it.
        let mut pending: Vec<usize> = (0..inputs.len()).collect();
        while !pending.is_empty() {
            let mut agents = HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) = pending
                .iter()
                .partition(|&&i| agents.insert(inputs[i].agent_id));
            self.store_round(inputs, &round, &mut results);
            pending = later;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(StorageError::CorruptBatch("batch left unstored"))))
            .collect()
    }

    /// One round of [`Storage::store_batches`]: distinct agents, their locks held together.
    fn store_round(
        &self,
        inputs: &[BatchInput<'_>],
        round: &[usize],
        results: &mut [Option<Result<BatchStored, StorageError>>],
    ) {
        let mut keyed = Vec::with_capacity(round.len());
        for &i in round {
            match agent_key(inputs[i].agent_id) {
                Ok(agent) => keyed.push((i, agent)),
                Err(error) => results[i] = Some(Err(error)),
            }
        }
        let mut stripes = self
            .report_locks
            .of_all(keyed.iter().map(|(_, agent)| agent));
        let mut prepared = Vec::with_capacity(keyed.len());
        for (i, agent) in keyed {
            let stripe = stripes.of(&agent);
            let known = match stripe.get(&agent) {
                Some(known) => Ok(*known),
                None => self.stored_ids(&agent),
            };
            match known.and_then(|known| self.prepare(agent, &inputs[i], known)) {
                Ok(batch) => prepared.push((i, batch)),
                Err(error) => results[i] = Some(Err(error)),
            }
        }
        let committed = match self.commit_prepared(inputs, &prepared) {
            Ok(()) => prepared.into_iter().map(|p| (p, Ok(()))).collect(),
            // Each alone: only the batch at fault fails (its bytes are appended already).
            Err(_) if prepared.len() > 1 => prepared
                .into_iter()
                .map(|p| {
                    let result = self.commit_prepared(inputs, std::slice::from_ref(&p));
                    (p, result)
                })
                .collect(),
            Err(error) => {
                if let Some((i, _)) = prepared.first() {
                    results[*i] = Some(Err(error));
                }
                Vec::new()
            }
        };
        for ((i, batch), result) in committed {
            results[i] = Some(result.map(|()| {
                stripes.of(&batch.agent).insert(
                    batch.agent,
                    StoredIds {
                        newest: batch.newest,
                        legacy: batch.legacy,
                    },
                );
                (batch.outcome, batch.marker.map(|(key, _)| key))
            }));
        }
    }

    /// Deduplicates one batch against what is stored, plans its values and appends its bytes
    /// to the report log: everything but its transaction. Under the agent's lock.
    fn prepare(
        &self,
        agent: [u8; 16],
        input: &BatchInput<'_>,
        known: StoredIds,
    ) -> Result<Prepared, StorageError> {
        let mut outcome = StoreOutcome::default();
        // The first copy of an id wins; then what the legacy tree holds is a duplicate.
        let mut seen = HashSet::with_capacity(input.reports.len());
        let mut fresh: Vec<&EncodedReport> = Vec::with_capacity(input.reports.len());
        for report in input.reports {
            if seen.insert(report.id) {
                fresh.push(report);
            } else {
                outcome.duplicates += 1;
            }
        }
        if known.legacy {
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
        let micros = input.received_at.as_microsecond();
        let newest = fresh.last().map(|r| r.id).max(known.newest);
        let plan = self.plan_batches(&agent, &fresh, micros, known.newest, &mut outcome)?;
        let writes = self.write_bytes(plan.writes)?;
        let uninterpreted: Vec<[u8; 32]> = plan
            .stored
            .iter()
            .filter(|r| !r.interpreted)
            .map(|r| report_key(&agent, &r.id))
            .collect();
        outcome.new = plan.stored.len();
        outcome.uninterpreted = uninterpreted.len();
        let marker = input.deferred.filter(|d| !d.ids.is_empty()).map(|d| {
            (
                report_key(&agent, &d.ids[0]),
                PendingFacts::encode(input.received_at, d.clock, d.ids),
            )
        });
        Ok(Prepared {
            agent,
            outcome,
            newest,
            legacy: known.legacy,
            writes,
            uninterpreted,
            count_delta: plan.count_delta,
            marker,
        })
    }

    /// The transaction of prepared batches (distinct agents): their values, records,
    /// counts and markers, all or nothing.
    fn commit_prepared(
        &self,
        inputs: &[BatchInput<'_>],
        prepared: &[(usize, Prepared)],
    ) -> Result<(), StorageError> {
        if prepared.is_empty() {
            return Ok(());
        }
        let mut segments: BTreeMap<u32, i64> = BTreeMap::new();
        for (_, batch) in prepared {
            for (segment, delta) in segment_deltas(&batch.writes) {
                *segments.entry(segment).or_insert(0) += delta;
            }
        }
        segments.retain(|_, d| *d != 0);
        let trees = (
            &self.report_batches,
            &self.report_counts,
            &self.uninterpreted,
            &self.agents,
            &self.facts_pending,
            &self.report_segments,
        );
        let result = trees.transaction(
            |(batches, counts, unread, agents, pending, segment_counts)| {
                for (i, batch) in prepared {
                    let input = &inputs[*i];
                    if let Some(old) = agents.get(input.agent_id.as_bytes())? {
                        let mut record: AgentRecord =
                            decode("agent", &old).map_err(ConflictableTransactionError::Abort)?;
                        (input.note)(&mut record);
                        let new = encode("agent", &record)
                            .map_err(ConflictableTransactionError::Abort)?;
                        agents.insert(input.agent_id.as_bytes(), new)?;
                    }
                    for write in &batch.writes {
                        batches.insert(write.key.as_slice(), write.value.as_slice())?;
                    }
                    for key in &batch.uninterpreted {
                        unread.insert(key.as_slice(), &[])?;
                    }
                    if let Some((key, value)) = &batch.marker {
                        pending.insert(key.as_slice(), value.as_slice())?;
                    }
                    if batch.count_delta != 0 {
                        let count =
                            read_counter("report count", counts.get(batch.agent)?.as_deref())
                                .map_err(ConflictableTransactionError::Abort)?
                                .unwrap_or(0);
                        let count = count.saturating_add_signed(batch.count_delta);
                        counts.insert(batch.agent.as_slice(), count.to_be_bytes().as_slice())?;
                    }
                }
                for (segment, delta) in &segments {
                    count_segment(segment_counts, *segment, *delta)?;
                }
                Ok::<_, ConflictableTransactionError<StorageError>>(())
            },
        );
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// What is stored of one agent's reports, read from the trees (once per agent and start).
    fn stored_ids(&self, agent: &[u8; 16]) -> Result<StoredIds, StorageError> {
        let newest = match self.report_batches.scan_prefix(agent).next_back() {
            Some(item) => batch::last_id(&item?.1).map_err(corrupt)?,
            None => None,
        };
        Ok(StoredIds {
            newest,
            legacy: self.reports.scan_prefix(agent).next().is_some(),
        })
    }

    /// Appends each planned value's bytes to the report log: the values to write. Bytes
    /// appended for a transaction that then fails are never referenced.
    fn write_bytes(&self, planned: Vec<PlannedWrite<'_>>) -> Result<Vec<BatchWrite>, StorageError> {
        let mut writes = Vec::with_capacity(planned.len());
        for write in planned {
            let parts: Vec<&[u8]> = write.entries.iter().map(|(_, _, b)| b.as_ref()).collect();
            let place = self.report_log.append(&parts)?;
            let rows: Vec<batch::Row> = write
                .entries
                .iter()
                .map(|(id, received_at, bytes)| batch::Row {
                    id: *id,
                    received_at: *received_at,
                    len: bytes.len(),
                    crc: Some(crc32fast::hash(bytes)),
                })
                .collect();
            writes.push(BatchWrite {
                key: write.key,
                value: batch::encode_located(place, &rows),
                segment: Some(place.segment),
                replaces_segment: write.replaces_segment,
            });
        }
        Ok(writes)
    }

    /// Which batch values to write for `fresh` (sorted by id, unique): usually one new batch;
    /// ids inside a stored batch's range are checked against it (a duplicate, unless its
    /// stored bytes fail their checksum: then the fresh copy replaces them) or merged into it,
    /// the rest become new batches in the gaps between stored ranges.
    fn plan_batches<'r>(
        &self,
        agent: &[u8; 16],
        fresh: &[&'r EncodedReport],
        micros: i64,
        newest: Option<Uuid>,
        outcome: &mut StoreOutcome,
    ) -> Result<BatchPlan<'r>, StorageError> {
        let (Some(first), Some(last)) = (fresh.first(), fresh.last()) else {
            return Ok(BatchPlan {
                writes: Vec::new(),
                stored: Vec::new(),
                count_delta: 0,
            });
        };
        let (low, high) = (report_key(agent, &first.id), report_key(agent, &last.id));
        let new_entry = |r: &'r EncodedReport| (r.id, micros, Cow::Borrowed(r.bytes.as_slice()));
        let one_new_batch = || BatchPlan {
            writes: vec![PlannedWrite {
                key: low,
                entries: fresh.iter().map(|r| new_entry(r)).collect(),
                replaces_segment: None,
            }],
            stored: fresh.to_vec(),
            count_delta: fresh.len() as i64,
        };
        // Newer than every stored id (`StoredIds::newest`): nothing to read.
        if newest.is_none_or(|newest| first.id > newest) {
            return Ok(one_new_batch());
        }
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
        if overlapping.is_empty() {
            return Ok(one_new_batch());
        }

        // The stored batches, in key (so id) order, disjoint, read back with their bytes.
        let mut ranges = Vec::with_capacity(overlapping.len());
        for (key, value) in &overlapping {
            let entries = self.load_batch(value)?;
            let start = report_id_of(key);
            let end = entries.last().map_or(start, |e| e.id);
            ranges.push((start, end, entries));
        }
        let mut merged: Vec<Vec<&'r EncodedReport>> = vec![Vec::new(); ranges.len()];
        let mut gaps: BTreeMap<usize, Vec<&'r EncodedReport>> = BTreeMap::new();
        let mut stored = Vec::with_capacity(fresh.len());
        let mut count_delta = 0i64;
        for report in fresh {
            // Stored ranges starting at or before this id.
            let at = ranges.partition_point(|(start, _, _)| *start <= report.id);
            match at.checked_sub(1).map(|i| (i, &ranges[i])) {
                Some((i, (_, end, entries))) if report.id <= *end => {
                    match entries.binary_search_by_key(&report.id, |e| e.id) {
                        Ok(j) if entries[j].bytes.is_some() => outcome.duplicates += 1,
                        // Stored, but its bytes never reached the disk: this copy replaces them.
                        Ok(_) => {
                            merged[i].push(report);
                            stored.push(*report);
                        }
                        Err(_) => {
                            merged[i].push(report);
                            stored.push(*report);
                            count_delta += 1;
                        }
                    }
                }
                _ => {
                    gaps.entry(at).or_default().push(report);
                    stored.push(*report);
                    count_delta += 1;
                }
            }
        }
        let mut writes = Vec::new();
        for (i, additions) in merged.iter().enumerate() {
            if additions.is_empty() {
                continue;
            }
            let (key, value) = &overlapping[i];
            let added: HashSet<Uuid> = additions.iter().map(|r| r.id).collect();
            let mut entries: Vec<(Uuid, i64, Cow<'r, [u8]>)> = Vec::new();
            for old in std::mem::take(&mut ranges[i].2) {
                match old.bytes {
                    Some(bytes) if !added.contains(&old.id) => {
                        entries.push((old.id, old.received_at, Cow::Owned(bytes)));
                    }
                    Some(_) => {}
                    // Damaged and not resent now: dropped; the agent still has it queued.
                    None if !added.contains(&old.id) => count_delta -= 1,
                    None => {}
                }
            }
            entries.extend(additions.iter().map(|r| new_entry(r)));
            entries.sort_by_key(|(id, _, _)| *id);
            writes.push(PlannedWrite {
                key: key.as_ref().try_into().map_err(|_| corrupt("batch key"))?,
                entries,
                replaces_segment: batch::segment(value),
            });
        }
        for run in gaps.values() {
            writes.push(PlannedWrite {
                key: report_key(agent, &run[0].id),
                entries: run.iter().map(|r| new_entry(r)).collect(),
                replaces_segment: None,
            });
        }
        Ok(BatchPlan {
            writes,
            stored,
            count_delta,
        })
    }

    /// A batch's reports with their bytes (read from the report log for a located value);
    /// a report whose bytes fail their checksum or cannot be read has none.
    fn load_batch(&self, value: &[u8]) -> Result<Vec<LoadedEntry>, StorageError> {
        let (rows, body) = batch::rows(value).map_err(corrupt)?;
        let total: usize = rows.iter().map(|r| r.len).sum();
        let read;
        let (bytes, mut at): (Option<&[u8]>, usize) = match body {
            batch::Body::Inline(start) => (Some(value), start),
            batch::Body::Located(place) => match self.report_log.read(place, total) {
                Ok(bytes) => {
                    read = bytes;
                    (Some(read.as_slice()), 0)
                }
                Err(error) => {
                    tracing::error!(segment = place.segment, offset = place.offset, %error, "stored report bytes cannot be read");
                    (None, 0)
                }
            },
        };
        Ok(rows
            .iter()
            .map(|row| {
                let slice = bytes.and_then(|b| b.get(at..at + row.len));
                at += row.len;
                let valid = slice.filter(|s| row.crc.is_none_or(|crc| crc32fast::hash(s) == crc));
                LoadedEntry {
                    id: row.id,
                    received_at: row.received_at,
                    bytes: valid.map(<[u8]>::to_vec),
                }
            })
            .collect())
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
            if let Some(found) = self.find_in_batch(&value, id)? {
                return Ok(found);
            }
        }
        Ok(self
            .reports
            .get(report_key(agent, id))?
            .map(|v| StoredReport::decode_legacy(&v)))
    }

    /// `Some(report)` if the batch holds the id (`Some(None)` when its bytes are damaged),
    /// reading only that report's bytes.
    fn find_in_batch(
        &self,
        value: &[u8],
        id: &Uuid,
    ) -> Result<Option<Option<StoredReport>>, StorageError> {
        let (rows, body) = batch::rows(value).map_err(corrupt)?;
        let Ok(i) = rows.binary_search_by_key(id, |r| r.id) else {
            return Ok(None);
        };
        let row = rows[i];
        let before: usize = rows[..i].iter().map(|r| r.len).sum();
        let bytes = match body {
            batch::Body::Inline(start) => value
                .get(start + before..start + before + row.len)
                .map(<[u8]>::to_vec),
            batch::Body::Located(place) => {
                let at = super::report_log::Place {
                    segment: place.segment,
                    offset: place.offset + before as u64,
                };
                self.report_log.read(at, row.len).ok()
            }
        };
        let valid = bytes.filter(|b| row.crc.is_none_or(|crc| crc32fast::hash(b) == crc));
        if valid.is_none() {
            tracing::error!(report_id = %id, "stored report bytes fail their checksum (never acknowledged; the agent sends it again)");
        }
        Ok(Some(valid.map(|bytes| StoredReport {
            received_at: Timestamp::from_microsecond(row.received_at).ok(),
            bytes,
        })))
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
            let entries = self.load_batch(&value)?;
            warn_damaged(&entries);
            found.extend(
                entries
                    .into_iter()
                    .filter_map(|e| Some(e.id).zip(e.into_stored())),
            );
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
            let entries = self.load_batch(&value)?;
            warn_damaged(&entries);
            let wanted = limit - found.len();
            found.extend(
                entries
                    .into_iter()
                    .rev()
                    .filter_map(LoadedEntry::into_stored)
                    .take(wanted),
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
                let (rows, body) = batch::rows(value).map_err(corrupt)?;
                let cut = rows.partition_point(|r| r.id < *bound);
                gone_ids.extend(rows[..cut].iter().map(|r| report_key(agent, &r.id)));
                removes.push(key.clone());
                let Some(first) = rows.get(cut) else {
                    continue;
                };
                let key = report_key(agent, &first.id);
                let value = match body {
                    // The kept reports are the tail of the bytes: no copy, a later start.
                    batch::Body::Located(place) => {
                        let skipped: usize = rows[..cut].iter().map(|r| r.len).sum();
                        let place = super::report_log::Place {
                            segment: place.segment,
                            offset: place.offset + skipped as u64,
                        };
                        batch::encode_located(place, &rows[cut..])
                    }
                    batch::Body::Inline(_) => inline_value(&self.load_batch(value)?[cut..]),
                };
                rewrites.push(BatchWrite {
                    key,
                    segment: batch::segment(&value),
                    value,
                    replaces_segment: None,
                });
            }
            let mut segments = segment_deltas(&rewrites);
            for (_, value) in &found {
                if let Some(segment) = batch::segment(value) {
                    *segments.entry(segment).or_insert(0) -= 1;
                }
            }
            let gone = gone_ids.len() as u64;
            let trees = (
                &self.report_batches,
                &self.report_counts,
                &self.uninterpreted,
                &self.report_segments,
            );
            let result = trees.transaction(|(batches, counts, unread, segment_counts)| {
                for key in &removes {
                    batches.remove(key)?;
                }
                for write in &rewrites {
                    batches.insert(write.key.as_slice(), write.value.as_slice())?;
                }
                for (segment, delta) in &segments {
                    if *delta != 0 {
                        count_segment(segment_counts, *segment, *delta)?;
                    }
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

/// The segments some batch value points into.
pub(super) fn counted_segments(segments: &sled::Tree) -> Result<HashSet<u32>, StorageError> {
    let mut kept = HashSet::new();
    for key in segments.iter().keys() {
        let key = key?;
        if let Ok(segment) = <[u8; 4]>::try_from(key.as_ref()) {
            kept.insert(u32::from_be_bytes(segment));
        }
    }
    Ok(kept)
}

impl Storage {
    /// A `report_batches` value as an export writes it: inline, the bytes inside, so that a
    /// backup holds every report without the report log. Damaged reports (never
    /// acknowledged) are left out; `None` when none is left.
    pub(super) fn exported_batch(&self, value: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if batch::segment(value).is_none() {
            return Ok(Some(value.to_vec()));
        }
        let entries = self.load_batch(value)?;
        warn_damaged(&entries);
        let readable = entries.iter().any(|e| e.bytes.is_some());
        Ok(readable.then(|| inline_value(&entries)))
    }

    /// Deletes the report log's segments no batch points into any more; returns how many
    /// files and bytes went.
    pub(super) fn drop_unused_segments(&self) -> Result<(u64, u64), StorageError> {
        let _turn = self.writing();
        let kept = counted_segments(&self.report_segments)?;
        Ok(self.report_log.delete_except(&kept)?)
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
    fn resends_and_backlogs_are_found_whether_the_ingest_remembers_the_agent_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let agent = Uuid::now_v7().to_string();
        let backlog = Uuid::now_v7();
        let [a, b, c, d, e] = [(); 5].map(|()| Uuid::now_v7());
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        let counts = |o: StoreOutcome| (o.new, o.duplicates);
        {
            let storage = Storage::open(&path).expect("open");
            let store = |ids: &[Uuid]| storage.store_reports(&agent, at, &encoded(ids));
            assert_eq!(counts(store(&[a, b, c]).expect("first")), (3, 0));
            // Remembered: the resend is older than the newest stored id, so it is read.
            assert_eq!(counts(store(&[c, b, a]).expect("resend")), (0, 3));
            assert_eq!(counts(store(&[d]).expect("newer")), (1, 0));
            storage.flush_durably().expect("flush");
        }
        let storage = Storage::open(&path).expect("reopen");
        let store = |ids: &[Uuid]| storage.store_reports(&agent, at, &encoded(ids));
        // Not remembered after a restart: read from the trees.
        assert_eq!(counts(store(&[b, d]).expect("resend")), (0, 2));
        assert_eq!(counts(store(&[e]).expect("newer")), (1, 0));
        // A backlog older than everything stored is still stored, and then found.
        assert_eq!(counts(store(&[backlog]).expect("backlog")), (1, 0));
        assert_eq!(counts(store(&[backlog, e]).expect("again")), (0, 2));
        assert_eq!(storage.report_count(&agent).expect("count"), 6);
        for id in [backlog, a, b, c, d, e] {
            let stored = storage.report(&agent, &id).expect("get").expect("stored");
            assert_eq!(stored.bytes, id.as_bytes()[8..]);
        }
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

    /// The segment files of the report log, sorted.
    fn segment_files(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("db").join("report-log"))
            .expect("report log")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn report_bytes_live_in_the_report_log_not_in_the_tree() {
        let (dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        storage
            .store_reports(&agent, at, &encoded(&ids))
            .expect("store");
        storage.flush_durably().expect("flush");
        let (_, value) = storage
            .report_batches
            .iter()
            .next()
            .expect("one batch")
            .expect("read");
        // The index only: 17 bytes of header and 32 per report, no report bytes.
        assert_eq!(value.len(), 17 + 20 * 32);
        let log_bytes: u64 = segment_files(&dir)
            .iter()
            .map(|f| std::fs::metadata(f).expect("segment").len())
            .sum();
        assert_eq!(log_bytes, 20 * 8);
        drop(storage);
        let storage = Storage::open(&dir.path().join("db")).expect("reopen");
        let all = storage.reports_of(&agent).expect("all");
        assert_eq!(all.len(), 20);
        for (id, report) in &all {
            assert_eq!(report.bytes, id.as_bytes()[8..]);
            assert_eq!(report.received_at, Some(at));
        }
        // The reopen appends to a new segment; the first one is still referenced and kept.
        assert_eq!(segment_files(&dir).len(), 2);
    }

    #[test]
    fn torn_bytes_are_skipped_then_replaced_by_the_resend() {
        let (dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        storage
            .store_reports(&agent, at, &encoded(&ids))
            .expect("store");
        storage.flush_durably().expect("flush");
        drop(storage);
        // A power cut kept the index but not the bytes of reports 3 and 4 (8 bytes each).
        let segment = segment_files(&dir)[0].clone();
        let mut bytes = std::fs::read(&segment).expect("segment");
        bytes[24..40].fill(0);
        std::fs::write(&segment, &bytes).expect("tear");
        let storage = Storage::open(&dir.path().join("db")).expect("reopen");
        let all = storage.reports_of(&agent).expect("all");
        assert_eq!(
            all.len(),
            8,
            "the damaged reports are skipped, not returned wrong"
        );
        assert_eq!(storage.report(&agent, &ids[3]).expect("get"), None);
        assert!(storage.report(&agent, &ids[2]).expect("get").is_some());
        // The agent never got an ack: it sends all ten again. Two are stored anew.
        let outcome = storage
            .store_reports(&agent, at, &encoded(&ids))
            .expect("resend");
        assert_eq!((outcome.new, outcome.duplicates), (2, 8));
        assert_eq!(storage.report_count(&agent).expect("count"), 10);
        let all = storage.reports_of(&agent).expect("all");
        assert_eq!(all.len(), 10);
        for (id, report) in &all {
            assert_eq!(report.bytes, id.as_bytes()[8..]);
        }
    }

    #[test]
    fn an_export_carries_the_bytes_and_imports_whole() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        storage
            .store_reports(&agent, at, &encoded(&ids))
            .expect("store");
        let (_, value) = storage
            .report_batches
            .iter()
            .next()
            .expect("one batch")
            .expect("read");
        let inline = storage
            .exported_batch(&value)
            .expect("export")
            .expect("kept");
        assert_eq!(batch::segment(&inline), None);
        let (restored_dir, restored) = open();
        restored
            .report_batches
            .insert(
                report_key(&agent_key(&agent).expect("key"), &ids[0]),
                inline,
            )
            .expect("import");
        let all = restored.reports_of(&agent).expect("all");
        assert_eq!(all.len(), 5);
        assert_eq!(all[4].1.bytes, ids[4].as_bytes()[8..]);
        drop(restored_dir);
    }

    #[test]
    fn retention_by_id_time_prunes_reports_spread_over_500_days() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let now = Timestamp::now().as_second();
        let span = 500 * 86_400;
        let step = span / 1000;
        for j0 in (0..1000).step_by(50) {
            let ids: Vec<Uuid> = (j0..j0 + 50)
                .map(|j| {
                    let at = (now - span + j * step) as u64;
                    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, at, 0))
                })
                .collect();
            storage
                .store_reports(&agent, Timestamp::now(), &encoded(&ids))
                .expect("store");
        }
        let config = crate::retention::RetentionConfig::default();
        let pruned = storage
            .prune(&config.cutoffs(Timestamp::now(), u64::MAX))
            .expect("prune");
        assert!((199..=201).contains(&pruned.reports), "{pruned:?}");
        assert_eq!(
            storage.report_count(&agent).expect("count"),
            1000 - pruned.reports
        );
    }

    #[test]
    fn retention_deletes_segments_no_batch_points_into() {
        let (dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let old: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let at = Timestamp::from_second(1_800_000_000).expect("ts");
        storage
            .store_reports(&agent, at, &encoded(&old))
            .expect("store");
        storage.flush_durably().expect("flush");
        drop(storage);
        let storage = Storage::open(&dir.path().join("db")).expect("reopen");
        let new: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        storage
            .store_reports(&agent, at, &encoded(&new))
            .expect("store");
        assert_eq!(segment_files(&dir).len(), 2);
        let bound = new[0];
        let removed = storage
            .prune_report_batches(&agent_key(&agent).expect("key"), &bound, 10)
            .expect("prune");
        assert_eq!(removed, 5);
        assert_eq!(storage.drop_unused_segments().expect("drop"), (1, 40));
        assert_eq!(segment_files(&dir).len(), 1);
        assert_eq!(storage.reports_of(&agent).expect("all").len(), 3);
        assert_eq!(storage.report_count(&agent).expect("count"), 3);
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
