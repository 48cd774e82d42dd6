//! `collector.toml` and the data directory layout: what `init` writes and `serve` reads.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alerts::thresholds::AlertsConfig;
use crate::escalation::EscalationConfig;
use crate::retention::RetentionConfig;

/// Name of the configuration file inside the data directory.
pub const CONFIG_FILE: &str = "collector.toml";

/// Default agent listener address.
pub const DEFAULT_AGENT_LISTEN: &str = "127.0.0.1:7443";
/// Default admin listener address (loopback: the admin CLI runs on the collector's host).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7444";

/// The collector's configuration. Unknown sections are tolerated on purpose: later versions add
/// sections, and an older binary reading a newer file should still start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectorConfig {
    /// Where agents connect (gRPC over TLS): enrollment and report ingestion.
    pub agent_listen: SocketAddr,
    /// `HOST:PORT` that agents use to reach `agent_listen` (written into enrollment tokens and
    /// into the server certificate). Empty means "same as `agent_listen`".
    pub public_addr: String,
    /// Where the admin commands connect (gRPC over mutual TLS). Keep it on loopback.
    pub admin_listen: SocketAddr,
    /// Explicit limits on what agents may send.
    pub limits: Limits,
    /// Alert rules' thresholds and the alert lifecycle (see `alerts/thresholds.rs`).
    pub alerts: AlertsConfig,
    /// `[retention]`: how long reports, alert events and resolved alerts are kept (see
    /// `retention.rs`).
    pub retention: RetentionConfig,
    /// `[bench]`: benchmark-only switches; absent from files `init` writes.
    #[serde(skip_serializing_if = "BenchSwitches::is_default")]
    pub bench: BenchSwitches,
    /// `[escalation]`: alerts to tickets (see `escalation/config.rs` and
    /// `deploy/collector-escalation.toml`); absent from files `init` writes (no sink, no ticket).
    #[serde(skip_serializing_if = "EscalationConfig::is_default")]
    pub escalation: EscalationConfig,
}

/// `[bench]`: switches for `vigie-bench` only (see `docs/PERFORMANCE.md`). The defaults are
/// the only safe values: with `discard_reports` a report is acknowledged and never stored;
/// without `fsync` an acknowledged report may not survive a power cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchSwitches {
    /// Acknowledge valid reports without storing them: the "no storage" limit. Default false.
    pub discard_reports: bool,
    /// `fsync` sled's files after each group-commit flush (`Storage::flush_durably`).
    /// Default true.
    pub fsync: bool,
}

impl Default for BenchSwitches {
    fn default() -> Self {
        BenchSwitches {
            discard_reports: false,
            fsync: true,
        }
    }
}

impl BenchSwitches {
    pub fn is_default(&self) -> bool {
        *self == BenchSwitches::default()
    }
}

/// Limits on agent messages, so an oversized message is refused with a status, not allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest encoded gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most reports accepted in one batch; a larger batch is refused with `InvalidArgument`.
    pub max_reports_per_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: vigie_proto::MAX_MESSAGE_BYTES,
            max_reports_per_batch: vigie_proto::MAX_REPORTS_PER_BATCH,
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            agent_listen: default_addr(DEFAULT_AGENT_LISTEN, 7443),
            public_addr: String::new(),
            admin_listen: default_addr(DEFAULT_ADMIN_LISTEN, 7444),
            limits: Limits::default(),
            alerts: AlertsConfig::default(),
            retention: RetentionConfig::default(),
            bench: BenchSwitches::default(),
            escalation: EscalationConfig::default(),
        }
    }
}

fn default_addr(text: &str, port: u16) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigProblems(pub Vec<String>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path} is not valid: {problems}")]
    Invalid {
        path: PathBuf,
        problems: ConfigProblems,
    },
    #[error("cannot serialize the configuration: {0}")]
    Serialize(#[from] toml::ser::Error),
}

impl CollectorConfig {
    /// `public_addr`, or `agent_listen` when none was given.
    pub fn public_addr(&self) -> String {
        if self.public_addr.trim().is_empty() {
            self.agent_listen.to_string()
        } else {
            self.public_addr.trim().to_owned()
        }
    }

    /// The host part of `public_addr` (without brackets for IPv6).
    pub fn public_host(&self) -> String {
        host_of(&self.public_addr())
    }

    /// Checks every field and returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigProblems> {
        let mut problems = Vec::new();
        let public = self.public_addr();
        match public.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => problems.push(format!("public_addr {public:?} is not HOST:PORT")),
        }
        if self.limits.max_message_bytes < 1024 {
            problems.push(format!(
                "limits.max_message_bytes = {} is too small (at least 1024)",
                self.limits.max_message_bytes
            ));
        }
        if self.limits.max_reports_per_batch == 0 {
            problems.push("limits.max_reports_per_batch must be at least 1".to_owned());
        }
        problems.extend(self.alerts.problems());
        problems.extend(self.escalation.problems());
        problems.extend(self.retention.problems());
        if self.agent_listen == self.admin_listen && self.agent_listen.port() != 0 {
            problems.push(format!(
                "agent_listen and admin_listen are the same address ({})",
                self.agent_listen
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigProblems(problems))
        }
    }

    pub fn to_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string_pretty(self)?)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: CollectorConfig =
            toml::from_str(text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        config.validate().map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })?;
        Ok(config)
    }

    /// Reads and validates `DIR/collector.toml`.
    pub fn load(data_dir: &DataDir) -> Result<Self, ConfigError> {
        let path = data_dir.config();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&text, &path)
    }
}

fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// The files of a collector data directory, in one place so nobody spells a path twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DataDir(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn config(&self) -> PathBuf {
        self.0.join(CONFIG_FILE)
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.0.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.0.join("server.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.0.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.0.join("admin.key")
    }
    /// The sled database folder.
    pub fn database(&self) -> PathBuf {
        self.0.join("db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = CollectorConfig::from_toml("", Path::new("x.toml")).expect("parses");
        assert_eq!(config.agent_listen.to_string(), DEFAULT_AGENT_LISTEN);
        assert_eq!(config.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(config.public_addr(), DEFAULT_AGENT_LISTEN);
        assert_eq!(
            config.limits.max_message_bytes,
            vigie_proto::MAX_MESSAGE_BYTES
        );
        assert_eq!(
            config.limits.max_reports_per_batch,
            vigie_proto::MAX_REPORTS_PER_BATCH
        );
    }

    #[test]
    fn written_config_round_trips_and_tolerates_new_sections() {
        let config = CollectorConfig {
            public_addr: "collector.example:7443".into(),
            ..CollectorConfig::default()
        };
        let mut text = config.to_toml().expect("serializes");
        text.push_str("\n[tickets]\nfuture = true\n");
        let back = CollectorConfig::from_toml(&text, Path::new("x.toml")).expect("parses");
        assert_eq!(back, config);
        assert_eq!(back.public_host(), "collector.example");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text =
            "public_addr = \"nope\"\n[limits]\nmax_message_bytes = 1\nmax_reports_per_batch = 0\n";
        let Err(ConfigError::Invalid { problems, .. }) =
            CollectorConfig::from_toml(text, Path::new("x.toml"))
        else {
            panic!("expected invalid config");
        };
        assert_eq!(problems.0.len(), 3, "{problems}");
    }

    #[test]
    fn bench_switches_are_safe_by_default_and_not_written() {
        let config = CollectorConfig::default();
        assert!(config.bench.fsync && !config.bench.discard_reports);
        assert!(!config.to_toml().expect("serializes").contains("bench"));
        let text = "[bench]\nfsync = false\n";
        let parsed = CollectorConfig::from_toml(text, Path::new("x.toml")).expect("parses");
        assert!(!parsed.bench.fsync && !parsed.bench.discard_reports);
    }

    #[test]
    fn ipv6_public_host_loses_its_brackets() {
        let config = CollectorConfig {
            public_addr: "[::1]:7443".into(),
            ..CollectorConfig::default()
        };
        assert_eq!(config.public_host(), "::1");
    }
}
