//! The durable outbox: every report is stored here before any send and deleted only once the
//! collector acknowledged its id. The only file that names `sled`.
//!
//! Layout in `STATE_DIR/outbox`: tree `reports`, key = the report's UUIDv7 (16 bytes, so
//! iteration is oldest first), value = one kind byte + the prost-encoded `v1::Report`; the kind
//! byte lets the drop policy run without decoding. Tree `quarantine`: reports the collector
//! refused for good (or that can never be sent), same key, value = kind byte, quarantine time
//! (i64 big-endian Unix seconds), reason length (u16 big-endian), reason, then the report bytes
//! exactly as they were queued. Tree `meta` holds the counters and the last reasons.
//!
//! Invariants: a write returns only once it is on disk (sled flush, then an `fsync` of sled's
//! data file, because sled 0.34's flush uses `sync_file_range`, which does not survive a power
//! cut: sled issue #1452); a backup result is never dropped to make room, and never deleted
//! without an acknowledgement: refused, it goes to the quarantine, kept for a technician, and
//! never resent by itself.
//!
//! A failed write or sync (disk full, I/O error) is counted and its reason kept; the counters
//! are saved with the next write that succeeds. sled keeps an I/O error and fails every later
//! write, and after a failed `fsync` the page cache may have dropped what it was syncing, so
//! the database is closed at once and reopened, from what really is on disk, at the next use.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use prost::Message as _;
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;
use vigie_proto::v1;

const REPORTS_TREE: &str = "reports";
const QUARANTINE_TREE: &str = "quarantine";
const META_TREE: &str = "meta";
const DROPPED_TOTAL_KEY: &[u8] = b"dropped_total";
const WRITE_FAILURES_KEY: &[u8] = b"write_failures_total";
const LAST_WRITE_ERROR_KEY: &[u8] = b"last_write_error";
const QUARANTINED_TOTAL_KEY: &[u8] = b"quarantined_total";
const QUARANTINE_DROPPED_KEY: &[u8] = b"quarantine_dropped_total";
const LAST_QUARANTINE_REASON_KEY: &[u8] = b"last_quarantine_reason";
/// sled 0.34 keeps its log in this file inside the database directory...
const SLED_DATA_FILE: &str = "db";
/// ...and items too large for a log segment (large values, or large tree nodes) in files here,
/// written without any fsync.
const SLED_BLOB_DIR: &str = "blobs";
/// Page cache for the outbox: it is written and read sequentially, a small cache is enough and
/// keeps the agent's RSS low (sled's default is 1 GiB).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// The quarantine keeps at most this many reports...
pub const QUARANTINE_MAX_REPORTS: u64 = 1000;
/// ...and about this many bytes; beyond either, its oldest reports are discarded and counted
/// (`quarantine_dropped_total`), so a collector that refuses everything cannot fill the disk.
pub const QUARANTINE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// A reason longer than this is cut (it comes from the collector).
const REASON_MAX_BYTES: usize = 512;
/// Header of a quarantine value before the reason: kind, time, reason length.
const QUARANTINE_HEADER: usize = 1 + 8 + 2;

/// What a stored report is, as far as the drop policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryKind {
    Other = 0,
    SystemSnapshot = 1,
    /// Never dropped: a missing backup result would hide a failed backup.
    BackupResult = 2,
}

impl EntryKind {
    fn of(report: &v1::Report) -> Self {
        use v1::report::Payload;
        match &report.payload {
            Some(Payload::SystemSnapshot(_)) => EntryKind::SystemSnapshot,
            Some(Payload::Backup(_)) => EntryKind::BackupResult,
            Some(
                Payload::OsUpdates(_)
                | Payload::Antivirus(_)
                | Payload::Software(_)
                | Payload::Lan(_)
                | Payload::CheckFailure(_),
            )
            | None => EntryKind::Other,
        }
    }

    fn from_byte(byte: u8) -> Self {
        match byte {
            1 => EntryKind::SystemSnapshot,
            2 => EntryKind::BackupResult,
            _ => EntryKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Other => "other",
            EntryKind::SystemSnapshot => "system_snapshot",
            EntryKind::BackupResult => "backup_result",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot open the outbox at {path}{hint}")]
    Open {
        path: String,
        hint: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("outbox storage error")]
    Storage(#[from] sled::Error),
    #[error("cannot sync the outbox file {path} to disk")]
    Sync {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("report id {0:?} is not a UUID")]
    BadId(String),
}

impl OutboxError {
    /// The disk failed under the outbox (full, I/O error, cannot reopen): counted, and the
    /// database is reopened before its next use.
    fn is_disk_failure(&self) -> bool {
        matches!(
            self,
            OutboxError::Open { .. } | OutboxError::Storage(_) | OutboxError::Sync { .. }
        )
    }
}

impl From<TransactionError<()>> for OutboxError {
    fn from(e: TransactionError<()>) -> Self {
        match e {
            TransactionError::Storage(e) => OutboxError::Storage(e),
            // Our transactions never abort on purpose.
            TransactionError::Abort(()) => {
                OutboxError::Storage(sled::Error::Unsupported("transaction aborted".into()))
            }
        }
    }
}

/// What a push did to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Reports dropped (oldest system snapshots first) to stay within the bound.
    pub dropped: u64,
    /// The outbox is over its bound because only reports that are never dropped remain.
    pub over_bound: bool,
}

/// The outbox's state as the collector and a technician see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxHealth {
    pub queued: u64,
    pub dropped_total: u64,
    /// Writes or syncs that failed (disk full, I/O error), since the outbox was created.
    pub write_failures_total: u64,
    /// The last such failure, empty if none.
    pub last_write_error: String,
    /// Reports in the quarantine now.
    pub quarantined: u64,
    /// Reports ever put in the quarantine.
    pub quarantined_total: u64,
    /// Quarantined reports discarded because the quarantine was full.
    pub quarantine_dropped_total: u64,
    pub last_quarantine_reason: String,
}

/// One report in the quarantine, for a technician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedReport {
    pub id: Uuid,
    pub kind: EntryKind,
    pub quarantined_at: i64,
    pub reason: String,
    /// Encoded size of the report as it was queued.
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Totals {
    /// Sum of key and value lengths of the queued reports.
    bytes: u64,
    count: u64,
    dropped_total: u64,
    quarantined: u64,
    quarantined_bytes: u64,
    quarantined_total: u64,
    quarantine_dropped_total: u64,
    last_quarantine_reason: String,
    write_failures_total: u64,
    last_write_error: String,
    /// Failures counted since the counters were last saved.
    failures_unsaved: bool,
    /// Blob files already fsynced (sled never rewrites one in place).
    synced_blobs: HashSet<OsString>,
}

/// The open database; `None` in [`State`] between a disk failure and the reopen.
struct Store {
    db: sled::Db,
    reports: sled::Tree,
    quarantine: sled::Tree,
    meta: sled::Tree,
    data_file: File,
}

struct State {
    store: Option<Store>,
    totals: Totals,
}

pub struct Outbox {
    dir: PathBuf,
    data_path: PathBuf,
    blob_dir: PathBuf,
    max_bytes: u64,
    /// Also serialises writers, so a size check and the write it allows are one step.
    state: Mutex<State>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.data_path)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn open(dir: &Path, data_path: &Path) -> Result<Self, OutboxError> {
        let open_error = |source: sled::Error| {
            let hint = if source.to_string().contains("lock") {
                " (is another vigie-agent using this state directory?)"
            } else {
                ""
            };
            OutboxError::Open {
                path: dir.display().to_string(),
                hint,
                source,
            }
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            // We flush after every write ourselves; no background flusher thread.
            .flush_every_ms(None)
            .open()
            .map_err(open_error)?;
        let reports = db.open_tree(REPORTS_TREE).map_err(open_error)?;
        let quarantine = db.open_tree(QUARANTINE_TREE).map_err(open_error)?;
        let meta = db.open_tree(META_TREE).map_err(open_error)?;
        let sync_error = |source| OutboxError::Sync {
            path: data_path.display().to_string(),
            source,
        };
        // Write access because Windows' FlushFileBuffers needs it; we never write through it.
        let data_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(data_path)
            .map_err(sync_error)?;
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(sync_error)?;
        Ok(Store {
            db,
            reports,
            quarantine,
            meta,
            data_file,
        })
    }

    /// Totals as the disk has them; failure counters only ever grow, so the larger of the
    /// saved and the counted value wins.
    fn read_totals(&self, counted: &Totals) -> Result<Totals, OutboxError> {
        let mut totals = Totals {
            dropped_total: read_counter(&self.meta, DROPPED_TOTAL_KEY)?,
            quarantined_total: read_counter(&self.meta, QUARANTINED_TOTAL_KEY)?,
            quarantine_dropped_total: read_counter(&self.meta, QUARANTINE_DROPPED_KEY)?,
            last_quarantine_reason: read_text(&self.meta, LAST_QUARANTINE_REASON_KEY)?,
            write_failures_total: read_counter(&self.meta, WRITE_FAILURES_KEY)?,
            last_write_error: read_text(&self.meta, LAST_WRITE_ERROR_KEY)?,
            ..Totals::default()
        };
        if counted.write_failures_total > totals.write_failures_total {
            totals.write_failures_total = counted.write_failures_total;
            totals.last_write_error = counted.last_write_error.clone();
            totals.failures_unsaved = true;
        }
        for entry in self.reports.iter() {
            let (key, value) = entry?;
            totals.bytes += entry_size(&key, &value);
            totals.count += 1;
        }
        for entry in self.quarantine.iter() {
            let (key, value) = entry?;
            totals.quarantined_bytes += entry_size(&key, &value);
            totals.quarantined += 1;
        }
        Ok(totals)
    }
}

/// Failure counters to save with the next write that succeeds.
fn save_failures(
    meta: &sled::transaction::TransactionalTree,
    totals: &Totals,
) -> Result<(), ConflictableTransactionError<()>> {
    if totals.failures_unsaved {
        meta.insert(
            WRITE_FAILURES_KEY,
            &totals.write_failures_total.to_be_bytes(),
        )?;
        meta.insert(LAST_WRITE_ERROR_KEY, totals.last_write_error.as_bytes())?;
    }
    Ok(())
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, OutboxError> {
        let data_path = dir.join(SLED_DATA_FILE);
        let store = Store::open(dir, &data_path)?;
        let totals = store.read_totals(&Totals::default())?;
        Ok(Outbox {
            dir: dir.to_owned(),
            data_path,
            blob_dir: dir.join(SLED_BLOB_DIR),
            max_bytes,
            state: Mutex::new(State {
                store: Some(store),
                totals,
            }),
        })
    }

    /// Runs `op` on the open store (reopening it first after a disk failure). A disk failure
    /// is counted and logged, and closes the store so that the next use reopens it.
    fn with_store<T>(
        &self,
        op: impl FnOnce(&Outbox, &Store, &mut Totals) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut state = self.state();
        let state = &mut *state;
        let result = self
            .reopen_if_closed(state)
            .and_then(|()| match &state.store {
                Some(store) => op(self, store, &mut state.totals),
                None => Err(OutboxError::Storage(sled::Error::Unsupported(
                    "outbox closed".into(),
                ))),
            });
        if let Err(error) = &result
            && error.is_disk_failure()
        {
            let text = crate::transport::render(error);
            let totals = &mut state.totals;
            totals.write_failures_total += 1;
            totals.last_write_error = text.clone();
            totals.failures_unsaved = true;
            tracing::error!(
                error = %text,
                write_failures_total = totals.write_failures_total,
                queued = totals.count,
                "outbox write failed: the report stays where it was; reopening the outbox"
            );
            // Drop it now: sled releases its lock, and the reopen reads what is on disk.
            state.store = None;
        }
        result
    }

    fn reopen_if_closed(&self, state: &mut State) -> Result<(), OutboxError> {
        if state.store.is_some() {
            return Ok(());
        }
        let store = Store::open(&self.dir, &self.data_path)?;
        state.totals = store.read_totals(&state.totals)?;
        tracing::info!(
            queued = state.totals.count,
            quarantined = state.totals.quarantined,
            "outbox reopened after a write failure"
        );
        state.store = Some(store);
        Ok(())
    }

    /// Stores a report durably; when it would not fit, drops the oldest system snapshots (then
    /// other droppable reports) first, never a backup result.
    pub fn push(&self, report: &v1::Report) -> Result<PushOutcome, OutboxError> {
        let id = Uuid::parse_str(&report.id).map_err(|_| OutboxError::BadId(report.id.clone()))?;
        let key = *id.as_bytes();
        let mut value = Vec::with_capacity(1 + report.encoded_len());
        value.push(EntryKind::of(report) as u8);
        report.encode(&mut value).map_err(|e| {
            // Encoding into a Vec only fails on lack of capacity, which we reserved.
            OutboxError::Storage(sled::Error::Unsupported(e.to_string()))
        })?;
        let size = entry_size(&key, &value);
        self.with_store(|this, store, totals| this.push_entry(store, totals, &key, &value, size))
    }

    fn push_entry(
        &self,
        store: &Store,
        totals: &mut Totals,
        key: &[u8; 16],
        value: &[u8],
        size: u64,
    ) -> Result<PushOutcome, OutboxError> {
        let replaced = store.reports.get(key)?.map(|old| entry_size(key, &old));
        let bytes_after = totals.bytes - replaced.unwrap_or(0) + size;
        let (victims, freed) = if bytes_after > self.max_bytes {
            pick_victims(&store.reports, bytes_after - self.max_bytes, key)?
        } else {
            (Vec::new(), 0)
        };
        let over_bound = bytes_after - freed > self.max_bytes;
        let dropped = victims.len() as u64;
        let dropped_total = totals.dropped_total + dropped;

        (&store.reports, &store.meta).transaction(|(reports, meta)| {
            for victim in &victims {
                reports.remove(victim.as_slice())?;
            }
            reports.insert(key, value)?;
            if dropped > 0 {
                meta.insert(DROPPED_TOTAL_KEY, &dropped_total.to_be_bytes())?;
            }
            save_failures(meta, totals)?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.sync(store, totals)?;

        totals.failures_unsaved = false;
        totals.bytes = bytes_after - freed;
        totals.count = totals.count + u64::from(replaced.is_none()) - dropped;
        totals.dropped_total = dropped_total;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                dropped_total,
                max_bytes = self.max_bytes,
                "outbox full: dropped oldest reports"
            );
        }
        if over_bound {
            tracing::warn!(
                bytes = totals.bytes,
                max_bytes = self.max_bytes,
                "outbox over its bound: only reports that are never dropped remain"
            );
        }
        Ok(PushOutcome {
            dropped,
            over_bound,
        })
    }

    /// Oldest reports first, at most `max_reports` and about `max_bytes` of encoded reports; the
    /// first report always comes, even alone over `max_bytes`, so the caller can see it. An
    /// entry that no longer decodes goes to the quarantine.
    pub fn peek_batch(
        &self,
        max_reports: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Uuid, v1::Report)>, OutboxError> {
        let (batch, corrupt) = self.with_store(|_, store, _| {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut corrupt = Vec::new();
            for entry in store.reports.iter() {
                if batch.len() >= max_reports {
                    break;
                }
                let (key, value) = entry?;
                let decoded = Uuid::from_slice(&key)
                    .ok()
                    .zip(value.get(1..).and_then(|b| v1::Report::decode(b).ok()));
                let Some((id, report)) = decoded else {
                    corrupt.push(key.to_vec());
                    continue;
                };
                let len = value.len() - 1;
                if !batch.is_empty() && bytes + len > max_bytes {
                    break;
                }
                bytes += len;
                batch.push((id, report));
            }
            Ok((batch, corrupt))
        })?;
        if !corrupt.is_empty() {
            tracing::error!(
                count = corrupt.len(),
                "outbox entries no longer decode: moving them to the quarantine"
            );
            let reason = "the stored entry no longer decodes (damaged on disk?)";
            let entries: Vec<_> = corrupt
                .into_iter()
                .map(|k| (k, reason.to_owned()))
                .collect();
            self.with_store(|this, store, totals| {
                this.move_to_quarantine(store, totals, &entries)
            })?;
        }
        Ok(batch)
    }

    /// Deletes reports, durably, once the collector acknowledged them. Unknown ids are
    /// ignored. Returns how many went.
    pub fn remove(&self, ids: &[Uuid]) -> Result<u64, OutboxError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        self.with_store(|this, store, totals| this.delete(store, totals, &keys))
    }

    fn delete(
        &self,
        store: &Store,
        totals: &mut Totals,
        keys: &[Vec<u8>],
    ) -> Result<u64, OutboxError> {
        let mut present = Vec::new();
        let mut bytes = 0;
        for key in keys {
            if let Some(value) = store.reports.get(key)? {
                bytes += entry_size(key, &value);
                present.push(key);
            }
        }
        if present.is_empty() {
            return Ok(0);
        }
        (&store.reports, &store.meta).transaction(|(reports, meta)| {
            for key in &present {
                reports.remove(key.as_slice())?;
            }
            save_failures(meta, totals)?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.sync(store, totals)?;
        totals.failures_unsaved = false;
        totals.bytes -= bytes;
        totals.count -= present.len() as u64;
        Ok(present.len() as u64)
    }

    /// Moves reports the collector refused for good (or that can never be sent) out of the
    /// queue into the quarantine, with the reason: kept on disk, counted, never resent by
    /// itself. Unknown ids are ignored. Returns how many moved.
    pub fn quarantine(&self, refused: &[(Uuid, String)]) -> Result<u64, OutboxError> {
        let entries: Vec<(Vec<u8>, String)> = refused
            .iter()
            .map(|(id, reason)| (id.as_bytes().to_vec(), reason.clone()))
            .collect();
        self.with_store(|this, store, totals| this.move_to_quarantine(store, totals, &entries))
    }

    fn move_to_quarantine(
        &self,
        store: &Store,
        totals: &mut Totals,
        entries: &[(Vec<u8>, String)],
    ) -> Result<u64, OutboxError> {
        let now = jiff::Timestamp::now().as_second();
        let mut moves = Vec::new();
        let (mut freed, mut added) = (0, 0);
        for (key, reason) in entries {
            let Some(value) = store.reports.get(key)? else {
                continue;
            };
            let reason = cut(reason, REASON_MAX_BYTES);
            let kind = value.first().copied().unwrap_or(EntryKind::Other as u8);
            let mut kept = Vec::with_capacity(QUARANTINE_HEADER + reason.len() + value.len());
            kept.push(kind);
            kept.extend_from_slice(&now.to_be_bytes());
            kept.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            kept.extend_from_slice(reason.as_bytes());
            kept.extend_from_slice(value.get(1..).unwrap_or_default());
            freed += entry_size(key, &value);
            added += entry_size(key, &kept);
            moves.push((key.clone(), kept, reason));
        }
        let Some((_, _, last_reason)) = moves.last() else {
            return Ok(0);
        };
        let last_reason = last_reason.clone();
        let moved = moves.len() as u64;
        // Over the bound: the oldest quarantined reports make room, counted.
        let mut evicted = Vec::new();
        let (mut count, mut bytes) = (totals.quarantined + moved, totals.quarantined_bytes + added);
        for entry in store.quarantine.iter() {
            if count <= QUARANTINE_MAX_REPORTS && bytes <= QUARANTINE_MAX_BYTES {
                break;
            }
            let (key, value) = entry?;
            count -= 1;
            bytes -= entry_size(&key, &value);
            evicted.push(key.to_vec());
        }
        let quarantined_total = totals.quarantined_total + moved;
        let dropped_total = totals.quarantine_dropped_total + evicted.len() as u64;
        (&store.reports, &store.quarantine, &store.meta).transaction(
            |(reports, quarantine, meta)| {
                for key in &evicted {
                    quarantine.remove(key.as_slice())?;
                }
                for (key, kept, _) in &moves {
                    reports.remove(key.as_slice())?;
                    quarantine.insert(key.as_slice(), kept.as_slice())?;
                }
                meta.insert(QUARANTINED_TOTAL_KEY, &quarantined_total.to_be_bytes())?;
                meta.insert(QUARANTINE_DROPPED_KEY, &dropped_total.to_be_bytes())?;
                meta.insert(LAST_QUARANTINE_REASON_KEY, last_reason.as_bytes())?;
                save_failures(meta, totals)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            },
        )?;
        self.sync(store, totals)?;
        totals.failures_unsaved = false;
        totals.bytes -= freed;
        totals.count -= moved;
        totals.quarantined = count;
        totals.quarantined_bytes = bytes;
        totals.quarantined_total = quarantined_total;
        totals.quarantine_dropped_total = dropped_total;
        totals.last_quarantine_reason = last_reason;
        if !evicted.is_empty() {
            tracing::error!(
                discarded = evicted.len(),
                quarantine_dropped_total = dropped_total,
                max_reports = QUARANTINE_MAX_REPORTS,
                max_bytes = QUARANTINE_MAX_BYTES,
                "quarantine full: discarded its oldest reports"
            );
        }
        Ok(moved)
    }

    /// The quarantine, oldest report first (for a technician; nothing is resent from here).
    pub fn quarantined_reports(&self) -> Result<Vec<QuarantinedReport>, OutboxError> {
        self.with_store(|_, store, _| {
            let mut out = Vec::new();
            for entry in store.quarantine.iter() {
                let (key, value) = entry?;
                let Ok(id) = Uuid::from_slice(&key) else {
                    continue;
                };
                let (kind, at, reason, report) = split_quarantined(&value);
                out.push(QuarantinedReport {
                    id,
                    kind,
                    quarantined_at: at,
                    reason,
                    bytes: report.len(),
                });
            }
            Ok(out)
        })
    }

    /// Reports queued.
    pub fn len(&self) -> u64 {
        self.state().totals.count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the queued reports take (keys and values).
    pub fn bytes(&self) -> u64 {
        self.state().totals.bytes
    }

    /// Reports dropped since the outbox was created (persisted).
    pub fn dropped_total(&self) -> u64 {
        self.state().totals.dropped_total
    }

    /// Counters and last reasons, for the batch status and the `run --once` summary.
    pub fn health(&self) -> OutboxHealth {
        let totals = &self.state().totals;
        OutboxHealth {
            queued: totals.count,
            dropped_total: totals.dropped_total,
            write_failures_total: totals.write_failures_total,
            last_write_error: totals.last_write_error.clone(),
            quarantined: totals.quarantined,
            quarantined_total: totals.quarantined_total,
            quarantine_dropped_total: totals.quarantine_dropped_total,
            last_quarantine_reason: totals.last_quarantine_reason.clone(),
        }
    }

    /// sled flush, then fsync of its data file and of any new blob file: only then is a write
    /// safe from a power cut.
    fn sync(&self, store: &Store, totals: &mut Totals) -> Result<(), OutboxError> {
        let sync_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| OutboxError::Sync { path, source }
        };
        store.db.flush()?;
        store
            .data_file
            .sync_all()
            .map_err(sync_error(&self.data_path))?;
        let Ok(blobs) = std::fs::read_dir(&self.blob_dir) else {
            return Ok(());
        };
        // Blobs of earlier writes that sled has since collected leave our set with them.
        let present: HashSet<OsString> = blobs.flatten().map(|e| e.file_name()).collect();
        totals.synced_blobs.retain(|name| present.contains(name));
        let mut new_blobs = false;
        for name in present {
            if totals.synced_blobs.contains(&name) {
                continue;
            }
            let path = self.blob_dir.join(&name);
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(file) => file.sync_all().map_err(sync_error(&path))?,
                // Collected by sled in the meantime: nothing to make durable.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(sync_error(&path)(e)),
            }
            totals.synced_blobs.insert(name);
            new_blobs = true;
        }
        #[cfg(unix)]
        if new_blobs {
            File::open(&self.blob_dir)
                .and_then(|d| d.sync_all())
                .map_err(sync_error(&self.blob_dir))?;
        }
        #[cfg(not(unix))]
        let _ = new_blobs;
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the totals as they were before the write
        // (they are updated last), so the data is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Oldest droppable entries freeing at least `needed` bytes: system snapshots first, then
/// other kinds; never backup results, never the entry being written.
fn pick_victims(
    reports: &sled::Tree,
    needed: u64,
    keep: &[u8],
) -> Result<(Vec<Vec<u8>>, u64), OutboxError> {
    let mut victims = Vec::new();
    let mut freed = 0;
    for kind in [EntryKind::SystemSnapshot, EntryKind::Other] {
        for entry in reports.iter() {
            if freed >= needed {
                return Ok((victims, freed));
            }
            let (k, v) = entry?;
            let entry_kind = v
                .first()
                .map_or(EntryKind::Other, |b| EntryKind::from_byte(*b));
            if entry_kind == kind && k.as_ref() != keep {
                freed += entry_size(&k, &v);
                victims.push(k.to_vec());
            }
        }
    }
    Ok((victims, freed))
}

/// Kind, quarantine time, reason and report bytes of a quarantine value (lenient: a damaged
/// header gives what can be read).
fn split_quarantined(value: &[u8]) -> (EntryKind, i64, String, &[u8]) {
    let kind = value
        .first()
        .map_or(EntryKind::Other, |b| EntryKind::from_byte(*b));
    let at = value
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_be_bytes);
    let len = value
        .get(9..11)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map_or(0, |b| usize::from(u16::from_be_bytes(b)));
    let end = (QUARANTINE_HEADER + len).min(value.len());
    let reason = value
        .get(QUARANTINE_HEADER.min(end)..end)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    (kind, at, reason, value.get(end..).unwrap_or_default())
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn entry_size(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

fn read_counter(meta: &sled::Tree, key: &[u8]) -> Result<u64, OutboxError> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn read_text(meta: &sled::Tree, key: &[u8]) -> Result<String, OutboxError> {
    Ok(meta
        .get(key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(hostname: &str) -> v1::Report {
        v1::Report {
            id: Uuid::now_v7().to_string(),
            collected_at: None,
            payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
                hostname: hostname.into(),
                ..Default::default()
            })),
        }
    }

    /// A backup report; the host name rides in a declared job so the tests can tell them apart.
    fn backup(name: &str) -> v1::Report {
        v1::Report {
            id: Uuid::now_v7().to_string(),
            collected_at: None,
            payload: Some(v1::report::Payload::Backup(v1::BackupReport {
                declared_jobs: vec![v1::DeclaredJob {
                    name: name.into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
        }
    }

    fn hostnames(outbox: &Outbox) -> Vec<String> {
        outbox
            .peek_batch(usize::MAX, usize::MAX)
            .expect("peek")
            .into_iter()
            .map(|(_, r)| match r.payload {
                Some(v1::report::Payload::SystemSnapshot(s)) => s.hostname,
                Some(v1::report::Payload::Backup(b)) => b.declared_jobs[0].name.clone(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn reports_come_back_oldest_first_within_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        for name in ["a", "b", "c", "d"] {
            outbox.push(&snapshot(name)).expect("push");
        }
        assert_eq!(hostnames(&outbox), ["a", "b", "c", "d"]);
        assert_eq!(outbox.peek_batch(2, usize::MAX).expect("peek").len(), 2);
        // The byte limit still lets the first report through.
        assert_eq!(outbox.peek_batch(10, 1).expect("peek").len(), 1);

        let first_two: Vec<Uuid> = outbox
            .peek_batch(2, usize::MAX)
            .expect("peek")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(outbox.remove(&first_two).expect("remove"), 2);
        assert_eq!(outbox.remove(&first_two).expect("remove again"), 0);
        assert_eq!(hostnames(&outbox), ["c", "d"]);
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn contents_and_totals_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = {
            let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
            outbox.push(&snapshot("a")).expect("push");
            outbox.push(&snapshot("b")).expect("push");
            outbox.bytes()
        };
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.bytes(), bytes);
        assert_eq!(hostnames(&outbox), ["a", "b"]);
    }

    #[test]
    fn pushing_the_same_id_twice_keeps_one_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let report = snapshot("a");
        outbox.push(&report).expect("push");
        let bytes = outbox.bytes();
        outbox.push(&report).expect("push again");
        assert_eq!((outbox.len(), outbox.bytes()), (1, bytes));
    }

    #[test]
    fn full_outbox_drops_oldest_snapshots_and_never_backup_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = {
            let probe = Outbox::open(&dir.path().join("probe"), u64::MAX).expect("open");
            probe.push(&snapshot("x")).expect("push");
            probe.bytes()
        };
        // Room for three entries of about this size (host names differ by a few bytes).
        let outbox = Outbox::open(&dir.path().join("box"), 3 * one + 40).expect("open");
        outbox.push(&backup("backup")).expect("push");
        outbox.push(&snapshot("a")).expect("push");
        outbox.push(&snapshot("b")).expect("push");
        let outcome = outbox.push(&snapshot("c")).expect("push");
        assert_eq!(outcome.dropped, 1);
        assert_eq!(hostnames(&outbox), ["backup", "b", "c"]);

        // Fill with backup results only: the bound gives way rather than dropping one.
        // Pushing these drops the snapshots b and c.
        outbox.push(&backup("backup2")).expect("push");
        outbox.push(&backup("backup3")).expect("push");
        assert_eq!(hostnames(&outbox), ["backup", "backup2", "backup3"]);
        let outcome = outbox.push(&snapshot("d")).expect("push");
        assert_eq!(hostnames(&outbox), ["backup", "backup2", "backup3", "d"]);
        assert_eq!(outcome.dropped, 0);
        assert!(outcome.over_bound);
        assert_eq!(outbox.dropped_total(), 3);
    }

    #[test]
    fn dropped_total_persists_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let outbox = Outbox::open(dir.path(), 1).expect("open");
            outbox.push(&snapshot("a")).expect("push");
            outbox.push(&snapshot("b")).expect("push");
            outbox.push(&snapshot("c")).expect("push");
            assert_eq!(outbox.dropped_total(), 2);
            assert_eq!(hostnames(&outbox), ["c"]);
        }
        let outbox = Outbox::open(dir.path(), 1).expect("reopen");
        assert_eq!(outbox.dropped_total(), 2);
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn large_reports_stored_as_sled_blobs_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = "x".repeat(600 * 1024);
        {
            let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
            outbox.push(&snapshot(&big)).expect("push");
            assert!(
                !outbox.state().totals.synced_blobs.is_empty(),
                "went to a blob file"
            );
        }
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(hostnames(&outbox), [big]);
    }

    #[test]
    fn bad_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let mut report = snapshot("a");
        report.id = "not-a-uuid".into();
        assert!(matches!(outbox.push(&report), Err(OutboxError::BadId(_))));
    }

    #[test]
    fn second_open_of_the_same_dir_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Outbox::open(dir.path(), u64::MAX).expect("open");
        let error = Outbox::open(dir.path(), u64::MAX).expect_err("locked");
        assert!(error.to_string().contains("another vigie-agent"), "{error}");
    }

    fn ids(outbox: &Outbox) -> Vec<Uuid> {
        outbox
            .peek_batch(usize::MAX, usize::MAX)
            .expect("peek")
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn refused_reports_move_to_the_quarantine_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (refused, kept) = {
            let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
            outbox.push(&backup("nightly")).expect("push");
            outbox.push(&snapshot("a")).expect("push");
            let all = ids(&outbox);
            let moved = outbox
                .quarantine(&[(all[0], "unknown payload kind".into())])
                .expect("quarantine");
            assert_eq!(moved, 1);
            // Moving it again, or an unknown id, does nothing.
            assert_eq!(
                outbox.quarantine(&[(all[0], "again".into())]).expect("q"),
                0
            );
            assert_eq!(ids(&outbox), [all[1]], "not resent");
            (all[0], all[1])
        };
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(ids(&outbox), [kept]);
        let health = outbox.health();
        assert_eq!(
            (health.queued, health.quarantined, health.quarantined_total),
            (1, 1, 1)
        );
        assert_eq!(health.last_quarantine_reason, "unknown payload kind");
        let listed = outbox.quarantined_reports().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, refused);
        assert_eq!(listed[0].kind, EntryKind::BackupResult);
        assert_eq!(listed[0].reason, "unknown payload kind");
        assert!(listed[0].bytes > 0 && listed[0].quarantined_at > 0);
    }

    #[test]
    fn the_quarantine_is_bounded_and_counts_what_it_discards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let extra = 5;
        for _ in 0..QUARANTINE_MAX_REPORTS + extra {
            outbox.push(&snapshot("a")).expect("push");
        }
        let all = ids(&outbox);
        let refused: Vec<_> = all.iter().map(|id| (*id, "refused".to_owned())).collect();
        for chunk in refused.chunks(100) {
            outbox.quarantine(chunk).expect("quarantine");
        }
        let health = outbox.health();
        assert_eq!(health.quarantined, QUARANTINE_MAX_REPORTS);
        assert_eq!(health.quarantined_total, QUARANTINE_MAX_REPORTS + extra);
        assert_eq!(health.quarantine_dropped_total, extra);
        assert_eq!(health.queued, 0);
        let listed = outbox.quarantined_reports().expect("list");
        assert_eq!(
            listed.first().map(|r| r.id),
            Some(all[extra as usize]),
            "oldest went"
        );
    }

    #[test]
    fn an_entry_that_no_longer_decodes_goes_to_the_quarantine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&snapshot("a")).expect("push");
        let bad = Uuid::now_v7();
        {
            let state = outbox.state();
            let store = state.store.as_ref().expect("open");
            store
                .reports
                .insert(bad.as_bytes(), &[2u8, 0xff, 0xff, 0xff][..])
                .expect("insert");
        }
        assert_eq!(outbox.peek_batch(10, usize::MAX).expect("peek").len(), 1);
        let listed = outbox.quarantined_reports().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, bad);
        assert!(listed[0].reason.contains("no longer decodes"));
    }

    #[test]
    fn quarantine_values_split_back_even_when_damaged() {
        let check = |value: &[u8], kind: EntryKind, reason: &str, rest: &[u8]| {
            let (k, _, r, body) = split_quarantined(value);
            assert_eq!((k, r.as_str(), body), (kind, reason, rest));
        };
        let mut good = vec![2u8];
        good.extend_from_slice(&7i64.to_be_bytes());
        good.extend_from_slice(&3u16.to_be_bytes());
        good.extend_from_slice(b"why");
        good.extend_from_slice(b"report");
        check(&good, EntryKind::BackupResult, "why", b"report");
        check(&good[..12], EntryKind::BackupResult, "w", b"");
        check(&[], EntryKind::Other, "", b"");
        assert_eq!(cut("éé", 3), "é");
    }
}
