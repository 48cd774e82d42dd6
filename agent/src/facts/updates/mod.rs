//! OS update status: pending and security updates, the last successful install and whether a
//! reboot is pending, from the package manager this machine has (apt, dnf) or from the Windows
//! Update Agent. Each source is a thin adapter over a pure parser in its own file; a source
//! that is missing or fails becomes a [`CheckFailure`] and the others still report.

pub mod apt;
pub mod config;
pub mod dnf;
pub mod reboot;
pub mod windows_update;

use jiff::Timestamp;
use serde::Serialize;

use crate::facts::updates::config::UpdatesConfig;
use crate::facts::{CheckFailure, Fact};

/// At most this many pending updates are listed by name; the counts cover them all.
pub const MAX_PENDING_LISTED: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsUpdateStatus {
    /// `apt`, `dnf` or `windows_update`.
    pub manager: String,
    pub pending_count: u32,
    pub security_count: u32,
    /// The first [`MAX_PENDING_LISTED`] pending updates.
    pub pending: Vec<PendingUpdate>,
    /// End of the last successful install or upgrade, when known.
    pub last_install_at: Option<Timestamp>,
    pub reboot_required: bool,
    /// Why a reboot is pending, e.g. `CBS RebootPending`, `/var/run/reboot-required`.
    pub reboot_reasons: Vec<String>,
    pub reboot_required_since: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingUpdate {
    pub title: String,
    pub classification: Classification,
    /// Package name or KB number.
    pub id: String,
}

/// What kind of update is pending; security and critical are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    Security,
    Critical,
    Definition,
    Feature,
    Driver,
    Other,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Security => "security",
            Classification::Critical => "critical",
            Classification::Definition => "definition",
            Classification::Feature => "feature",
            Classification::Driver => "driver",
            Classification::Other => "other",
        }
    }
}

/// Pending updates as one source counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    pub count: u32,
    pub security: u32,
    pub listed: Vec<PendingUpdate>,
}

impl Pending {
    /// Counts one update and lists it while there is room.
    pub fn push(&mut self, update: PendingUpdate) {
        self.count = self.count.saturating_add(1);
        if matches!(
            update.classification,
            Classification::Security | Classification::Critical
        ) {
            self.security = self.security.saturating_add(1);
        }
        if self.listed.len() < MAX_PENDING_LISTED {
            self.listed.push(update);
        }
    }
}

/// Whether a reboot is pending and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebootStatus {
    pub reasons: Vec<String>,
    pub since: Option<Timestamp>,
}

impl OsUpdateStatus {
    pub fn new(manager: &str, pending: Pending) -> Self {
        OsUpdateStatus {
            manager: manager.to_owned(),
            pending_count: pending.count,
            security_count: pending.security,
            pending: pending.listed,
            last_install_at: None,
            reboot_required: false,
            reboot_reasons: Vec::new(),
            reboot_required_since: None,
        }
    }

    pub fn with_reboot(mut self, reboot: RebootStatus) -> Self {
        self.reboot_required = !reboot.reasons.is_empty();
        self.reboot_reasons = reboot.reasons;
        self.reboot_required_since = reboot.since;
        self
    }
}

/// Every parser of this family on raw bytes as a command or file would give them; for the
/// robustness test and the fuzz targets. Never panics.
pub fn parse_all(bytes: &[u8]) {
    let text = crate::text::decode(bytes);
    let utc = jiff::tz::TimeZone::UTC;
    let _ = apt::parse_simulation(&text);
    let _ = apt::parse_apt_check(&text);
    let _ = apt::parse_history(&text, &utc);
    let _ = dnf::parse_check_update(Some(100), &text, &dnf::parse_updateinfo(&text));
    let _ = dnf::parse_history(&text, &utc);
    let _ = reboot::debian_reason(reboot::REBOOT_REQUIRED, &text);
    let _ = reboot::parse_needs_restarting(Some(1), &text);
    for marker in reboot::WINDOWS_MARKERS {
        let _ = reboot::marker_present(marker, Some(0), &text);
    }
    let _ = windows_update::parse(&text);
}

/// A source's failure as a fact, e.g. `os_updates.apt`.
pub(crate) fn failure(source: &str, error: impl std::fmt::Display) -> Fact {
    tracing::debug!(source, %error, "update source failed");
    Fact::CheckFailure(CheckFailure {
        check: format!("os_updates.{source}"),
        error: error.to_string(),
    })
}

/// Collects from this machine's update manager. Blocking: run it on the blocking pool.
pub fn collect(config: &UpdatesConfig) -> Vec<Fact> {
    #[cfg(windows)]
    {
        windows_update::collect(config)
    }
    #[cfg(not(windows))]
    {
        use crate::command::find_program;
        use std::ffi::OsStr;
        if find_program(OsStr::new("apt-get")).is_some() {
            apt::collect(config)
        } else if find_program(OsStr::new("dnf")).is_some() {
            dnf::collect(config)
        } else {
            vec![failure(
                "manager",
                "no supported package manager found (apt-get, dnf)",
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parsers_never_panic_on_damaged_input() {
        crate::facts::robustness::check_never_panics("updates", super::parse_all);
    }
}
