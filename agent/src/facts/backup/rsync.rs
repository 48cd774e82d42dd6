//! rsync's `--stats` output, as a script saves it (`rsync -a --stats SRC DST > job.log 2>&1`):
//! the statistics block, and the closing `rsync error: ... (code N)` line when it failed.
//! Lines naming files (`rsync: send_files failed to open "..."`) are counted, never kept.

use super::exec::{self, Outcome};
use super::message::{self, Cause};
use super::products::Product;
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded};

pub const PRODUCT: Product = Product {
    name: "rsync",
    reads_file: true,
    read: Some(read),
    judge: Some(judge),
    parse_bytes: |bytes| {
        let _ = parse(&crate::text::decode(bytes));
    },
};

/// rsync's exit values (man rsync, "EXIT VALUES"), in French for the technician.
pub fn meaning(code: i32) -> &'static str {
    match code {
        0 => "succès",
        1 => "erreur de syntaxe ou d'usage",
        2 => "protocole incompatible",
        3 => "erreur de sélection des fichiers ou dossiers d'entrée/sortie",
        4 => "action demandée non prise en charge",
        5 => "erreur au démarrage du protocole client-serveur",
        6 => "le démon ne peut pas écrire dans son journal",
        10 => "erreur d'entrée/sortie réseau",
        11 => "erreur d'entrée/sortie sur un fichier",
        12 => "erreur dans le flux du protocole rsync",
        13 => "erreur des diagnostics du programme",
        14 => "erreur de communication entre processus",
        20 => "interrompu (SIGUSR1 ou SIGINT)",
        21 => "erreur renvoyée par waitpid()",
        22 => "mémoire insuffisante",
        23 => "transfert partiel à cause d'erreurs",
        24 => "transfert partiel : des fichiers source ont disparu",
        25 => "la limite --max-delete a arrêté les suppressions",
        30 => "délai dépassé pendant l'envoi ou la réception",
        35 => "délai dépassé en attendant le démon",
        _ => "code de sortie inconnu",
    }
}

/// 0 success; 23 and 24 partial transfers: a warning when files still went across, a
/// failure when the source is missing or the target refuses writes (nothing usable was
/// saved); every other code a failure with rsync's own meaning.
pub fn judge(outcome: &Outcome) -> BackupRun {
    let code = outcome.code().unwrap_or(-1);
    let stats = parse(&outcome.stdout).ok();
    let transferred = stats.as_ref().and_then(|s| s.files).unwrap_or(0);
    let lower = outcome.stderr_lower();
    let receiver_refused = outcome.stderr.lines().any(|line| {
        let line = line.to_lowercase();
        (line.contains("[receiver]") || line.contains("[generator]"))
            && (line.contains("permission denied") || line.contains("read-only file system"))
    });
    let unreadable = outcome
        .stderr
        .lines()
        .filter(|l| l.contains("[sender]") && l.to_lowercase().contains("permission denied"))
        .count() as u64;
    let source_missing = outcome.stderr.lines().any(|l| {
        let l = l.to_lowercase();
        (l.contains("change_dir") || l.contains("link_stat")) && l.contains("no such file")
    });
    let mut run = match code {
        0 => {
            let mut run = BackupRun::new("", "rsync", BackupStatus::Success);
            if let Some(stats) = &stats {
                run.files = stats.files;
                run.bytes = stats.bytes;
                run.message.clone_from(&stats.message);
            }
            run
        }
        23 | 24 => {
            let (status, cause) = if receiver_refused {
                (BackupStatus::Failed, Some(Cause::TargetNotWritable))
            } else if source_missing && transferred == 0 {
                (BackupStatus::Failed, Some(Cause::SourceMissing))
            } else if source_missing {
                (BackupStatus::Warning, Some(Cause::SourceMissing))
            } else if unreadable > 0 {
                (BackupStatus::Warning, Some(Cause::UnreadableFiles))
            } else {
                (BackupStatus::Warning, None)
            };
            let mut run = match cause {
                Some(cause) => exec::failed(cause),
                None => BackupRun::new("", "rsync", status),
            };
            run.status = status;
            run.files = stats.as_ref().and_then(|s| s.files);
            run.bytes = stats.as_ref().and_then(|s| s.bytes);
            run.failed_items = Some(unreadable);
            run.message = format!("rsync {code} : {}", meaning(code));
            run
        }
        _ => {
            let cause = if receiver_refused {
                Some(Cause::TargetNotWritable)
            } else if source_missing {
                Some(Cause::SourceMissing)
            } else {
                message::common_cause(&lower)
            };
            let mut run = match cause {
                Some(cause) => exec::failed(cause),
                None => BackupRun::new("", "rsync", BackupStatus::Failed),
            };
            if matches!(code, 30 | 35) && run.cause.is_empty() {
                Cause::Timeout.key().clone_into(&mut run.cause);
            }
            run.message = format!("rsync {code} : {}", meaning(code));
            run
        }
    };
    run.code = Some(i64::from(code));
    run
}

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

    fn judged(code: i32, stdout: &str, stderr: &str) -> (BackupStatus, String, String) {
        let outcome = Outcome {
            kind: crate::facts::backup::RunKind::Backup,
            ended: crate::facts::backup::exec::Ended::Exited(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        let run = judge(&outcome);
        (run.status, run.cause, run.message)
    }

    #[test]
    fn exit_values_and_error_streams_give_the_verdict() {
        use BackupStatus::*;
        let stats = "Number of files: 4 (reg: 2, dir: 2)\nNumber of regular files transferred: 2\nTotal transferred file size: 13 bytes\n";
        let none = "Number of files: 0\nNumber of regular files transferred: 0\n";
        let tail = "rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]";
        // As rsync 3 prints them.
        assert_eq!(judged(0, stats, "").0, Success);
        let (status, cause, message) = judged(
            23,
            stats,
            &format!(
                "rsync: [sender] send_files failed to open \"/src/Dupont Jean.pdf\": Permission denied (13)\n{tail}"
            ),
        );
        assert_eq!((status, cause.as_str()), (Warning, "unreadable_files"));
        assert_eq!(message, "rsync 23 : transfert partiel à cause d'erreurs");
        let missing = format!(
            "rsync: [sender] change_dir \"/tmp/bk/nope\" failed: No such file or directory (2)\n{tail}"
        );
        assert_eq!(judged(23, none, &missing).0, Failed);
        assert_eq!(judged(23, none, &missing).1, "source_missing");
        let refused = format!(
            "rsync: [receiver] mkstemp \"/dst/.a.txt.eH\" failed: Permission denied (13)\n{tail}"
        );
        assert_eq!(
            (
                judged(23, stats, &refused).0,
                judged(23, stats, &refused).1.as_str()
            ),
            (Failed, "target_not_writable")
        );
        let mkdir = "rsync: [Receiver] mkdir \"/dst/sub\" failed: Permission denied (13)\nrsync error: error in file IO (code 11) at main.c(808) [Receiver=3.5.0]";
        let (status, cause, message) = judged(11, "", mkdir);
        assert_eq!((status, cause.as_str()), (Failed, "target_not_writable"));
        assert_eq!(message, "rsync 11 : erreur d'entrée/sortie sur un fichier");
        assert_eq!(judged(24, stats, "file has vanished").0, Warning);
        assert_eq!(judged(30, "", "").1, "timeout");
        assert_eq!(judged(12, "", "").0, Failed);
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
