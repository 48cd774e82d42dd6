//! restic's JSON: the messages of `restic backup --json` (the script tees them to a file; the
//! `summary` message, `error` messages, restic 0.17's `exit_error`), or the array of
//! `restic snapshots --json`. Snapshot paths and error items are file names: never kept.

use jiff::Timestamp;
use serde::Deserialize;

use super::exec::{self, Outcome};
use super::message::{self, Cause};
use super::products::Product;
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, RunKind, bounded};

pub const PRODUCT: Product = Product {
    name: "restic",
    reads_file: true,
    read: Some(read),
    judge: Some(judge),
    parse_bytes: |bytes| {
        let text = crate::text::decode(bytes);
        let _ = parse(&text);
        let _ = parse_text_summary(&text);
    },
};

/// The newest snapshots taken from `snapshots --json`; older ones were reported before.
const MAX_SNAPSHOTS: usize = 10;
/// Larger outputs are not what a backup script writes.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not restic JSON output: {0}")]
    Json(String),
    #[error("no summary, error or snapshot in restic's output")]
    Empty,
}

/// One line of `backup --json`, by `message_type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
enum Message {
    Summary(BackupSummary),
    Error {},
    ExitError {
        #[serde(default)]
        code: Option<i64>,
        #[serde(default)]
        message: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BackupSummary {
    files_new: u64,
    files_changed: u64,
    data_added: u64,
    total_files_processed: u64,
    total_bytes_processed: u64,
    snapshot_id: String,
    // restic 0.17 and later.
    backup_start: Option<Timestamp>,
    backup_end: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
struct Snapshot {
    time: Timestamp,
    #[serde(default)]
    short_id: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    summary: Option<BackupSummary>,
}

/// Parses either output; runs come without job name or target (see [`read`]). Pure.
pub fn parse(text: &str) -> Result<Vec<BackupRun>, ParseError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.starts_with('[') {
        parse_snapshots(text)
    } else {
        parse_backup(text).map(|run| vec![run])
    }
}

fn parse_backup(text: &str) -> Result<BackupRun, ParseError> {
    let mut summary = None;
    let mut errors = 0u64;
    let mut exit = None;
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        match serde_json::from_str::<Message>(line) {
            Ok(Message::Summary(s)) => summary = Some(s),
            Ok(Message::Error {}) => errors += 1,
            Ok(Message::ExitError { code, message }) => exit = Some((code, message)),
            Ok(Message::Other) => {}
            // A status line cut by a kill: skip it, judge on what came through.
            Err(e) if e.is_eof() => {}
            Err(e) => return Err(ParseError::Json(e.to_string())),
        }
    }
    match (summary, exit) {
        (_, Some((code, message))) => {
            let mut run = BackupRun::new("", "restic", BackupStatus::Failed);
            run.code = code;
            run.failed_items = Some(errors);
            run.message = bounded(&message, MAX_MESSAGE_CHARS);
            Ok(run)
        }
        (Some(s), None) => {
            // restic exits 3 when some files could not be read: a warning.
            let status = if errors > 0 {
                BackupStatus::Warning
            } else {
                BackupStatus::Success
            };
            let mut run = summary_run(&s, &s.snapshot_id, status);
            run.failed_items = Some(errors);
            Ok(run)
        }
        (None, None) if errors > 0 => {
            let mut run = BackupRun::new("", "restic", BackupStatus::Failed);
            run.failed_items = Some(errors);
            run.message = format!("{errors} errors and no summary");
            Ok(run)
        }
        (None, None) => Err(ParseError::Empty),
    }
}

fn summary_run(s: &BackupSummary, snapshot_id: &str, status: BackupStatus) -> BackupRun {
    let mut run = BackupRun::new("", "restic", status);
    run.started_at = s.backup_start;
    run.finished_at = s.backup_end;
    run.files = Some(s.files_new + s.files_changed);
    run.bytes = Some(s.data_added);
    let short: String = snapshot_id.chars().take(8).collect();
    run.message = bounded(
        &format!(
            "snapshot {short}: {} files, {} bytes processed",
            s.total_files_processed, s.total_bytes_processed
        ),
        MAX_MESSAGE_CHARS,
    );
    run
}

fn parse_snapshots(text: &str) -> Result<Vec<BackupRun>, ParseError> {
    let mut snapshots: Vec<Snapshot> =
        serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    snapshots.sort_by_key(|s| s.time);
    let skip = snapshots.len().saturating_sub(MAX_SNAPSHOTS);
    Ok(snapshots
        .into_iter()
        .skip(skip)
        .map(|snap| {
            let id = if snap.short_id.is_empty() {
                &snap.id
            } else {
                &snap.short_id
            };
            let mut run = match &snap.summary {
                Some(s) => summary_run(s, id, BackupStatus::Success),
                None => {
                    let mut run = BackupRun::new("", "restic", BackupStatus::Success);
                    run.message = format!("snapshot {}", id.chars().take(8).collect::<String>());
                    run
                }
            };
            run.finished_at = run.finished_at.or(Some(snap.time));
            run
        })
        .collect())
}

/// Reads the job's JSON file (backup messages or snapshot list).
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let path = job.path.as_deref().ok_or("no path configured")?;
    let (bytes, modified) = super::robocopy::read_log(path)?;
    if bytes.len() as u64 >= MAX_FILE_BYTES {
        return Err(format!("{} is larger than expected", path.display()));
    }
    let runs = parse(&crate::text::decode(&bytes)).map_err(|e| e.to_string())?;
    Ok(runs
        .into_iter()
        .map(|mut run| {
            job.name.clone_into(&mut run.job);
            job.target.clone_into(&mut run.target);
            // Without times in the output, the file's time is the end of the run.
            if run.time().is_none() {
                run.finished_at = Some(modified);
            }
            run
        })
        .collect())
}

/// restic's exit codes (its manual, "Exit status"): 0 snapshot saved; 3 snapshot saved but
/// some source files could not be read; 1 and every other code: no snapshot. `restic
/// check`: 0 no errors, anything else the repository (or access to it) is damaged.
pub fn judge(outcome: &Outcome) -> BackupRun {
    let code = outcome.code().unwrap_or(-1);
    let lower = outcome.stderr_lower();
    // `--json` summary lines may repeat or not come last (restic issue #2389): the parser
    // keeps the last summary whatever follows it.
    let summary = parse_backup(&outcome.stdout)
        .ok()
        .filter(|r| r.status != BackupStatus::Failed)
        .or_else(|| parse_text_summary(&outcome.stdout));
    let mut run = match (outcome.kind, code) {
        (_, 0) => summary.unwrap_or_else(|| BackupRun::new("", "restic", BackupStatus::Success)),
        (RunKind::Backup, 3) => {
            let mut run =
                summary.unwrap_or_else(|| BackupRun::new("", "restic", BackupStatus::Warning));
            run.status = BackupStatus::Warning;
            Cause::UnreadableFiles.key().clone_into(&mut run.cause);
            run.failed_items = Some(unreadable_count(outcome).max(1));
            run
        }
        (kind, _) => exec::failed(cause(&lower, kind)),
    };
    run.code = Some(i64::from(code));
    run
}

fn cause(lower: &str, kind: RunKind) -> Cause {
    if lower.contains("wrong password") || lower.contains("no key found") {
        return Cause::WrongPassword;
    }
    if lower.contains("is there a repository at the following location")
        || lower.contains("repository does not exist")
        || lower.contains("unable to open config file")
    {
        return Cause::RepositoryMissing;
    }
    if lower.contains("unable to create lock") || lower.contains("already locked") {
        return if lower.contains("permission denied") || lower.contains("read-only") {
            Cause::TargetNotWritable
        } else {
            Cause::RepositoryLocked
        };
    }
    if let Some(cause) = message::common_cause(lower) {
        return cause;
    }
    if lower.contains("all target directories/files do not exist")
        || lower.contains("does not exist, skipping")
    {
        return Cause::SourceMissing;
    }
    if kind == RunKind::Check {
        return Cause::RepositoryDamaged;
    }
    if lower.contains("permission denied") {
        return Cause::TargetNotWritable;
    }
    Cause::RepositoryDamaged
}

/// Source files restic could not read: `error: ...` lines, or `--json` error messages.
fn unreadable_count(outcome: &Outcome) -> u64 {
    let is_error = |line: &&str| {
        let line = line.trim();
        line.starts_with("error:")
            || (line.starts_with('{') && line.contains("\"message_type\":\"error\""))
    };
    let n = outcome.stderr.lines().filter(is_error).count()
        + outcome.stdout.lines().filter(is_error).count();
    n as u64
}

/// The summary restic prints without `--json`: `Files: 2 new, 0 changed, ...`, `Added to the
/// repository: 1.2 KiB ...`, `processed 2 files, 13 B in 0:00`, `snapshot 4a8d04f4 saved`.
fn parse_text_summary(text: &str) -> Option<BackupRun> {
    let mut files = None;
    let mut bytes = None;
    let mut processed = None;
    let mut snapshot = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Files:") {
            let counts: Vec<u64> = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().next()?.parse().ok())
                .collect();
            files = Some(counts.iter().take(2).sum());
        } else if let Some(rest) = line.strip_prefix("Added to the repository:") {
            let mut words = rest.split_whitespace();
            bytes = words
                .next()
                .zip(words.next())
                .and_then(|(n, unit)| size(n, unit));
        } else if let Some(rest) = line.strip_prefix("processed ") {
            processed = Some(bounded(rest, 80));
        } else if let Some(rest) = line.strip_prefix("snapshot ") {
            snapshot = rest.strip_suffix(" saved").map(|id| bounded(id, 16));
        }
    }
    let snapshot = snapshot?;
    let mut run = BackupRun::new("", "restic", BackupStatus::Success);
    run.files = files;
    run.bytes = bytes;
    run.message = match processed {
        Some(p) => format!("snapshot {snapshot}: processed {p}"),
        None => format!("snapshot {snapshot}"),
    };
    Some(run)
}

/// `1.234 KiB` as restic prints sizes.
fn size(number: &str, unit: &str) -> Option<u64> {
    let factor: f64 = match unit.trim_end_matches(',') {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::backup::exec::Ended;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backup/restic");

    fn fixture(name: &str) -> String {
        crate::text::decode(&std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture"))
    }

    #[test]
    fn backup_summary_gives_one_run() {
        let runs = parse(&fixture("backup-success.jsonl")).expect("parses");
        let run = &runs[0];
        assert_eq!(run.status, BackupStatus::Success);
        assert_eq!((run.files, run.bytes), (Some(7), Some(1_234_567)));
        assert_eq!(
            run.message,
            "snapshot 9a8b7c6d: 1024 files, 52428800 bytes processed"
        );
        assert_eq!(
            run.finished_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T18:40:12.623Z")
        );

        let run = &parse(&fixture("backup-warning.jsonl")).expect("parses")[0];
        assert_eq!(
            (run.status, run.failed_items),
            (BackupStatus::Warning, Some(2))
        );
        assert!(!run.message.contains("Patients"));

        let run = &parse(&fixture("backup-failed.jsonl")).expect("parses")[0];
        assert_eq!((run.status, run.code), (BackupStatus::Failed, Some(1)));
        assert!(
            run.message.contains("repository does not exist"),
            "{}",
            run.message
        );
    }

    #[test]
    fn snapshots_give_the_newest_runs() {
        let runs = parse(&fixture("snapshots.json")).expect("parses");
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[1].message,
            "snapshot 4e5f6a7b: 1024 files, 52428800 bytes processed"
        );
        assert_eq!(runs[0].message, "snapshot 1a2b3c4d");
        assert!(runs[0].finished_at < runs[1].finished_at);
    }

    /// (kind, exit code, stdout, stderr) → (status, cause, failed items). Outputs as restic
    /// 0.14 prints them.
    fn check(
        kind: RunKind,
        code: i32,
        stdout: &str,
        stderr: &str,
        want: (BackupStatus, &str, Option<u64>),
    ) {
        let outcome = Outcome {
            kind,
            ended: Ended::Exited(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        let run = judge(&outcome);
        assert_eq!(
            (run.status, run.cause.as_str(), run.failed_items),
            want,
            "{stderr}"
        );
        assert_eq!(run.code, Some(i64::from(code)));
    }

    #[test]
    fn exit_codes_and_error_streams_give_the_verdict() {
        use BackupStatus::*;
        use RunKind::*;
        let text = "Files:           2 new,     1 changed,     0 unmodified\n\
                    Added to the repository: 1.500 KiB (900 B stored)\n\
                    processed 3 files, 13 B in 0:00\nsnapshot 4a8d04f4 saved\n";
        check(Backup, 0, text, "", (Success, "", None));
        let run = parse_text_summary(text).expect("summary");
        assert_eq!((run.files, run.bytes), (Some(3), Some(1536)));
        assert_eq!(
            run.message,
            "snapshot 4a8d04f4: processed 3 files, 13 B in 0:00"
        );
        check(
            Backup,
            3,
            text,
            "error: open /tmp/bk/src/sub/Dupont Jean.pdf: permission denied\nWarning: at least one source file could not be read\n",
            (Warning, "unreadable_files", Some(1)),
        );
        check(
            Backup,
            3,
            "{\"message_type\":\"summary\",\"files_new\":1,\"snapshot_id\":\"afccbcf0\"}\n",
            "{\"message_type\":\"error\",\"error\":{\"Op\":\"open\"},\"item\":\"/x\"}\n{\"message_type\":\"error\",\"item\":\"/y\"}\n",
            (Warning, "unreadable_files", Some(2)),
        );
        check(
            Backup,
            1,
            "",
            "Fatal: wrong password or no key found\n",
            (Failed, "wrong_password", None),
        );
        check(
            Backup,
            1,
            "",
            "Fatal: unable to open config file: stat /r/config: no such file or directory\nIs there a repository at the following location?\n/r\n",
            (Failed, "repository_missing", None),
        );
        check(
            Backup,
            1,
            "",
            "/tmp/bk/nope does not exist, skipping\nFatal: all target directories/files do not exist\n",
            (Failed, "source_missing", None),
        );
        check(
            Backup,
            1,
            "",
            "open r/locks/21c7-tmp: permission denied\ngithub.com/restic/restic/internal/backend/local.(*Local).Save\nunable to create lock in backend\n",
            (Failed, "target_not_writable", None),
        );
        check(Check, 0, "no errors were found\n", "", (Success, "", None));
        check(
            Check,
            1,
            "",
            "pack c93e: not referenced in any index\nFatal: repository contains errors\n",
            (Failed, "repository_damaged", None),
        );
        check(
            Check,
            1,
            "",
            "Fatal: wrong password or no key found\n",
            (Failed, "wrong_password", None),
        );
    }

    #[test]
    fn broken_input_is_an_error() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert!(matches!(parse("[{\"time\": 3}]"), Err(ParseError::Json(_))));
        assert!(parse("{\"message_type\":\"summary\",\"files_new\":\"x\"}").is_err());
        let full = fixture("backup-success.jsonl");
        for cut in (0..full.len()).filter(|c| full.is_char_boundary(*c)) {
            let _ = parse(&full[..cut]);
        }
    }
}
