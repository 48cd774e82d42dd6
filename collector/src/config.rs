//! `collector.toml` and the data directory layout: what `init` writes and `serve` reads.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alerts::thresholds::AlertsConfig;
use crate::escalation::EscalationConfig;
use crate::report::schedule::ReportsConfig;
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
    /// `[reports]`: the monthly clinic reports' schedule (see `report/schedule.rs`).
    #[serde(skip_serializing_if = "ReportsConfig::is_default")]
    pub reports: ReportsConfig,
    /// `[console]`: the technician console and JSON API (see `console/config.rs`).
    pub console: crate::console::ConsoleConfig,
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

    /// Why `build` refuses these switches, if it does. Only `vigie-collector-bench` accepts
    /// them; the shipped binary refuses them even when built with the `bench` feature, since
    /// cargo unifies features across a workspace build.
    pub fn refusal(&self, build: Build, path: &Path) -> Option<String> {
        // Without the feature even the benchmark binary's name cannot turn them on.
        if self.is_default() || (build == Build::Bench && cfg!(feature = "bench")) {
            return None;
        }
        let mut set = Vec::new();
        if self.discard_reports {
            set.push("discard_reports = true (reports acknowledged and never stored)");
        }
        if !self.fsync {
            set.push("fsync = false (acknowledged reports may not survive a power cut)");
        }
        Some(format!(
            "{} has benchmark switches in [bench]: {}; this collector would acknowledge reports it \
             has not stored durably, so it refuses to start. Remove the [bench] section \
             (only vigie-collector-bench, built with `--features bench` for vigie-bench, accepts it)",
            path.display(),
            set.join(", ")
        ))
    }
}

/// Which binary reads the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `vigie-collector`, what is installed at an MSP.
    Shipped,
    /// `vigie-collector-bench` (`--features bench`): accepts `[bench]` switches.
    Bench,
}

/// Largest `Enroll` request: a token and a CSR, a few KiB.
pub const DEFAULT_MAX_ENROLL_MESSAGE_BYTES: usize = 16 * 1024;
/// TLS handshakes in progress at once, all clients together, and from one address.
pub const DEFAULT_MAX_TLS_HANDSHAKES: usize = 64;
pub const DEFAULT_MAX_TLS_HANDSHAKES_PER_ADDRESS: usize = 16;
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECONDS: u64 = 10;
/// Connections of enrolled agents (with a certificate): their own budget.
pub const DEFAULT_MAX_AGENT_CONNECTIONS: usize = 16_384;
/// Connections without a certificate (enrollment only), all together and from one address.
pub const DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS: usize = 128;
pub const DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 16;
/// A connection without a certificate is closed after this long without a byte from the
/// client, and after this long in any case (an enrollment takes a second).
pub const DEFAULT_UNAUTHENTICATED_IDLE_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_UNAUTHENTICATED_MAX_LIFETIME_SECONDS: u64 = 60;
/// New connections without a certificate, and `Enroll` calls, per source address per minute.
pub const DEFAULT_UNAUTHENTICATED_PER_ADDRESS_PER_MINUTE: u32 = 60;
pub const DEFAULT_ENROLL_PER_ADDRESS_PER_MINUTE: u32 = 30;

/// Limits on what clients may send and hold, so an oversized message is refused with a status,
/// not allocated, and a client without a certificate cannot exhaust the collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest encoded gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most reports accepted in one batch; a larger batch is refused with `InvalidArgument`.
    pub max_reports_per_batch: usize,
    /// Largest `Enroll` request, in bytes; refused from its length prefix, before its body is
    /// read.
    pub max_enroll_message_bytes: usize,
    /// TLS handshakes in progress at once; a connection beyond is closed at once.
    pub max_tls_handshakes: usize,
    /// The same, from one source address (an IPv6 /64 counts as one address).
    pub max_tls_handshakes_per_address: usize,
    /// A handshake not done after this long is abandoned.
    pub tls_handshake_timeout_seconds: u64,
    /// Connections with a valid agent certificate, counted apart so that clients without one
    /// never take their place.
    pub max_agent_connections: usize,
    /// Connections without a certificate (they may only enroll).
    pub max_unauthenticated_connections: usize,
    /// The same, from one source address.
    pub max_unauthenticated_per_address: usize,
    /// A connection without a certificate is closed after this long without a byte from the
    /// client...
    pub unauthenticated_idle_timeout_seconds: u64,
    /// ...and after this long in any case.
    pub unauthenticated_max_lifetime_seconds: u64,
    /// New connections without a certificate accepted per source address per minute (bursts
    /// up to that number).
    pub unauthenticated_per_address_per_minute: u32,
    /// `Enroll` calls accepted per source address per minute; beyond, `ResourceExhausted`.
    pub enroll_per_address_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: vigie_proto::MAX_MESSAGE_BYTES,
            max_reports_per_batch: vigie_proto::MAX_REPORTS_PER_BATCH,
            max_enroll_message_bytes: DEFAULT_MAX_ENROLL_MESSAGE_BYTES,
            max_tls_handshakes: DEFAULT_MAX_TLS_HANDSHAKES,
            max_tls_handshakes_per_address: DEFAULT_MAX_TLS_HANDSHAKES_PER_ADDRESS,
            tls_handshake_timeout_seconds: DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECONDS,
            max_agent_connections: DEFAULT_MAX_AGENT_CONNECTIONS,
            max_unauthenticated_connections: DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS,
            max_unauthenticated_per_address: DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS,
            unauthenticated_idle_timeout_seconds: DEFAULT_UNAUTHENTICATED_IDLE_TIMEOUT_SECONDS,
            unauthenticated_max_lifetime_seconds: DEFAULT_UNAUTHENTICATED_MAX_LIFETIME_SECONDS,
            unauthenticated_per_address_per_minute: DEFAULT_UNAUTHENTICATED_PER_ADDRESS_PER_MINUTE,
            enroll_per_address_per_minute: DEFAULT_ENROLL_PER_ADDRESS_PER_MINUTE,
        }
    }
}

impl Limits {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_message_bytes < 1024 {
            problems.push(format!(
                "limits.max_message_bytes = {} is too small (at least 1024)",
                self.max_message_bytes
            ));
        }
        if self.max_reports_per_batch == 0 {
            problems.push("limits.max_reports_per_batch must be at least 1".to_owned());
        }
        let enroll = self.max_enroll_message_bytes;
        if enroll < 1024 || (self.max_message_bytes >= 1024 && enroll > self.max_message_bytes) {
            problems.push(format!(
                "limits.max_enroll_message_bytes = {} must be between 1024 and max_message_bytes",
                self.max_enroll_message_bytes
            ));
        }
        let counts = [
            ("max_tls_handshakes", self.max_tls_handshakes as u64),
            (
                "max_tls_handshakes_per_address",
                self.max_tls_handshakes_per_address as u64,
            ),
            (
                "tls_handshake_timeout_seconds",
                self.tls_handshake_timeout_seconds,
            ),
            ("max_agent_connections", self.max_agent_connections as u64),
            (
                "max_unauthenticated_connections",
                self.max_unauthenticated_connections as u64,
            ),
            (
                "max_unauthenticated_per_address",
                self.max_unauthenticated_per_address as u64,
            ),
            (
                "unauthenticated_idle_timeout_seconds",
                self.unauthenticated_idle_timeout_seconds,
            ),
            (
                "unauthenticated_max_lifetime_seconds",
                self.unauthenticated_max_lifetime_seconds,
            ),
            (
                "unauthenticated_per_address_per_minute",
                u64::from(self.unauthenticated_per_address_per_minute),
            ),
            (
                "enroll_per_address_per_minute",
                u64::from(self.enroll_per_address_per_minute),
            ),
        ];
        for (name, value) in counts {
            if value == 0 {
                problems.push(format!("limits.{name} must be at least 1"));
            }
        }
        problems
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
            reports: ReportsConfig::default(),
            console: Default::default(),
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
        problems.extend(self.limits.problems());
        problems.extend(self.alerts.problems());
        problems.extend(self.escalation.problems());
        problems.extend(self.retention.problems());
        problems.extend(self.reports.problems(self));
        problems.extend(self.console.problems());
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

    /// What `serve` reads: [`CollectorConfig::load`], then the secrets given as `*_file` or
    /// `*_env` (only the serving process has them: admin commands run without its credentials).
    pub fn load_with_secrets(data_dir: &DataDir) -> Result<Self, ConfigError> {
        let mut config = Self::load(data_dir)?;
        let problems = config.escalation.resolve_secrets();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: data_dir.config(),
                problems: ConfigProblems(problems),
            })
        }
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
    fn documented_limits_are_the_defaults() {
        let text = include_str!("../../deploy/collector-limits.toml");
        let config = CollectorConfig::from_toml(text, Path::new("collector-limits.toml"))
            .expect("the example parses");
        assert_eq!(config.limits, Limits::default());
        let written = CollectorConfig::default().to_toml().expect("serializes");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(" = "))
        {
            assert!(written.contains(line), "init writes {line:?}:\n{written}");
        }
    }

    #[test]
    fn shipped_binary_refuses_bench_switches() {
        let path = Path::new("collector.toml");
        let unsafe_switches = BenchSwitches {
            discard_reports: true,
            fsync: false,
        };
        let refusal = unsafe_switches
            .refusal(Build::Shipped, path)
            .expect("refused");
        assert!(refusal.contains("discard_reports") && refusal.contains("fsync = false"));
        assert!(
            BenchSwitches::default()
                .refusal(Build::Shipped, path)
                .is_none()
        );
        assert_eq!(
            unsafe_switches.refusal(Build::Bench, path).is_none(),
            cfg!(feature = "bench")
        );
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
