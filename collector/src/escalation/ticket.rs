//! What a ticket says, in French for the technicians: its title with the unique tag that
//! finds it again (`[vigie:42]`), its content with the response deadline, and the follow-ups.

use jiff::Timestamp;
use serde::Serialize;

use super::calendar::SupportCalendar;
use super::queue::Escalation;
use crate::alerts::alert::{Alert, Severity};
use crate::alerts::summary;

/// The unique tag of an alert's tickets, put in the title so a ticket system's search finds
/// it: `[vigie:42]` (the closing bracket keeps `[vigie:4]` from matching `[vigie:42]`).
pub fn tag(alert_id: u64) -> String {
    format!("[vigie:{alert_id}]")
}

/// A ticket to create, as every sink receives it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketDraft {
    /// `vigie-42`: stable across retries, so a receiver can drop a repeat.
    pub key: String,
    pub tag: String,
    pub title: String,
    pub content: String,
    /// 1 (very low) … 5 (very high).
    pub priority: u8,
    pub priority_label: &'static str,
    pub response_due: Timestamp,
    pub response_due_local: String,
    pub response_remote_only: bool,
    pub clinic_id: String,
    pub clinic_name: String,
    pub tier: String,
    /// The alert as of now; absent for `escalation test`.
    pub alert: Option<TicketAlert>,
}

/// The alert as ticket systems see it: a stable subset of the alert record, with the same
/// names as `alerts --json`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketAlert {
    pub id: u64,
    pub clinic_id: String,
    pub agent_id: String,
    pub hostname: String,
    pub device: Option<String>,
    pub rule: String,
    pub category: &'static str,
    pub subject: String,
    pub severity: &'static str,
    pub state: &'static str,
    /// In French, without its duration.
    pub summary: String,
    pub detail: String,
    pub since: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    pub previous_id: Option<u64>,
}

impl From<&Alert> for TicketAlert {
    fn from(a: &Alert) -> Self {
        TicketAlert {
            id: a.id,
            clinic_id: a.clinic_id.clone(),
            agent_id: a.agent_id.clone(),
            hostname: a.hostname.clone(),
            device: a.device.clone(),
            rule: a.rule.as_str().to_owned(),
            category: a.rule.category().as_str(),
            subject: a.subject.clone(),
            severity: a.severity.as_str(),
            state: a.state.as_str(),
            summary: a.text.clone(),
            detail: a.detail.clone(),
            since: a.since,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            count: a.count,
            previous_id: a.previous_id,
        }
    }
}

/// A follow-up (or the solving note) on an existing ticket.
#[derive(Debug, Clone, Serialize)]
pub struct TicketNote {
    /// `vigie-42-n3`: stable across retries of the same note.
    pub key: String,
    pub tag: String,
    pub text: String,
    pub solves: bool,
    pub alert: TicketAlert,
}

pub fn draft(record: &Escalation, calendar: &SupportCalendar) -> TicketDraft {
    let a = &record.alert;
    let place = match &a.device {
        Some(device) => format!("{device} (via {})", a.hostname),
        None => a.hostname.clone(),
    };
    let tag = tag(a.id);
    let due_local = calendar.local_text(record.response_due);
    let remote = if record.response_remote_only {
        " — à distance uniquement (dimanche ou jour férié)"
    } else {
        ""
    };
    let tier = record.tier.as_str().to_uppercase();
    let mut content = format!(
        "{text}\n\n\
         Cabinet : {clinic} (contrat {tier})\n\
         Machine : {place}\n\
         Règle : {rule} ({category}), gravité {severity}\n",
        text = a.text,
        clinic = record.clinic_name,
        rule = a.rule,
        category = a.rule.category().as_str(),
        severity = summary::severity(a.severity),
    );
    if !a.detail.is_empty() {
        content.push_str(&format!("Détail : {}\n", a.detail));
    }
    if let Some(since) = a.since {
        content.push_str(&format!("Depuis : {}\n", calendar.local_text(since)));
    }
    content.push_str(&format!(
        "Priorité : {} ({})\n\
         Réponse attendue avant : {due_local} (heure de La Réunion, heures de support {tier}){remote}\n\n\
         Alerte Vigie n° {id} {tag} — ne pas retirer l'étiquette : elle relie le ticket à l'alerte.\n",
        record.priority.0,
        record.priority.label(),
        id = a.id,
    ));
    TicketDraft {
        key: format!("vigie-{}", a.id),
        title: format!("{tag} {} — {} ({place})", a.text, record.clinic_name),
        tag,
        content,
        priority: record.priority.0,
        priority_label: record.priority.label(),
        response_due: record.response_due,
        response_due_local: due_local,
        response_remote_only: record.response_remote_only,
        clinic_id: a.clinic_id.clone(),
        clinic_name: record.clinic_name.clone(),
        tier: record.tier.as_str().to_owned(),
        alert: Some(TicketAlert::from(a)),
    }
}

/// The test ticket of `escalation test`: tagged with the time so each test is its own ticket.
pub fn test_draft(sink: &str, now: Timestamp, calendar: &SupportCalendar) -> TicketDraft {
    let tag = format!("[vigie:test-{}]", now.as_second());
    TicketDraft {
        key: format!("vigie-test-{}", now.as_second()),
        title: format!("{tag} Ticket de test Vigie (destination {sink})"),
        content: format!(
            "Ticket de test envoyé par `vigie-collector escalation test --sink {sink}` le {}.\n\
             Il peut être clos sans suite.\n",
            calendar.local_text(now)
        ),
        tag,
        priority: 1,
        priority_label: "très basse",
        response_due: now,
        response_due_local: calendar.local_text(now),
        response_remote_only: false,
        clinic_id: String::new(),
        clinic_name: String::new(),
        tier: String::new(),
        alert: None,
    }
}

pub fn update_text(a: &Alert) -> String {
    let mut text = format!("Nouvelle observation : {}", a.text);
    if !a.detail.is_empty() {
        text.push_str(&format!(" — {}", a.detail));
    }
    text.push_str(&format!(" ({} occurrences)", a.count));
    text
}

pub fn severity_text(before: Severity, after: Severity) -> String {
    format!(
        "Gravité modifiée : {} → {}",
        summary::severity(before),
        summary::severity(after)
    )
}

/// The latest history entry with `action`, as " par marie (je regarde)".
fn by_whom(a: &Alert, action: &str) -> String {
    a.history
        .iter()
        .rev()
        .find(|h| h.action == action)
        .map(|h| {
            if h.note.is_empty() {
                format!(" par {}", h.by)
            } else {
                format!(" par {} ({})", h.by, h.note)
            }
        })
        .unwrap_or_default()
}

pub fn acknowledged_text(a: &Alert) -> String {
    format!(
        "Alerte prise en charge dans Vigie{}.",
        by_whom(a, "acknowledged")
    )
}

pub fn resolved_text(a: &Alert) -> String {
    format!(
        "Alerte résolue dans Vigie{} : ticket résolu automatiquement.",
        by_whom(a, "resolved")
    )
}

pub fn silenced_text() -> String {
    "Alerte en fenêtre de maintenance dans Vigie : pas de mise à jour jusqu'à la fin de la fenêtre."
        .to_owned()
}
