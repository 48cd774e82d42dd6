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
        if !self.durability.fsync.load(Ordering::Relaxed) {
            return Ok(self.db.flush()?);
        }
        // The report log's sync and sled's run side by side: the acknowledgement waits for
        // both, and their order does not matter, because sled may write an index before its
        // bytes anyway (on its own, between flushes), which the CRCs catch.
        std::thread::scope(|scope| {
            let log = scope.spawn(|| self.report_log.sync());
            let sled = self
                .db
                .flush()
                .map_err(StorageError::from)
                .and_then(|flushed| Ok((flushed, self.durability.files.sync()?)));
            let log = log.join().unwrap_or_else(|_| {
                Err(vigie_durable::SyncError {
                    path: self.durability.dir.clone(),
                    source: std::io::Error::other("the report log sync panicked"),
                })
            });
            let (flushed, ()) = sled?;
            log?;
            Ok(flushed)
        })
    }

    /// Benchmark only (`[bench] fsync = false`, to measure what the `fsync`s cost): `false`
    /// makes [`Storage::flush_durably`] stop after sled's own flush, which does not survive a
    /// power cut. Never turn it off on a real collector.
    pub fn set_fsync(&self, on: bool) {
        self.durability.fsync.store(on, Ordering::Relaxed);
    }
}
