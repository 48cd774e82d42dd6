//! The tier policy as data: every rule belongs to a family, every family to a category, and a
//! clinic's tier says which categories alert (CMP0 none, CMP1 backup, CMP3 backup and
//! preventive). A clinic may override single families either way, e.g. a CMP1 clinic that also
//! buys LAN supervision.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vigie_domain::Tier;

/// What the clinic pays to be alerted about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Backup,
    Preventive,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Backup => "backup",
            Category::Preventive => "preventive",
        }
    }
}

/// The categories a tier covers (see `DOMAIN.md`).
pub fn tier_categories(tier: Tier) -> &'static [Category] {
    match tier {
        Tier::Cmp0 => &[],
        Tier::Cmp1 => &[Category::Backup],
        Tier::Cmp3 => &[Category::Backup, Category::Preventive],
    }
}

/// A family of rules, one file in `rules/`; the unit a clinic override switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Backup,
    /// Integrity checks of the backups (`restic check`, `borg check`).
    BackupCheck,
    OsUpdates,
    Antivirus,
    Software,
    Disk,
    Lan,
    AgentSilent,
    Clock,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::Backup,
        Family::BackupCheck,
        Family::OsUpdates,
        Family::Antivirus,
        Family::Software,
        Family::Disk,
        Family::Lan,
        Family::AgentSilent,
        Family::Clock,
    ];

    pub fn category(self) -> Category {
        match self {
            Family::Backup | Family::BackupCheck => Category::Backup,
            _ => Category::Preventive,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Backup => "backup",
            Family::BackupCheck => "backup-check",
            Family::OsUpdates => "os-updates",
            Family::Antivirus => "antivirus",
            Family::Software => "software",
            Family::Disk => "disk",
            Family::Lan => "lan",
            Family::AgentSilent => "agent-silent",
            Family::Clock => "clock",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown rule family {0:?}: expected one of backup, backup-check, os-updates, antivirus, software, disk, lan, agent-silent, clock"
)]
pub struct UnknownFamily(pub String);

impl FromStr for Family {
    type Err = UnknownFamily;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Family::ALL
            .into_iter()
            .find(|f| f.as_str() == wanted)
            .ok_or_else(|| UnknownFamily(s.to_owned()))
    }
}

/// One rule: what a condition is about. Its name is the `rule` field of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    BackupFailed,
    BackupWarning,
    BackupMissing,
    BackupSuspicious,
    BackupCheckFailed,
    BackupCheckMissing,
    OsUpdatesPending,
    SecurityUpdatesPending,
    RebootPending,
    AntivirusRealtimeOff,
    AntivirusSignaturesStale,
    AntivirusMissing,
    SoftwareOutdated,
    DiskLow,
    LanDeviceDown,
    PrinterSupplyLow,
    UpsOnBattery,
    UpsBatteryLow,
    AgentSilent,
    ClockSkew,
}

impl Rule {
    pub const ALL: [Rule; 20] = [
        Rule::BackupFailed,
        Rule::BackupWarning,
        Rule::BackupMissing,
        Rule::BackupSuspicious,
        Rule::BackupCheckFailed,
        Rule::BackupCheckMissing,
        Rule::OsUpdatesPending,
        Rule::SecurityUpdatesPending,
        Rule::RebootPending,
        Rule::AntivirusRealtimeOff,
        Rule::AntivirusSignaturesStale,
        Rule::AntivirusMissing,
        Rule::SoftwareOutdated,
        Rule::DiskLow,
        Rule::LanDeviceDown,
        Rule::PrinterSupplyLow,
        Rule::UpsOnBattery,
        Rule::UpsBatteryLow,
        Rule::AgentSilent,
        Rule::ClockSkew,
    ];

    pub fn family(self) -> Family {
        use Rule::*;
        match self {
            BackupFailed | BackupWarning | BackupMissing | BackupSuspicious => Family::Backup,
            BackupCheckFailed | BackupCheckMissing => Family::BackupCheck,
            OsUpdatesPending | SecurityUpdatesPending | RebootPending => Family::OsUpdates,
            AntivirusRealtimeOff | AntivirusSignaturesStale | AntivirusMissing => Family::Antivirus,
            SoftwareOutdated => Family::Software,
            DiskLow => Family::Disk,
            LanDeviceDown | PrinterSupplyLow | UpsOnBattery | UpsBatteryLow => Family::Lan,
            AgentSilent => Family::AgentSilent,
            ClockSkew => Family::Clock,
        }
    }

    pub fn category(self) -> Category {
        self.family().category()
    }

    pub fn as_str(self) -> &'static str {
        use Rule::*;
        match self {
            BackupFailed => "backup_failed",
            BackupWarning => "backup_warning",
            BackupMissing => "backup_missing",
            BackupSuspicious => "backup_suspicious",
            BackupCheckFailed => "backup_check_failed",
            BackupCheckMissing => "backup_check_missing",
            OsUpdatesPending => "os_updates_pending",
            SecurityUpdatesPending => "security_updates_pending",
            RebootPending => "reboot_pending",
            AntivirusRealtimeOff => "antivirus_realtime_off",
            AntivirusSignaturesStale => "antivirus_signatures_stale",
            AntivirusMissing => "antivirus_missing",
            SoftwareOutdated => "software_outdated",
            DiskLow => "disk_low",
            LanDeviceDown => "lan_device_down",
            PrinterSupplyLow => "printer_supply_low",
            UpsOnBattery => "ups_on_battery",
            UpsBatteryLow => "ups_battery_low",
            AgentSilent => "agent_silent",
            ClockSkew => "clock_skew",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A clinic's departures from its tier, family by family: `true` alerts even if the tier does
/// not cover it, `false` never alerts. Stored with the clinic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleOverrides(pub BTreeMap<Family, bool>);

impl RuleOverrides {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether alerts of `family` are raised for a clinic of `tier` with `overrides`.
pub fn covers(tier: Tier, overrides: &RuleOverrides, family: Family) -> bool {
    overrides
        .0
        .get(&family)
        .copied()
        .unwrap_or_else(|| tier_categories(tier).contains(&family.category()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_cover_their_categories_and_overrides_win() {
        let none = RuleOverrides::default();
        for family in Family::ALL {
            assert!(!covers(Tier::Cmp0, &none, family));
            assert!(covers(Tier::Cmp3, &none, family));
            assert_eq!(
                covers(Tier::Cmp1, &none, family),
                family.category() == Category::Backup
            );
        }
        let mut lan = RuleOverrides::default();
        lan.0.insert(Family::Lan, true);
        lan.0.insert(Family::Backup, false);
        assert!(covers(Tier::Cmp1, &lan, Family::Lan));
        assert!(!covers(Tier::Cmp1, &lan, Family::Backup));
        assert!(!covers(Tier::Cmp1, &lan, Family::Disk));
    }

    #[test]
    fn every_rule_names_round_trip_and_families_parse() {
        for rule in Rule::ALL {
            let json = serde_json::to_string(&rule).expect("json");
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
        }
        for family in Family::ALL {
            assert_eq!(family.as_str().parse::<Family>(), Ok(family));
        }
        assert_eq!("OS_UPDATES".parse::<Family>(), Ok(Family::OsUpdates));
        assert!("printers".parse::<Family>().is_err());
    }
}
