//! The collector's database: the only module that names `sled`. It speaks in domain records
//! and offers [`Storage::flush_durably`], which the group-commit flusher calls. One file per
//! concern, each saying which trees it holds and what it keeps true:
//!
//! - `enrollment.rs`: clinics, enrollment tokens, agents.
//! - `reports.rs`: reports as received (bytes and time), one value per batch with its id
//!   index, their count per agent, those this collector could not interpret yet, and the
//!   batches whose facts are recorded after the acknowledgement.
//! - `report_log.rs`: the reports' bytes, appended to segment files beside sled (not in its
//!   tree, where every node rewrite copied them again).
//! - `facts.rs`: what the alert rules judge, recorded as reports arrive.
//! - `alerts.rs`: alerts, their series and events, maintenance windows.
//! - `escalation.rs`: the ticket queue and its event cursor.
//! - `durability.rs`: flush + `fsync` (sled's own flush does not survive a power cut).
//! - `backup.rs`: the write gate every write method holds ([`Storage::writing`]), and the
//!   export of every tree at one point in time (the collector's own backup) and its import.
//! - `history.rs`: the change log of device states and machine facts (the monthly report's
//!   month), and the report schedule's delivery markers.
//! - `config.rs`: central configuration versions per clinic and per agent, all kept.
//! - `console.rs`: the technician console's accounts, sessions, audit log and API tokens.
//! - `retention.rs`: pruning what is older than `[retention]` says (no tree of its own).
//!
//! Records are JSON (serde) so they can gain fields; reports are protobuf. Text keys join their
//! parts with [`SEP`]; numbers in keys are big-endian so byte order is numeric order.

mod alerts;
mod backup;
mod config;
mod console;
mod durability;
mod enrollment;
mod escalation;
mod facts;
mod history;
mod report_log;
mod reports;
mod retention;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use alerts::AlertWrite;
pub use backup::{ExportError, ExportSink, ExportStats, ImportError, Importer, WriteTurn};
pub use console::{
    AUDIT_KEPT, ApiTokenRecord, AuditEntry, ConsoleRole, SessionRecord, TechnicianRecord,
};
pub use enrollment::{EnrollError, TokenRejection};
pub use facts::{FactKind, RUNS_KEPT};
pub use history::{DeviceTransition, HISTORY_KEPT, HistoryTopic};
pub use reports::{
    BatchInput, BatchStored, DeferredFacts, EncodedReport, PendingFacts, StoreOutcome,
    StoredReport, UninterpretedReport,
};
pub use retention::{Cutoffs, Pruned};

use backup::WriteGate;
use durability::Durability;
use reports::AgentLocks;

/// Separates the parts of a text key (the ASCII unit separator never occurs in ids or names
/// a technician types).
const SEP: char = '\u{1f}';

/// sled page cache of the collector database: sled's default is 1 GiB; bounded so that 10,000
/// connected agents and a full cache stay well under 1 GiB of RSS.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// sled segment (and I/O buffer) size of a new database: 8 MiB instead of sled's 512 KiB, so
/// that a B-tree node holding a few report batches (a few hundred KiB) stays in the log: sled
/// writes anything above a quarter of a segment as a separate blob file, each of which the
/// flush must `fsync`. sled refuses to reopen a database with another size, so an existing
/// database keeps the size written in its `conf` file.
const NEW_SEGMENT_BYTES: usize = 8 * 1024 * 1024;

/// The segment size to open `dir` with: the one it was created with, or [`NEW_SEGMENT_BYTES`].
fn segment_bytes(dir: &Path) -> usize {
    std::fs::read(dir.join("conf"))
        .ok()
        .and_then(|conf| {
            String::from_utf8_lossy(&conf).lines().find_map(|line| {
                line.strip_prefix("segment_size: ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(NEW_SEGMENT_BYTES)
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Sync(#[from] vigie_durable::SyncError),
    #[error("damaged {what} record: {source}")]
    Corrupt {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("damaged counter {name:?}: {len} bytes where 8 are expected")]
    CorruptCounter { name: String, len: usize },
    #[error("cannot encode a {what} record: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("damaged stored reports: {0}")]
    CorruptBatch(&'static str),
    #[error("agent id {0:?} is not a UUID")]
    AgentId(String),
    #[error("the database {0} is open in another process (is `vigie-collector serve` running?)")]
    InUse(String),
}

impl StorageError {
    /// The disk failed under sled (full, I/O error): sled keeps such an error and fails every
    /// later write, so the database must be reopened.
    pub fn is_io_failure(&self) -> bool {
        matches!(
            self,
            StorageError::Sled(sled::Error::Io(_)) | StorageError::Sync(_)
        )
    }
}

/// Handle on the open database; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
    clinics: sled::Tree,
    tokens: sled::Tree,
    agents: sled::Tree,
    /// Reports in the format before issue 16 (one key each): read, never written.
    reports: sled::Tree,
    report_batches: sled::Tree,
    /// Segment of the report log → how many batch values point into it (`report_log.rs`).
    report_segments: sled::Tree,
    report_log: Arc<report_log::ReportLog>,
    facts_pending: sled::Tree,
    report_locks: Arc<AgentLocks>,
    report_counts: sled::Tree,
    uninterpreted: sled::Tree,
    backup_runs: sled::Tree,
    declared_jobs: sled::Tree,
    latest_facts: sled::Tree,
    lan_devices: sled::Tree,
    alerts: sled::Tree,
    alert_series: sled::Tree,
    alert_events: sled::Tree,
    /// Maintenance windows, in the tree first named "silences".
    maintenance_windows: sled::Tree,
    counters: sled::Tree,
    escalations: sled::Tree,
    escalation_meta: sled::Tree,
    escalation_todo: sled::Tree,
    config_versions: sled::Tree,
    /// Technician console: accounts, sessions, audit log, API tokens (`console.rs`).
    console: console::ConsoleTrees,
    durability: Arc<Durability>,
    gate: WriteGate,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.durability.dir)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .segment_size(segment_bytes(dir))
            .open()?;
        let durability = Durability::open(dir)?;
        let report_log = report_log::ReportLog::open(dir)?;
        let report_segments = db.open_tree("report_segments")?;
        // Segments no batch points to: left by a crash between a retention pass and its
        // deletion, or bytes whose transaction never committed.
        let kept = reports::counted_segments(&report_segments)?;
        report_log.delete_except(&kept)?;
        Ok(Storage {
            clinics: db.open_tree("clinics")?,
            tokens: db.open_tree("tokens")?,
            agents: db.open_tree("agents")?,
            reports: db.open_tree("reports")?,
            report_batches: db.open_tree("report_batches")?,
            report_segments,
            report_log: Arc::new(report_log),
            facts_pending: db.open_tree("facts_pending")?,
            report_locks: Arc::default(),
            report_counts: db.open_tree("report_counts")?,
            uninterpreted: db.open_tree("uninterpreted")?,
            backup_runs: db.open_tree("backup_runs")?,
            declared_jobs: db.open_tree("declared_jobs")?,
            latest_facts: db.open_tree("latest_facts")?,
            lan_devices: db.open_tree("lan_devices")?,
            alerts: db.open_tree("alerts")?,
            alert_series: db.open_tree("alert_series")?,
            alert_events: db.open_tree("alert_events")?,
            maintenance_windows: db.open_tree("silences")?,
            counters: db.open_tree("counters")?,
            escalations: db.open_tree("escalations")?,
            escalation_meta: db.open_tree("escalation_meta")?,
            escalation_todo: db.open_tree("escalation_todo")?,
            config_versions: db.open_tree("config_versions")?,
            console: console::ConsoleTrees::open(&db)?,
            db,
            durability: Arc::new(durability),
            gate: WriteGate::default(),
        })
    }
}

/// A stored counter: absent is `None`; anything but 8 bytes is damage, reported rather than
/// read as 0 (numbering would restart and overwrite what exists).
fn read_counter(name: &str, bytes: Option<&[u8]>) -> Result<Option<u64>, StorageError> {
    bytes
        .map(|b| {
            <[u8; 8]>::try_from(b).map(u64::from_be_bytes).map_err(|_| {
                StorageError::CorruptCounter {
                    name: name.to_owned(),
                    len: b.len(),
                }
            })
        })
        .transpose()
}

fn encode(what: &'static str, value: &impl Serialize) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|source| StorageError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|source| StorageError::Corrupt { what, source })
}
