//! What a backup run says on its error stream, made fit to leave the machine: file paths taken
//! out (and counted), repeated lines folded, cut to [`MAX_MESSAGE_CHARS`]; and the cause of a
//! failure recognised from the products' own wording, as a stable key the collector words in
//! French. The lines restic, borg and rsync print for unreadable files name patients'
//! documents: nothing here keeps a path.

use super::{MAX_MESSAGE_CHARS, bounded};

/// Lines kept in a message, the last ones (the fatal line comes last).
const MAX_LINES: usize = 4;

/// Why a run failed or warned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    SourceMissing,
    UnreadableFiles,
    WrongPassword,
    RepositoryMissing,
    RepositoryDamaged,
    RepositoryLocked,
    TargetNotWritable,
    TargetFull,
    NotFound,
    NotPermitted,
    Timeout,
    Killed,
    OutputUnreadable,
    Busy,
    Cancelled,
    CatalogDamaged,
    BadClusters,
    Network,
}

impl Cause {
    /// The key in `BackupRun.cause` (the collector's French wording is keyed on it).
    pub fn key(self) -> &'static str {
        match self {
            Cause::SourceMissing => "source_missing",
            Cause::UnreadableFiles => "unreadable_files",
            Cause::WrongPassword => "wrong_password",
            Cause::RepositoryMissing => "repository_missing",
            Cause::RepositoryDamaged => "repository_damaged",
            Cause::RepositoryLocked => "repository_locked",
            Cause::TargetNotWritable => "target_not_writable",
            Cause::TargetFull => "target_full",
            Cause::NotFound => "not_found",
            Cause::NotPermitted => "not_permitted",
            Cause::Timeout => "timeout",
            Cause::Killed => "killed",
            Cause::OutputUnreadable => "output_unreadable",
            Cause::Busy => "busy",
            Cause::Cancelled => "cancelled",
            Cause::CatalogDamaged => "catalog_damaged",
            Cause::BadClusters => "bad_clusters",
            Cause::Network => "network",
        }
    }
}

/// A message with its paths removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cleaned {
    pub text: String,
    pub paths_removed: u32,
}

/// The last meaningful lines of an error stream, paths out, repeats folded, bounded. Lines
/// that say what went wrong (error, fatal, denied, ...) are preferred over progress and
/// retries; JSON lines (restic `--json` errors: their fields are file names) and stack
/// traces (Go, Python) are skipped.
pub fn from_stderr(stderr: &str) -> Cleaned {
    let mut paths = 0u32;
    // (line, its key without digits, times seen)
    let mut lines: Vec<(String, String, u32)> = Vec::new();
    for raw in stderr.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('{') || is_stack_frame(raw) {
            continue;
        }
        let (clean, removed) = without_paths(line);
        paths = paths.saturating_add(removed);
        let clean = clean.trim().to_owned();
        if clean.is_empty() || clean == "…" {
            continue;
        }
        let key: String = clean.chars().filter(|c| !c.is_ascii_digit()).collect();
        match lines.iter_mut().find(|(_, k, _)| *k == key) {
            Some((_, _, n)) => *n = n.saturating_add(1),
            None => lines.push((clean, key, 1)),
        }
    }
    let telling: Vec<&(String, String, u32)> = lines
        .iter()
        .filter(|(l, _, _)| says_what_failed(l))
        .collect();
    let chosen: Vec<&(String, String, u32)> = if telling.is_empty() {
        lines.iter().collect()
    } else {
        telling
    };
    let skip = chosen.len().saturating_sub(MAX_LINES);
    let text = chosen
        .into_iter()
        .skip(skip)
        .map(|(line, _, n)| match n {
            1 => line.clone(),
            n => format!("{line} (×{n})"),
        })
        .collect::<Vec<_>>()
        .join(" | ");
    Cleaned {
        text: bounded(&text, MAX_MESSAGE_CHARS),
        paths_removed: paths,
    }
}

/// A Go stack frame (`\tgithub.com/x/y.go:40`, `main.main`) or a Python traceback line.
fn is_stack_frame(raw: &str) -> bool {
    let line = raw.trim();
    raw.starts_with('\t')
        || line.starts_with("File \"")
        || line.starts_with("Traceback (most recent call last)")
        || (!line.contains(' ') && line.contains('.') && !line.contains(':'))
        || (!line.contains(' ') && line.ends_with(')') && line.contains('('))
}

fn says_what_failed(line: &str) -> bool {
    const WORDS: &[&str] = &[
        "error",
        "fatal",
        "fail",
        "denied",
        "warning",
        "not ",
        "no such",
        "incorrect",
        "unable",
        "cannot",
        "can't",
        "refused",
        "exist",
        "timeout",
        "timed out",
        "space",
        "read-only",
        "wrong",
        "corrupt",
        "damaged",
        "lock",
    ];
    let lower = line.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// Replaces every path in `line` with `…` and counts them. A path starts at `/` or `~/`
/// after a space, a quote or the line start, or at `X:\` / `\\server`; a quoted path ends at
/// its closing quote, an unquoted one at the next `": "` (Go's and Python's `PATH: reason`) or
/// the line end, so names with spaces go whole.
pub fn without_paths(line: &str) -> (String, u32) {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut removed = 0u32;
    let mut i = 0;
    while i < chars.len() {
        let before = if i == 0 { None } else { Some(chars[i - 1]) };
        let at_boundary = matches!(
            before,
            None | Some(' ' | '"' | '\'' | '(' | '[' | '=' | '`')
        );
        if at_boundary && starts_path(&chars[i..]) {
            let end = match before {
                Some(q @ ('"' | '\'' | '`')) => chars[i..]
                    .iter()
                    .position(|c| *c == q)
                    .map_or(chars.len(), |p| i + p),
                _ => unquoted_end(&chars, i),
            };
            out.push('…');
            removed = removed.saturating_add(1);
            i = end.max(i + 1);
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    (out, removed)
}

/// Where an unquoted path ends: at `": "`, at `" does not exist"`, or at the line end.
fn unquoted_end(chars: &[char], from: usize) -> usize {
    const ENDS: &[&str] = &[": ", " does not exist"];
    (from..chars.len())
        .find(|&j| {
            ENDS.iter().any(|end| {
                let end: Vec<char> = end.chars().collect();
                chars[j..].starts_with(&end)
            })
        })
        .unwrap_or(chars.len())
}

fn starts_path(rest: &[char]) -> bool {
    // A word with a slash in it (`repo/snapshots/…`, `src/Patients/x.pdf`), not a URL, not
    // a ratio like `1/2`.
    let word: String = rest
        .iter()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ','))
        .collect();
    let word = word.trim_end_matches(':');
    // Words with a slash the products print that are not paths.
    const PROSE: &[&str] = &[
        "directories/files",
        "files/directories",
        "files/attrs",
        "files/dirs",
        "and/or",
        "read/write",
        "i/o",
        "input/output",
    ];
    if PROSE.contains(&word.to_lowercase().as_str()) {
        return false;
    }
    if (word.contains('/') || word.contains('\\'))
        && !word.contains("://")
        && !word
            .chars()
            .all(|c| c.is_ascii_digit() || c == '/' || c == '.')
        && word.chars().count() > 1
        && word
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || "/\\~._".contains(c))
    {
        return true;
    }
    match rest {
        ['/', c, ..] => !c.is_whitespace(),
        ['~', '/', ..] => true,
        ['\\', '\\', c, ..] => c.is_alphanumeric(),
        [d, ':', '\\', ..] => d.is_ascii_alphabetic(),
        [d, ':', '/', ..] => d.is_ascii_alphabetic(),
        ['.', '/', ..] | ['.', '.', '/', ..] => true,
        _ => false,
    }
}

/// Causes every product words the same way (the OS's own error texts), in the order they
/// are tried: the first that matches wins. `text` is lower case.
pub fn common_cause(text: &str) -> Option<Cause> {
    const TABLE: &[(&str, Cause)] = &[
        ("no space left on device", Cause::TargetFull),
        ("disk quota exceeded", Cause::TargetFull),
        ("read-only file system", Cause::TargetNotWritable),
        ("connection refused", Cause::Network),
        ("connection timed out", Cause::Network),
        ("network is unreachable", Cause::Network),
        ("no route to host", Cause::Network),
        ("could not resolve", Cause::Network),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, cause)| *cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, want: &str, n: u32) {
        assert_eq!(without_paths(line), (want.to_owned(), n), "{line}");
    }

    #[test]
    fn paths_are_taken_out_whole() {
        check(
            "error: open /srv/data/Patients/Dupont Jean.pdf: permission denied",
            "error: open …: permission denied",
            1,
        );
        check(
            r#"rsync: [sender] send_files failed to open "/src/Patients/Dupont Jean.pdf": Permission denied (13)"#,
            r#"rsync: [sender] send_files failed to open "…": Permission denied (13)"#,
            1,
        );
        check(
            "/src/a b.pdf: [Errno 13] Permission denied: '/src/a b.pdf'",
            "…: [Errno 13] Permission denied: '…'",
            2,
        );
        check(
            r"ERROR 5 (0x00000005) Copying File D:\Cabinet\Patients\Durand.doc",
            "ERROR 5 (0x00000005) Copying File …",
            1,
        );
        check(r"\\nas01\sauvegardes: busy", "…: busy", 1);
        check(
            "Fatal: unable to open config file: stat /tmp/repo/config: no such file or directory",
            "Fatal: unable to open config file: stat …: no such file or directory",
            1,
        );
        check("1/2 files, 3 / 4", "1/2 files, 3 / 4", 0);
        check(
            "Fatal: all target directories/files do not exist",
            "Fatal: all target directories/files do not exist",
            0,
        );
        check(
            "/tmp/bk/nope does not exist, skipping",
            "… does not exist, skipping",
            1,
        );
        check(
            "error: open src/sub/Dupont Jean.pdf: permission denied",
            "error: open …: permission denied",
            1,
        );
        check("https://x", "https://x", 0);
    }

    #[test]
    fn stderr_becomes_a_short_message_without_json_or_repeats() {
        let stderr = "{\"message_type\":\"error\",\"item\":\"/p/x.pdf\"}\n\
                      error: open /p/a.pdf: permission denied\n\
                      error: open /p/b.pdf: permission denied\n\n\
                      Warning: at least one source file could not be read\n";
        let cleaned = from_stderr(stderr);
        assert_eq!(
            cleaned.text,
            "error: open …: permission denied (×2) | Warning: at least one source file could not be read"
        );
        assert_eq!(cleaned.paths_removed, 2);
        let long = "x\n".repeat(10) + &"y".repeat(2000);
        assert_eq!(from_stderr(&long).text.chars().count(), MAX_MESSAGE_CHARS);
    }
}
