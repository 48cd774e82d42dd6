//! restic's JSON: the messages of `restic backup --json` (the script tees them to a file; the
//! `summary` message, `error` messages, restic 0.17's `exit_error`), or the array of
//! `restic snapshots --json`. Snapshot paths and error items are file names: never kept.

use jiff::Timestamp;
use serde::Deserialize;

use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded};

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

#[cfg(test)]
mod tests {
    use super::*;

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
