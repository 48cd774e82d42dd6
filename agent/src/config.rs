//! The agent's TOML configuration: serde structs with named defaults, and a validation that
//! reports every problem at once.
//!
//! Every field is optional; an empty file (or no `--config` at all) means the defaults:
//!
//! ```toml
//! [collection]
//! # How often the system snapshot (OS, uptime, memory, disks) is taken.
//! snapshot_interval = "5m"
//!
//! [outbox]
//! # Bound of the on-disk outbox; when full, the oldest system snapshots are dropped first.
//! max_bytes = 268435456
//!
//! [sender]
//! # Most reports in one batch (at most vigie_proto::MAX_REPORTS_PER_BATCH).
//! batch_max_reports = 500
//! # Retry delay grows from `backoff_initial` to `backoff_max` (full jitter) while the
//! # collector is unreachable.
//! backoff_initial = "1s"
//! backoff_max = "5m"
//! # Retry delay while the collector refuses this agent for good (revoked, unknown
//! # certificate): slow, the agent stays up and says why in its log.
//! refused_retry = "30m"
//! connect_timeout = "10s"
//! request_timeout = "60s"
//! ```
//!
//! Later capabilities add their own sections (`[backup]`, `[updates]`, `[lan]`, ...): one
//! struct here, one entry in [`SECTIONS`].
//!
//! The same text format comes from the collector (central configuration, `crate::central`):
//! [`parse_text`] with [`Source::Central`] refuses what only the local file may set
//! ([`LOCAL_ONLY_SECTIONS`], `backup.spool_dir`). Every problem carries its line.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Default interval between two system snapshots.
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default outbox bound: 256 MiB.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default number of reports per batch.
pub const DEFAULT_BATCH_MAX_REPORTS: usize = 500;
/// First retry delay after a failed send.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Retry delays never grow beyond this.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// Retry delay while the collector refuses this agent (revoked, certificate unknown).
pub const DEFAULT_REFUSED_RETRY: Duration = Duration::from_secs(30 * 60);
/// How long to wait for a TCP+TLS connection to the collector.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `Report` call may take, transfer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Below this the agent would cost the clinic PC more than it tells us.
const MIN_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(10);
/// An outbox smaller than this could not hold a day of snapshots.
const MIN_OUTBOX_BYTES: u64 = 1024 * 1024;

/// Top-level sections this version understands.
pub const SECTIONS: &[&str] = &[
    "collection",
    "outbox",
    "sender",
    "updates",
    "antivirus",
    "software",
    "lan",
    "backup",
    "central",
];

/// Sections only the local file may set: how this agent reaches the collector, and what it
/// accepts from it. A collector that could change them could cut the agent off, or widen what
/// it may be told to probe.
pub const LOCAL_ONLY_SECTIONS: &[&str] = &["outbox", "sender", "central"];

/// Where a configuration text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The agent's own `agent.toml`: everything may be set.
    Local,
    /// The collector: only built-in checks, paths and targets (see [`LOCAL_ONLY_SECTIONS`]).
    Central,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub collection: CollectionConfig,
    pub outbox: OutboxConfig,
    pub sender: SenderConfig,
    pub updates: UpdatesConfig,
    pub antivirus: AntivirusConfig,
    pub software: SoftwareConfig,
    /// `[lan]`: LAN devices to probe (`facts::lan`).
    pub lan: crate::facts::lan::LanConfig,
    pub backup: BackupConfig,
    /// `[central]` (local only): what this agent accepts from the collector.
    pub central: crate::central::policy::CentralConfig,
    /// The local file's text, so the collector's configuration can be layered under what the
    /// file sets explicitly (`crate::central::merge`). Not part of what the config means.
    pub local_text: LocalText,
}

/// The text a config was read from; two configs that mean the same compare equal whatever
/// their text.
#[derive(Debug, Clone, Default)]
pub struct LocalText(pub Option<String>);

impl PartialEq for LocalText {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LocalText {}

/// `[collection]`: what is collected and how often.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionConfig {
    /// Interval between two system snapshots, e.g. `"5m"`.
    #[serde(with = "crate::duration_text")]
    pub snapshot_interval: Duration,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
        }
    }
}

/// `[outbox]`: the durable queue of reports not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Upper bound of the queued reports, in bytes.
    pub max_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
        }
    }
}

/// `[sender]`: how queued reports travel to the collector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Most reports in one batch.
    pub batch_max_reports: usize,
    /// First retry delay after a failure.
    #[serde(with = "crate::duration_text")]
    pub backoff_initial: Duration,
    /// Largest retry delay.
    #[serde(with = "crate::duration_text")]
    pub backoff_max: Duration,
    /// Retry delay while the collector refuses this agent for good (revoked, certificate
    /// unknown, collector not the pinned one): a technician must act, hammering helps no one.
    #[serde(with = "crate::duration_text")]
    pub refused_retry: Duration,
    /// Connection (TCP + TLS) timeout.
    #[serde(with = "crate::duration_text")]
    pub connect_timeout: Duration,
    /// Timeout of one `Report` call.
    #[serde(with = "crate::duration_text")]
    pub request_timeout: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            batch_max_reports: DEFAULT_BATCH_MAX_REPORTS,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            refused_retry: DEFAULT_REFUSED_RETRY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

// `[backup]` lives with the backup check (`facts::backup::config`).
pub use crate::facts::backup::config::{BackupConfig, DEFAULT_BACKUP_SCAN_INTERVAL};

// The sections of the checks live with their checks; `config` only composes them.
pub use crate::facts::antivirus::config::{AntivirusConfig, DEFAULT_ANTIVIRUS_INTERVAL};
pub use crate::facts::slow_check::DEFAULT_CHECK_COMMAND_TIMEOUT;
pub use crate::facts::software::config::{DEFAULT_SOFTWARE_INTERVAL, SoftwareConfig, WatchEntry};
pub use crate::facts::updates::config::{DEFAULT_UPDATES_INTERVAL, UpdatesConfig};

/// One problem of a configuration text, with its line (1-based) when it concerns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn unplaced(message: impl Into<String>) -> Self {
        Problem {
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found in one configuration text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Problem>);

impl ConfigErrors {
    /// The problems' messages, without their lines.
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(|p| p.message.clone()).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}: ", if n == 1 { "" } else { "s" })?;
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {errors}")]
    Invalid { path: String, errors: ConfigErrors },
}

/// Reads and validates a config file for running. Unlike [`parse_config`], a section this
/// version does not know is only logged: a config written for a newer agent must not stop an
/// older one from reporting (`check-config` still flags it).
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let (mut config, unknown) =
        parse_text(&text, Source::Local, &[]).map_err(|errors| LoadError::Invalid {
            path: path.display().to_string(),
            errors,
        })?;
    for section in unknown {
        tracing::warn!(path = %path.display(), section, "config section not known to this agent version: ignored");
    }
    config.local_text = LocalText(Some(text));
    Ok(config)
}

/// Parses and validates a config text, collecting every problem instead of stopping at the
/// first: each section is decoded on its own, then the values are checked together. Unknown
/// sections are problems too.
pub fn parse_config(text: &str) -> Result<Config, ConfigErrors> {
    let (config, unknown) = parse_text(text, Source::Local, &[])?;
    if unknown.is_empty() {
        return Ok(config);
    }
    Err(ConfigErrors(
        unknown
            .iter()
            .map(|key| Problem {
                line: line_of(text, key),
                message: unknown_section(key),
            })
            .collect(),
    ))
}

fn unknown_section(key: &str) -> String {
    format!("unknown section [{key}] (known: {})", SECTIONS.join(", "))
}

/// The config of a text from `source`, and the names of the sections it did not know
/// (`ignored` ones aside: the collector's own `[clinic]`). Every problem has its line when it
/// concerns one.
pub fn parse_text(
    text: &str,
    source: Source,
    ignored: &[&str],
) -> Result<(Config, Vec<String>), ConfigErrors> {
    let doc = toml::de::DeTable::parse(text).map_err(|e| {
        ConfigErrors(vec![Problem {
            line: e.span().map(|s| line_at(text, s.start)),
            message: one_line(&e.message()),
        }])
    })?;
    let table = doc.get_ref();
    let keys: Vec<String> = table.keys().map(|k| k.get_ref().to_string()).collect();
    let unknown: Vec<String> = keys
        .iter()
        .filter(|key| !SECTIONS.contains(&key.as_str()) && !ignored.contains(&key.as_str()))
        .cloned()
        .collect();
    let mut problems = Vec::new();
    let mut section_problem = |name: &str, e: toml::de::Error| {
        // The key the error is about, when its span says: `[collection] snapshot_interval: ...`.
        let key = e
            .span()
            .and_then(|span| table.get(name).and_then(|v| key_at(v, &span, "")));
        let at = match key {
            Some(key) => format!("[{name}] {key}"),
            None => format!("[{name}]"),
        };
        problems.push(Problem {
            line: e
                .span()
                .map(|s| line_at(text, s.start))
                .or_else(|| line_of(text, name)),
            message: format!("{at}: {}", one_line(&e.message())),
        });
    };
    let config = Config {
        collection: section(table, "collection", &mut section_problem),
        outbox: section(table, "outbox", &mut section_problem),
        sender: section(table, "sender", &mut section_problem),
        updates: section(table, "updates", &mut section_problem),
        antivirus: section(table, "antivirus", &mut section_problem),
        software: section(table, "software", &mut section_problem),
        lan: section(table, "lan", &mut section_problem),
        backup: section(table, "backup", &mut section_problem),
        central: section(table, "central", &mut section_problem),
        local_text: LocalText::default(),
    };
    if source == Source::Central {
        for key in keys
            .iter()
            .filter(|k| LOCAL_ONLY_SECTIONS.contains(&k.as_str()))
        {
            problems.push(Problem {
                line: line_of(text, key),
                message: format!(
                    "[{key}] is set only in the agent's own agent.toml, never centrally"
                ),
            });
        }
        if config.backup.spool_dir.is_some() {
            problems.push(Problem {
                line: line_of(text, "backup.spool_dir"),
                message: "backup.spool_dir is set only in the agent's own agent.toml (scripts \
                          on the machine write there)"
                    .to_owned(),
            });
        }
    }
    problems.extend(validate(&config).into_iter().map(|message| Problem {
        line: message_path(&message).and_then(|path| line_of(text, path)),
        message,
    }));
    if problems.is_empty() {
        Ok((config, unknown))
    } else {
        // Unknown sections first: a misspelt section name explains the defaults that follow.
        let mut all: Vec<Problem> = unknown
            .iter()
            .map(|key| Problem {
                line: line_of(text, key),
                message: unknown_section(key),
            })
            .collect();
        all.extend(problems);
        Err(ConfigErrors(all))
    }
}

fn section<T: Default + for<'de> Deserialize<'de>>(
    table: &toml::de::DeTable<'_>,
    name: &str,
    problem: &mut impl FnMut(&str, toml::de::Error),
) -> T {
    let Some(value) = table.get(name) else {
        return T::default();
    };
    match T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
        Ok(parsed) => parsed,
        Err(e) => {
            problem(name, e);
            T::default()
        }
    }
}

/// The deepest key under `value` whose value holds `span` (`jobs[0].every`).
fn key_at(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    span: &std::ops::Range<usize>,
    prefix: &str,
) -> Option<String> {
    let inside = |s: std::ops::Range<usize>| s.start <= span.start && span.end <= s.end;
    match value.get_ref() {
        toml::de::DeValue::Table(table) => table.iter().find_map(|(k, v)| {
            if !inside(v.span()) {
                return None;
            }
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            key_at(v, span, &path).or(Some(path))
        }),
        toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            let path = format!("{prefix}[{i}]");
            inside(v.span()).then(|| key_at(v, span, &path).unwrap_or(path))
        }),
        _ => None,
    }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// The line of a key path such as `lan.targets[2].address` in `text` (of its deepest part
/// found), if the text names it.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut current: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let found = match current.map(toml::Spanned::get_ref) {
            None => doc.get_ref().get(key),
            Some(toml::de::DeValue::Table(table)) => table.get(key),
            Some(_) => None,
        };
        let Some(mut value) = found else {
            break;
        };
        if let Some(i) = index
            && let toml::de::DeValue::Array(items) = value.get_ref()
            && let Some(item) = items.get(i)
        {
            value = item;
        }
        span = Some(value.span());
        current = Some(value);
    }
    span.map(|s| line_at(text, s.start))
}

/// The key path a validation message starts with: `lan.interval = 5s ...` or
/// `backup.jobs[0]: ...`.
fn message_path(message: &str) -> Option<&str> {
    let token = message.split([' ', ':']).next()?;
    let token = token.trim_start_matches('[').trim_end_matches(']');
    let valid = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    valid.then_some(token)
}

/// toml's messages span several lines with a source excerpt; keep them on one.
fn one_line(e: &dyn fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that need more than one field's type.
pub fn validate(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if config.collection.snapshot_interval < MIN_SNAPSHOT_INTERVAL {
        problems.push(format!(
            "collection.snapshot_interval = {} is below the minimum of {}",
            humantime::format_duration(config.collection.snapshot_interval),
            humantime::format_duration(MIN_SNAPSHOT_INTERVAL),
        ));
    }
    if config.outbox.max_bytes < MIN_OUTBOX_BYTES {
        problems.push(format!(
            "outbox.max_bytes = {} is below the minimum of {MIN_OUTBOX_BYTES}",
            config.outbox.max_bytes
        ));
    }
    let batch = config.sender.batch_max_reports;
    if batch == 0 || batch > vigie_proto::MAX_REPORTS_PER_BATCH {
        problems.push(format!(
            "sender.batch_max_reports = {batch} must be between 1 and {}",
            vigie_proto::MAX_REPORTS_PER_BATCH
        ));
    }
    problems.extend(config.lan.validate());
    problems.extend(config.updates.problems());
    problems.extend(config.antivirus.problems());
    problems.extend(config.software.problems());
    let s = &config.sender;
    if s.backoff_initial.is_zero() {
        problems.push("sender.backoff_initial must be more than zero".to_owned());
    }
    if s.backoff_max < s.backoff_initial {
        problems.push(format!(
            "sender.backoff_max = {} is shorter than sender.backoff_initial = {}",
            humantime::format_duration(s.backoff_max),
            humantime::format_duration(s.backoff_initial),
        ));
    }
    problems.extend(crate::facts::backup::declared::problems(&config.backup));
    problems.extend(config.central.validate());
    if s.refused_retry.is_zero() {
        problems.push("sender.refused_retry must be more than zero".to_owned());
    }
    for (name, value) in [
        ("sender.connect_timeout", s.connect_timeout),
        ("sender.request_timeout", s.request_timeout),
    ] {
        if value.is_zero() {
            problems.push(format!("{name} must be more than zero"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(parse_config(""), Ok(Config::default()));
    }

    #[test]
    fn module_doc_example_parses_to_the_defaults() {
        let example = r#"
            [collection]
            snapshot_interval = "5m"
            [outbox]
            max_bytes = 268435456
            [sender]
            batch_max_reports = 500
            backoff_initial = "1s"
            backoff_max = "5m"
            refused_retry = "30m"
            connect_timeout = "10s"
            request_timeout = "60s"
        "#;
        assert_eq!(parse_config(example), Ok(Config::default()));
    }

    #[test]
    fn values_override_defaults() {
        let config =
            parse_config("[collection]\nsnapshot_interval = \"1h 30m\"\n").expect("valid config");
        assert_eq!(
            config.collection.snapshot_interval,
            Duration::from_secs(5400)
        );
        assert_eq!(config.sender, SenderConfig::default());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [colection]
            [collection]
            snapshot_interval = "soon"
            [outbox]
            max_bytes = 10
            [sender]
            batch_max_reports = 0
            backoff_initial = "1m"
            backoff_max = "10s"
        "#;
        let errors = parse_config(text).expect_err("invalid config").messages();
        let expect = [
            "unknown section [colection]",
            "[collection] snapshot_interval: invalid duration \"soon\"",
            "outbox.max_bytes = 10",
            "sender.batch_max_reports = 0",
            "sender.backoff_max = 10s is shorter",
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expect) {
            assert!(error.starts_with(expected), "{error:?} !~ {expected:?}");
        }
    }

    #[test]
    fn every_problem_has_its_line() {
        let text = "[collection]\nsnapshot_interval = \"soon\"\n[lan]\ninterval = \"1s\"\n\n[[backup.jobs]]\nname = \"x\"\n[nonsense]\n";
        let errors = parse_config(text).expect_err("invalid").0;
        let lines: Vec<Option<usize>> = errors.iter().map(|p| p.line).collect();
        assert_eq!(lines.len(), 5, "{errors:#?}");
        for (start, line) in [
            ("unknown section [nonsense]", 8),
            ("[collection] snapshot_interval: invalid duration", 2),
            ("lan.interval = 1s", 4),
            ("lan.probe_timeout", 3),
            ("backup.jobs[0]: give a schedule", 6),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|p| p.message.starts_with(start) && p.line == Some(line)),
                "{start} at line {line}: {errors:#?}"
            );
        }
        let syntax = parse_config("[lan]\ninterval = \n").expect_err("syntax").0;
        assert_eq!(syntax[0].line, Some(2), "{syntax:?}");
    }

    #[test]
    fn running_tolerates_a_section_of_a_newer_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "[future]\nx = 1\n[outbox]\nmax_bytes = 2097152\n").expect("write");
        let config = load(&path).expect("runs");
        assert_eq!(config.outbox.max_bytes, 2 * 1024 * 1024);
        let errors = parse_config("[future]\n")
            .expect_err("check-config flags it")
            .messages();
        assert!(
            errors[0].starts_with("unknown section [future]"),
            "{errors:?}"
        );
    }

    #[test]
    fn slow_checks_have_named_defaults_and_are_validated() {
        let config = parse_config("[[software.watch]]\nname = \"Weda\"\npattern = \"weda*\"\n")
            .expect("valid config");
        assert_eq!(config.updates.interval, DEFAULT_UPDATES_INTERVAL);
        assert_eq!(config.antivirus.interval, DEFAULT_ANTIVIRUS_INTERVAL);
        assert_eq!(config.software.interval, DEFAULT_SOFTWARE_INTERVAL);
        assert_eq!(config.software.watch[0].pattern, "weda*");
        let text = r#"
            [updates]
            interval = "5s"
            [antivirus]
            command_timeout = "10m"
            [[software.watch]]
            name = "Weda"
            pattern = ""
            [[software.watch]]
            name = "weda"
            pattern = "x"
        "#;
        let errors = parse_config(text).expect_err("invalid config").messages();
        let expect = [
            "updates.interval = 5s is below",
            "antivirus.command_timeout = 10m must be",
            "software.watch[0]: pattern is empty",
            "software.watch[1]: name \"weda\" is listed twice",
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for expected in expect {
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{expected:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn unknown_field_and_bad_syntax_are_problems() {
        let errors = parse_config("[sender]\nbatch_max = 3\n")
            .expect_err("unknown field")
            .messages();
        assert!(errors[0].contains("batch_max"), "{errors:?}");
        assert!(parse_config("[sender").is_err());
    }
}
