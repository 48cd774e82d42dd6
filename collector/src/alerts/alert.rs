//! What the engine keeps: alerts with their history, the series that links the occurrences of
//! one problem, maintenance windows, and the events a ticketing sink consumes.

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
    /// History entries no longer kept (between the first and the latest ones).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Alert {
    /// Adds to the history, which keeps its first entry (opened) and the latest ones, within
    /// [`crate::limits::ALERT_HISTORY`]; `history_dropped` counts the entries let go.
    pub fn note(&mut self, at: Timestamp, action: &str, by: &str, note: &str) {
        if self.history.len() >= crate::limits::ALERT_HISTORY.max(2) {
            self.history.remove(1);
            self.history_dropped = self.history_dropped.saturating_add(1);
        }
        self.history.push(HistoryEntry {
            at,
            action: action.to_owned(),
            by: crate::limits::text(by, crate::limits::NAME_BYTES),
            note: crate::limits::text(note, crate::limits::MESSAGE_BYTES),
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

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum MaintenanceScope {
    Clinic(String),
    Agent(String),
}

/// A maintenance window: alerts are still recorded, marked silenced (the JSON and wire name
/// of "under a maintenance window"), and not escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: u64,
    pub scope: MaintenanceScope,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub reason: String,
    pub created_by: String,
}

impl MaintenanceWindow {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn covers(&self, clinic_id: &str, agent_id: &str) -> bool {
        match &self.scope {
            MaintenanceScope::Clinic(id) => id == clinic_id,
            MaintenanceScope::Agent(id) => id == agent_id,
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

/// A change of an alert as the escalation policy reads it: the stored [`StoredEvent`] with the
/// alert it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
    /// Whether a person should hear about it: false when silenced, flapping, or a mere repeat.
    pub notify: bool,
    /// The alert as it is after the change (its state, severity, maintenance and flapping as of
    /// the change; the rest as it is now).
    pub alert: Alert,
}

/// A change of an alert, written in the same transaction as the change itself, in sequence
/// order: what the escalation worker reads to open, update and close tickets. Compact: the
/// alert's id and what the policy decides on as of the change, not a copy of the alert (a
/// repeated alert would copy its whole text and history into every event); the worker reads
/// the rest from the alert itself. Events written before this format carry the whole alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
    pub notify: bool,
    #[serde(default)]
    pub alert_id: u64,
    #[serde(default)]
    pub state: Option<AlertState>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub silenced: bool,
    #[serde(default)]
    pub flapping: bool,
    /// The whole alert, in events written by older collectors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
}

impl StoredEvent {
    pub fn new(seq: u64, at: Timestamp, kind: EventKind, notify: bool, alert: &Alert) -> Self {
        StoredEvent {
            seq,
            at,
            kind,
            notify,
            alert_id: alert.id,
            state: Some(alert.state),
            severity: Some(alert.severity),
            silenced: alert.silenced,
            flapping: alert.flapping,
            alert: None,
        }
    }

    pub fn alert_id(&self) -> u64 {
        self.alert.as_ref().map_or(self.alert_id, |a| a.id)
    }

    /// The event as the policy reads it, given the alert as it is now (`None` when it no
    /// longer exists: then only an old-format event, which carries its alert, is readable).
    pub fn with_alert(self, current: Option<Alert>) -> Option<AlertEvent> {
        let alert = match self.alert {
            Some(alert) => alert,
            None => {
                let mut alert = current?;
                if let Some(state) = self.state {
                    alert.state = state;
                    if state != AlertState::Resolved {
                        alert.resolved_at = None;
                    }
                }
                if let Some(severity) = self.severity {
                    alert.severity = severity;
                }
                alert.silenced = self.silenced;
                alert.flapping = self.flapping;
                alert
            }
        };
        Some(AlertEvent {
            seq: self.seq,
            at: self.at,
            kind: self.kind,
            notify: self.notify,
            alert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalation::policy::tests::alert;

    #[test]
    fn a_stored_event_is_small_and_reads_as_of_its_change() {
        let mut a = alert(Rule::DiskLow, Severity::Warning);
        a.hostname = "H".repeat(253);
        for i in 0..200 {
            a.note(a.last_seen, "severity", ENGINE, &format!("change {i}"));
        }
        assert_eq!(a.history.len(), crate::limits::ALERT_HISTORY);
        assert_eq!(a.history_dropped, 200 - crate::limits::ALERT_HISTORY as u64);
        let event = StoredEvent::new(9, a.last_seen, EventKind::Opened, true, &a);
        let bytes = serde_json::to_vec(&event).expect("json");
        assert!(bytes.len() < 256, "{} bytes", bytes.len());

        // Later the alert got worse text and was resolved: the event still says "open".
        let mut now = a.clone();
        now.text = "Disque C: plein".into();
        now.state = AlertState::Resolved;
        now.resolved_at = Some(now.last_seen);
        let read = event.with_alert(Some(now)).expect("alert exists");
        assert_eq!(read.alert.state, AlertState::Open);
        assert_eq!(read.alert.resolved_at, None);
        assert_eq!(read.alert.text, "Disque C: plein");
        assert_eq!(read.seq, 9);
    }
}
