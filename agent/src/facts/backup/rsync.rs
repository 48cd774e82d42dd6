//! rsync's `--stats` output, as a script saves it (`rsync -a --stats SRC DST > job.log 2>&1`):
//! the statistics block, and the closing `rsync error: ... (code N)` line when it failed.
//! Lines naming files (`rsync: send_files failed to open "..."`) are counted, never kept.

use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded};

/// What rsync prints when a run begins (without `-q`).
const RUN_STARTS: &[&str] = &[
    "sending incremental file list",
    "receiving incremental file list",
    "building file list",
    "receiving file list",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("no rsync --stats block or rsync error in the log")]
    NoStats,
}

/// Parses the last run in the text. Pure; never panics.
pub fn parse(text: &str) -> Result<BackupRun, ParseError> {
    // A log appended to run after run: the last run starts at the file-list line before the
    // last stats block, or after the previous run's closing `total size is`.
    let stats = text.rfind("Number of files:").unwrap_or(0);
    let before = &text[..stats];
    let start = RUN_STARTS
        .iter()
        .filter_map(|marker| before.rfind(marker))
        .chain(
            before
                .rfind("total size is")
                .map(|p| p + "total size is".len()),
        )
        .max()
        .unwrap_or(0);
    let text = &text[start..];
    let mut files_total = None;
    let mut transferred = None;
    let mut bytes = None;
    let mut total_size = None;
    let mut file_errors = 0u64;
    let mut error = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Number of files:") {
            files_total = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("Number of regular files transferred:") {
            transferred = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("Number of files transferred:") {
            // rsync before 3.1.
            transferred = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("Total transferred file size:") {
            bytes = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("Total file size:") {
            total_size = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("rsync error:") {
            error = Some(rest.trim());
        } else if line.starts_with("rsync:") {
            file_errors += 1;
        }
    }
    let code = error.and_then(|e| {
        let at = e.rfind("(code ")? + "(code ".len();
        let digits: String = e[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<i64>().ok()
    });
    let status = match (error, code) {
        (None, _) => BackupStatus::Success,
        // 23: partial transfer due to error; 24: source files vanished. The rest was copied.
        (Some(_), Some(23 | 24)) => BackupStatus::Warning,
        (Some(_), _) => BackupStatus::Failed,
    };
    if files_total.is_none() && error.is_none() {
        return Err(ParseError::NoStats);
    }
    let mut run = BackupRun::new("", "rsync", status);
    run.code = code.or(Some(0));
    run.files = transferred;
    run.bytes = bytes;
    run.failed_items = Some(file_errors);
    run.message = match error {
        // "some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338)"
        Some(e) => bounded(e.split(" at ").next().unwrap_or(e), MAX_MESSAGE_CHARS),
        None => format!(
            "{} files, {} bytes in total",
            files_total.unwrap_or(0),
            total_size.unwrap_or(0)
        ),
    };
    Ok(run)
}

/// `1,234,567 bytes` or `1.234.567` (locale separators) or `1234 (reg: 1,000, dir: 234)`.
fn first_number(text: &str) -> Option<u64> {
    let token = text.split_whitespace().next()?;
    let digits: String = token.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Reads the job's log file.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let path = job.path.as_deref().ok_or("no path configured")?;
    let (bytes, modified) = super::robocopy::read_log(path)?;
    let mut run = parse(&crate::text::decode(&bytes)).map_err(|e| e.to_string())?;
    job.name.clone_into(&mut run.job);
    job.target.clone_into(&mut run.target);
    run.finished_at = Some(modified);
    Ok(vec![run])
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backup/rsync");

    fn check(name: &str, status: BackupStatus, code: i64, files: Option<u64>, bytes: Option<u64>) {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
        let run = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (run.status, run.code, run.files, run.bytes),
            (status, Some(code), files, bytes),
            "{name}"
        );
        assert!(!run.message.contains("Patients"), "{}", run.message);
    }

    #[test]
    fn reads_stats_and_errors() {
        use BackupStatus::*;
        check("success.log", Success, 0, Some(15), Some(1_234_567));
        check("partial.log", Warning, 23, Some(3), Some(4096));
        check("failed.log", Failed, 12, None, None);
        check("appended.log", Success, 0, Some(2), Some(100));
    }

    #[test]
    fn broken_input_is_an_error() {
        assert_eq!(parse(""), Err(ParseError::NoStats));
        assert_eq!(parse("\u{0}\u{1}"), Err(ParseError::NoStats));
        let text = std::fs::read_to_string(format!("{FIXTURES}/success.log")).expect("fixture");
        for cut in (0..text.len()).filter(|c| text.is_char_boundary(*c)) {
            let _ = parse(&text[..cut]);
        }
    }
}
