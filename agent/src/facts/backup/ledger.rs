//! `STATE_DIR/backup/ledger.json`: what the agent remembers about backups across restarts —
//! the last result per job (so every report can carry it), the ids of native runs already
//! queued (so a log read again is not sent again), and when the declared jobs were last sent.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::files;
use super::{BackupRun, RunKind};

/// Folder of the backup state inside the state directory.
pub const BACKUP_STATE_DIR: &str = "backup";
pub const LEDGER_FILE: &str = "ledger.json";
/// Ids of native runs remembered; older ones fall out. Far more than the runs a log or an event
/// query returns at once, so a run read again is always recognised.
const MAX_SEEN: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: {source}")]
    Damaged {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(BACKUP_STATE_DIR).join(LEDGER_FILE)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    /// Newest backup result per job name.
    pub last_runs: BTreeMap<String, BackupRun>,
    /// Newest integrity check per job name, whatever its result.
    pub last_checks: BTreeMap<String, BackupRun>,
    /// End of the newest successful check per job name.
    pub last_good_checks: BTreeMap<String, Timestamp>,
    /// Native run ids already queued, oldest first.
    seen: VecDeque<Uuid>,
    declared_sent_at: Option<Timestamp>,
    declared_digest: String,
}

impl Ledger {
    /// The ledger at `path`; empty when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Ledger, LedgerError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ledger::default()),
            Err(source) => return Err(io(path, source)),
        };
        serde_json::from_slice(&bytes).map_err(|source| LedgerError::Damaged {
            path: path.display().to_string(),
            source,
        })
    }

    /// Load, change, write back atomically. A damaged ledger is replaced rather than blocking
    /// every future report.
    pub fn update(path: &Path, change: impl FnOnce(&mut Ledger)) -> Result<(), LedgerError> {
        let mut ledger = Ledger::load(path).unwrap_or_default();
        change(&mut ledger);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        }
        let json = serde_json::to_vec_pretty(&ledger).map_err(|source| LedgerError::Damaged {
            path: path.display().to_string(),
            source,
        })?;
        files::write_atomic(path, &json).map_err(|source| io(path, source))
    }

    /// Keeps `run` as its job's last result (or last check) unless a newer one is known.
    pub fn record_run(&mut self, run: &BackupRun) {
        let latest = match run.kind {
            RunKind::Backup => &mut self.last_runs,
            RunKind::Check => &mut self.last_checks,
        };
        let newer = match latest.get(&run.job) {
            Some(known) => run.time() >= known.time(),
            None => true,
        };
        if newer {
            latest.insert(run.job.clone(), run.clone());
        }
        if run.kind == RunKind::Check
            && run.status == super::BackupStatus::Success
            && let Some(at) = run.time()
        {
            let good = self.last_good_checks.entry(run.job.clone()).or_insert(at);
            *good = (*good).max(at);
        }
    }

    pub fn remember(&mut self, id: Uuid) {
        if self.seen.contains(&id) {
            return;
        }
        self.seen.push_back(id);
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
    }

    pub fn has_seen(&self, id: Uuid) -> bool {
        self.seen.contains(&id)
    }

    pub fn declared_sent(&mut self, at: Timestamp, digest: &str) {
        self.declared_sent_at = Some(at);
        digest.clone_into(&mut self.declared_digest);
    }

    /// A declared-jobs-only report is due when the list changed or none went for `every`.
    pub fn declared_due(&self, now: Timestamp, digest: &str, every: Duration) -> bool {
        let Some(sent) = self.declared_sent_at else {
            return true;
        };
        let age = now.duration_since(sent);
        digest != self.declared_digest || age.is_negative() || age.unsigned_abs() >= every
    }
}

fn io(path: &Path, source: std::io::Error) -> LedgerError {
    LedgerError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::backup::BackupStatus;

    fn run(job: &str, at: &str, status: BackupStatus) -> BackupRun {
        let mut run = BackupRun::new(job, "spool", status);
        run.finished_at = Some(at.parse().expect("time"));
        run
    }

    #[test]
    fn keeps_the_newest_run_per_job_across_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path(dir.path());
        assert_eq!(Ledger::load(&path).expect("load"), Ledger::default());
        let id = Uuid::now_v7();
        Ledger::update(&path, |l| {
            l.record_run(&run("nas", "2026-11-27T18:00:00Z", BackupStatus::Failed));
            l.record_run(&run("nas", "2026-11-26T18:00:00Z", BackupStatus::Success));
            l.remember(id);
        })
        .expect("update");
        let ledger = Ledger::load(&path).expect("load");
        assert_eq!(ledger.last_runs["nas"].status, BackupStatus::Failed);
        assert!(ledger.has_seen(id));
    }

    #[test]
    fn declared_report_is_due_when_changed_or_old() {
        let now: Timestamp = "2026-11-27T18:00:00Z".parse().expect("time");
        let hour = Duration::from_secs(3600);
        let mut ledger = Ledger::default();
        assert!(ledger.declared_due(now, "a", hour));
        ledger.declared_sent(now, "a");
        assert!(!ledger.declared_due(now, "a", hour));
        assert!(ledger.declared_due(now, "b", hour));
        let later = now + jiff::SignedDuration::from_secs(3600);
        assert!(ledger.declared_due(later, "a", hour));
    }

    #[test]
    fn damaged_ledger_is_an_error_on_load_and_replaced_on_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path(dir.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"{not json").expect("write");
        assert!(matches!(
            Ledger::load(&path),
            Err(LedgerError::Damaged { .. })
        ));
        Ledger::update(&path, |l| l.remember(Uuid::nil())).expect("update");
        assert!(Ledger::load(&path).expect("load").has_seen(Uuid::nil()));
    }
}
