//! The durable outbox: every report is stored here before any send and deleted only once the
//! collector acknowledged its id. The only file that names `sled`.
//!
//! Layout in `STATE_DIR/outbox`: tree `reports`, key = the report's UUIDv7 (16 bytes, so
//! iteration is oldest first), value = one kind byte + the prost-encoded `v1::Report`; the kind
//! byte lets the drop policy run without decoding. Tree `meta` holds `dropped_total`.
//!
//! Invariants: a write returns only once it is on disk (sled flush, then an `fsync` of sled's
//! data file, because sled 0.34's flush uses `sync_file_range`, which does not survive a power
//! cut: sled issue #1452); a backup result is never dropped to make room.

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
const META_TREE: &str = "meta";
const DROPPED_TOTAL_KEY: &[u8] = b"dropped_total";
/// sled 0.34 keeps its log in this file inside the database directory...
const SLED_DATA_FILE: &str = "db";
/// ...and items too large for a log segment (large values, or large tree nodes) in files here,
/// written without any fsync.
const SLED_BLOB_DIR: &str = "blobs";
/// Page cache for the outbox: it is written and read sequentially, a small cache is enough and
/// keeps the agent's RSS low (sled's default is 1 GiB).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

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

#[derive(Debug, Default)]
struct Totals {
    /// Sum of key and value lengths of the queued reports.
    bytes: u64,
    count: u64,
    dropped_total: u64,
    /// Blob files already fsynced (sled never rewrites one in place).
    synced_blobs: HashSet<OsString>,
}

pub struct Outbox {
    db: sled::Db,
    reports: sled::Tree,
    meta: sled::Tree,
    data_file: File,
    data_path: PathBuf,
    blob_dir: PathBuf,
    max_bytes: u64,
    /// Also serialises writers, so a size check and the write it allows are one step.
    totals: Mutex<Totals>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.data_path)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, OutboxError> {
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
        let meta = db.open_tree(META_TREE).map_err(open_error)?;
        let data_path = dir.join(SLED_DATA_FILE);
        let sync_error = |source| OutboxError::Sync {
            path: data_path.display().to_string(),
            source,
        };
        // Write access because Windows' FlushFileBuffers needs it; we never write through it.
        let data_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data_path)
            .map_err(sync_error)?;
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(sync_error)?;

        let mut totals = Totals {
            dropped_total: read_counter(&meta)?,
            ..Totals::default()
        };
        for entry in reports.iter() {
            let (key, value) = entry?;
            totals.bytes += entry_size(&key, &value);
            totals.count += 1;
        }
        Ok(Outbox {
            db,
            reports,
            meta,
            data_file,
            data_path,
            blob_dir: dir.join(SLED_BLOB_DIR),
            max_bytes,
            totals: Mutex::new(totals),
        })
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

        let mut totals = self.totals();
        let replaced = self.reports.get(key)?.map(|old| entry_size(&key, &old));
        let bytes_after = totals.bytes - replaced.unwrap_or(0) + size;
        let (victims, freed) = if bytes_after > self.max_bytes {
            self.pick_victims(bytes_after - self.max_bytes, &key)?
        } else {
            (Vec::new(), 0)
        };
        let over_bound = bytes_after - freed > self.max_bytes;
        let dropped = victims.len() as u64;
        let dropped_total = totals.dropped_total + dropped;

        (&self.reports, &self.meta).transaction(|(reports, meta)| {
            for victim in &victims {
                reports.remove(victim.as_slice())?;
            }
            reports.insert(&key, value.as_slice())?;
            if dropped > 0 {
                meta.insert(DROPPED_TOTAL_KEY, &dropped_total.to_be_bytes())?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.sync(&mut totals)?;

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

    /// Oldest droppable entries freeing at least `needed` bytes: system snapshots first, then
    /// other kinds; never backup results, never the entry being written.
    fn pick_victims(&self, needed: u64, keep: &[u8]) -> Result<(Vec<Vec<u8>>, u64), OutboxError> {
        let mut victims = Vec::new();
        let mut freed = 0;
        for kind in [EntryKind::SystemSnapshot, EntryKind::Other] {
            for entry in self.reports.iter() {
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

    /// Oldest reports first, at most `max_reports` and about `max_bytes` of encoded reports; the
    /// first report always comes, even alone over `max_bytes`, so the caller can see it. An
    /// entry that no longer decodes is deleted.
    pub fn peek_batch(
        &self,
        max_reports: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Uuid, v1::Report)>, OutboxError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut corrupt = Vec::new();
        for entry in self.reports.iter() {
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
        if !corrupt.is_empty() {
            tracing::warn!(
                count = corrupt.len(),
                "outbox entries no longer decode: discarding them"
            );
            self.delete(&corrupt)?;
        }
        Ok(batch)
    }

    /// Deletes reports, durably: acknowledged, rejected or undeliverable ones. Unknown ids are
    /// ignored. Returns how many went. Not counted in `dropped_total`, which counts only the
    /// reports the bound pushed out.
    pub fn remove(&self, ids: &[Uuid]) -> Result<u64, OutboxError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        self.delete(&keys)
    }

    fn delete(&self, keys: &[Vec<u8>]) -> Result<u64, OutboxError> {
        let mut totals = self.totals();
        let mut batch = sled::Batch::default();
        let mut bytes = 0;
        let mut removed = 0;
        for key in keys {
            if let Some(value) = self.reports.get(key)? {
                bytes += entry_size(key, &value);
                removed += 1;
                batch.remove(key.as_slice());
            }
        }
        if removed == 0 {
            return Ok(0);
        }
        self.reports.apply_batch(batch)?;
        self.sync(&mut totals)?;
        totals.bytes -= bytes;
        totals.count -= removed;
        Ok(removed)
    }

    /// Reports queued.
    pub fn len(&self) -> u64 {
        self.totals().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the queued reports take (keys and values).
    pub fn bytes(&self) -> u64 {
        self.totals().bytes
    }

    /// Reports dropped since the outbox was created (persisted).
    pub fn dropped_total(&self) -> u64 {
        self.totals().dropped_total
    }

    /// sled flush, then fsync of its data file and of any new blob file: only then is a write
    /// safe from a power cut.
    fn sync(&self, totals: &mut Totals) -> Result<(), OutboxError> {
        let sync_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| OutboxError::Sync { path, source }
        };
        self.db.flush()?;
        self.data_file
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

    fn totals(&self) -> MutexGuard<'_, Totals> {
        // A panic while holding the lock leaves the totals as they were before the write
        // (they are updated last), so the data is still usable.
        self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry_size(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

fn read_counter(meta: &sled::Tree) -> Result<u64, OutboxError> {
    Ok(meta
        .get(DROPPED_TOTAL_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
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
                !outbox.totals().synced_blobs.is_empty(),
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
}
