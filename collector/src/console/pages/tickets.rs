//! Tickets: every escalation of an alert to a ticket system, its state and its last error.

use maud::{Markup, html};

use super::{Nav, Viewer, badge, frame, severity_label, ticket_state_label, tier_short, when_text};
use crate::ticket_output::TicketView;

/// Rows shown at most (active ones come first).
pub const MAX_ROWS: usize = 100;

pub fn render(viewer: &Viewer, refresh: u64, tickets: &[TicketView], sinks: &[String]) -> Markup {
    frame(
        "Tickets",
        Some(viewer),
        Nav::Tickets,
        refresh,
        html! {
            p {
                @if sinks.is_empty() { "Aucun système de tickets configuré (" code { "[[escalation.sinks]]" } ")." }
                @else { "Systèmes de tickets : " (sinks.join(", ")) }
            }
            div id="tickets-live" data-live {
                @if tickets.is_empty() { p { "Aucune escalade." } } @else {
                    p { (tickets.len()) " escalade(s)" @if tickets.len() > MAX_ROWS { ", les " (MAX_ROWS) " premières affichées" } }
                    table {
                        thead { tr {
                            th scope="col" { "Alerte" } th scope="col" { "Cabinet" } th scope="col" { "Vers" }
                            th scope="col" { "État" } th scope="col" { "Ticket" } th scope="col" { "Priorité" }
                            th scope="col" { "Échéance de réponse" } th scope="col" { "Dernière erreur" }
                        } }
                        tbody {
                            @for t in tickets.iter().take(MAX_ROWS) {
                                tr {
                                    td { "#" (t.alert_id) " " (severity_label(&t.severity)) br; span class="detail" { (t.summary) } }
                                    td { a href={ "/cabinets/" (t.clinic_id) } { (t.clinic_name) } " " span class="muted" { (tier_short(&t.tier)) } }
                                    td { (t.sink) }
                                    td { @if t.state == "retrying" { (badge("sev-major", ticket_state_label(&t.state))) } @else { (ticket_state_label(&t.state)) }
                                        @if t.attempts > 0 { br; span class="muted" { (t.attempts) " essai(s)" } } }
                                    td { @if let Some(id) = &t.ticket_id { (id) } @else { span class="muted" { "pas encore" } } }
                                    td { (t.priority) }
                                    td { (when_text(t.response_due.as_deref()))
                                        @if t.response_remote_only { br; span class="muted" { "à distance" } } }
                                    td { @if let Some(e) = &t.last_error { span class="detail" { (e) } } @else { span class="muted" { "aucune" } } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
