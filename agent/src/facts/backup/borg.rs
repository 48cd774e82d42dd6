//! borg's JSON: `borg create --json` (one `archive`) or `borg info --json` (`archives`). borg 1.x
//! writes archive times as local time without an offset, so the parser takes the machine's
//! time zone. A failed `borg create` writes no JSON: the script records that through the spool.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::exec::{self, Outcome};
use super::message::{self, Cause};
use super::products::Product;
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, RunKind, bounded};

pub const PRODUCT: Product = Product {
    name: "borg",
    reads_file: true,
    read: Some(read),
    judge: Some(judge),
    parse_bytes: |bytes| {
        let _ = parse(&crate::text::decode(bytes), &TimeZone::UTC);
    },
};

/// borg 1.2's exit codes (its manual, "Return codes"): 0 success; 1 warning (the operation
/// reached its normal end but something was not quite right: a source missing or unreadable,
/// and the archive was still created); 2 error; 128 + N killed by signal N. The same for
/// `borg check`, where 1 and 2 mean the repository or an archive is damaged.
pub fn judge(outcome: &Outcome) -> BackupRun {
    let code = outcome.code().unwrap_or(-1);
    let lower = outcome.stderr_lower();
    let mut run = match code {
        // `borg check` exits 1 when it found errors: for a check that is a damaged backup.
        1..=127 if outcome.kind == RunKind::Check => {
            exec::failed(error_cause(&lower, RunKind::Check))
        }
        0 => parse(&outcome.stdout, &TimeZone::system())
            .ok()
            .and_then(|mut runs| runs.pop())
            .unwrap_or_else(|| BackupRun::new("", "borg", BackupStatus::Success)),
        1 => {
            let mut run = BackupRun::new("", "borg", BackupStatus::Warning);
            let cause = if lower.contains("no such file or directory") {
                Some(Cause::SourceMissing)
            } else if lower.contains("permission denied") {
                Some(Cause::UnreadableFiles)
            } else {
                None
            };
            if let Some(cause) = cause {
                cause.key().clone_into(&mut run.cause);
            }
            let items = outcome
                .stderr
                .lines()
                .filter(|l| l.contains("[Errno"))
                .count();
            run.failed_items = Some(items as u64);
            run
        }
        128.. => {
            let mut run = exec::failed(Cause::Killed);
            run.signal = Some(code - 128);
            run
        }
        _ => exec::failed(error_cause(&lower, outcome.kind)),
    };
    run.code = Some(i64::from(code));
    run
}

fn error_cause(lower: &str, kind: RunKind) -> Cause {
    if lower.contains("passphrase") && lower.contains("incorrect") {
        return Cause::WrongPassword;
    }
    if (lower.contains("repository") && lower.contains("does not exist"))
        || lower.contains("is not a valid repository")
    {
        return Cause::RepositoryMissing;
    }
    if lower.contains("failed to create/acquire the lock") || lower.contains("lock.exclusive") {
        return if lower.contains("permission denied") || lower.contains("read-only") {
            Cause::TargetNotWritable
        } else {
            Cause::RepositoryLocked
        };
    }
    if let Some(cause) = message::common_cause(lower) {
        return cause;
    }
    if kind == RunKind::Check || lower.contains("integrity") || lower.contains("corrupt") {
        return Cause::RepositoryDamaged;
    }
    if lower.contains("permission denied") {
        return Cause::TargetNotWritable;
    }
    Cause::RepositoryDamaged
}

const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Archives taken from `info --json` at most; older ones were reported before.
const MAX_ARCHIVES: usize = 10;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not borg JSON output: {0}")]
    Json(String),
    #[error("no archive in borg's output")]
    NoArchive,
    #[error("archive time {0:?} is not a time")]
    Time(String),
}

#[derive(Debug, Deserialize)]
struct Output {
    #[serde(default)]
    archive: Option<Archive>,
    #[serde(default)]
    archives: Vec<Archive>,
}

#[derive(Debug, Deserialize)]
struct Archive {
    #[serde(default)]
    name: String,
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    stats: Stats,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stats {
    original_size: u64,
    deduplicated_size: u64,
    nfiles: u64,
}

/// Parses `create --json` or `info --json`; times without offset are read in `tz`. Pure.
pub fn parse(text: &str, tz: &TimeZone) -> Result<Vec<BackupRun>, ParseError> {
    let output: Output = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| ParseError::Json(e.to_string()))?;
    let mut archives: Vec<Archive> = output.archive.into_iter().chain(output.archives).collect();
    if archives.is_empty() {
        return Err(ParseError::NoArchive);
    }
    let skip = archives.len().saturating_sub(MAX_ARCHIVES);
    archives.drain(..skip);
    archives
        .into_iter()
        .map(|archive| {
            let mut run = BackupRun::new("", "borg", BackupStatus::Success);
            run.started_at = archive.start.as_deref().map(|t| time(t, tz)).transpose()?;
            run.finished_at = archive.end.as_deref().map(|t| time(t, tz)).transpose()?;
            run.files = Some(archive.stats.nfiles);
            run.bytes = Some(archive.stats.deduplicated_size);
            run.message = bounded(
                &format!(
                    "archive {}: {} bytes original, {} bytes new",
                    archive.name, archive.stats.original_size, archive.stats.deduplicated_size
                ),
                MAX_MESSAGE_CHARS,
            );
            Ok(run)
        })
        .collect()
}

/// `2026-11-27T22:30:00.000000` (local) or with an offset (borg 2).
fn time(text: &str, tz: &TimeZone) -> Result<Timestamp, ParseError> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    text.parse::<DateTime>()
        .ok()
        .and_then(|dt| tz.to_timestamp(dt).ok())
        .ok_or_else(|| ParseError::Time(bounded(text, 40)))
}

/// Reads the job's JSON file.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let path = job.path.as_deref().ok_or("no path configured")?;
    let (bytes, modified) = super::robocopy::read_log(path)?;
    if bytes.len() as u64 >= MAX_FILE_BYTES {
        return Err(format!("{} is larger than expected", path.display()));
    }
    let runs =
        parse(&crate::text::decode(&bytes), &TimeZone::system()).map_err(|e| e.to_string())?;
    Ok(runs
        .into_iter()
        .map(|mut run| {
            job.name.clone_into(&mut run.job);
            job.target.clone_into(&mut run.target);
            if run.time().is_none() {
                run.finished_at = Some(modified);
            }
            run
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backup/borg");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    fn reunion() -> TimeZone {
        TimeZone::fixed(jiff::tz::offset(4))
    }

    #[test]
    fn create_json_gives_one_run_in_local_time() {
        let runs = parse(&fixture("create.json"), &reunion()).expect("parses");
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run.status, BackupStatus::Success);
        assert_eq!((run.files, run.bytes), (Some(1024), Some(1_048_576)));
        assert_eq!(
            run.started_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T18:30:00Z")
        );
        assert!(
            run.message
                .starts_with("archive cab-serveur-2026-11-27T22:30:00:")
        );
    }

    #[test]
    fn info_json_gives_every_archive() {
        let runs = parse(&fixture("info.json"), &reunion()).expect("parses");
        assert_eq!(runs.len(), 2);
        assert!(runs[0].finished_at < runs[1].finished_at);
    }

    fn check(kind: RunKind, code: i32, stderr: &str, want: (BackupStatus, &str)) {
        let outcome = Outcome {
            kind,
            ended: crate::facts::backup::exec::Ended::Exited(code),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        let run = judge(&outcome);
        assert_eq!((run.status, run.cause.as_str()), want, "{code} {stderr}");
    }

    #[test]
    fn return_codes_and_error_streams_give_the_verdict() {
        use BackupStatus::*;
        use RunKind::*;
        // As borg 1.2.4 prints them.
        check(Backup, 0, "", (Success, ""));
        check(
            Backup,
            1,
            "/tmp/bk/nope: [Errno 2] No such file or directory: 'nope'",
            (Warning, "source_missing"),
        );
        check(
            Backup,
            1,
            "/tmp/bk/src/sub/Dupont Jean.pdf: open: [Errno 13] Permission denied: 'Dupont Jean.pdf'",
            (Warning, "unreadable_files"),
        );
        check(
            Backup,
            2,
            "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.",
            (Failed, "wrong_password"),
        );
        check(
            Backup,
            2,
            "Repository /tmp/bk/noborg does not exist.",
            (Failed, "repository_missing"),
        );
        check(
            Backup,
            2,
            "Failed to create/acquire the lock /r/lock.exclusive ([Errno 13] Permission denied: '/r/lock.exclusive.tmp').",
            (Failed, "target_not_writable"),
        );
        check(Backup, 143, "", (Failed, "killed"));
        check(
            Check,
            1,
            "Data integrity error: Segment entry checksum mismatch [segment 1, offset 8]\nFinished full repository check, errors found.",
            (Failed, "repository_damaged"),
        );
        check(
            Check,
            2,
            "Data integrity error: Segment entry checksum mismatch",
            (Failed, "repository_damaged"),
        );
    }

    #[test]
    fn broken_input_is_an_error() {
        let tz = reunion();
        assert!(matches!(parse("", &tz), Err(ParseError::Json(_))));
        assert_eq!(parse("{}", &tz), Err(ParseError::NoArchive));
        assert!(matches!(
            parse(r#"{"archive":{"start":"yesterday"}}"#, &tz),
            Err(ParseError::Time(_))
        ));
        let full = fixture("create.json");
        for cut in (0..full.len()).filter(|c| full.is_char_boundary(*c)) {
            let _ = parse(&full[..cut], &tz);
        }
    }
}
