//! The spool: a folder where backup scripts drop one JSON result file per run, written by the
//! script itself or by `vigie-agent backup-result`.
//!
//! # Result file format
//!
//! One UTF-8 JSON object per file, named `*.json` (files starting with `.` and other extensions
//! are ignored, so write to a temp name and rename):
//!
//! ```json
//! {
//!   "job": "nightly-nas",                       // required: the job name, as declared
//!   "status": "success",                        // required: success | warning | failed
//!   "started": "2026-11-27T22:30:00+04:00",     // optional, RFC 3339 with offset
//!   "finished": "2026-11-27T23:10:12+04:00",    // optional, RFC 3339; default: file time
//!   "bytes": 52428800,                          // optional, bytes copied
//!   "files": 1234,                              // optional, files copied
//!   "failed_items": 0,                          // optional, files that could not be copied
//!   "code": 1,                                  // optional, the product's exit code
//!   "target": "NAS \\\\nas01\\sauvegardes",     // optional, where it went (no data file names)
//!   "message": "ok",                            // optional, short text, cut to 500 chars
//!   "kind": "check",                            // optional: backup (default) or check
//!   "source": "restic",                         // optional: the product `exec` wrapped
//!   "cause": "wrong_password",                  // optional: why it failed (see `message.rs`)
//!   "signal": 9,                                // optional: the signal that ended it
//!   "paths_removed": 2                          // optional: file paths taken out of message
//! }
//! ```
//!
//! Unknown fields are an error (a misspelt `finshed` is reported, not silently ignored). A file
//! that cannot be used is reported in `BackupReport.unreadable` and moved to `rejected/`; a
//! truncated file younger than [`WRITE_GRACE`] is left for the next scan, as its writer may
//! still be at work. A file is removed only after its report is durably queued.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BackupRun, BackupStatus, MAX_MESSAGE_CHARS, MAX_NAME_CHARS, RunKind, bounded, files};

pub const PRODUCT: super::Product = super::Product {
    name: "spool",
    reads_file: false,
    read: None,
    judge: None,
    parse_bytes: |bytes| {
        let _ = parse(bytes);
    },
};

/// Default spool folder inside the state directory.
pub const SPOOL_DIR: &str = "spool";
/// Where unusable result files are moved, inside the spool.
pub const REJECTED_DIR: &str = "rejected";
/// A result is a few hundred bytes; anything much larger is not one.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// A truncated file this young may still be being written.
pub const WRITE_GRACE: Duration = Duration::from_secs(5);
/// Files handled per scan, so a flooded spool cannot stall the agent.
const MAX_FILES_PER_SCAN: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not a result file: {0}")]
    Json(String),
    #[error("job is empty")]
    EmptyJob,
    #[error("{field} is not an RFC 3339 time ({value:?}): {reason}")]
    Time {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("started {started} is after finished {finished}")]
    TimesReversed { started: String, finished: String },
    /// The JSON stops early: perhaps still being written.
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("source {0:?} is not a known product")]
    UnknownSource(String),
}

/// The file as written: the documented format above.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ResultFile {
    job: String,
    /// `backup` (default) or `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<RunKind>,
    /// The product, when `exec` wrapped it (`restic`, `rsync`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    status: BackupStatus,
    #[serde(default)]
    started: Option<String>,
    #[serde(default)]
    finished: Option<String>,
    #[serde(default)]
    bytes: Option<u64>,
    #[serde(default)]
    files: Option<u64>,
    #[serde(default)]
    failed_items: Option<u64>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paths_removed: Option<u32>,
}

/// Parses one result file. Pure; never panics.
pub fn parse(bytes: &[u8]) -> Result<BackupRun, ParseError> {
    // A BOM from PowerShell's `Out-File -Encoding utf8` is common: tolerate it.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let file: ResultFile = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            ParseError::Truncated(e.to_string())
        } else {
            ParseError::Json(e.to_string())
        }
    })?;
    let job = bounded(&file.job, MAX_NAME_CHARS);
    if job.is_empty() {
        return Err(ParseError::EmptyJob);
    }
    let started = time("started", file.started.as_deref())?;
    let finished = time("finished", file.finished.as_deref())?;
    if let (Some(s), Some(f)) = (started, finished)
        && s > f
    {
        return Err(ParseError::TimesReversed {
            started: s.to_string(),
            finished: f.to_string(),
        });
    }
    let source = match file.source.as_deref().map(str::trim) {
        Some(name) if super::products::named(name).is_some() => name.to_owned(),
        Some(other) => return Err(ParseError::UnknownSource(bounded(other, 40))),
        None => "spool".to_owned(),
    };
    let mut run = BackupRun::new(&job, &source, file.status);
    run.kind = file.kind.unwrap_or_default();
    run.cause = bounded(file.cause.as_deref().unwrap_or(""), 40);
    run.signal = file.signal;
    run.paths_removed = file.paths_removed.unwrap_or(0);
    run.started_at = started;
    run.finished_at = finished;
    run.bytes = file.bytes;
    run.files = file.files;
    run.failed_items = file.failed_items;
    run.code = file.code;
    run.target = bounded(file.target.as_deref().unwrap_or(""), MAX_NAME_CHARS);
    run.message = bounded(file.message.as_deref().unwrap_or(""), MAX_MESSAGE_CHARS);
    Ok(run)
}

/// RFC 3339 with an offset (`Z` or `+04:00`): a time without one would be guessed wrong.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.trim().parse::<Timestamp>().map_err(|e| e.to_string())
}

fn time(field: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, ParseError> {
    text.map(|t| {
        parse_time(t).map_err(|reason| ParseError::Time {
            field,
            value: bounded(t, 60),
            reason,
        })
    })
    .transpose()
}

/// What to do with a spool file once its report is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    Remove,
    Reject,
}

/// One file found in the spool, read and judged.
#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// Report id, derived from the file's name and content.
    pub id: Uuid,
    /// The run, or why the file is unusable (with its name).
    pub outcome: Result<BackupRun, String>,
    pub disposal: Disposal,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read spool folder {path}: {source}")]
pub struct ScanError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Reads every result file in `dir` (creating the folder if missing), oldest name first.
pub fn scan(dir: &Path, now: Timestamp) -> Result<Vec<Entry>, ScanError> {
    let scan_error = |source| ScanError {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(scan_error)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(scan_error)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| is_result_name(p))
        .collect();
    paths.sort();
    paths.truncate(MAX_FILES_PER_SCAN);
    Ok(paths
        .into_iter()
        .filter_map(|p| read_entry(p, now))
        .collect())
}

fn is_result_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(".json")
}

/// `None` when the file should be left for a later scan (gone, or still being written).
fn read_entry(path: PathBuf, now: Timestamp) -> Option<Entry> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    let bytes = match files::read_bounded(&path, MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            // Locked by its writer (Windows) or unreadable: try again next scan.
            tracing::warn!(file = %path.display(), %error, "cannot read spool file: will retry");
            return None;
        }
    };
    let file_time = modified.unwrap_or(now);
    let Some(bytes) = bytes else {
        let error = format!("{name}: larger than {MAX_FILE_BYTES} bytes");
        let id = super::stable_id(file_time, &[name.as_bytes(), b"too large"]);
        return Some(rejected(path, id, error));
    };
    let id_of = |at: Timestamp| super::stable_id(at, &[name.as_bytes(), &bytes]);
    match parse(&bytes) {
        Ok(mut run) => {
            if run.finished_at.is_none() {
                run.finished_at = Some(file_time);
            }
            let id = id_of(run.time().unwrap_or(file_time));
            Some(Entry {
                path,
                id,
                outcome: Ok(run),
                disposal: Disposal::Remove,
            })
        }
        Err(ParseError::Truncated(_)) if young(modified, now) => None,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "spool file rejected");
            Some(rejected(path, id_of(file_time), format!("{name}: {error}")))
        }
    }
}

fn rejected(path: PathBuf, id: Uuid, error: String) -> Entry {
    Entry {
        path,
        id,
        outcome: Err(error),
        disposal: Disposal::Reject,
    }
}

fn young(modified: Option<Timestamp>, now: Timestamp) -> bool {
    modified.is_some_and(|m| {
        let age = now.duration_since(m);
        age.is_negative() || age.unsigned_abs() < WRITE_GRACE
    })
}

/// Removes a queued result file, or moves an unusable one to `rejected/`.
pub fn dispose(path: &Path, disposal: Disposal) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let result = match disposal {
        Disposal::Remove => std::fs::remove_file(path),
        Disposal::Reject => move_to_rejected(path, dir),
    };
    match result {
        Ok(()) => files::sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot clear spool file; it will be queued again as a duplicate");
        }
    }
}

fn move_to_rejected(path: &Path, dir: &Path) -> std::io::Result<()> {
    let rejected = dir.join(REJECTED_DIR);
    std::fs::create_dir_all(&rejected)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut target = rejected.join(&*name);
    // Never overwrite an earlier rejected file of the same name.
    let mut n = 1;
    while target.exists() {
        target = rejected.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    files::sync_dir(&rejected);
    Ok(())
}

/// What `vigie-agent backup-result` writes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct NewResult {
    pub job: String,
    pub status: Option<BackupStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid result: {0}")]
    Invalid(#[from] ParseError),
    #[error("cannot write to spool folder {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the result of a wrapped run (`exec`) into `dir` atomically and returns its path.
pub fn write_run(dir: &Path, run: &BackupRun) -> Result<PathBuf, WriteError> {
    let file = ResultFile {
        job: run.job.clone(),
        kind: (run.kind != RunKind::Backup).then_some(run.kind),
        source: Some(run.source.clone()),
        status: run.status,
        started: run.started_at.map(|t| t.to_string()),
        finished: run.finished_at.map(|t| t.to_string()),
        bytes: run.bytes,
        files: run.files,
        failed_items: run.failed_items,
        code: run.code,
        target: (!run.target.is_empty()).then(|| run.target.clone()),
        message: (!run.message.is_empty()).then(|| run.message.clone()),
        cause: (!run.cause.is_empty()).then(|| run.cause.clone()),
        signal: run.signal,
        paths_removed: (run.paths_removed > 0).then_some(run.paths_removed),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| ParseError::Json(e.to_string()))?;
    write_checked(dir, &run.job, &json)
}

/// Writes one result file into `dir` atomically and returns its path. The content is checked
/// with [`parse`] first, so the agent will accept what this writes.
pub fn write_result(dir: &Path, result: &NewResult) -> Result<PathBuf, WriteError> {
    let json = serde_json::to_vec_pretty(result).map_err(|e| ParseError::Json(e.to_string()))?;
    write_checked(dir, &result.job, &json)
}

fn write_checked(dir: &Path, job: &str, json: &[u8]) -> Result<PathBuf, WriteError> {
    parse(json)?;
    let io = |source| WriteError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // The job name only in a safe form: it is a file name on Windows too.
    let safe: String = job
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{safe}-{}.json", Uuid::now_v7().simple()));
    files::write_atomic(&path, json).map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = parse(input.as_bytes());
        match (got, expected) {
            (Ok(run), Ok(want)) => {
                let json = serde_json::to_string(&run).expect("json");
                assert!(json.contains(want), "{json} !~ {want}");
            }
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e} !~ {want}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_the_documented_format() {
        check(
            include_str!("../../../tests/fixtures/backup/spool/full.json"),
            Ok(
                r#""job":"nightly-nas","source":"spool","status":"warning","started_at":"2026-11-27T18:30:00Z","finished_at":"2026-11-27T19:10:12Z","bytes":52428800,"files":1234,"failed_items":2,"code":1,"target":"NAS \\\\nas01\\sauvegardes","message":"2 fichiers ignorés""#,
            ),
        );
        check(
            r#"{"job":"j","status":"failed"}"#,
            Ok(r#""status":"failed""#),
        );
        check(
            "\u{feff}{\"job\":\"j\",\"status\":\"success\"}",
            Ok("success"),
        );
    }

    #[test]
    fn refuses_what_is_not_a_result() {
        check("", Err("truncated"));
        check(r#"{"job":"j","status":"succ"#, Err("truncated"));
        check(r#"{"job":"j","status":"ok"}"#, Err("unknown variant"));
        check(r#"{"job":" ","status":"success"}"#, Err("job is empty"));
        check(r#"{"status":"success"}"#, Err("missing field `job`"));
        check(
            r#"{"job":"j","status":"success","finshed":"x"}"#,
            Err("unknown field `finshed`"),
        );
        check(
            r#"{"job":"j","status":"success","finished":"2026-11-27 22:00"}"#,
            Err("finished is not an RFC 3339 time"),
        );
        check(
            r#"{"job":"j","status":"success","started":"2026-11-28T00:00:00Z","finished":"2026-11-27T00:00:00Z"}"#,
            Err("is after finished"),
        );
        check("\u{0}\u{1}binary", Err("not a result file"));
        check(r#"[1,2]"#, Err("not a result file"));
    }

    #[test]
    fn long_texts_are_bounded() {
        let long = "x".repeat(5000);
        let text = format!(r#"{{"job":"j","status":"success","message":"{long}"}}"#);
        let run = parse(text.as_bytes()).expect("parses");
        assert_eq!(run.message.chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn written_results_are_scanned_back_with_a_stable_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let result = NewResult {
            job: "nightly nas/é".into(),
            status: Some(BackupStatus::Success),
            bytes: Some(10),
            ..NewResult::default()
        };
        let path = write_result(dir.path(), &result).expect("write");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("nightly_nas__-"), "{name}");
        let now = Timestamp::now();
        let first = scan(dir.path(), now).expect("scan");
        let again = scan(dir.path(), now).expect("scan");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].id, again[0].id);
        let run = first[0].outcome.as_ref().expect("valid");
        assert_eq!((run.job.as_str(), run.bytes), ("nightly nas/é", Some(10)));
        assert!(run.finished_at.is_some(), "file time stands in");
        dispose(&first[0].path, first[0].disposal);
        assert!(scan(dir.path(), now).expect("scan").is_empty());
    }

    #[test]
    fn status_is_required_to_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let result = NewResult {
            job: "j".into(),
            ..NewResult::default()
        };
        assert!(write_result(dir.path(), &result).is_err());
    }

    #[test]
    fn corrupt_files_are_rejected_but_young_truncated_ones_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.json"), b"{\"job\": 3}").expect("write");
        std::fs::write(dir.path().join("half.json"), b"{\"job\": \"j\",").expect("write");
        std::fs::write(dir.path().join(".tmp.json"), b"x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        let now = Timestamp::now();
        let entries = scan(dir.path(), now).expect("scan");
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].disposal, Disposal::Reject);
        let error = entries[0].outcome.as_ref().expect_err("corrupt");
        assert!(error.starts_with("bad.json: "), "{error}");
        dispose(&entries[0].path, entries[0].disposal);
        assert!(dir.path().join("rejected/bad.json").exists());

        // Later, the truncated file is judged too.
        let later = now + jiff::SignedDuration::from_secs(60);
        let entries = scan(dir.path(), later).expect("scan");
        assert_eq!(entries.len(), 1);
        assert!(
            entries[0]
                .outcome
                .as_ref()
                .is_err_and(|e| e.contains("truncated"))
        );
    }
}
