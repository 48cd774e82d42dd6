//! The durable outbox: every report is stored here before any send and deleted only once the
//! collector acknowledged its id. Plain files, one per report: nothing runs in the background,
//! and nothing is resident but what a write touches.
//!
//! Layout of `STATE_DIR/outbox`:
//!
//! ```text
//! lock                 held with an exclusive lock while an agent has the outbox open
//! counters             JSON: dropped_total, write_failures_total, last_write_error,
//!                      quarantined_total, quarantine_dropped_total, last_quarantine_reason
//! reports/ID.KIND      one queued report: the prost-encoded `v1::Report`, exactly as queued
//! quarantine/ID.KIND   one report refused for good: quarantine time (i64 big-endian Unix
//!                      seconds), reason length (u16 big-endian), the reason (UTF-8), then the
//!                      report bytes exactly as they were queued
//! */NAME.tmp           a write that never finished (removed at open)
//! ```
//!
//! ID is the report's UUIDv7 as 32 lowercase hex digits, so names sort oldest first; KIND is
//! `system_snapshot`, `backup_result` or `other` ([`EntryKind::as_str`]), so the drop policy
//! runs on the folder listing alone, without reading a report.
//!
//! Invariants: a write returns only once it is on disk: the file is written as `NAME.tmp`,
//! fsynced, renamed to `NAME`, then its folder is fsynced (only that makes the rename durable).
//! A removal is an unlink and an fsync of the folder (a batch: many unlinks, one fsync). The
//! counters file is replaced the same way as a report. A refused report is written to the
//! quarantine (folder fsynced) before it leaves `reports/`: a crash in between leaves it in
//! both, and the open removes the queued copy. A backup result is never dropped to make room,
//! and never deleted without an acknowledgement: refused, it goes to the quarantine, kept for a
//! technician, and never resent by itself.
//!
//! A failed write or sync (disk full, I/O error) is counted and its reason kept; the counters
//! are saved with the next write that succeeds. The report stays where it was: a push that
//! failed removes its own file again, so its caller still holds it (a backup result stays in
//! its spool); a removal that failed leaves the reports queued (resent, acknowledged again as
//! duplicates). After a failure the folders are listed again before the next use, because what
//! memory holds may no longer match them.
//!
//! Earlier agents kept this outbox in sled, in the same folder: [`sled_import`] moves it here
//! once, at the first open, and is the only code that touches sled.

mod sled_import;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use prost::Message as _;
use uuid::Uuid;
use vigie_proto::v1;

const REPORTS_DIR: &str = "reports";
const QUARANTINE_DIR: &str = "quarantine";
const COUNTERS_FILE: &str = "counters";
const LOCK_FILE: &str = "lock";
/// A file being written; renamed without this suffix once it is whole and on disk.
const TMP_SUFFIX: &str = ".tmp";
/// The quarantine keeps at most this many reports...
pub const QUARANTINE_MAX_REPORTS: u64 = 1000;
/// ...and about this many bytes; beyond either, its oldest reports are discarded and counted
/// (`quarantine_dropped_total`), so a collector that refuses everything cannot fill the disk.
pub const QUARANTINE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// A reason longer than this is cut (it comes from the collector).
const REASON_MAX_BYTES: usize = 512;
/// Header of a quarantine file before the reason: time, reason length.
const QUARANTINE_HEADER: usize = 8 + 2;

/// What a stored report is, as far as the drop policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Other,
    SystemSnapshot,
    /// Never dropped: a missing backup result would hide a failed backup.
    BackupResult,
}

impl EntryKind {
    const ALL: [EntryKind; 3] = [
        EntryKind::Other,
        EntryKind::SystemSnapshot,
        EntryKind::BackupResult,
    ];

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

    /// Also the extension of its files.
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
        source: io::Error,
    },
    /// `doing` says what failed on `path`: "write", "sync to disk", "remove", ...
    #[error("cannot {doing} the outbox file {path}")]
    Disk {
        doing: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("report id {0:?} is not a UUID")]
    BadId(String),
}

impl OutboxError {
    /// The disk failed under the outbox (full, I/O error): counted, and the folders are listed
    /// again before the next use.
    fn is_disk_failure(&self) -> bool {
        matches!(self, OutboxError::Open { .. } | OutboxError::Disk { .. })
    }
}

/// The error for `doing` on `path`, for `map_err`.
fn disk(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutboxError {
    let path = path.display().to_string();
    move |source| OutboxError::Disk {
        doing,
        path,
        source,
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

/// The `counters` file: what the folders cannot tell by themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Counters {
    dropped_total: u64,
    write_failures_total: u64,
    last_write_error: String,
    quarantined_total: u64,
    quarantine_dropped_total: u64,
    last_quarantine_reason: String,
}

impl Counters {
    fn load(root: &Path) -> Result<Self, OutboxError> {
        let path = root.join(COUNTERS_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                // Replaced atomically, so only a damaged disk gets here; the reports matter
                // more than their counters.
                tracing::warn!(file = %path.display(), %error, "outbox counters unreadable: starting from zero");
                Counters::default()
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Counters::default()),
            Err(e) => Err(disk("read", &path)(e)),
        }
    }

    /// Replaces the file; durable after `sync_dir(root)`.
    fn save(&self, root: &Path) -> Result<(), OutboxError> {
        let path = root.join(COUNTERS_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| disk("encode", &path)(e.into()))?;
        write_file(root, COUNTERS_FILE, &[&json])
    }

    /// Counters only ever grow: the larger of each wins, with its reason.
    fn merge_max(&mut self, other: &Counters) {
        self.dropped_total = self.dropped_total.max(other.dropped_total);
        if other.write_failures_total > self.write_failures_total {
            self.write_failures_total = other.write_failures_total;
            self.last_write_error = other.last_write_error.clone();
        }
        if other.quarantined_total > self.quarantined_total {
            self.quarantined_total = other.quarantined_total;
            self.last_quarantine_reason = other.last_quarantine_reason.clone();
        }
        self.quarantine_dropped_total = self
            .quarantine_dropped_total
            .max(other.quarantine_dropped_total);
    }
}

/// A report file as the listing shows it.
#[derive(Debug, Clone, Copy)]
struct Stored {
    kind: EntryKind,
    bytes: u64,
}

/// One folder's files, oldest first (UUIDv7 order), and their total size.
#[derive(Debug, Default)]
struct Index {
    entries: BTreeMap<Uuid, Stored>,
    bytes: u64,
}

impl Index {
    fn get(&self, id: Uuid) -> Option<Stored> {
        self.entries.get(&id).copied()
    }

    fn insert(&mut self, id: Uuid, stored: Stored) -> Option<Stored> {
        let old = self.entries.insert(id, stored);
        self.bytes = self.bytes - old.map_or(0, |s| s.bytes) + stored.bytes;
        old
    }

    fn remove(&mut self, id: Uuid) -> Option<Stored> {
        let old = self.entries.remove(&id);
        self.bytes -= old.map_or(0, |s| s.bytes);
        old
    }

    fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Oldest droppable reports freeing at least `needed` bytes: system snapshots first, then
    /// other kinds; never backup results, never `keep` (the report being written).
    fn pick_victims(&self, needed: u64, keep: Uuid) -> (Vec<(Uuid, Stored)>, u64) {
        let mut victims = Vec::new();
        let mut freed = 0;
        for kind in [EntryKind::SystemSnapshot, EntryKind::Other] {
            for (&id, &stored) in &self.entries {
                if freed >= needed {
                    return (victims, freed);
                }
                if stored.kind == kind && id != keep {
                    freed += stored.bytes;
                    victims.push((id, stored));
                }
            }
        }
        (victims, freed)
    }

    /// The folder as it is on disk; removes what crashed writes left (`*.tmp`).
    fn scan(dir: &Path) -> Result<Self, OutboxError> {
        let mut index = Index::default();
        for entry in fs::read_dir(dir).map_err(disk("list", dir))? {
            let entry = entry.map_err(disk("list", dir))?;
            let file_name = entry.file_name();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            let Some(name) = file_name.to_str().filter(|_| is_file) else {
                tracing::warn!(file = %entry.path().display(), "not an outbox file: left alone");
                continue;
            };
            if name.ends_with(TMP_SUFFIX) {
                remove_file(dir, name)?;
                continue;
            }
            let Some((id, kind)) = parse_file_name(name) else {
                tracing::warn!(file = %entry.path().display(), "not an outbox file: left alone");
                continue;
            };
            let bytes = entry.metadata().map_err(disk("read", &entry.path()))?.len();
            if let Some(other) = index.insert(id, Stored { kind, bytes }) {
                // Never written by this code (one id has one kind); keep one, say so.
                tracing::warn!(report_id = %id, kinds = ?(kind, other.kind), "report stored twice under two kinds");
            }
        }
        Ok(index)
    }
}

/// `ID.KIND` of a report.
fn file_name(id: Uuid, kind: EntryKind) -> String {
    format!("{}.{}", id.simple(), kind.as_str())
}

fn parse_file_name(name: &str) -> Option<(Uuid, EntryKind)> {
    let (hex, kind) = name.split_once('.')?;
    let kind = EntryKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    let id = Uuid::try_parse(hex).ok().filter(|_| hex.len() == 32)?;
    Some((id, kind))
}

/// Writes `NAME.tmp` whole, fsyncs it, renames it to `NAME`: a reader, and a crash, sees the
/// old file or the whole new one. The rename is durable only after [`sync_dir`].
fn write_file(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), OutboxError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let result = File::create(&tmp)
        .map_err(disk("write", &tmp))
        .and_then(|mut file| {
            for part in parts {
                file.write_all(part).map_err(disk("write", &tmp))?;
            }
            file.sync_all().map_err(disk("sync to disk", &tmp))
        })
        .and_then(|()| fs::rename(&tmp, dir.join(name)).map_err(disk("rename", &tmp)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes the renames and unlinks in `dir` durable. Windows has no directory fsync through std;
/// NTFS journals the rename itself.
fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(disk("sync to disk", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Unlinks `dir/name`; `false` if it was not there.
fn remove_file(dir: &Path, name: &str) -> Result<bool, OutboxError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(disk("remove", &path)(e)),
    }
}

/// Reads a whole file; `None` if it is gone.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, OutboxError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(disk("read", path)(e)),
    }
}

/// The outbox's folders.
#[derive(Debug)]
struct Folders {
    root: PathBuf,
    reports: PathBuf,
    quarantine: PathBuf,
}

impl Folders {
    fn new(root: &Path) -> Self {
        Folders {
            root: root.to_owned(),
            reports: root.join(REPORTS_DIR),
            quarantine: root.join(QUARANTINE_DIR),
        }
    }

    /// Both folders as on disk. A report in both was being quarantined when the agent
    /// stopped: the quarantine's copy is whole (written first), the queued one goes.
    fn scan(&self) -> Result<(Index, Index), OutboxError> {
        let mut queue = Index::scan(&self.reports)?;
        let quarantine = Index::scan(&self.quarantine)?;
        let both: Vec<(Uuid, Stored)> = queue
            .entries
            .iter()
            .filter(|(id, _)| quarantine.entries.contains_key(id))
            .map(|(id, stored)| (*id, *stored))
            .collect();
        for (id, stored) in &both {
            remove_file(&self.reports, &file_name(*id, stored.kind))?;
            queue.remove(*id);
        }
        if !both.is_empty() {
            sync_dir(&self.reports)?;
        }
        Ok((queue, quarantine))
    }
}

struct State {
    queue: Index,
    quarantine: Index,
    counters: Counters,
    /// Failures counted since the counters were last saved.
    failures_unsaved: bool,
    /// A disk failure happened: list the folders again before the next use.
    rescan: bool,
}

pub struct Outbox {
    folders: Folders,
    max_bytes: u64,
    /// Also serialises writers, so a size check and the write it allows are one step.
    state: Mutex<State>,
    /// Held (locked) for as long as the outbox is open.
    _lock: File,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.folders.root)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, bounded to `max_bytes`; moves an old sled outbox
    /// found there into it first.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, OutboxError> {
        let open_error = |source| OutboxError::Open {
            path: dir.display().to_string(),
            hint: "",
            source,
        };
        let folders = Folders::new(dir);
        let created = !folders.reports.is_dir() || !folders.quarantine.is_dir();
        fs::create_dir_all(&folders.reports).map_err(open_error)?;
        fs::create_dir_all(&folders.quarantine).map_err(open_error)?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(open_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(OutboxError::Open {
                    path: dir.display().to_string(),
                    hint: " (is another vigie-agent using this state directory?)",
                    source: io::Error::new(io::ErrorKind::WouldBlock, "the outbox is locked"),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(open_error(e)),
        }
        if created {
            sync_dir(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let mut counters = Counters::load(dir)?;
        let mut failures_unsaved = false;
        if sled_import::old_outbox_present(dir) {
            // A failed move leaves the old outbox whole: counted, and tried again at the
            // next open; the agent goes on with the new one meanwhile.
            if let Err(error) = sled_import::import(&folders, &mut counters) {
                let text = crate::transport::render(&error);
                counters.write_failures_total += 1;
                counters.last_write_error = text.clone();
                failures_unsaved = true;
                tracing::error!(error = %text, "cannot move the old sled outbox: it stays, tried again at the next start");
            }
        }
        sled_import::remove_leftovers(dir);
        let (queue, quarantine) = folders.scan()?;
        Ok(Outbox {
            folders,
            max_bytes,
            state: Mutex::new(State {
                queue,
                quarantine,
                counters,
                failures_unsaved,
                rescan: false,
            }),
            _lock: lock,
        })
    }

    /// An outbox left by an older agent (sled) is in `dir`, not yet moved: [`Outbox::open`]
    /// moves it. `run` has a child process open it first (`vigie-agent outbox-import`), because
    /// sled keeps its I/O threads for the life of a process that used it once.
    pub fn old_outbox_present(dir: &Path) -> bool {
        sled_import::old_outbox_present(dir)
    }

    /// Runs `op` on the state (listing the folders again first after a disk failure). A disk
    /// failure is counted and logged.
    fn with_state<T>(
        &self,
        op: impl FnOnce(&Outbox, &mut State) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut state = self.state();
        let state = &mut *state;
        let result = self.rescan_if_needed(state).and_then(|()| op(self, state));
        if let Err(error) = &result
            && error.is_disk_failure()
        {
            let text = crate::transport::render(error);
            let counters = &mut state.counters;
            counters.write_failures_total += 1;
            counters.last_write_error = text.clone();
            state.failures_unsaved = true;
            state.rescan = true;
            tracing::error!(
                error = %text,
                write_failures_total = counters.write_failures_total,
                queued = state.queue.len(),
                "outbox write failed: the report stays where it was; the outbox is read again before its next use"
            );
        }
        result
    }

    fn rescan_if_needed(&self, state: &mut State) -> Result<(), OutboxError> {
        if !state.rescan {
            return Ok(());
        }
        let (queue, quarantine) = self.folders.scan()?;
        // Memory holds the failure just counted; the file what a half-done write saved.
        let saved = Counters::load(&self.folders.root)?;
        state.counters.merge_max(&saved);
        state.queue = queue;
        state.quarantine = quarantine;
        state.rescan = false;
        tracing::info!(
            queued = state.queue.len(),
            quarantined = state.quarantine.len(),
            "outbox read again after a write failure"
        );
        Ok(())
    }

    /// Saves `counters` (and any failure counted since the last save), durably.
    fn save_counters(&self, state: &mut State, counters: Counters) -> Result<(), OutboxError> {
        counters.save(&self.folders.root)?;
        sync_dir(&self.folders.root)?;
        state.counters = counters;
        state.failures_unsaved = false;
        Ok(())
    }

    /// Stores a report durably; when it would not fit, drops the oldest system snapshots (then
    /// other droppable reports) first, never a backup result.
    pub fn push(&self, report: &v1::Report) -> Result<PushOutcome, OutboxError> {
        let id = Uuid::parse_str(&report.id).map_err(|_| OutboxError::BadId(report.id.clone()))?;
        let kind = EntryKind::of(report);
        let bytes = report.encode_to_vec();
        self.with_state(|this, state| this.push_entry(state, id, kind, &bytes))
    }

    fn push_entry(
        &self,
        state: &mut State,
        id: Uuid,
        kind: EntryKind,
        bytes: &[u8],
    ) -> Result<PushOutcome, OutboxError> {
        let dir = &self.folders.reports;
        let name = file_name(id, kind);
        let replaced = state.queue.get(id);
        write_file(dir, &name, &[bytes])?;
        let stored = (|| {
            if let Some(old) = replaced
                && old.kind != kind
            {
                remove_file(dir, &file_name(id, old.kind))?;
            }
            sync_dir(dir)
        })();
        if let Err(error) = stored {
            // Not stored after all: its caller keeps it. A report that was already queued
            // under this id stays (same id, same report).
            if replaced.is_none() {
                let _ = fs::remove_file(dir.join(&name));
            }
            return Err(error);
        }
        state.queue.insert(
            id,
            Stored {
                kind,
                bytes: bytes.len() as u64,
            },
        );

        let bytes_now = state.queue.bytes;
        let (victims, freed) = if bytes_now > self.max_bytes {
            state.queue.pick_victims(bytes_now - self.max_bytes, id)
        } else {
            (Vec::new(), 0)
        };
        let over_bound = bytes_now - freed > self.max_bytes;
        let dropped = victims.len() as u64;
        for (victim, stored) in &victims {
            remove_file(dir, &file_name(*victim, stored.kind))?;
            state.queue.remove(*victim);
        }
        if dropped > 0 {
            sync_dir(dir)?;
        }
        if dropped > 0 || state.failures_unsaved {
            let mut counters = state.counters.clone();
            counters.dropped_total += dropped;
            self.save_counters(state, counters)?;
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                dropped_total = state.counters.dropped_total,
                max_bytes = self.max_bytes,
                "outbox full: dropped oldest reports"
            );
        }
        if over_bound {
            tracing::warn!(
                bytes = state.queue.bytes,
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
    /// first report always comes, even alone over `max_bytes`, so the caller can see it. A
    /// report that no longer decodes goes to the quarantine.
    pub fn peek_batch(
        &self,
        max_reports: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Uuid, v1::Report)>, OutboxError> {
        let (batch, corrupt) = self.with_state(|this, state| {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut corrupt = Vec::new();
            let mut vanished = Vec::new();
            for (&id, stored) in &state.queue.entries {
                if batch.len() >= max_reports {
                    break;
                }
                // The listing knows the size: a report that would not fit is not even read.
                let len = usize::try_from(stored.bytes).unwrap_or(usize::MAX);
                if !batch.is_empty() && bytes + len > max_bytes {
                    break;
                }
                let path = this.folders.reports.join(file_name(id, stored.kind));
                let Some(content) = read_file(&path)? else {
                    vanished.push(id);
                    continue;
                };
                match v1::Report::decode(content.as_slice()) {
                    Ok(report) => {
                        bytes += content.len();
                        batch.push((id, report));
                    }
                    Err(_) => corrupt.push(id),
                }
            }
            for id in vanished {
                // Removed by hand: nothing left to send.
                tracing::warn!(report_id = %id, "outbox file gone");
                state.queue.remove(id);
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
                .map(|id| (id, reason.to_owned()))
                .collect();
            self.with_state(|this, state| this.move_to_quarantine(state, &entries))?;
        }
        Ok(batch)
    }

    /// Deletes reports, durably, once the collector acknowledged them. Unknown ids are
    /// ignored. Returns how many went.
    pub fn remove(&self, ids: &[Uuid]) -> Result<u64, OutboxError> {
        self.with_state(|this, state| {
            let dir = &this.folders.reports;
            let mut removed = 0;
            for &id in ids {
                if let Some(stored) = state.queue.get(id) {
                    remove_file(dir, &file_name(id, stored.kind))?;
                    state.queue.remove(id);
                    removed += 1;
                }
            }
            if removed == 0 {
                return Ok(0);
            }
            sync_dir(dir)?;
            if state.failures_unsaved {
                let counters = state.counters.clone();
                this.save_counters(state, counters)?;
            }
            Ok(removed)
        })
    }

    /// Moves reports the collector refused for good (or that can never be sent) out of the
    /// queue into the quarantine, with the reason: kept on disk, counted, never resent by
    /// itself. Unknown ids are ignored. Returns how many moved.
    pub fn quarantine(&self, refused: &[(Uuid, String)]) -> Result<u64, OutboxError> {
        self.with_state(|this, state| this.move_to_quarantine(state, refused))
    }

    fn move_to_quarantine(
        &self,
        state: &mut State,
        entries: &[(Uuid, String)],
    ) -> Result<u64, OutboxError> {
        let Folders {
            root: _,
            reports,
            quarantine,
        } = &self.folders;
        let now = jiff::Timestamp::now().as_second();
        let mut moves: Vec<(Uuid, Stored)> = Vec::new();
        let mut last_reason = None;
        for (id, reason) in entries {
            let Some(queued) = state.queue.get(*id) else {
                continue;
            };
            if moves.iter().any(|(moved, _)| moved == id) {
                continue;
            }
            let name = file_name(*id, queued.kind);
            let Some(report) = read_file(&reports.join(&name))? else {
                continue;
            };
            let reason = cut(reason, REASON_MAX_BYTES);
            let mut header = Vec::with_capacity(QUARANTINE_HEADER + reason.len());
            header.extend_from_slice(&now.to_be_bytes());
            header.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            header.extend_from_slice(reason.as_bytes());
            write_file(quarantine, &name, &[&header, &report])?;
            let bytes = (header.len() + report.len()) as u64;
            moves.push((
                *id,
                Stored {
                    kind: queued.kind,
                    bytes,
                },
            ));
            last_reason = Some(reason);
        }
        let Some(last_reason) = last_reason else {
            return Ok(0);
        };
        // In the quarantine for good before it leaves the queue.
        sync_dir(quarantine)?;
        for (id, stored) in &moves {
            state.quarantine.insert(*id, *stored);
            remove_file(reports, &file_name(*id, stored.kind))?;
            state.queue.remove(*id);
        }
        // Over the bound: the oldest quarantined reports make room, counted.
        let mut evicted = 0;
        while state.quarantine.len() > QUARANTINE_MAX_REPORTS
            || state.quarantine.bytes > QUARANTINE_MAX_BYTES
        {
            let Some((&id, &stored)) = state.quarantine.entries.first_key_value() else {
                break;
            };
            remove_file(quarantine, &file_name(id, stored.kind))?;
            state.quarantine.remove(id);
            evicted += 1;
        }
        sync_dir(reports)?;
        if evicted > 0 {
            sync_dir(quarantine)?;
        }
        let moved = moves.len() as u64;
        let mut counters = state.counters.clone();
        counters.quarantined_total += moved;
        counters.quarantine_dropped_total += evicted;
        counters.last_quarantine_reason = last_reason;
        self.save_counters(state, counters)?;
        if evicted > 0 {
            tracing::error!(
                discarded = evicted,
                quarantine_dropped_total = state.counters.quarantine_dropped_total,
                max_reports = QUARANTINE_MAX_REPORTS,
                max_bytes = QUARANTINE_MAX_BYTES,
                "quarantine full: discarded its oldest reports"
            );
        }
        Ok(moved)
    }

    /// The quarantine, oldest report first (for a technician; nothing is resent from here).
    pub fn quarantined_reports(&self) -> Result<Vec<QuarantinedReport>, OutboxError> {
        self.with_state(|this, state| {
            let mut out = Vec::new();
            for (&id, stored) in &state.quarantine.entries {
                let path = this.folders.quarantine.join(file_name(id, stored.kind));
                let Some(content) = read_file(&path)? else {
                    continue;
                };
                let (at, reason, report) = split_quarantined(&content);
                out.push(QuarantinedReport {
                    id,
                    kind: stored.kind,
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
        self.state().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the queued reports take (their files' lengths).
    pub fn bytes(&self) -> u64 {
        self.state().queue.bytes
    }

    /// Reports dropped since the outbox was created (persisted).
    pub fn dropped_total(&self) -> u64 {
        self.state().counters.dropped_total
    }

    /// Counters and last reasons, for the batch status and the `run --once` summary.
    pub fn health(&self) -> OutboxHealth {
        let state = &self.state();
        let counters = &state.counters;
        OutboxHealth {
            queued: state.queue.len(),
            dropped_total: counters.dropped_total,
            write_failures_total: counters.write_failures_total,
            last_write_error: counters.last_write_error.clone(),
            quarantined: state.quarantine.len(),
            quarantined_total: counters.quarantined_total,
            quarantine_dropped_total: counters.quarantine_dropped_total,
            last_quarantine_reason: counters.last_quarantine_reason.clone(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock at worst leaves memory behind the disk, and any
        // later failure lists the folders again; the data is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Quarantine time, reason and report bytes of a quarantine file (lenient: a damaged header
/// gives what can be read).
fn split_quarantined(value: &[u8]) -> (i64, String, &[u8]) {
    let at = value
        .get(0..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_be_bytes);
    let len = value
        .get(8..10)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map_or(0, |b| usize::from(u16::from_be_bytes(b)));
    let end = (QUARANTINE_HEADER + len).min(value.len());
    let reason = value
        .get(QUARANTINE_HEADER.min(end)..end)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    (at, reason, value.get(end..).unwrap_or_default())
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests;
