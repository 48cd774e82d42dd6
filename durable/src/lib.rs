//! What a sled 0.34 flush leaves undone, done once for both binaries.
//!
//! sled's own flush ends with `sync_file_range` on Linux, which flushes neither the drive's
//! write cache nor file metadata (sled issue #1452), and it writes large values to files under
//! `blobs/` that it never syncs. [`SledFiles::sync`], called right after `Db::flush`, `fsync`s
//! the log file `<dir>/db`, every blob file not synced yet, and the blob folder when it gained
//! entries. This crate knows sled's file layout but does not link sled: the agent's outbox and
//! the collector's storage stay the only modules that name it.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// sled 0.34 keeps its log in this file of the database folder.
const LOG_FILE: &str = "db";
/// ... and values too large for a page in files of this folder.
const BLOB_DIR: &str = "blobs";

#[derive(Debug, thiserror::Error)]
#[error("cannot sync {path} to disk: {source}")]
pub struct SyncError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl SyncError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> SyncError + '_ {
        move |source| SyncError {
            path: path.to_owned(),
            source,
        }
    }
}

/// The files of one open sled database that need an `fsync` after each flush.
#[derive(Debug)]
pub struct SledFiles {
    log_path: PathBuf,
    log: File,
    blob_dir: PathBuf,
    /// Blob files already synced (sled never rewrites one in place); pruned of the files sled
    /// has since removed, so the set stays as small as the folder.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl SledFiles {
    /// Opens the log of the sled database in `dir` (after sled created it) and makes the new
    /// entries of `dir` durable.
    pub fn open(dir: &Path) -> Result<Self, SyncError> {
        let log_path = dir.join(LOG_FILE);
        // Write access because Windows' FlushFileBuffers needs it; nothing writes through it.
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(SyncError::at(&log_path))?;
        sync_dir(dir)?;
        Ok(SledFiles {
            log_path,
            log,
            blob_dir: dir.join(BLOB_DIR),
            synced_blobs: Mutex::new(HashSet::new()),
        })
    }

    /// `fsync` of the log, of the blob files not synced yet and of the blob folder. Call it
    /// after `Db::flush`; only then is what was flushed safe from a power cut.
    pub fn sync(&self) -> Result<(), SyncError> {
        self.log.sync_all().map_err(SyncError::at(&self.log_path))?;
        let Ok(entries) = std::fs::read_dir(&self.blob_dir) else {
            // No blob written yet: sled creates the folder with its first blob.
            return Ok(());
        };
        let present: HashSet<OsString> = entries.flatten().map(|e| e.file_name()).collect();
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        synced.retain(|name| present.contains(name));
        let mut any_new = false;
        for name in present {
            if synced.contains(&name) {
                continue;
            }
            let path = self.blob_dir.join(&name);
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file.sync_all().map_err(SyncError::at(&path))?,
                // Removed by sled since the listing: nothing left to make durable.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(SyncError::at(&path)(e)),
            }
            synced.insert(name);
            any_new = true;
        }
        if any_new {
            sync_dir(&self.blob_dir)?;
        }
        Ok(())
    }

    /// How many blob files are known to be synced (for tests).
    pub fn synced_blob_count(&self) -> usize {
        self.synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// `fsync` of a directory, so its new entries are durable. Windows cannot open a directory
/// for that and NTFS journals metadata: there it does nothing.
pub fn sync_dir(dir: &Path) -> Result<(), SyncError> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(SyncError::at(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_blobs_are_pruned_when_sled_removes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(LOG_FILE), b"log").expect("log");
        let files = SledFiles::open(dir.path()).expect("open");
        files.sync().expect("sync without blobs");
        let blobs = dir.path().join(BLOB_DIR);
        std::fs::create_dir(&blobs).expect("blob dir");
        for n in 0..3 {
            std::fs::write(blobs.join(n.to_string()), b"value").expect("blob");
        }
        files.sync().expect("sync");
        assert_eq!(files.synced_blob_count(), 3);
        std::fs::remove_file(blobs.join("0")).expect("remove");
        files.sync().expect("sync");
        assert_eq!(files.synced_blob_count(), 2);
    }

    #[test]
    fn a_missing_log_says_which_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = SledFiles::open(dir.path()).expect_err("no log");
        assert!(err.to_string().contains("db"), "{err}");
    }
}
