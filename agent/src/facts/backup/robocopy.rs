//! Robocopy job logs (`/LOG:` in the ANSI/OEM code page, `/UNILOG:` in UTF-16LE), English or
//! French Windows: the summary table at the end of the last run in the file.
//!
//! ```text
//!                Total    Copied   Skipped  Mismatch    FAILED    Extras
//!     Dirs :        10         2         8         0         0         0
//!    Files :       120        15       105         0         0         0
//!    Bytes :   1.234 g   120.5 m   1.114 g         0         0         0
//!    Times :   0:00:12   0:00:10                       0:00:00   0:00:02
//! ```
//!
//! In French the labels are `Rép.`, `Fichiers`, `Octets`, `Heures` and the columns `Copié`,
//! `Ignoré`, `Incompatibilité`, `ÉCHEC`, `Supplément`; an `/LOG` file read in the wrong code
//! page garbles them. So rows are recognised by shape (a label, a colon, six counts) and by
//! order (directories, files, bytes), never by their words. The run's exit code is rebuilt
//! from the table with robocopy's meaning: 1 files copied, 2 extra files, 4 mismatches, 8
//! failures, 16 fatal error; below 8 is a success (4 and up with mismatches: a warning).
//! Per-file lines are never read into the result.

use std::path::Path;

use jiff::Timestamp;

use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded, files};

/// Logs appended to with `/LOG+` grow for ever: the last run is in the tail.
const TAIL_BYTES: u64 = 1024 * 1024;
/// A log without a summary this young belongs to a copy still running.
const RUNNING_GRACE_SECS: i64 = 6 * 60 * 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("no robocopy summary table in the log")]
    NoSummary,
}

/// The summary of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub dirs: Row,
    pub files: Row,
    pub bytes: Row,
}

/// One row of the table: Total, Copied, Skipped, Mismatch, FAILED, Extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Row {
    pub total: u64,
    pub copied: u64,
    pub skipped: u64,
    pub mismatch: u64,
    pub failed: u64,
    pub extras: u64,
}

impl Summary {
    /// Robocopy's exit code for this summary.
    pub fn exit_code(&self) -> i64 {
        let mut code = 0;
        if self.files.copied > 0 {
            code |= 1;
        }
        if self.files.extras + self.dirs.extras > 0 {
            code |= 2;
        }
        if self.files.mismatch + self.dirs.mismatch > 0 {
            code |= 4;
        }
        if self.files.failed + self.dirs.failed > 0 {
            code |= 8;
        }
        code
    }
}

/// What robocopy's exit code means: 0-3 success, 4-7 success with mismatches (warning),
/// 8 and above (or negative) failure.
pub fn status_of_exit_code(code: i64) -> BackupStatus {
    match code {
        0..=3 => BackupStatus::Success,
        4..=7 => BackupStatus::Warning,
        _ => BackupStatus::Failed,
    }
}

/// The last run's summary in a decoded log. Pure; never panics.
pub fn parse(text: &str) -> Result<Summary, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    // The last three consecutive rows shaped like dirs, files, bytes.
    for start in (0..lines.len().saturating_sub(2)).rev() {
        let (Some(dirs), Some(files), Some(bytes)) = (
            row(lines[start], false),
            row(lines[start + 1], false),
            row(lines[start + 2], true),
        ) else {
            continue;
        };
        return Ok(Summary { dirs, files, bytes });
    }
    Err(ParseError::NoSummary)
}

/// `label : v v v v v v`, with unit suffixes (`1.2 g`) allowed on the bytes row.
fn row(line: &str, sizes: bool) -> Option<Row> {
    let (label, values) = line.split_once(':')?;
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 20 || label.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let tokens: Vec<&str> = values.split_whitespace().collect();
    let mut numbers = Vec::with_capacity(6);
    let mut i = 0;
    while i < tokens.len() {
        let unit = tokens.get(i + 1).and_then(|t| unit_factor(t));
        let value = match (sizes, unit) {
            (true, Some(factor)) => {
                i += 1;
                scaled(tokens[i - 1], factor)?
            }
            _ => tokens[i].parse::<u64>().ok()?,
        };
        numbers.push(value);
        i += 1;
    }
    let [total, copied, skipped, mismatch, failed, extras] = numbers.as_slice() else {
        return None;
    };
    Some(Row {
        total: *total,
        copied: *copied,
        skipped: *skipped,
        mismatch: *mismatch,
        failed: *failed,
        extras: *extras,
    })
}

fn unit_factor(token: &str) -> Option<f64> {
    match token {
        "k" | "K" => Some(1024.0),
        "m" | "M" => Some(1024.0 * 1024.0),
        "g" | "G" => Some(1024.0 * 1024.0 * 1024.0),
        "t" | "T" => Some(1024.0 * 1024.0 * 1024.0 * 1024.0),
        _ => None,
    }
}

/// `1.234` (or `1,234` in some locales) times the unit, rounded.
fn scaled(number: &str, factor: f64) -> Option<u64> {
    let value: f64 = number.replace(',', ".").parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * factor).round() as u64)
}

/// The run a summary stands for.
pub fn to_run(job: &str, summary: &Summary) -> BackupRun {
    let code = summary.exit_code();
    let mut run = BackupRun::new(job, "robocopy", status_of_exit_code(code));
    run.code = Some(code);
    run.files = Some(summary.files.copied);
    run.bytes = Some(summary.bytes.copied);
    run.failed_items = Some(summary.files.failed + summary.dirs.failed);
    run.message = bounded(
        &format!(
            "files: {} total, {} copied, {} skipped, {} mismatch, {} failed, {} extras",
            summary.files.total,
            summary.files.copied,
            summary.files.skipped,
            summary.files.mismatch,
            summary.files.failed,
            summary.files.extras
        ),
        MAX_MESSAGE_CHARS,
    );
    run
}

/// A log that has no summary: robocopy could not start (bad source, access denied) or was
/// killed. The message keeps only robocopy's error code and the system's explanation, never
/// the path on the same line.
fn failed_run(job: &str, text: &str) -> BackupRun {
    let mut run = BackupRun::new(job, "robocopy", BackupStatus::Failed);
    run.code = Some(16);
    let lines: Vec<&str> = text.lines().collect();
    let error = lines.iter().enumerate().rev().find_map(|(i, line)| {
        let at = line.find("ERROR ")?;
        let rest = &line[at..];
        // "ERROR 2 (0x00000002) Accessing Source Directory X:\..." → "ERROR 2 (0x00000002)"
        let code_end = rest.find(')').map_or(rest.len().min(12), |p| p + 1);
        let explanation = lines.get(i + 1).map_or("", |l| l.trim());
        Some(format!("{} {explanation}", &rest[..code_end]))
    });
    run.message = bounded(
        error
            .as_deref()
            .unwrap_or("no summary: robocopy did not finish"),
        MAX_MESSAGE_CHARS,
    );
    run
}

/// Reads the job's log file: the run it ends with, or nothing while a copy is still writing.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let path = job.path.as_deref().ok_or("no path configured")?;
    let (bytes, modified) = read_log(path)?;
    let text = crate::text::decode(&bytes);
    let mut run = match parse(&text) {
        Ok(summary) => to_run(&job.name, &summary),
        Err(ParseError::NoSummary) => {
            let age = Timestamp::now().as_second() - modified.as_second();
            if age < RUNNING_GRACE_SECS && !text.contains("ERROR ") {
                return Ok(Vec::new());
            }
            failed_run(&job.name, &text)
        }
    };
    run.finished_at = Some(modified);
    job.target.clone_into(&mut run.target);
    Ok(vec![run])
}

/// The log's tail and its modification time (the end of the run it holds).
pub(super) fn read_log(path: &Path) -> Result<(Vec<u8>, Timestamp), String> {
    let describe = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(describe)?;
    let modified = Timestamp::try_from(modified).map_err(|e| e.to_string())?;
    let bytes = files::read_tail(path, TAIL_BYTES).map_err(describe)?;
    Ok((bytes, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/backup/robocopy"
    );

    fn fixture(name: &str) -> String {
        let bytes = std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture");
        crate::text::decode(&bytes)
    }

    /// (fixture, exit code, files copied, bytes copied, failed items)
    fn check(name: &str, code: i64, files: u64, bytes: u64, failed: u64) {
        let summary = parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let run = to_run("j", &summary);
        assert_eq!(
            (run.code, run.files, run.bytes, run.failed_items),
            (Some(code), Some(files), Some(bytes), Some(failed)),
            "{name}"
        );
    }

    #[test]
    fn reads_english_and_french_logs_in_every_encoding() {
        check("en-success.log", 1, 15, 126_353_408, 0);
        check("en-failed.log", 9, 3, 1024, 2);
        check("fr-utf16-unilog.log", 3, 4, 2_306_867, 0);
        check("fr-cp1252.log", 5, 2, 512, 0);
        check("fr-appended.log", 1, 7, 7340, 0);
        check("en-bytes.log", 0, 0, 0, 0);
    }

    #[test]
    fn exit_codes_mean_what_robocopy_says() {
        use BackupStatus::*;
        for (code, status) in [(0, Success), (1, Success), (3, Success), (4, Warning)] {
            assert_eq!(status_of_exit_code(code), status, "{code}");
        }
        for code in [7, 8, 16, -1] {
            let expected = if code == 7 { Warning } else { Failed };
            assert_eq!(status_of_exit_code(code), expected, "{code}");
        }
    }

    #[test]
    fn a_log_without_summary_is_a_failure_without_the_path() {
        let text = fixture("en-fatal.log");
        assert_eq!(parse(&text), Err(ParseError::NoSummary));
        let run = failed_run("j", &text);
        assert_eq!(run.status, BackupStatus::Failed);
        assert_eq!(
            run.message,
            "ERROR 53 (0x00000035) The network path was not found."
        );
        assert!(!run.message.contains("Patients"));
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        for text in [
            "",
            "Dirs : 1 2 3",
            "\u{0}\u{1}",
            "Bytes : 1 g 2 m 3 k 4 t 5 6 7",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        let full = fixture("en-success.log");
        for cut in 0..full.len() {
            if full.is_char_boundary(cut) {
                let _ = parse(&full[..cut]);
            }
        }
    }
}
