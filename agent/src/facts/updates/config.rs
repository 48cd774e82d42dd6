//! `[updates]` of the agent config, kept with the check that reads it.

use std::time::Duration;

use serde::Deserialize;

use crate::facts::slow_check::{self, DEFAULT_CHECK_COMMAND_TIMEOUT};

/// Default interval of the OS update check (`[updates]`).
pub const DEFAULT_UPDATES_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// `[updates]`: pending OS updates, last install, reboot pending (apt, dnf, Windows Update).
///
/// ```toml
/// [updates]
/// enabled = true
/// interval = "6h"
/// command_timeout = "90s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatesConfig {
    pub enabled: bool,
    #[serde(with = "crate::duration_text")]
    pub interval: Duration,
    /// Deadline of each command the check runs.
    #[serde(with = "crate::duration_text")]
    pub command_timeout: Duration,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            enabled: true,
            interval: DEFAULT_UPDATES_INTERVAL,
            command_timeout: DEFAULT_CHECK_COMMAND_TIMEOUT,
        }
    }
}

impl UpdatesConfig {
    pub fn problems(&self) -> Vec<String> {
        slow_check::problems("updates", self.interval, self.command_timeout)
    }
}
