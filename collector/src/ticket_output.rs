//! What `tickets` prints: JSON with English identifiers for scripts and tests, and a French
//! table for the technicians, two lines per escalation within 80 columns.

use serde::Serialize;
use vigie_proto::v1;

use crate::output::{fit, table};
use crate::time_text::{local_proto, rfc3339_proto};

#[derive(Debug, Serialize)]
pub struct TicketView {
    pub alert_id: u64,
    pub sink: String,
    pub state: String,
    pub ticket_id: Option<String>,
    pub clinic_id: String,
    pub clinic_name: String,
    pub tier: String,
    pub rule: String,
    pub severity: String,
    pub summary: String,
    pub priority: u32,
    pub create_after: Option<String>,
    pub response_due: Option<String>,
    pub response_remote_only: bool,
    pub pending: Vec<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub follow_ups_sent: u32,
    pub note: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    #[serde(skip)]
    response_due_local: String,
}

impl From<&v1::Escalation> for TicketView {
    fn from(e: &v1::Escalation) -> Self {
        TicketView {
            alert_id: e.alert_id,
            sink: e.sink.clone(),
            state: e.state.clone(),
            ticket_id: (!e.ticket_id.is_empty()).then(|| e.ticket_id.clone()),
            clinic_id: e.clinic_id.clone(),
            clinic_name: e.clinic_name.clone(),
            tier: e.tier.clone(),
            rule: e.rule.clone(),
            severity: e.severity.clone(),
            summary: e.summary.clone(),
            priority: e.priority,
            create_after: rfc3339_proto(e.create_after.as_ref()),
            response_due: rfc3339_proto(e.response_due.as_ref()),
            response_remote_only: e.response_remote_only,
            pending: e.pending.clone(),
            attempts: e.attempts,
            last_error: (!e.last_error.is_empty()).then(|| e.last_error.clone()),
            next_attempt_at: rfc3339_proto(e.next_attempt_at.as_ref()),
            follow_ups_sent: e.follow_ups_sent,
            note: e.note.clone(),
            created_at: rfc3339_proto(e.created_at.as_ref()),
            updated_at: rfc3339_proto(e.updated_at.as_ref()),
            response_due_local: local_proto(e.response_due.as_ref()),
        }
    }
}

fn state(s: &str) -> &str {
    match s {
        "waiting" => "en attente",
        "pending" => "à envoyer",
        "retrying" => "nouvel essai",
        "open" => "ouvert",
        "solved" => "résolu",
        "cancelled" => "annulé",
        other => other,
    }
}

/// One row per escalation; the error of a failing sink on the line below.
pub fn tickets_table(tickets: &[TicketView], sinks: &[String]) -> String {
    if tickets.is_empty() {
        return if sinks.is_empty() {
            "Aucun ticket : aucune destination configurée ([[escalation.sinks]]).\n".to_owned()
        } else {
            format!("Aucun ticket en cours ({}).\n", sinks.join(", "))
        };
    }
    let rows: Vec<_> = tickets
        .iter()
        .map(|t| {
            vec![
                format!("#{}", t.alert_id),
                fit(&t.sink, 10),
                state(&t.state).to_owned(),
                fit(t.ticket_id.as_deref().unwrap_or("-"), 12),
                format!("P{}", t.priority),
                t.response_due_local.clone(),
                fit(&t.clinic_name, 18),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ALERTE", "DEST.", "ÉTAT", "TICKET", "PRIO", "RÉPONSE", "CABINET",
        ],
        &rows,
    );
    for t in tickets {
        if let Some(error) = &t.last_error {
            out.push_str(&fit(
                &format!(
                    "#{} {} : {} (essai {})",
                    t.alert_id, t.sink, error, t.attempts
                ),
                80,
            ));
            out.push('\n');
        }
    }
    out
}
