//! The facts the alert rules judge, as the collector keeps them: plain types converted from
//! the protobuf payloads at the gRPC edge (`server/convert.rs`), plus the small merges that
//! derive "since when" from successive reports (pure; `storage.rs` applies them).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::limits::Cut;

/// One report's facts, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Backup {
        runs: Vec<BackupRun>,
        declared: Vec<DeclaredJob>,
        /// What the collector left out of the report (`limits.rs`).
        cut: Cut,
    },
    OsUpdates(OsUpdates),
    Antivirus(Antivirus),
    Software(Software),
    Lan(LanFact),
}

impl Fact {
    /// Corrects the times the agent's clock stamped inside the fact: moved by `by` (the
    /// correction of the report's `collected_at`), and never later than `not_after` (when the
    /// report arrived). A backup "finished" a year ahead must not count as the latest success
    /// for a year.
    pub fn correct_agent_times(&mut self, by: SignedDuration, not_after: Timestamp) {
        let fix = |t: &mut Timestamp| {
            if let Ok(moved) = t.checked_add(by) {
                *t = moved;
            }
            *t = (*t).min(not_after);
        };
        match self {
            Fact::Backup { runs, .. } => {
                for run in runs {
                    fix(&mut run.finished_at);
                    if let Some(start) = run.started_at.as_mut() {
                        fix(start);
                    }
                }
            }
            Fact::OsUpdates(updates) => {
                if let Some(since) = updates.reboot_required_since.as_mut() {
                    fix(since);
                }
            }
            Fact::Antivirus(av) => {
                for product in &mut av.products {
                    if let Some(at) = product.signatures_updated_at.as_mut() {
                        fix(at);
                    }
                }
            }
            Fact::Software(_) | Fact::Lan(_) => {}
        }
    }
}

/// A fact with the time the agent collected it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub collected_at: Timestamp,
    pub value: T,
}

// ---- backups ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Unknown,
    Success,
    Warning,
    Failed,
}

/// What a run did: save the data, or verify a backup already made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    #[default]
    Backup,
    Check,
}

/// Checks are kept beside the backups of the same job under this suffixed job name, so a
/// check never takes the place of a backup run ending in the same second.
pub const CHECK_JOB_SUFFIX: &str = " (vérification)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    pub job: String,
    #[serde(default)]
    pub kind: RunKind,
    pub source: String,
    pub status: BackupStatus,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub files: Option<u64>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub message: String,
    /// Why it failed or warned, a stable key from the agent (`wrong_password`, ...).
    #[serde(default)]
    pub cause: String,
    /// The product's exit or event code.
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub failed_items: Option<u64>,
}

impl BackupRun {
    /// The declared job this run belongs to (a check's record carries a suffix).
    pub fn job_name(&self) -> &str {
        match self.kind {
            RunKind::Backup => &self.job,
            RunKind::Check => self.job.strip_suffix(CHECK_JOB_SUFFIX).unwrap_or(&self.job),
        }
    }

    pub fn duration(&self) -> Option<jiff::SignedDuration> {
        self.started_at
            .map(|start| self.finished_at.duration_since(start))
            .filter(|d| !d.is_negative())
    }
}

/// A job the agent's configuration declares, with its expected cadence.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeclaredJob {
    pub name: String,
    /// Every N seconds; 0 when the cadence is given as weekdays.
    pub every_seconds: u64,
    /// ISO weekdays, 1 = Monday.
    #[serde(default)]
    pub days_of_week: Vec<u8>,
    /// A successful integrity check is expected this often; 0: none expected.
    #[serde(default)]
    pub check_every_seconds: u64,
    /// The last check the agent knows, and when the last good one ended.
    #[serde(default)]
    pub last_check: Option<BackupRun>,
    #[serde(default)]
    pub last_good_check_at: Option<Timestamp>,
}

/// A declared job as the collector keeps it: since when it has been declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredJobRecord {
    pub job: DeclaredJob,
    pub first_declared_at: Timestamp,
    pub declared_at: Timestamp,
}

// ---- OS updates ----

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsUpdates {
    pub manager: String,
    pub pending_count: u32,
    pub security_count: u32,
    pub reboot_required: bool,
    #[serde(default)]
    pub reboot_reasons: Vec<String>,
    #[serde(default)]
    pub reboot_required_since: Option<Timestamp>,
    /// Derived: since when updates have been pending without interruption.
    #[serde(default)]
    pub pending_since: Option<Timestamp>,
    #[serde(default)]
    pub security_pending_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Cut::is_empty")]
    pub cut: Cut,
}

impl OsUpdates {
    /// Carries the "pending since" times over from the previous status.
    pub fn merge(mut self, previous: Option<&Stamped<OsUpdates>>, at: Timestamp) -> Self {
        let prev = previous.map(|p| &p.value);
        self.pending_since =
            (self.pending_count > 0).then(|| prev.and_then(|p| p.pending_since).unwrap_or(at));
        self.security_pending_since = (self.security_count > 0)
            .then(|| prev.and_then(|p| p.security_pending_since).unwrap_or(at));
        if self.reboot_required && self.reboot_required_since.is_none() {
            self.reboot_required_since = prev.and_then(|p| p.reboot_required_since).or(Some(at));
        }
        self
    }
}

// ---- antivirus ----

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AntivirusProduct {
    pub name: String,
    pub enabled: bool,
    #[serde(default)]
    pub realtime_protection: Option<bool>,
    #[serde(default)]
    pub signatures_up_to_date: Option<bool>,
    #[serde(default)]
    pub signatures_updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Antivirus {
    pub products: Vec<AntivirusProduct>,
    pub none_found: bool,
    #[serde(default, skip_serializing_if = "Cut::is_empty")]
    pub cut: Cut,
}

// ---- business software ----

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstalledSoftware {
    pub watch_name: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Software {
    pub items: Vec<InstalledSoftware>,
    #[serde(default, skip_serializing_if = "Cut::is_empty")]
    pub cut: Cut,
}

// ---- LAN devices ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Unknown,
    Up,
    Degraded,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supply {
    pub description: String,
    /// 0-100 when the printer says.
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ups {
    pub battery_status: String,
    pub charge_percent: Option<f64>,
    pub on_battery: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub name: String,
    /// "router", "switch", "printer", "nas", "ups", "imaging-modality", "pacs", "other".
    pub kind: String,
    pub address: String,
    pub state: DeviceState,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub supplies: Vec<Supply>,
    #[serde(default)]
    pub ups: Option<Ups>,
}

/// One LAN report: the devices probed this round, and every target the agent has.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LanFact {
    pub devices: Vec<Device>,
    /// Every configured target's name; empty from agents that predate the list.
    pub configured: Vec<String>,
    /// What the collector left out of the report (`limits.rs`).
    pub cut: Cut,
}

/// A LAN device as last reported by one agent, and since when it has been down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device: Device,
    pub reported_at: Timestamp,
    #[serde(default)]
    pub down_since: Option<Timestamp>,
}

impl DeviceRecord {
    /// The record after a new report; an older report than the one kept changes nothing.
    pub fn merge(previous: Option<DeviceRecord>, device: Device, at: Timestamp) -> DeviceRecord {
        match previous {
            Some(prev) if prev.reported_at > at => prev,
            prev => {
                let down_since = (device.state == DeviceState::Down)
                    .then(|| prev.as_ref().and_then(|p| p.down_since).unwrap_or(at));
                DeviceRecord {
                    device,
                    reported_at: at,
                    down_since,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    #[test]
    fn down_since_is_kept_while_down_and_cleared_when_up() {
        let dev = |state| Device {
            name: "pacs".into(),
            kind: "pacs".into(),
            address: "10.0.0.5".into(),
            state,
            error: String::new(),
            supplies: vec![],
            ups: None,
        };
        let a = DeviceRecord::merge(None, dev(DeviceState::Down), t(100));
        let b = DeviceRecord::merge(Some(a), dev(DeviceState::Down), t(200));
        assert_eq!(b.down_since, Some(t(100)));
        let stale = DeviceRecord::merge(Some(b.clone()), dev(DeviceState::Up), t(150));
        assert_eq!(stale, b, "an older report changes nothing");
        let c = DeviceRecord::merge(Some(b), dev(DeviceState::Up), t(300));
        assert_eq!(c.down_since, None);
    }

    #[test]
    fn pending_updates_remember_since_when() {
        let status = |pending, security| OsUpdates {
            pending_count: pending,
            security_count: security,
            ..OsUpdates::default()
        };
        let first = status(3, 1).merge(None, t(10));
        let prev = Stamped {
            collected_at: t(10),
            value: first,
        };
        let second = status(5, 0).merge(Some(&prev), t(20));
        assert_eq!(second.pending_since, Some(t(10)));
        assert_eq!(second.security_pending_since, None);
    }
}
