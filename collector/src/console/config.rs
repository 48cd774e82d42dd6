//! `[console]` in `collector.toml`: where the technician console listens, its certificate,
//! and how sessions and failed logins are handled.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default console address: loopback, so a fresh collector shows nothing to the network.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:8443";
/// A session lasts a working day.
pub const DEFAULT_SESSION_HOURS: u64 = 12;
/// Bad passwords in a row before the account is locked for a while.
pub const DEFAULT_MAX_FAILED_LOGINS: u32 = 5;
pub const DEFAULT_LOCKOUT_MINUTES: u64 = 15;
/// How often an open page asks for fresh content.
pub const DEFAULT_REFRESH_SECONDS: u64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleConfig {
    /// `false` starts no console (the admin CLI and API tokens stay).
    pub enabled: bool,
    /// HTTPS address of the console and of the JSON API (`/api/v1`).
    pub listen: SocketAddr,
    /// A certificate chain (PEM) and its key that the admin provides, for a name technicians'
    /// browsers already trust; both empty: the collector's server certificate, signed by its
    /// CA (`ca.crt`, to import into the browsers).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub session_hours: u64,
    pub max_failed_logins: u32,
    pub lockout_minutes: u64,
    pub refresh_seconds: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            listen: DEFAULT_CONSOLE_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443))),
            cert_file: None,
            key_file: None,
            session_hours: DEFAULT_SESSION_HOURS,
            max_failed_logins: DEFAULT_MAX_FAILED_LOGINS,
            lockout_minutes: DEFAULT_LOCKOUT_MINUTES,
            refresh_seconds: DEFAULT_REFRESH_SECONDS,
        }
    }
}

impl ConsoleConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.cert_file.is_some() != self.key_file.is_some() {
            problems.push("console.cert_file and console.key_file go together".to_owned());
        }
        for (name, value, max) in [
            ("session_hours", self.session_hours, 24 * 31),
            ("max_failed_logins", u64::from(self.max_failed_logins), 1000),
            ("lockout_minutes", self.lockout_minutes, 24 * 60),
            ("refresh_seconds", self.refresh_seconds, 3600),
        ] {
            if value == 0 || value > max {
                problems.push(format!(
                    "console.{name} = {value} must be between 1 and {max}"
                ));
            }
        }
        problems
    }
}
