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
//! failures, 16 fatal error; below 8 is a success (the message says which bits are set).
//! A log appended to with `/LOG+:` holds one run per `ROBOCOPY ::` banner: each is a run, the
//! last one is the job's current state. The run's start and end are read from the log
//! (`Started :`/`Début :`, `Ended :`/`Fin :`, or in other languages by position: the first
//! dated line of the header, the last one after the table). Per-file lines are never read
//! into the result.

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::exec::Outcome;
use super::message::Cause;
use super::products::Product;
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded, files};

pub const PRODUCT: Product = Product {
    name: "robocopy",
    reads_file: true,
    read: Some(read),
    judge: Some(judge),
    parse_bytes: |bytes| {
        let text = crate::text::decode(bytes);
        let _ = parse(&text);
        let _ = runs(&text, &TimeZone::UTC);
    },
};

/// Runs kept from one log: older runs were reported when they happened.
const MAX_RUNS: usize = 10;

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

/// What robocopy's exit code means: a bit mask where 0-7 is a success (1 files copied,
/// 2 extra files, 4 mismatches) and 8 and above a failure (8 some copies failed, 16 fatal).
pub fn status_of_exit_code(code: i64) -> BackupStatus {
    match code {
        0..=7 => BackupStatus::Success,
        _ => BackupStatus::Failed,
    }
}

/// The exit code in words, bit by bit, in French.
pub fn explain(code: i64) -> String {
    if !(0..=31).contains(&code) {
        return format!("robocopy {code} : code de sortie inconnu");
    }
    if code == 0 {
        return "robocopy 0 : rien à copier, tout est à jour".to_owned();
    }
    let bits: Vec<&str> = [
        (1, "fichiers copiés"),
        (2, "fichiers ou dossiers en trop à la destination"),
        (4, "différences détectées (mismatch)"),
        (8, "certaines copies ont échoué"),
        (16, "erreur fatale : rien n'a été copié"),
    ]
    .iter()
    .filter(|(bit, _)| code & bit != 0)
    .map(|(_, text)| *text)
    .collect();
    format!("robocopy {code} : {}", bits.join(", "))
}

/// Windows error numbers robocopy prints (`ERROR 5 (0x00000005)`) and what they mean here.
fn cause_of_error(number: u32) -> Option<Cause> {
    Some(match number {
        2 | 3 => Cause::SourceMissing,
        5 => Cause::NotPermitted,
        19 => Cause::TargetNotWritable,
        32 | 33 => Cause::UnreadableFiles,
        39 | 112 => Cause::TargetFull,
        53 | 64 | 67 | 1231 => Cause::Network,
        _ => return None,
    })
}

/// The last `ERROR n` robocopy printed, as a cause.
fn cause_in(text: &str) -> Option<Cause> {
    text.lines().rev().find_map(|line| {
        let rest = &line[line.find("ERROR ")? + "ERROR ".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        cause_of_error(digits.parse().ok()?)
    })
}

/// A robocopy run wrapped by `exec`: the exit code decides, the summary gives the counts.
pub fn judge(outcome: &Outcome) -> BackupRun {
    let code = i64::from(outcome.code().unwrap_or(-1));
    let mut run = match parse(&outcome.stdout) {
        Ok(summary) => to_run("", &summary),
        Err(ParseError::NoSummary) => BackupRun::new("", "robocopy", BackupStatus::Failed),
    };
    run.status = status_of_exit_code(code);
    run.code = Some(code);
    if run.status == BackupStatus::Failed {
        if let Some(cause) = cause_in(&format!("{}\n{}", outcome.stdout, outcome.stderr)) {
            cause.key().clone_into(&mut run.cause);
        }
        let error = failed_run("", &outcome.stdout).message;
        run.message = bounded(&format!("{} | {error}", explain(code)), MAX_MESSAGE_CHARS);
    } else {
        run.message = bounded(
            &format!("{} | {}", explain(code), run.message),
            MAX_MESSAGE_CHARS,
        );
    }
    run
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
    if code >= 8 {
        Cause::UnreadableFiles.key().clone_into(&mut run.cause);
    }
    run.message = bounded(
        &format!(
            "fichiers : {} au total, {} copiés, {} ignorés, {} différents, {} en échec, {} en trop",
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
    if let Some(cause) = cause_in(text) {
        cause.key().clone_into(&mut run.cause);
    }
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

/// One run of a log, as written between two `ROBOCOPY ::` banners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRun {
    pub run: BackupRun,
    /// Whether the run has its summary table (else: still running, or stopped early).
    pub complete: bool,
}

/// Every run in a decoded log, oldest first, with times read in `tz`. Pure; never panics.
pub fn runs(text: &str, tz: &TimeZone) -> Vec<LoggedRun> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("ROBOCOPY") && l.contains("::"))
        .map(|(i, _)| i)
        .collect();
    if starts.first() != Some(&0) {
        // Whatever precedes the first banner (or a log without one) is read as a run too.
        starts.insert(0, 0);
    }
    let mut out = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let part = lines[start..end].join("\n");
        if part.trim().is_empty() || !part.chars().any(|c| c.is_alphanumeric()) {
            continue;
        }
        let dated: Vec<Timestamp> = lines[start..end]
            .iter()
            .filter_map(|l| labelled_time(l, tz))
            .collect();
        let (run, complete) = match parse(&part) {
            Ok(summary) => (to_run("", &summary), true),
            Err(ParseError::NoSummary) => (failed_run("", &part), false),
        };
        let mut run = run;
        run.started_at = dated.first().copied();
        run.finished_at = if dated.len() > 1 {
            dated.last().copied()
        } else {
            None
        };
        out.push(LoggedRun { run, complete });
    }
    let skip = out.len().saturating_sub(MAX_RUNS);
    out.drain(..skip);
    out
}

/// `  Label : <date>` in English (`Monday, November 23, 2026 10:31:12 PM`) or French
/// (`lundi 23 novembre 2026 22:30:05`) wording, or numeric (`23.11.2026 22:30:05`,
/// `2026/11/23 22:30:05`) as other languages write it.
fn labelled_time(line: &str, tz: &TimeZone) -> Option<Timestamp> {
    let (label, value) = line.split_once(" : ")?;
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 20 || label.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let datetime = civil_time(value)?;
    tz.to_timestamp(datetime).ok()
}

fn civil_time(value: &str) -> Option<DateTime> {
    const MONTHS: [&[&str]; 12] = [
        &["jan"],
        &["feb", "fév", "fev"],
        &["mar"],
        &["apr", "avr"],
        &["may", "mai"],
        &["jun", "juin"],
        &["jul", "juil"],
        &["aug", "aoû", "aou"],
        &["sep"],
        &["oct"],
        &["nov"],
        &["dec", "déc"],
    ];
    let lower = value.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut time = None;
    let mut pm = None;
    let mut numbers = Vec::new();
    let mut month = None;
    for word in &words {
        if word.contains(':') {
            let parts: Vec<i8> = word.split(':').filter_map(|p| p.parse().ok()).collect();
            if let [h, m, rest @ ..] = parts.as_slice() {
                time = Some((*h, *m, rest.first().copied().unwrap_or(0)));
            }
        } else if *word == "pm" || *word == "am" {
            pm = Some(*word == "pm");
        } else if word.contains('/') || word.contains('.') || word.contains('-') {
            let parts: Vec<i32> = word
                .split(['/', '.', '-'])
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.parse().ok())
                .collect();
            if let [a, b, c] = parts.as_slice() {
                // yyyy/mm/dd, else dd.mm.yyyy (the day first, as outside the US).
                let (y, m, d) = if *a > 999 { (*a, *b, *c) } else { (*c, *b, *a) };
                numbers = vec![d, y];
                month = Some(m);
            }
        } else if let Ok(n) = word.parse::<i32>() {
            numbers.push(n);
        } else if let Some(m) = MONTHS
            .iter()
            .position(|names| names.iter().any(|n| word.starts_with(n)))
        {
            month = month.or(Some(m as i32 + 1));
        }
    }
    let (mut hour, minute, second) = time?;
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let year = *numbers.iter().find(|n| **n > 999)?;
    let day = *numbers.iter().find(|n| (1..=31).contains(*n))?;
    let date = Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month?).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::new(hour, minute, second, 0).ok()?;
    Some(date.to_datetime(time))
}

/// Reads the job's log file: its runs (the last one is the job's state), or none while the
/// last copy is still writing it.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let path = job.path.as_deref().ok_or("no path configured")?;
    let (bytes, modified) = read_log(path)?;
    let text = crate::text::decode(&bytes);
    let mut logged = runs(&text, &TimeZone::system());
    let Some(last) = logged.last_mut() else {
        return Err(format!(
            "{}: output unreadable: no robocopy run in it",
            path.display()
        ));
    };
    if !last.complete {
        let age = Timestamp::now().as_second() - modified.as_second();
        if age < RUNNING_GRACE_SECS && !text.contains("ERROR ") {
            logged.pop();
        }
    }
    if let Some(last) = logged.last_mut() {
        // Without an end time in the log, the file's time is the end of its last run.
        last.run.finished_at = last.run.finished_at.or(Some(modified));
    }
    Ok(logged
        .into_iter()
        .map(|logged| {
            let mut run = logged.run;
            job.name.clone_into(&mut run.job);
            job.target.clone_into(&mut run.target);
            run.finished_at = run.finished_at.or(run.started_at);
            run
        })
        .filter(|run| run.finished_at.is_some())
        .collect())
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
        // (exit code, status, words)
        let table: &[(i64, BackupStatus, &str)] = &[
            (0, Success, "rien à copier"),
            (1, Success, "fichiers copiés"),
            (2, Success, "en trop"),
            (3, Success, "fichiers copiés, fichiers ou dossiers en trop"),
            (4, Success, "différences"),
            (5, Success, "fichiers copiés, différences"),
            (6, Success, "en trop à la destination, différences"),
            (
                7,
                Success,
                "copiés, fichiers ou dossiers en trop à la destination, différences",
            ),
            (8, Failed, "certaines copies ont échoué"),
            (9, Failed, "fichiers copiés, certaines copies ont échoué"),
            (16, Failed, "erreur fatale"),
            (24, Failed, "échoué, erreur fatale"),
            (-1, Failed, "inconnu"),
            (32, Failed, "inconnu"),
        ];
        for (code, status, words) in table {
            assert_eq!(status_of_exit_code(*code), *status, "{code}");
            assert!(explain(*code).contains(words), "{code}: {}", explain(*code));
        }
    }

    #[test]
    fn wrapped_runs_are_judged_by_the_exit_code() {
        use crate::facts::backup::RunKind;
        use crate::facts::backup::exec::Ended;
        let outcome = |code, stdout: &str| Outcome {
            kind: RunKind::Backup,
            ended: Ended::Exited(code),
            stdout: stdout.into(),
            stderr: String::new(),
        };
        let run = judge(&outcome(1, &fixture("en-success.log")));
        assert_eq!((run.status, run.files), (BackupStatus::Success, Some(15)));
        let run = judge(&outcome(16, &fixture("en-fatal.log")));
        assert_eq!(
            (run.status, run.cause.as_str()),
            (BackupStatus::Failed, "network")
        );
        assert!(!run.message.contains("nas01"), "{}", run.message);
    }

    #[test]
    fn appended_logs_give_every_run_with_its_own_times() {
        let tz = TimeZone::fixed(jiff::tz::offset(4));
        let logged = runs(&fixture("fr-appended.log"), &tz);
        assert_eq!(logged.len(), 2);
        assert!(logged.iter().all(|l| l.complete));
        let last = &logged[1].run;
        assert_eq!(last.files, Some(7));
        assert_eq!(
            last.finished_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-23T18:30:05Z")
        );
        let en = runs(&fixture("en-success.log"), &tz);
        assert_eq!(
            (
                en[0].run.started_at.map(|t| t.to_string()),
                en[0].run.finished_at.map(|t| t.to_string())
            ),
            (
                Some("2026-11-23T18:30:01Z".into()),
                Some("2026-11-23T18:31:12Z".into())
            )
        );
        // Other languages: read by position, numeric dates.
        let de = "  Gestartet : 23.11.2026 22:30:01\n\
                  Verz. :  1 0 1 0 0 0\nDateien : 2 1 1 0 0 0\nBytes : 10 5 5 0 0 0\n\
                  Beendet : 23.11.2026 22:31:00\n";
        let logged = runs(de, &tz);
        assert_eq!(
            logged[0].run.finished_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-23T18:31:00Z")
        );
        assert_eq!(logged[0].run.files, Some(1));
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
