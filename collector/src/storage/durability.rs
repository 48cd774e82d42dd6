//! Durability: `fsync` of the report log, sled's flush, then the `fsync`s it leaves undone
//! (`vigie_durable`). A failed
//! flush is returned to the group-commit flusher, which treats it as fatal.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use vigie_durable::SledFiles;

use super::{Storage, StorageError};

/// What `fsync` needs beyond sled.
pub(super) struct Durability {
    pub(super) dir: PathBuf,
    files: SledFiles,
    /// Benchmark-only switch (`[bench] fsync`): `false` skips the `fsync`s. Default `true`.
    fsync: AtomicBool,
}

impl Durability {
    pub(super) fn open(dir: &Path) -> Result<Self, StorageError> {
        let files = SledFiles::open(dir)?;
        // The folder sled just created must survive a power cut too.
        if let Some(parent) = dir.parent() {
            vigie_durable::sync_dir(parent)?;
        }
        Ok(Durability {
            dir: dir.to_owned(),
            files,
            fsync: AtomicBool::new(true),
        })
    }
}

impl Storage {
    /// Makes every write done before the call durable: sled flush, then `fsync` of the log
    /// file and of new blob files. Returns the bytes sled flushed.
    pub fn flush_durably(&self) -> Result<usize, StorageError> {
        let fsync = self.durability.fsync.load(Ordering::Relaxed);
        // The report bytes first: a batch index sled writes must find its bytes on disk.
        if fsync {
            self.report_log.sync()?;
        }
        let flushed = self.db.flush()?;
        if fsync {
            self.durability.files.sync()?;
        }
        Ok(flushed)
    }

    /// Benchmark only (`[bench] fsync = false`, to measure what the `fsync`s cost): `false`
    /// makes [`Storage::flush_durably`] stop after sled's own flush, which does not survive a
    /// power cut. Never turn it off on a real collector.
    pub fn set_fsync(&self, on: bool) {
        self.durability.fsync.store(on, Ordering::Relaxed);
    }
}
