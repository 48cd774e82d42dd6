//! The outbox of earlier agents, kept in sled in the same folder (`db`, `conf`, `blobs/`,
//! `snap.*`), moved into the plain-file outbox at the first open, then removed. The only file
//! of the agent that names sled; it runs only when an old `db` is there, so that otherwise
//! none of sled's code is ever paged in and none of its threads start.
//!
//! What the old outbox wrote: tree `reports`, key = the report's UUIDv7 (16 bytes), value = one
//! kind byte (0 other, 1 system snapshot, 2 backup result) + the prost-encoded `v1::Report`.
//! Tree `quarantine`: same key, value = kind byte, then exactly what a quarantine file holds
//! now (time, reason length, reason, report). Tree `meta`: the counters as u64 big-endian and
//! the last reasons as UTF-8, under the names of [`Counters`]' fields.
//!
//! The move is idempotent, so a crash half way only means doing it again: every report and the
//! counters (the larger of each) are written and fsynced in the new folders first, and only
//! then is `db` removed (its folder fsynced): that removal is the commit. What sled leaves
//! beside it goes after, and again at any open that finds it without a `db`.

use std::path::Path;

use uuid::Uuid;

use super::{
    Counters, EntryKind, Folders, OutboxError, file_name, remove_file, sync_dir, write_file,
};

/// sled 0.34's log; its presence means an old outbox not yet moved.
const SLED_DATA_FILE: &str = "db";
/// What else sled keeps in the folder.
const SLED_CONFIG_FILE: &str = "conf";
const SLED_BLOB_DIR: &str = "blobs";
const SLED_SNAPSHOT_PREFIX: &str = "snap.";
/// A small page cache: the old outbox is read once, in order.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(super) enum ImportError {
    #[error("cannot read the old sled outbox in {path}")]
    Sled {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error(transparent)]
    Write(#[from] OutboxError),
}

/// What was moved, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Imported {
    pub reports: u64,
    pub quarantined: u64,
}

pub(super) fn old_outbox_present(root: &Path) -> bool {
    root.join(SLED_DATA_FILE).exists()
}

/// Moves the old outbox in `folders.root` into the new folders and merges its counters into
/// `counters` (saved); then removes it.
#[cold]
#[inline(never)]
pub(super) fn import(folders: &Folders, counters: &mut Counters) -> Result<Imported, ImportError> {
    let sled_error = |source| ImportError::Sled {
        path: folders.root.display().to_string(),
        source,
    };
    let db = sled::Config::new()
        .path(&folders.root)
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .map_err(sled_error)?;
    let mut imported = Imported::default();
    // Both trees: key = the report id, value = kind byte then the entry as the folder keeps it.
    for (tree, folder, moved) in [
        ("reports", &folders.reports, &mut imported.reports),
        ("quarantine", &folders.quarantine, &mut imported.quarantined),
    ] {
        for entry in db.open_tree(tree).map_err(sled_error)?.iter() {
            let (key, value) = entry.map_err(sled_error)?;
            let Some(id) = id_of(&key) else { continue };
            let name = file_name(id, kind_of(value.first()));
            write_file(folder, &name, &[value.get(1..).unwrap_or_default()])?;
            *moved += 1;
        }
    }
    let meta = db.open_tree("meta").map_err(sled_error)?;
    let counter = |key: &str| -> Result<u64, ImportError> {
        Ok(meta
            .get(key)
            .map_err(sled_error)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    };
    let text = |key: &str| -> Result<String, ImportError> {
        Ok(meta
            .get(key)
            .map_err(sled_error)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default())
    };
    let old = Counters {
        dropped_total: counter("dropped_total")?,
        write_failures_total: counter("write_failures_total")?,
        last_write_error: text("last_write_error")?,
        quarantined_total: counter("quarantined_total")?,
        quarantine_dropped_total: counter("quarantine_dropped_total")?,
        last_quarantine_reason: text("last_quarantine_reason")?,
    };
    let mut merged = counters.clone();
    merged.merge_max(&old);
    merged.save(&folders.root)?;
    sync_dir(&folders.reports)?;
    sync_dir(&folders.quarantine)?;
    sync_dir(&folders.root)?;
    *counters = merged;
    // Closed before its files go: sled holds a lock on them.
    drop(meta);
    drop(db);
    remove_file(&folders.root, SLED_DATA_FILE)?;
    sync_dir(&folders.root)?;
    tracing::info!(
        reports = imported.reports,
        quarantined = imported.quarantined,
        dropped_total = counters.dropped_total,
        write_failures_total = counters.write_failures_total,
        "moved the old sled outbox into the plain-file outbox"
    );
    Ok(imported)
}

/// Removes what sled leaves beside its `db` once the `db` itself is gone (best effort: these
/// files hold nothing the new outbox needs).
pub(super) fn remove_leftovers(root: &Path) {
    if old_outbox_present(root) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let result = if name == SLED_BLOB_DIR {
            std::fs::remove_dir_all(entry.path())
        } else if name == SLED_CONFIG_FILE || name.starts_with(SLED_SNAPSHOT_PREFIX) {
            std::fs::remove_file(entry.path())
        } else {
            continue;
        };
        if let Err(error) = result {
            tracing::warn!(file = %entry.path().display(), %error, "cannot remove a file of the old sled outbox");
        }
    }
}

fn id_of(key: &[u8]) -> Option<Uuid> {
    let id = Uuid::from_slice(key).ok();
    if id.is_none() {
        // The old outbox only ever wrote 16-byte keys.
        tracing::warn!(key = ?key, "old outbox entry without a report id: skipped");
    }
    id
}

fn kind_of(byte: Option<&u8>) -> EntryKind {
    match byte {
        Some(1) => EntryKind::SystemSnapshot,
        Some(2) => EntryKind::BackupResult,
        _ => EntryKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use vigie_proto::v1;

    use super::*;
    use crate::outbox::Outbox;
    use crate::outbox::tests::{backup, hostnames, snapshot};

    /// An outbox exactly as the sled outbox of earlier agents wrote it (same trees, keys and
    /// value layout, flushed), holding `queued` and `refused` (with their reasons), and these
    /// counters.
    fn write_sled_outbox(
        dir: &Path,
        queued: &[(v1::Report, EntryKind)],
        refused: &[(v1::Report, EntryKind, &str)],
        counters: &Counters,
    ) {
        let kind_byte = |kind: EntryKind| match kind {
            EntryKind::Other => 0u8,
            EntryKind::SystemSnapshot => 1,
            EntryKind::BackupResult => 2,
        };
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .expect("sled");
        let reports = db.open_tree("reports").expect("tree");
        for (report, kind) in queued {
            let id = Uuid::parse_str(&report.id).expect("id");
            let mut value = vec![kind_byte(*kind)];
            value.extend(report.encode_to_vec());
            reports.insert(id.as_bytes(), value).expect("insert");
        }
        let quarantine = db.open_tree("quarantine").expect("tree");
        for (report, kind, reason) in refused {
            let id = Uuid::parse_str(&report.id).expect("id");
            let mut value = vec![kind_byte(*kind)];
            value.extend_from_slice(&1_764_000_000i64.to_be_bytes());
            value.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            value.extend_from_slice(reason.as_bytes());
            value.extend(report.encode_to_vec());
            quarantine.insert(id.as_bytes(), value).expect("insert");
        }
        let meta = db.open_tree("meta").expect("tree");
        for (key, value) in [
            ("dropped_total", counters.dropped_total),
            ("write_failures_total", counters.write_failures_total),
            ("quarantined_total", counters.quarantined_total),
            (
                "quarantine_dropped_total",
                counters.quarantine_dropped_total,
            ),
        ] {
            meta.insert(key, &value.to_be_bytes()).expect("insert");
        }
        meta.insert("last_write_error", counters.last_write_error.as_bytes())
            .expect("insert");
        meta.insert(
            "last_quarantine_reason",
            counters.last_quarantine_reason.as_bytes(),
        )
        .expect("insert");
        db.flush().expect("flush");
    }

    #[test]
    fn an_old_sled_outbox_moves_whole_into_the_files_and_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 600 KiB: sled keeps a value this large in a file under blobs/.
        let big = "x".repeat(600 * 1024);
        let queued = [
            (backup("nightly"), EntryKind::BackupResult),
            (snapshot(&big), EntryKind::SystemSnapshot),
            (snapshot("b"), EntryKind::SystemSnapshot),
        ];
        let refused = backup("refused");
        let old_counters = Counters {
            dropped_total: 7,
            write_failures_total: 2,
            last_write_error: "No space left on device".into(),
            quarantined_total: 3,
            quarantine_dropped_total: 1,
            last_quarantine_reason: "collected_at is missing".into(),
        };
        write_sled_outbox(
            dir.path(),
            &queued,
            &[(
                refused.clone(),
                EntryKind::BackupResult,
                "collected_at is missing",
            )],
            &old_counters,
        );
        assert!(dir.path().join("blobs").read_dir().expect("blobs").count() > 0);

        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        assert_eq!(hostnames(&outbox), ["nightly", big.as_str(), "b"]);
        let health = outbox.health();
        assert_eq!(
            health,
            crate::outbox::OutboxHealth {
                queued: 3,
                dropped_total: 7,
                write_failures_total: 2,
                last_write_error: "No space left on device".into(),
                quarantined: 1,
                quarantined_total: 3,
                quarantine_dropped_total: 1,
                last_quarantine_reason: "collected_at is missing".into(),
            }
        );
        let listed = outbox.quarantined_reports().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id.to_string(), refused.id);
        assert_eq!(listed[0].kind, EntryKind::BackupResult);
        assert_eq!(listed[0].reason, "collected_at is missing");
        assert_eq!(listed[0].quarantined_at, 1_764_000_000);
        assert_eq!(listed[0].bytes, refused.encoded_len());

        // sled's files are gone; what is left is the new layout only.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["counters", "lock", "quarantine", "reports"]);
        drop(outbox);

        // Reopened: nothing imported twice, everything still there.
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(outbox.health(), health);
    }

    #[test]
    fn a_move_that_cannot_write_leaves_the_old_outbox_whole_and_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = backup("nightly");
        write_sled_outbox(
            dir.path(),
            &[(kept.clone(), EntryKind::BackupResult)],
            &[],
            &Counters::default(),
        );
        // A folder where the move writes its temporary file: the write fails, as on a disk
        // that refuses it.
        let id = Uuid::parse_str(&kept.id).expect("id");
        let obstacle = dir
            .path()
            .join("reports")
            .join(format!("{}.tmp", file_name(id, EntryKind::BackupResult)));
        std::fs::create_dir_all(&obstacle).expect("obstacle");

        {
            let outbox = Outbox::open(dir.path(), u64::MAX).expect("open goes on");
            // sled may pad its log when it opens it; what matters is that it stays, and that
            // the report comes out of it at the next start (below).
            assert!(dir.path().join("db").exists(), "the old outbox stays");
            let health = outbox.health();
            assert_eq!((health.write_failures_total, health.queued), (1, 0));
            assert!(
                health
                    .last_write_error
                    .contains("cannot write the outbox file"),
                "{}",
                health.last_write_error
            );
            // New reports still go to the new outbox, and the failure is saved with them.
            outbox.push(&snapshot("a")).expect("push");
        }

        // Next start, the disk writable again: the old report arrives, nothing counted twice.
        std::fs::remove_dir(&obstacle).expect("remove obstacle");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert!(!dir.path().join("db").exists());
        assert_eq!(hostnames(&outbox), ["nightly", "a"]);
        assert_eq!(outbox.health().write_failures_total, 1);
    }

    #[test]
    fn leftovers_of_an_interrupted_move_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_sled_outbox(dir.path(), &[], &[], &Counters::default());
        // The move removed `db` (its commit) and stopped there.
        std::fs::remove_file(dir.path().join("db")).expect("remove db");
        std::fs::create_dir_all(dir.path().join("blobs")).expect("blobs");
        std::fs::write(dir.path().join("snap.0000000000000001"), b"old").expect("snap");
        let _outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        for gone in ["conf", "blobs", "snap.0000000000000001", "db"] {
            assert!(!dir.path().join(gone).exists(), "{gone} removed");
        }
    }
}
