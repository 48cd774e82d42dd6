//! The `[alerts]` section of `collector.toml`: when rules fire and how alerts live. Every field
//! has a named default; whole numbers with their unit in the name, so the file reads plainly.

use serde::{Deserialize, Serialize};

pub const DEFAULT_EVALUATE_EVERY_SECONDS: u64 = 60;
/// Evaluations in a row without the condition before an alert resolves itself.
pub const DEFAULT_CLEAR_EVALUATIONS: u32 = 2;
pub const DEFAULT_FLAPPING_WINDOW_MINUTES: u64 = 60;
/// Openings and resolutions within the window that make a problem "flapping".
pub const DEFAULT_FLAPPING_TRANSITIONS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// How often every agent is re-evaluated (missing backups, silent agents need a timer).
    pub evaluate_every_seconds: u64,
    pub clear_evaluations: u32,
    pub flapping_window_minutes: u64,
    pub flapping_transitions: usize,
    pub backup: BackupThresholds,
    pub os_updates: OsUpdateThresholds,
    pub antivirus: AntivirusThresholds,
    pub disk: DiskThresholds,
    pub lan: LanThresholds,
    pub silence: SilenceThresholds,
    pub clock: ClockThresholds,
    /// Business software reference versions, validated by the vendor.
    pub software: Vec<SoftwareReference>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluate_every_seconds: DEFAULT_EVALUATE_EVERY_SECONDS,
            clear_evaluations: DEFAULT_CLEAR_EVALUATIONS,
            flapping_window_minutes: DEFAULT_FLAPPING_WINDOW_MINUTES,
            flapping_transitions: DEFAULT_FLAPPING_TRANSITIONS,
            backup: BackupThresholds::default(),
            os_updates: OsUpdateThresholds::default(),
            antivirus: AntivirusThresholds::default(),
            disk: DiskThresholds::default(),
            lan: LanThresholds::default(),
            silence: SilenceThresholds::default(),
            clock: ClockThresholds::default(),
            software: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupThresholds {
    /// Added to a job's interval before it counts as missing (daily job: 24 h + 2 h = 26 h).
    pub grace_minutes: u64,
    /// Interval assumed for a job seen in results but not declared.
    pub default_interval_hours: u64,
    /// A result is suspicious when bytes or files fall more than this below the median.
    pub suspicious_drop_percent: u64,
    /// ... or when it took more than this many times the median duration.
    pub suspicious_duration_factor: u64,
    /// Successful runs the median is taken over.
    pub median_of_last: usize,
    /// Successful runs needed before a result can look suspicious.
    pub min_history: usize,
}

impl Default for BackupThresholds {
    fn default() -> Self {
        BackupThresholds {
            grace_minutes: 120,
            default_interval_hours: 24,
            suspicious_drop_percent: 50,
            suspicious_duration_factor: 3,
            median_of_last: 7,
            min_history: 3,
        }
    }
}

/// A machine whose clock is off breaks TLS and Kerberos, and stamps medical records wrongly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClockThresholds {
    /// Warning beyond this many seconds ahead or behind the collector (Kerberos allows 300).
    pub max_offset_seconds: u64,
    /// Critical beyond this many: certificates and tokens stop working.
    pub critical_offset_seconds: u64,
}

impl Default for ClockThresholds {
    fn default() -> Self {
        ClockThresholds {
            max_offset_seconds: 120,
            critical_offset_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OsUpdateThresholds {
    pub pending_days: u64,
    pub security_pending_days: u64,
    pub reboot_pending_days: u64,
}

impl Default for OsUpdateThresholds {
    fn default() -> Self {
        OsUpdateThresholds {
            pending_days: 30,
            security_pending_days: 7,
            reboot_pending_days: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AntivirusThresholds {
    pub signatures_max_age_days: u64,
}

impl Default for AntivirusThresholds {
    fn default() -> Self {
        AntivirusThresholds {
            signatures_max_age_days: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskThresholds {
    /// Warning below this share of free space...
    pub min_free_percent: u64,
    /// ... critical when also below this many GiB free (a big disk at 9 % still has room).
    pub min_free_gib: u64,
}

impl Default for DiskThresholds {
    fn default() -> Self {
        DiskThresholds {
            min_free_percent: 10,
            min_free_gib: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LanThresholds {
    /// A device down for longer alerts (imaging modality and PACS: critical).
    pub down_after_minutes: u64,
    pub supply_low_percent: u64,
    pub ups_charge_low_percent: u64,
}

impl Default for LanThresholds {
    fn default() -> Self {
        LanThresholds {
            down_after_minutes: 10,
            supply_low_percent: 10,
            ups_charge_low_percent: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SilenceThresholds {
    /// Servers and imaging machines are on all the time.
    pub server_after_minutes: u64,
    /// Workstations: counted only while the clinic is open.
    pub workstation_after_minutes: u64,
}

impl Default for SilenceThresholds {
    fn default() -> Self {
        SilenceThresholds {
            server_after_minutes: 30,
            workstation_after_minutes: 120,
        }
    }
}

/// Software whose name matches `pattern` (case-insensitive, `*` wildcard) must be at least
/// `min_version`; a newer version the vendor has not certified yet is not an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareReference {
    pub pattern: String,
    pub min_version: String,
}

impl AlertsConfig {
    /// Problems found, as `alerts.<field> ...` sentences.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.evaluate_every_seconds == 0 {
            problems.push("alerts.evaluate_every_seconds must be at least 1".to_owned());
        }
        if self.clear_evaluations == 0 {
            problems.push("alerts.clear_evaluations must be at least 1".to_owned());
        }
        if self.flapping_transitions < 2 {
            problems.push("alerts.flapping_transitions must be at least 2".to_owned());
        }
        if self.backup.default_interval_hours == 0 {
            problems.push("alerts.backup.default_interval_hours must be at least 1".to_owned());
        }
        if self.backup.suspicious_drop_percent > 100 {
            problems.push("alerts.backup.suspicious_drop_percent is at most 100".to_owned());
        }
        if self.backup.median_of_last == 0 || self.backup.min_history == 0 {
            problems
                .push("alerts.backup.median_of_last and min_history must be at least 1".to_owned());
        }
        if self.disk.min_free_percent > 100 {
            problems.push("alerts.disk.min_free_percent is at most 100".to_owned());
        }
        for (i, r) in self.software.iter().enumerate() {
            if r.pattern.trim().is_empty() || r.min_version.trim().is_empty() {
                problems.push(format!(
                    "alerts.software[{i}] needs a pattern and a min_version"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[alerts]` section as an MSP would write it in `collector.toml`.
    const EXAMPLE: &str = r#"
evaluate_every_seconds = 60
clear_evaluations = 2

[backup]
grace_minutes = 120            # daily job: missing after 26 h
suspicious_drop_percent = 50

[lan]
down_after_minutes = 10

[silence]
server_after_minutes = 30
workstation_after_minutes = 120

[[software]]
pattern = "Weda*"
min_version = "4.2.1"

[[software]]
pattern = "*Sesam-Vitale*"
min_version = "1.40.14"
"#;

    #[test]
    fn example_parses_and_fills_defaults() {
        let config: AlertsConfig = toml::from_str(EXAMPLE).expect("parses");
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert_eq!(config.software.len(), 2);
        assert_eq!(config.os_updates, OsUpdateThresholds::default());
        let bad = AlertsConfig {
            clear_evaluations: 0,
            software: vec![SoftwareReference {
                pattern: String::new(),
                min_version: "1".into(),
            }],
            ..AlertsConfig::default()
        };
        assert_eq!(bad.problems().len(), 2);
    }
}
