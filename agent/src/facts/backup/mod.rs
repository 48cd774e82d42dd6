//! Backup results: the spool of JSON result files, the products' own outputs (robocopy, restic,
//! borg, rsync, Windows Server Backup, Veeam) and the declared jobs, turned into
//! [`BackupFact`]s.
//!
//! Each run travels once, in its own report whose id is derived from the run itself
//! ([`stable_id`]): reading the same file or event again, after a crash or a restart, gives the
//! same id, which the outbox and the collector treat as a duplicate. What happens after the
//! report is durably queued (the spool file removed or moved aside, the ledger updated) is
//! [`BackupFact::settle`], called by the run loop only after the outbox write.
//!
//! No per-file line ever leaves the machine: a run carries counts, sizes, status, the
//! configured target and a short product message.

pub mod borg;
pub mod command;
pub mod config;
pub mod declared;
pub mod exec;
mod files;
pub mod ledger;
pub mod message;
pub mod products;
pub mod restic;
pub mod robocopy;
#[cfg(test)]
mod robustness;
pub mod rsync;
pub mod spool;
pub mod veeam;
pub mod watch;
pub mod windows_backup;
pub mod winevent;

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::{CheckFailure, Fact};
pub use config::BackupConfig;

pub use declared::{BackupJob, JobSource};
pub use products::{PRODUCTS, Product};
pub use watch::SpoolWatch;

/// Longest product message kept, in characters: an error summary, not a log.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Longest job or target name kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// A declared-jobs-only report is sent again after this long without any other backup report,
/// so the collector keeps an up-to-date list even when nothing runs.
const DECLARED_RESEND: Duration = Duration::from_secs(60 * 60);

/// How a run ended, as the product says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Success,
    Warning,
    Failed,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Success => "success",
            BackupStatus::Warning => "warning",
            BackupStatus::Failed => "failed",
        }
    }
}

/// What a run did: save the data, or verify a backup already made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    #[default]
    Backup,
    /// An integrity check (`restic check`, `borg check`, a restore test).
    Check,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Backup => "backup",
            RunKind::Check => "check",
        }
    }

    fn is_backup(&self) -> bool {
        *self == RunKind::Backup
    }
}

/// One run of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    pub job: String,
    #[serde(default, skip_serializing_if = "RunKind::is_backup")]
    pub kind: RunKind,
    /// `spool`, `robocopy`, `restic`, `borg`, `rsync`, `windows_server_backup`, `veeam`.
    pub source: String,
    pub status: BackupStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_items: Option<u64>,
    /// Product code: robocopy's exit code, an event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub message: String,
    /// Why it failed or warned, a stable key (see [`message::Cause`]); empty: not classified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// The signal that ended the wrapped command (Unix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// File paths taken out of `message`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paths_removed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl BackupRun {
    /// A run with only what every source knows; the parsers fill in the rest.
    pub fn new(job: &str, source: &str, status: BackupStatus) -> Self {
        BackupRun {
            job: job.to_owned(),
            kind: RunKind::Backup,
            source: source.to_owned(),
            status,
            started_at: None,
            finished_at: None,
            bytes: None,
            files: None,
            failed_items: None,
            code: None,
            target: String::new(),
            message: String::new(),
            cause: String::new(),
            signal: None,
            paths_removed: 0,
        }
    }

    /// When the run ended, or started when that is all we know.
    pub fn time(&self) -> Option<Timestamp> {
        self.finished_at.or(self.started_at)
    }
}

/// A job the config says should exist, with the last result known for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredJob {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days_of_week: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `None`: no result ever seen for this job.
    pub last_run: Option<BackupRun>,
    /// How often the backup must be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_every_seconds: Option<u64>,
    /// The last integrity check known, and when the last good one ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<BackupRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_good_check_at: Option<Timestamp>,
}

/// The `backup` payload: runs seen, the declared jobs, the result files that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BackupReport {
    pub runs: Vec<BackupRun>,
    pub declared_jobs: Vec<DeclaredJob>,
    pub unreadable: Vec<CheckFailure>,
}

/// A backup report and what to do once it is durably queued.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct BackupFact {
    pub report: BackupReport,
    /// Derived from the run or the file, so a re-read gives the same report id.
    #[serde(skip)]
    pub id: Option<Uuid>,
    #[serde(skip)]
    pub settle: Settle,
}

/// Bookkeeping done after the outbox write: never before, so a crash in between only means the
/// same report (same id) is queued again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settle {
    /// `STATE_DIR/backup/ledger.json`; `None` when no state directory is known.
    ledger: Option<PathBuf>,
    /// The spool file this report came from, and whether it is rejected rather than done.
    spool_file: Option<(PathBuf, spool::Disposal)>,
    /// Native runs are remembered by id so the next scan of the same log skips them.
    remember: bool,
}

impl BackupFact {
    /// Removes or moves aside the spool file and records the runs in the ledger. Failures are
    /// logged: the worst outcome is the same report queued again, which is a duplicate.
    pub fn settle(&self) {
        if let Some(path) = &self.settle.ledger {
            let result = ledger::Ledger::update(path, |ledger| {
                for run in &self.report.runs {
                    ledger.record_run(run);
                }
                if let (true, Some(id)) = (self.settle.remember, self.id) {
                    ledger.remember(id);
                }
                ledger.declared_sent(Timestamp::now(), &declared::digest(&self.report));
            });
            if let Err(error) = result {
                tracing::warn!(path = %path.display(), %error, "cannot update the backup ledger");
            }
        }
        if let Some((path, disposal)) = &self.settle.spool_file {
            spool::dispose(path, *disposal);
        }
        for run in &self.report.runs {
            tracing::info!(job = %run.job, source = %run.source, status = %run.status.as_str(), "backup result queued");
        }
    }
}

/// Where results are dropped: the configured folder, else `STATE_DIR/spool`.
pub fn spool_dir(config: &BackupConfig) -> Option<PathBuf> {
    config
        .spool_dir
        .clone()
        .or_else(|| config.state_dir.as_ref().map(|d| d.join(spool::SPOOL_DIR)))
}

/// One pass over the spool and every configured source. Never fails: a source that cannot be
/// read becomes a [`Fact::CheckFailure`] and the others go on.
pub fn collect(config: &BackupConfig) -> Vec<Fact> {
    let now = Timestamp::now();
    let ledger_path = config.state_dir.as_ref().map(|d| ledger::path(d));
    let ledger = match &ledger_path {
        Some(path) => ledger::Ledger::load(path).unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error, "backup ledger unreadable: starting afresh");
            ledger::Ledger::default()
        }),
        None => ledger::Ledger::default(),
    };
    let mut failures = Vec::new();
    let mut items: Vec<(Uuid, BackupReport, Settle)> = Vec::new();

    if let Some(dir) = spool_dir(config) {
        match spool::scan(&dir, now) {
            Ok(entries) => {
                for entry in entries {
                    let mut report = BackupReport::default();
                    match entry.outcome {
                        Ok(run) => report.runs.push(run),
                        Err(error) => report.unreadable.push(CheckFailure {
                            check: "backup.spool".to_owned(),
                            error,
                        }),
                    }
                    let settle = Settle {
                        ledger: ledger_path.clone(),
                        spool_file: Some((entry.path, entry.disposal)),
                        remember: false,
                    };
                    items.push((entry.id, report, settle));
                }
            }
            Err(error) => failures.push(failure("backup.spool", error.to_string())),
        }
    }

    for job in &config.jobs {
        let Some(read) = job.source.product().read else {
            continue;
        };
        match read(job) {
            Ok(runs) => {
                for run in runs {
                    let id = run_id(&run);
                    if ledger.has_seen(id) {
                        continue;
                    }
                    let report = BackupReport {
                        runs: vec![run],
                        ..BackupReport::default()
                    };
                    let settle = Settle {
                        ledger: ledger_path.clone(),
                        spool_file: None,
                        remember: true,
                    };
                    items.push((id, report, settle));
                }
            }
            Err(error) => {
                tracing::warn!(job = %job.name, source = job.source.name(), %error, "backup source failed");
                // A result file that changed but holds no readable result is a failed run
                // (sent once per version of the file), never silence.
                if let Some(run) = unreadable_output(job, &error) {
                    let id = run_id(&run);
                    if !ledger.has_seen(id) {
                        let report = BackupReport {
                            runs: vec![run],
                            ..BackupReport::default()
                        };
                        let settle = Settle {
                            ledger: ledger_path.clone(),
                            spool_file: None,
                            remember: true,
                        };
                        items.push((id, report, settle));
                    }
                    continue;
                }
                failures.push(failure(
                    &format!("backup.{}", job.source.name()),
                    format!("job {}: {error}", job.name),
                ));
            }
        }
    }

    // Every report carries the declared jobs with the newest result known, this pass included.
    let mut known = ledger.clone();
    for (_, report, _) in &items {
        for run in &report.runs {
            known.record_run(run);
        }
    }
    let declared_jobs = declared::declared_jobs(&config.jobs, &known);

    let mut facts: Vec<Fact> = failures;
    let nothing_new = items.is_empty();
    for (id, mut report, settle) in items {
        report.declared_jobs = declared_jobs.clone();
        facts.push(Fact::Backup(BackupFact {
            report,
            id: Some(id),
            settle,
        }));
    }
    if nothing_new && !declared_jobs.is_empty() {
        let report = BackupReport {
            declared_jobs,
            ..BackupReport::default()
        };
        if config.preview || ledger.declared_due(now, &declared::digest(&report), DECLARED_RESEND) {
            facts.push(Fact::Backup(BackupFact {
                report,
                id: None,
                settle: Settle {
                    ledger: ledger_path,
                    ..Settle::default()
                },
            }));
        }
    }
    facts
}

/// The failed run standing for a job's result file that exists but cannot be read as one
/// (empty, cut, not the product's output), dated by the file. `None` when there is no file:
/// that is a configuration problem, reported as a check failure.
fn unreadable_output(job: &BackupJob, error: &str) -> Option<BackupRun> {
    let path = job.path.as_deref()?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let modified = Timestamp::try_from(modified).ok()?;
    let mut run = BackupRun::new(&job.name, job.source.name(), BackupStatus::Failed);
    message::Cause::OutputUnreadable
        .key()
        .clone_into(&mut run.cause);
    run.finished_at = Some(modified);
    job.target.clone_into(&mut run.target);
    let (text, removed) = message::without_paths(error);
    run.message = bounded(&text, MAX_MESSAGE_CHARS);
    run.paths_removed = removed;
    Some(run)
}

fn failure(check: &str, error: String) -> Fact {
    Fact::CheckFailure(CheckFailure {
        check: check.to_owned(),
        error,
    })
}

/// The report id of a native run: the same run read twice gives the same id.
fn run_id(run: &BackupRun) -> Uuid {
    let json = serde_json::to_vec(run).unwrap_or_default();
    stable_id(run.time().unwrap_or(Timestamp::UNIX_EPOCH), &[&json])
}

/// A UUIDv7-shaped id (the collector accepts only v7) whose time is `at` and whose other bits
/// come from a SHA-256 of `parts`: deterministic, and still time-ordered in the outbox.
pub fn stable_id(at: Timestamp, parts: &[&[u8]]) -> Uuid {
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finish();
    let hash = digest.as_ref();
    let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&hash[..10]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    Uuid::from_bytes(bytes)
}

/// Cuts `text` to at most `max` characters on one line, trimmed: product messages can be long.
pub fn bounded(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_are_v7_deterministic_and_time_ordered() {
        let t1: Timestamp = "2026-11-27T18:00:00Z".parse().expect("time");
        let t2: Timestamp = "2026-11-28T18:00:00Z".parse().expect("time");
        let a = stable_id(t1, &[b"nightly", b"x"]);
        assert_eq!(a, stable_id(t1, &[b"nightly", b"x"]));
        assert_ne!(a, stable_id(t1, &[b"nightl", b"yx"]));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert!(stable_id(t2, &[b"a"]) > stable_id(t1, &[b"z"]));
    }

    fn backups(facts: &[Fact]) -> Vec<&BackupFact> {
        facts
            .iter()
            .filter_map(|f| match f {
                Fact::Backup(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn native_runs_and_spool_files_travel_once_and_feed_the_declared_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/backup/robocopy/en-failed.log"
        );
        let text = format!(
            "[backup]\n[[backup.jobs]]\nname = \"nas\"\nevery = \"24h\"\nsource = \"robocopy\"\npath = {log:?}\n\
             [[backup.jobs]]\nname = \"usb\"\ndays = [\"mon\"]\nat = \"22:30\"\n\
             [[backup.jobs]]\nname = \"veeam\"\nevery = \"24h\"\nsource = \"rsync\"\npath = \"/nonexistent/rsync.log\"\n"
        );
        let mut config = crate::config::parse_config(&text).expect("valid").backup;
        config.state_dir = Some(dir.path().to_owned());
        let spool = spool_dir(&config).expect("spool");
        std::fs::create_dir_all(&spool).expect("mkdir");
        std::fs::write(
            spool.join("usb.json"),
            br#"{"job":"usb","status":"success"}"#,
        )
        .expect("write");

        let facts = collect(&config);
        let failures: Vec<_> = facts
            .iter()
            .filter(|f| matches!(f, Fact::CheckFailure(c) if c.check == "backup.rsync"))
            .collect();
        assert_eq!(
            failures.len(),
            1,
            "a missing log is a failure fact: {facts:?}"
        );
        let found = backups(&facts);
        assert_eq!(found.len(), 2, "{found:?}");
        for fact in &found {
            let declared = &fact.report.declared_jobs;
            assert_eq!(declared.len(), 3);
            assert_eq!(
                declared[0].last_run.as_ref().map(|r| r.status),
                Some(BackupStatus::Failed)
            );
            assert_eq!(
                declared[1].last_run.as_ref().map(|r| r.status),
                Some(BackupStatus::Success)
            );
            assert!(declared[2].last_run.is_none(), "never ran");
        }
        // Read again before settling: same ids.
        let again: Vec<Option<Uuid>> = backups(&collect(&config)).iter().map(|b| b.id).collect();
        assert_eq!(again, found.iter().map(|b| b.id).collect::<Vec<_>>());

        for fact in &found {
            fact.settle();
        }
        assert!(!spool.join("usb.json").exists());
        let after = collect(&config);
        assert!(
            backups(&after).is_empty(),
            "nothing new, declared list just sent: {after:?}"
        );
        let ledger = ledger::Ledger::load(&ledger::path(dir.path())).expect("ledger");
        assert_eq!(ledger.last_runs["nas"].code, Some(9));
    }

    #[test]
    fn a_result_file_without_a_result_is_a_failed_run_sent_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("restic.json");
        // What a failed restic run leaves when only stdout was saved: nothing.
        std::fs::write(&log, b"").expect("write");
        let text = format!(
            "[[backup.jobs]]\nname = \"nas\"\nevery = \"24h\"\nsource = \"restic\"\npath = {log:?}\n"
        );
        let mut config = crate::config::parse_config(&text).expect("valid").backup;
        config.state_dir = Some(dir.path().join("state"));
        let facts = collect(&config);
        let found = backups(&facts);
        assert_eq!(found.len(), 1, "{facts:?}");
        let run = &found[0].report.runs[0];
        assert_eq!(
            (run.status, run.cause.as_str()),
            (BackupStatus::Failed, "output_unreadable")
        );
        assert!(
            !run.message.contains(&*dir.path().to_string_lossy()),
            "{}",
            run.message
        );
        found[0].settle();
        assert!(
            backups(&collect(&config))
                .iter()
                .all(|b| b.report.runs.is_empty()),
            "the same file is not reported twice"
        );
    }

    #[test]
    fn messages_are_bounded_on_one_line() {
        assert_eq!(bounded("  a\n b  ", 10), "a b");
        assert_eq!(bounded("éééééé", 4), "ééé…");
    }
}
