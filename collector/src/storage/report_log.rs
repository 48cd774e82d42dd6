//! The report log: the bytes of stored reports, outside sled's B-tree (issue 16).
//!
//! sled keeps values inside its tree nodes and rewrites a whole node (up to 16 values) every
//! tenth change to it, then again when it cleans a segment: with report batches of 20 KB as
//! values, the collector wrote about 36 bytes to disk per byte received. Here each batch's
//! report bytes are appended once to a segment file, `report-log/NNNNNNNN.seg` in the database
//! folder, and sled keeps only the batch's index with its place (segment, offset) and a CRC-32
//! per report.
//!
//! Invariants:
//! - A segment is only ever appended to, and only by this process (sled's lock on the folder
//!   is held). Each open starts a new segment, so a segment torn by a crash is never extended.
//! - [`ReportLog::sync`] (the group-commit flush runs it beside sled's flush) makes every
//!   append that returned before it durable, new segment files and their folder entry
//!   included. So every batch acknowledged has its bytes on disk. A batch whose index reached
//!   the disk without its bytes (sled also writes on its own between flushes) was never
//!   acknowledged: its CRCs fail, and the agent's resend replaces those reports.
//! - A segment no batch refers to any more (`report_segments` counts them) is deleted by
//!   retention; at open, segment files that no count keeps are deleted.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use vigie_durable::SyncError;

/// Folder of the segment files, inside the sled database folder.
pub(super) const DIR: &str = "report-log";
const SUFFIX: &str = ".seg";
/// A segment is closed once it passes this size; retention deletes whole segments.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Where a batch's bytes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    pub segment: u32,
    pub offset: u64,
}

#[derive(Debug)]
pub(super) struct ReportLog {
    dir: PathBuf,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    segment: u32,
    file: Arc<File>,
    len: u64,
    /// Segments closed since the last sync, and whether the folder gained an entry.
    closed_unsynced: Vec<Arc<File>>,
    dir_unsynced: bool,
    /// Read handles of segments.
    readers: HashMap<u32, Arc<File>>,
}

fn name_of(segment: u32) -> String {
    format!("{segment:08}{SUFFIX}")
}

fn segment_of(name: &str) -> Option<u32> {
    name.strip_suffix(SUFFIX)?.parse().ok()
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SyncError + '_ {
    move |source| SyncError {
        path: path.to_owned(),
        source,
    }
}

impl ReportLog {
    /// Opens the log in `db_dir`; appends go to a new segment after the newest one.
    pub(super) fn open(db_dir: &Path) -> Result<Self, SyncError> {
        let dir = db_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let newest = Self::segments_in(&dir)?.into_iter().max().unwrap_or(0);
        let segment = newest + 1;
        let file = Self::create(&dir, segment)?;
        vigie_durable::sync_dir(db_dir)?;
        vigie_durable::sync_dir(&dir)?;
        Ok(ReportLog {
            dir,
            state: Mutex::new(LogState {
                segment,
                file: Arc::new(file),
                len: 0,
                closed_unsynced: Vec::new(),
                dir_unsynced: false,
                readers: HashMap::new(),
            }),
        })
    }

    fn create(dir: &Path, segment: u32) -> Result<File, SyncError> {
        let path = dir.join(name_of(segment));
        OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(&path))
    }

    fn segments_in(dir: &Path) -> Result<Vec<u32>, SyncError> {
        let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(segment_of))
            .collect())
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The segment appends go to now (never deleted while open).
    pub(super) fn current_segment(&self) -> u32 {
        self.state().segment
    }

    /// Appends `parts` one after the other; returns where the first byte went. Not durable
    /// until the next [`ReportLog::sync`].
    pub(super) fn append(&self, parts: &[&[u8]]) -> Result<Place, SyncError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut buffer = Vec::with_capacity(total);
        for part in parts {
            buffer.extend_from_slice(part);
        }
        let mut state = self.state();
        if state.len > 0 && state.len + total as u64 > SEGMENT_BYTES {
            let next = state.segment + 1;
            let file = Arc::new(Self::create(&self.dir, next)?);
            let closed = std::mem::replace(&mut state.file, file);
            state.closed_unsynced.push(closed);
            state.dir_unsynced = true;
            state.segment = next;
            state.len = 0;
        }
        let place = Place {
            segment: state.segment,
            offset: state.len,
        };
        let path = self.dir.join(name_of(place.segment));
        if let Err(error) = (&*state.file).write_all(&buffer) {
            // A short write leaves bytes no index points to; appending after them is safe,
            // but the length we count must be the file's.
            state.len = state.file.metadata().map_or(state.len, |m| m.len());
            return Err(io_error(&path)(error));
        }
        state.len += total as u64;
        Ok(place)
    }

    /// `fsync` of every segment written since the last sync and of the folder when it gained
    /// a segment: every append that returned before the call is then durable.
    pub(super) fn sync(&self) -> Result<(), SyncError> {
        let (segment, file, closed, dir_unsynced) = {
            let mut state = self.state();
            let dir_unsynced = std::mem::take(&mut state.dir_unsynced);
            (
                state.segment,
                state.file.clone(),
                std::mem::take(&mut state.closed_unsynced),
                dir_unsynced,
            )
        };
        let result = (|| {
            for closed in &closed {
                closed.sync_data().map_err(io_error(&self.dir))?;
            }
            if dir_unsynced {
                vigie_durable::sync_dir(&self.dir)?;
            }
            // fdatasync: the data and the file's length, not its times.
            file.sync_data()
                .map_err(io_error(&self.dir.join(name_of(segment))))
        })();
        if result.is_err() {
            // Put them back: a later sync must not report success without them. (A failed
            // fsync is fatal for the collector anyway; this keeps the log honest meanwhile.)
            let mut state = self.state();
            state.closed_unsynced.extend(closed);
            state.dir_unsynced |= dir_unsynced;
        }
        result
    }

    /// `len` bytes at `place`.
    pub(super) fn read(&self, place: Place, len: usize) -> io::Result<Vec<u8>> {
        let file = {
            let mut state = self.state();
            match state.readers.get(&place.segment) {
                Some(file) => file.clone(),
                None => {
                    let file = Arc::new(File::open(self.dir.join(name_of(place.segment)))?);
                    state.readers.insert(place.segment, file.clone());
                    file
                }
            }
        };
        let mut bytes = vec![0; len];
        read_exact_at(&file, &mut bytes, place.offset)?;
        Ok(bytes)
    }

    /// Deletes the segment files not in `keep` (and never the current one); returns how many
    /// went and their bytes.
    pub(super) fn delete_except(
        &self,
        keep: &std::collections::HashSet<u32>,
    ) -> Result<(u64, u64), SyncError> {
        let current = self.current_segment();
        let mut deleted = (0, 0);
        for segment in Self::segments_in(&self.dir)? {
            if segment == current || keep.contains(&segment) {
                continue;
            }
            let path = self.dir.join(name_of(segment));
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    deleted.0 += 1;
                    deleted.1 += bytes;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
            self.state().readers.remove(&segment);
        }
        if deleted.0 > 0 {
            vigie_durable::sync_dir(&self.dir)?;
        }
        Ok(deleted)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_read_back_and_a_reopen_starts_a_new_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ReportLog::open(dir.path()).expect("open");
        let a = log.append(&[b"abc", b"de"]).expect("append");
        let b = log.append(&[b"fgh"]).expect("append");
        assert_eq!(
            a,
            Place {
                segment: 1,
                offset: 0
            }
        );
        assert_eq!(
            b,
            Place {
                segment: 1,
                offset: 5
            }
        );
        log.sync().expect("sync");
        assert_eq!(log.read(a, 5).expect("read"), b"abcde");
        assert_eq!(log.read(b, 3).expect("read"), b"fgh");
        drop(log);
        let log = ReportLog::open(dir.path()).expect("reopen");
        assert_eq!(log.current_segment(), 2);
        assert_eq!(log.read(b, 3).expect("read after reopen"), b"fgh");
        assert!(
            log.read(
                Place {
                    segment: 1,
                    offset: 7
                },
                3
            )
            .is_err(),
            "past the end"
        );
    }

    #[test]
    fn delete_except_keeps_what_is_referenced_and_the_current_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..3 {
            let log = ReportLog::open(dir.path()).expect("open");
            log.append(&[b"x"]).expect("append");
            log.sync().expect("sync");
        }
        let log = ReportLog::open(dir.path()).expect("open");
        let keep = std::collections::HashSet::from([2]);
        assert_eq!(log.delete_except(&keep).expect("delete"), (2, 2));
        let mut left = ReportLog::segments_in(&dir.path().join(DIR)).expect("list");
        left.sort();
        assert_eq!(left, vec![2, 4]);
    }
}
