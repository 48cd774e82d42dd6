//! What the engine keeps: alerts with their history, the series that links the occurrences of
//! one problem, silences, and the events a ticketing sink consumes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::policy::Rule;

/// How bad it is; ordered from most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Major,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Warning => "warning",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Severity::Critical, Severity::Major, Severity::Warning]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            AlertState::Open,
            AlertState::Acknowledged,
            AlertState::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_active(self) -> bool {
        self != AlertState::Resolved
    }
}

/// One step in an alert's life: who did what, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    /// `opened`, `acknowledged`, `resolved`, `severity`, `silenced`, `unsilenced`.
    pub action: String,
    /// A person (admin CLI user) or `vigie` for the engine itself.
    pub by: String,
    #[serde(default)]
    pub note: String,
}

/// The engine's name in history entries.
pub const ENGINE: &str = "vigie";

/// One occurrence of a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Short and typeable: a sequence number.
    pub id: u64,
    pub clinic_id: String,
    /// The agent the facts came from (for a LAN device: the agent that probes it).
    pub agent_id: String,
    pub hostname: String,
    /// A LAN device's name, for device alerts.
    #[serde(default)]
    pub device: Option<String>,
    pub rule: Rule,
    /// What within the agent or device: a backup job, a disk, a product; may be empty.
    pub subject: String,
    pub severity: Severity,
    pub state: AlertState,
    /// The summary in French, without its duration (see `summary.rs`).
    pub text: String,
    /// What the product or device said (error message), when it said something.
    #[serde(default)]
    pub detail: String,
    /// Since when the facts say the problem exists, when they say it.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Identifies the observation; a new one counts as a repeat.
    pub evidence: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    /// Evaluations in a row that did not see the condition.
    #[serde(default)]
    pub clear_evaluations: u32,
    #[serde(default)]
    pub silenced: bool,
    #[serde(default)]
    pub flapping: bool,
    /// The previous occurrence of the same problem.
    #[serde(default)]
    pub previous_id: Option<u64>,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Alert {
    pub fn note(&mut self, at: Timestamp, action: &str, by: &str, note: &str) {
        self.history.push(HistoryEntry {
            at,
            action: action.to_owned(),
            by: by.to_owned(),
            note: note.to_owned(),
        });
    }
}

/// The occurrences of one problem: one per (agent or device, rule, subject).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Series {
    /// The open (or acknowledged) occurrence, if any: never more than one.
    pub open: Option<u64>,
    /// The latest occurrence, open or not.
    pub last: Option<u64>,
    /// When occurrences opened or resolved recently, for flapping detection.
    #[serde(default)]
    pub transitions: Vec<Timestamp>,
}

/// What a silence covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum SilenceScope {
    Clinic(String),
    Agent(String),
}

/// A maintenance window: alerts are still recorded, marked silenced, and not escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: u64,
    pub scope: SilenceScope,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub reason: String,
    pub created_by: String,
}

impl Silence {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn covers(&self, clinic_id: &str, agent_id: &str) -> bool {
        match &self.scope {
            SilenceScope::Clinic(id) => id == clinic_id,
            SilenceScope::Agent(id) => id == agent_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    /// Seen again (count went up) or its text changed.
    Updated,
    SeverityChanged,
    Acknowledged,
    Resolved,
    Silenced,
    Unsilenced,
}

/// A change of an alert, written in the same transaction as the change itself, in sequence
/// order: what a ticket sink reads to open, update and close tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
    /// Whether a person should hear about it: false when silenced, flapping, or a mere repeat.
    pub notify: bool,
    /// The alert as it is after the change.
    pub alert: Alert,
}
