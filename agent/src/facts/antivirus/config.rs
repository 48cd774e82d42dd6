//! `[antivirus]` of the agent config, kept with the check that reads it.

use std::time::Duration;

use serde::Deserialize;

use crate::facts::slow_check::{self, DEFAULT_CHECK_COMMAND_TIMEOUT};

/// Default interval of the antivirus check (`[antivirus]`).
pub const DEFAULT_ANTIVIRUS_INTERVAL: Duration = Duration::from_secs(3600);

/// `[antivirus]`: Defender, Security Center products, ClamAV.
///
/// ```toml
/// [antivirus]
/// enabled = true
/// interval = "1h"
/// command_timeout = "90s"
/// clamav_db_dir = "/var/lib/clamav"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AntivirusConfig {
    pub enabled: bool,
    #[serde(with = "crate::duration_text")]
    pub interval: Duration,
    #[serde(with = "crate::duration_text")]
    pub command_timeout: Duration,
    /// Where freshclam keeps the ClamAV databases (Linux).
    pub clamav_db_dir: std::path::PathBuf,
}

impl Default for AntivirusConfig {
    fn default() -> Self {
        AntivirusConfig {
            enabled: true,
            interval: DEFAULT_ANTIVIRUS_INTERVAL,
            command_timeout: DEFAULT_CHECK_COMMAND_TIMEOUT,
            clamav_db_dir: std::path::PathBuf::from("/var/lib/clamav"),
        }
    }
}

impl AntivirusConfig {
    pub fn problems(&self) -> Vec<String> {
        slow_check::problems("antivirus", self.interval, self.command_timeout)
    }
}
