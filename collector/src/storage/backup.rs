//! One point in time across every tree, for the collector's own backup: the write gate and the
//! export/import of every tree (whatever trees exist, so trees added later are backed up too).
//!
//! Every write method takes [`Storage::writing`] (shared) for as long as it writes; the export
//! takes the gate exclusively, so it sees every write that completed before it started (all
//! that was acknowledged) and none half done, across all trees. Writers wait while it runs:
//! the pause is the time to copy the database to a local file, logged with `paused_ms`.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard};

use super::{Storage, StorageError};

/// Longest wait for the writes in progress to finish before an export gives up (they take
/// milliseconds; a stuck one must not hold the backup, and so every writer, forever).
const GATE_WAIT: Duration = Duration::from_secs(30);

/// A pause longer than this is logged as a warning (ingest waited that long).
const SLOW_PAUSE: Duration = Duration::from_secs(5);

/// Entries per batch when a restore fills a tree.
const IMPORT_BATCH: usize = 1_000;

thread_local! {
    /// Write turns this thread holds: write methods call each other, and a nested shared lock
    /// could deadlock behind a waiting export.
    static TURNS_HELD: Cell<u32> = const { Cell::new(0) };
}

/// The lock writers share and an export takes alone; one per database, shared by every clone.
#[derive(Debug, Default, Clone)]
pub(super) struct WriteGate(Arc<RwLock<()>>);

/// Held by a write method while it writes (see [`Storage::writing`]).
#[must_use = "the turn only protects writes done while it is held"]
pub struct WriteTurn<'a> {
    _guard: Option<RwLockReadGuard<'a, ()>>,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        TURNS_HELD.with(|held| held.set(held.get() - 1));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError<E: std::error::Error + 'static> {
    #[error("writes in progress did not finish within {} s; backup not taken", GATE_WAIT.as_secs())]
    GateTimeout,
    #[error("an export cannot run inside a write")]
    InsideWrite,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Sink(E),
}

/// Receives the export: each tree, then its entries in key order.
pub trait ExportSink {
    type Error: std::error::Error + 'static;
    fn tree(&mut self, name: &[u8]) -> Result<(), Self::Error>;
    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;
}

/// What an export copied, and how long writers waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    pub trees: u64,
    pub entries: u64,
    pub paused: Duration,
}

impl Storage {
    /// [`Storage::open`] for a command that must not share the database: a database another
    /// process holds (sled locks its files) is [`StorageError::InUse`].
    pub fn open_unshared(dir: &std::path::Path) -> Result<Self, StorageError> {
        Storage::open(dir).map_err(|error| match error {
            StorageError::Sled(sled::Error::Io(io))
                if io.to_string().contains("could not acquire lock") =>
            {
                StorageError::InUse(dir.display().to_string())
            }
            other => other,
        })
    }

    /// A turn to write: every method that writes holds one while it writes, so that an export
    /// sees all of its writes or none. Cheap (one shared lock), and nested calls on the same
    /// thread reuse the outer turn.
    pub fn writing(&self) -> WriteTurn<'_> {
        let nested = TURNS_HELD.with(|held| {
            held.set(held.get() + 1);
            held.get() > 1
        });
        WriteTurn {
            _guard: (!nested).then(|| self.gate.0.read()),
        }
    }

    /// Copies every tree into `sink` while writes are paused: one point in time across the
    /// database. Waits at most [`GATE_WAIT`] for the writes in progress.
    pub fn export_consistent<S: ExportSink>(
        &self,
        sink: &mut S,
    ) -> Result<ExportStats, ExportError<S::Error>> {
        if TURNS_HELD.with(Cell::get) > 0 {
            return Err(ExportError::InsideWrite);
        }
        let waited = Instant::now();
        let Some(_paused) = self.gate.0.try_write_for(GATE_WAIT) else {
            tracing::error!(
                waited_ms = waited.elapsed().as_millis() as u64,
                "backup: writes did not pause"
            );
            return Err(ExportError::GateTimeout);
        };
        let started = Instant::now();
        let mut stats = ExportStats {
            trees: 0,
            entries: 0,
            paused: Duration::ZERO,
        };
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            // Counts of the report log's segments: an import writes every batch inline.
            if name == "report_segments" {
                continue;
            }
            let tree = self.db.open_tree(&name).map_err(StorageError::from)?;
            sink.tree(&name).map_err(ExportError::Sink)?;
            stats.trees += 1;
            for item in tree.iter() {
                let (key, value) = item.map_err(StorageError::from)?;
                // Report bytes live in the report log: an export carries them inline.
                if name == "report_batches" {
                    if let Some(inline) = self.exported_batch(&value)? {
                        sink.entry(&key, &inline).map_err(ExportError::Sink)?;
                        stats.entries += 1;
                    }
                    continue;
                }
                sink.entry(&key, &value).map_err(ExportError::Sink)?;
                stats.entries += 1;
            }
        }
        stats.paused = started.elapsed();
        let paused_ms = stats.paused.as_millis() as u64;
        let wait_ms = (started - waited).as_millis() as u64;
        if stats.paused > SLOW_PAUSE {
            tracing::warn!(
                paused_ms,
                wait_ms,
                trees = stats.trees,
                entries = stats.entries,
                "backup: writes were paused long"
            );
        } else {
            tracing::info!(
                paused_ms,
                wait_ms,
                trees = stats.trees,
                entries = stats.entries,
                "backup: writes paused for the export"
            );
        }
        Ok(stats)
    }

    /// Fills a freshly created database from an export, tree by tree; refuses to merge into a
    /// tree that holds anything. Call [`Storage::flush_durably`] when done.
    pub fn importer(&self) -> Importer<'_> {
        Importer {
            storage: self,
            tree: None,
            batch: sled::Batch::default(),
            pending: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("tree {0:?} of the new database is not empty: a restore never merges")]
    NotEmpty(String),
    #[error("an entry comes before any tree")]
    NoTree,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sled::Error> for ImportError {
    fn from(error: sled::Error) -> Self {
        ImportError::Storage(StorageError::Sled(error))
    }
}

/// Writes exported trees into a new database, in batches (see [`Storage::importer`]).
pub struct Importer<'a> {
    storage: &'a Storage,
    tree: Option<sled::Tree>,
    batch: sled::Batch,
    pending: usize,
}

impl Importer<'_> {
    pub fn tree(&mut self, name: &[u8]) -> Result<(), ImportError> {
        self.apply()?;
        let tree = self.storage.db.open_tree(name)?;
        if !tree.is_empty() {
            return Err(ImportError::NotEmpty(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        self.tree = Some(tree);
        Ok(())
    }

    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), ImportError> {
        if self.tree.is_none() {
            return Err(ImportError::NoTree);
        }
        self.batch.insert(key, value);
        self.pending += 1;
        if self.pending >= IMPORT_BATCH {
            self.apply()?;
        }
        Ok(())
    }

    /// Writes what is still batched; the ingest forgets what it remembered of the trees
    /// written behind its back.
    pub fn finish(mut self) -> Result<(), ImportError> {
        let applied = self.apply();
        self.storage.report_locks.forget();
        applied
    }

    fn apply(&mut self) -> Result<(), ImportError> {
        if self.pending > 0
            && let Some(tree) = &self.tree
        {
            tree.apply_batch(std::mem::take(&mut self.batch))?;
        }
        self.pending = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Clinic;
    use std::sync::mpsc;
    use vigie_domain::Tier;

    type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    /// Every tree's name and entries, in export order.
    #[derive(Default)]
    struct Collect(Vec<(Vec<u8>, Entries)>);

    impl ExportSink for Collect {
        type Error = std::convert::Infallible;
        fn tree(&mut self, name: &[u8]) -> Result<(), Self::Error> {
            self.0.push((name.to_vec(), Vec::new()));
            Ok(())
        }
        fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), Self::Error> {
            if let Some((_, entries)) = self.0.last_mut() {
                entries.push((key.to_vec(), value.to_vec()));
            }
            Ok(())
        }
    }

    fn clinic(name: &str) -> Clinic {
        Clinic {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            tier: Tier::Cmp1,
            created_at: jiff::Timestamp::now(),
            rule_overrides: Default::default(),
            contact_email: None,
        }
    }

    #[test]
    fn export_then_import_gives_the_same_trees() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&tmp.path().join("a")).expect("open");
        storage.add_clinic(&clinic("Cabinet du Port")).expect("add");
        let mut first = Collect::default();
        let stats = storage.export_consistent(&mut first).expect("export");
        assert!(stats.trees >= 17 && stats.entries >= 1, "{stats:?}");

        let copy = Storage::open(&tmp.path().join("b")).expect("open");
        let mut importer = copy.importer();
        for (name, entries) in &first.0 {
            importer.tree(name).expect("tree");
            for (k, v) in entries {
                importer.entry(k, v).expect("entry");
            }
        }
        importer.finish().expect("finish");
        let mut second = Collect::default();
        copy.export_consistent(&mut second).expect("export");
        assert_eq!(first.0, second.0);
        assert_eq!(
            copy.list_clinics().expect("list")[0].name,
            "Cabinet du Port"
        );

        // A restore never merges into what exists.
        let mut again = copy.importer();
        assert!(matches!(
            again.tree(b"clinics"),
            Err(ImportError::NotEmpty(name)) if name == "clinics"
        ));
    }

    #[test]
    fn export_waits_for_a_write_in_progress_and_nested_turns_do_not_deadlock() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&tmp.path().join("db")).expect("open");
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let writer = {
            let storage = storage.clone();
            let (held_tx, release_rx) = (held.0, release.1);
            std::thread::spawn(move || {
                let _outer = storage.writing();
                let _nested = storage.writing();
                held_tx.send(()).expect("send");
                release_rx.recv().expect("recv");
                // Written while the export waits: must be in it, whole.
                storage
                    .add_clinic(&clinic("Cabinet de Cilaos"))
                    .expect("add");
            })
        };
        held.1.recv().expect("held");
        let exporter = {
            let storage = storage.clone();
            std::thread::spawn(move || {
                let mut sink = Collect::default();
                storage.export_consistent(&mut sink).expect("export");
                sink
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        release.0.send(()).expect("release");
        writer.join().expect("writer");
        let sink = exporter.join().expect("exporter");
        let clinics = sink
            .0
            .iter()
            .find(|(name, _)| name == b"clinics")
            .expect("clinics tree");
        assert_eq!(
            clinics.1.len(),
            1,
            "the write that was in progress is in the export"
        );
    }

    #[test]
    fn an_export_never_sees_half_of_a_multi_tree_write() {
        use crate::alerts::alert::{MaintenanceScope, MaintenanceWindow};
        use std::sync::atomic::{AtomicBool, Ordering};

        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&tmp.path().join("db")).expect("open");
        let writing = Arc::new(AtomicBool::new(true));
        // Each maintenance window and the "next window" counter are written in one transaction, in two
        // trees that the export reads one after the other ("counters" before "silences").
        let writer = {
            let (storage, writing) = (storage.clone(), writing.clone());
            std::thread::spawn(move || {
                while writing.load(Ordering::SeqCst) {
                    let now = jiff::Timestamp::now();
                    storage
                        .add_maintenance_window(|id| MaintenanceWindow {
                            id,
                            scope: MaintenanceScope::Clinic("c".into()),
                            starts_at: now,
                            ends_at: now,
                            reason: "maintenance".into(),
                            created_by: "test".into(),
                        })
                        .expect("add");
                }
            })
        };
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            let mut sink = Collect::default();
            storage.export_consistent(&mut sink).expect("export");
            let tree = |name: &[u8]| {
                sink.0
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, entries)| entries.clone())
                    .unwrap_or_default()
            };
            let silences = tree(b"silences").len() as u64;
            let next = tree(b"counters")
                .iter()
                .find(|(k, _)| k == b"silence")
                .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(1, u64::from_be_bytes);
            assert_eq!(
                next,
                silences + 1,
                "counter and maintenance windows from one point in time"
            );
        }
        writing.store(false, Ordering::SeqCst);
        writer.join().expect("writer");
        assert!(
            storage.list_maintenance_windows().expect("list").len() > 1,
            "the writer wrote"
        );
    }
}
