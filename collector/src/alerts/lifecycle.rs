//! The alert lifecycle, pure: given the alerts an evaluation covers and the conditions that
//! hold, what opens, repeats, changes severity, gets (un)silenced or resolves itself; and the
//! technician's acknowledge and resolve. The engine persists what this returns.
//!
//! One open alert per series (agent or device, rule, subject). A repeat is a condition with
//! new evidence (a newer fact): the count goes up. A condition absent for `clear_evaluations`
//! evaluations in a row resolves the alert; when it comes back, a new occurrence opens, linked
//! to the previous one, unless it is the very observation the alert was resolved on (a
//! technician resolved it by hand: only a newer fact reopens). Too many openings and
//! resolutions within the window mark the new occurrence flapping: recorded, not notified.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use super::alert::{Alert, AlertState, ENGINE, EventKind, Series};
use super::policy::{Family, Rule};
use super::rules::Condition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub clear_evaluations: u32,
    pub flapping_window: SignedDuration,
    pub flapping_transitions: usize,
}

/// Who and what one evaluation covers: one agent and the LAN devices it probes.
pub struct Scope<'a> {
    pub clinic_id: &'a str,
    pub agent_id: &'a str,
    pub hostname: &'a str,
    /// An active silence covers the clinic or the agent.
    pub silenced: bool,
    /// Whether the clinic's policy covers a family now.
    pub covered: &'a dyn Fn(Family) -> bool,
}

/// The part of the alert book an evaluation reads: the agent's series and their open and
/// latest alerts.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub series: BTreeMap<String, Series>,
    pub alerts: BTreeMap<u64, Alert>,
}

/// What to write: changed alerts and series, and the events, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub alerts: BTreeMap<u64, Alert>,
    pub series: BTreeMap<String, Series>,
    /// (kind, notify, alert id); the stored event carries the alert as written.
    pub events: Vec<(EventKind, bool, u64)>,
    pub next_id: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.series.is_empty() && self.events.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("l'alerte {0} est déjà résolue")]
    AlreadyResolved(u64),
}

/// The storage key of a series; it starts with the agent id so one agent's series are a prefix.
pub fn series_key(agent_id: &str, device: Option<&str>, rule: Rule, subject: &str) -> String {
    let target = device.map_or_else(|| "agent".to_owned(), |d| format!("device:{d}"));
    format!("{agent_id}\u{1f}{target}\u{1f}{rule}\u{1f}{subject}")
}

/// The prefix of every series key of one agent.
pub fn agent_prefix(agent_id: &str) -> String {
    format!("{agent_id}\u{1f}")
}

fn note_transition(series: &mut Series, now: Timestamp, params: &Params) {
    series
        .transitions
        .retain(|t| now.duration_since(*t) < params.flapping_window);
    series.transitions.push(now);
}

/// Resolves `alert` (the open one of `series`).
fn close(alert: &mut Alert, series: &mut Series, now: Timestamp, by: &str, note: &str, p: &Params) {
    alert.state = AlertState::Resolved;
    alert.resolved_at = Some(now);
    alert.clear_evaluations = 0;
    alert.note(now, "resolved", by, note);
    if series.open == Some(alert.id) {
        series.open = None;
    }
    note_transition(series, now, p);
}

/// Applies one evaluation's conditions to the scope's alerts.
pub fn reconcile(
    now: Timestamp,
    scope: &Scope<'_>,
    book: &Book,
    conditions: &[Condition],
    params: &Params,
    next_id: u64,
) -> Changes {
    let mut changes = Changes {
        next_id,
        ..Changes::default()
    };
    let mut seen = BTreeSet::new();
    for c in conditions {
        if !(scope.covered)(c.rule.family()) {
            continue;
        }
        let key = series_key(scope.agent_id, c.device.as_deref(), c.rule, &c.subject);
        if !seen.insert(key.clone()) {
            continue;
        }
        let mut series = book.series.get(&key).cloned().unwrap_or_default();
        if let Some(open) = series.open.and_then(|id| book.alerts.get(&id)) {
            let mut a = open.clone();
            let mut changed = false;
            if a.evidence != c.evidence {
                a.count = a.count.saturating_add(1);
                a.last_seen = now;
                a.evidence.clone_from(&c.evidence);
                a.text.clone_from(&c.text);
                a.detail.clone_from(&c.detail);
                changes.events.push((EventKind::Updated, false, a.id));
                changed = true;
            }
            if a.severity != c.severity {
                let note = format!("{} → {}", a.severity.as_str(), c.severity.as_str());
                a.note(now, "severity", ENGINE, &note);
                a.severity = c.severity;
                let notify = !a.silenced && !a.flapping;
                changes
                    .events
                    .push((EventKind::SeverityChanged, notify, a.id));
                changed = true;
            }
            if a.clear_evaluations != 0 {
                a.clear_evaluations = 0;
                changed = true;
            }
            if a.silenced != scope.silenced {
                changed = true;
                a.silenced = scope.silenced;
                let (action, kind) = if a.silenced {
                    ("silenced", EventKind::Silenced)
                } else {
                    ("unsilenced", EventKind::Unsilenced)
                };
                a.note(now, action, ENGINE, "");
                // The end of a silence is when a still-open problem should be heard.
                changes
                    .events
                    .push((kind, !a.silenced && !a.flapping, a.id));
            }
            if changed {
                changes.alerts.insert(a.id, a);
            }
            continue;
        }
        let previous = series.last.and_then(|id| book.alerts.get(&id));
        if previous.is_some_and(|p| p.evidence == c.evidence) {
            continue;
        }
        let id = changes.next_id;
        changes.next_id += 1;
        note_transition(&mut series, now, params);
        let flapping = series.transitions.len() >= params.flapping_transitions;
        let mut alert = Alert {
            id,
            clinic_id: scope.clinic_id.to_owned(),
            agent_id: scope.agent_id.to_owned(),
            hostname: scope.hostname.to_owned(),
            device: c.device.clone(),
            rule: c.rule,
            subject: c.subject.clone(),
            severity: c.severity,
            state: AlertState::Open,
            text: c.text.clone(),
            detail: c.detail.clone(),
            since: c.since,
            evidence: c.evidence.clone(),
            first_seen: now,
            last_seen: now,
            count: 1,
            clear_evaluations: 0,
            silenced: scope.silenced,
            flapping,
            previous_id: series.last,
            resolved_at: None,
            history: Vec::new(),
            history_dropped: 0,
        };
        let note = if flapping { "instable" } else { "" };
        alert.note(now, "opened", ENGINE, note);
        series.open = Some(id);
        series.last = Some(id);
        changes
            .events
            .push((EventKind::Opened, !alert.silenced && !flapping, id));
        changes.series.insert(key, series);
        changes.alerts.insert(id, alert);
    }

    for (key, series) in &book.series {
        if seen.contains(key) {
            continue;
        }
        let Some(open) = series.open.and_then(|id| book.alerts.get(&id)) else {
            continue;
        };
        let mut a = open.clone();
        let mut series = series.clone();
        if !(scope.covered)(a.rule.family()) {
            close(
                &mut a,
                &mut series,
                now,
                ENGINE,
                "non couvert par le contrat",
                params,
            );
        } else {
            a.clear_evaluations += 1;
            if a.clear_evaluations < params.clear_evaluations {
                changes.alerts.insert(a.id, a);
                continue;
            }
            close(
                &mut a,
                &mut series,
                now,
                ENGINE,
                "condition disparue",
                params,
            );
        }
        changes
            .events
            .push((EventKind::Resolved, !a.flapping, a.id));
        changes.series.insert(key.clone(), series);
        changes.alerts.insert(a.id, a);
    }
    changes
}

/// A technician takes the alert in hand. Acknowledging again adds to the history.
pub fn acknowledge(
    alert: &Alert,
    now: Timestamp,
    by: &str,
    note: &str,
) -> Result<Alert, LifecycleError> {
    if alert.state == AlertState::Resolved {
        return Err(LifecycleError::AlreadyResolved(alert.id));
    }
    let mut a = alert.clone();
    a.state = AlertState::Acknowledged;
    a.note(now, "acknowledged", by, note);
    Ok(a)
}

/// Resolves by hand (a technician, or a policy change) an alert that is not resolved yet.
pub fn resolve(
    alert: &Alert,
    series: &Series,
    now: Timestamp,
    by: &str,
    note: &str,
    params: &Params,
) -> Result<(Alert, Series), LifecycleError> {
    if alert.state == AlertState::Resolved {
        return Err(LifecycleError::AlreadyResolved(alert.id));
    }
    let (mut a, mut s) = (alert.clone(), series.clone());
    close(&mut a, &mut s, now, by, note, params);
    Ok((a, s))
}
