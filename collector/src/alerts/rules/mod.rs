//! The rules: one file per family, each a pure function from (now, facts, thresholds) to the
//! conditions that hold. [`evaluate`] runs the families the clinic's policy covers.

pub mod antivirus;
pub mod backup;
pub mod backup_check;
pub mod clock;
pub mod disk;
pub mod lan;
pub mod silence;
pub mod software;
pub mod updates;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use vigie_domain::Tier;

use super::alert::Severity;
use super::opening_hours::OpeningHours;
use super::policy::{Family, Rule, RuleOverrides, covers};
use super::thresholds::AlertsConfig;
use crate::facts::{
    Antivirus, BackupRun, DeclaredJobRecord, DeviceRecord, OsUpdates, Software, Stamped,
};
use crate::model::AgentRecord;

/// A problem that holds now, as one rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub rule: Rule,
    /// A LAN device's name, for device conditions.
    pub device: Option<String>,
    /// A backup job, a disk, a product; empty when the rule has one subject per agent.
    pub subject: String,
    pub severity: Severity,
    /// French, without a duration: "Sauvegarde nightly-nas en échec".
    pub text: String,
    pub detail: String,
    pub since: Option<Timestamp>,
    /// Identifies the observation (e.g. the failed run's end time); a new one is a repeat.
    pub evidence: String,
}

impl Condition {
    pub fn new(rule: Rule, subject: &str, severity: Severity, text: String) -> Self {
        Condition {
            rule,
            device: None,
            subject: subject.to_owned(),
            severity,
            text,
            detail: String::new(),
            since: None,
            evidence: String::new(),
        }
    }

    pub fn since(mut self, since: Option<Timestamp>) -> Self {
        self.since = since;
        self
    }

    pub fn evidence(mut self, evidence: impl ToString) -> Self {
        self.evidence = evidence.to_string();
        self
    }

    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = detail.trim().to_owned();
        self
    }

    pub fn device(mut self, name: &str) -> Self {
        self.device = Some(name.to_owned());
        self
    }
}

/// What a clinic's rules need to know about the clinic.
#[derive(Debug, Clone)]
pub struct ClinicContext {
    pub tier: Tier,
    pub overrides: RuleOverrides,
    pub hours: OpeningHours,
}

/// Everything the collector keeps about one agent that a rule may look at.
#[derive(Debug, Clone, Default)]
pub struct AgentFacts {
    pub agent: Option<AgentRecord>,
    pub declared_jobs: Vec<DeclaredJobRecord>,
    /// Per job, oldest first.
    pub backup_runs: BTreeMap<String, Vec<BackupRun>>,
    pub os_updates: Option<Stamped<OsUpdates>>,
    pub antivirus: Option<Stamped<Antivirus>>,
    pub software: Option<Stamped<Software>>,
    pub devices: Vec<DeviceRecord>,
}

/// The conditions that hold for one agent, for the families its clinic's policy covers.
pub fn evaluate(
    now: Timestamp,
    clinic: &ClinicContext,
    facts: &AgentFacts,
    config: &AlertsConfig,
) -> Vec<Condition> {
    let Some(agent) = &facts.agent else {
        return Vec::new();
    };
    if agent.revoked {
        return Vec::new();
    }
    let mut conditions = Vec::new();
    for family in Family::ALL {
        if !covers(clinic.tier, &clinic.overrides, family) {
            continue;
        }
        conditions.extend(match family {
            Family::Backup => backup::evaluate(now, facts, &config.backup),
            Family::BackupCheck => backup_check::evaluate(now, facts, &config.backup),
            Family::OsUpdates => updates::evaluate(now, facts, &config.os_updates),
            Family::Antivirus => antivirus::evaluate(now, facts, &config.antivirus),
            Family::Software => software::evaluate(facts, &config.software),
            Family::Disk => disk::evaluate(agent, &config.disk),
            Family::Lan => lan::evaluate(now, facts, &config.lan),
            Family::AgentSilent => silence::evaluate(now, agent, &clinic.hours, &config.silence),
            Family::Clock => clock::evaluate(now, agent, &config.clock),
        });
    }
    conditions
}

/// `n` minutes, hours or days as a duration (saturating: absurd thresholds never overflow).
pub fn minutes(n: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(n.saturating_mul(60)).unwrap_or(i64::MAX / 2))
}

pub fn hours(n: u64) -> SignedDuration {
    minutes(n.saturating_mul(60))
}

pub fn days(n: u64) -> SignedDuration {
    hours(n.saturating_mul(24))
}

/// Whether at least `threshold` has passed from `since` to `now`.
pub fn older_than(now: Timestamp, since: Timestamp, threshold: SignedDuration) -> bool {
    now.duration_since(since) >= threshold
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
