//! `[software]` of the agent config, kept with the check that reads it.

use std::time::Duration;

use serde::Deserialize;

use crate::facts::slow_check::{self, DEFAULT_CHECK_COMMAND_TIMEOUT};

/// Default interval of the business-software inventory (`[software]`).
pub const DEFAULT_SOFTWARE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// `[software]`: versions of the watched business software (practice management, imaging
/// viewers, Sesam-Vitale / CPS card software). Only installed-program names and versions are
/// read, never anything from those programs' data folders.
///
/// ```toml
/// [software]
/// interval = "24h"
/// [[software.watch]]
/// name = "Weda"            # reported name
/// pattern = "weda*"        # glob on the installed program's name, case-insensitive
/// [[software.watch]]
/// name = "Sesam-Vitale"
/// pattern = "*sesam*vitale*"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftwareConfig {
    pub enabled: bool,
    #[serde(with = "crate::duration_text")]
    pub interval: Duration,
    #[serde(with = "crate::duration_text")]
    pub command_timeout: Duration,
    pub watch: Vec<WatchEntry>,
}

/// One watched program: `pattern` is a case-insensitive glob (`*`, `?`) on the installed name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchEntry {
    pub name: String,
    pub pattern: String,
}

impl Default for SoftwareConfig {
    fn default() -> Self {
        SoftwareConfig {
            enabled: true,
            interval: DEFAULT_SOFTWARE_INTERVAL,
            command_timeout: DEFAULT_CHECK_COMMAND_TIMEOUT,
            watch: Vec::new(),
        }
    }
}

impl SoftwareConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = slow_check::problems("software", self.interval, self.command_timeout);
        let mut names = std::collections::HashSet::new();
        for (i, entry) in self.watch.iter().enumerate() {
            if entry.name.trim().is_empty() {
                problems.push(format!("software.watch[{i}]: name is empty"));
            } else if !names.insert(entry.name.to_lowercase()) {
                problems.push(format!(
                    "software.watch[{i}]: name {:?} is listed twice",
                    entry.name
                ));
            }
            if entry.pattern.trim().is_empty() {
                problems.push(format!("software.watch[{i}]: pattern is empty"));
            }
        }
        problems
    }
}
