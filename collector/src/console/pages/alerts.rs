//! Alertes: filters (clinic, tier, severity, state, category), acknowledge or resolve with a
//! note, and maintenance windows (alerts still recorded, marked, not escalated) with an end.

use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Nav, TIERS, Viewer, badge, category_label, csrf_field, frame, severity_label, state_label,
    tier_short, when, when_text,
};
use crate::alert_output::AlertView;
use crate::alerts::alert::{MaintenanceScope, MaintenanceWindow};
use crate::model::{AgentRecord, Clinic};

/// Rows shown at most: the page stays under 100 KB; filters narrow the rest.
pub const MAX_ROWS: usize = 150;
/// Up to this many clinics, a list to choose from; beyond, a text field (id or part of the
/// name), so that a thousand clinics do not weigh 100 KB of options.
pub const CLINIC_CHOICES: usize = 100;

/// The filters, as the query string carries them (French names: technicians see the URL).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub cabinet: String,
    #[serde(default)]
    pub contrat: String,
    #[serde(default)]
    pub gravite: String,
    /// Empty: open and acknowledged; `open`, `acknowledged`, `resolved`, `all`.
    #[serde(default)]
    pub etat: String,
    #[serde(default)]
    pub categorie: String,
}

impl Filters {
    pub fn wants_resolved(&self) -> bool {
        matches!(self.etat.as_str(), "resolved" | "all")
    }

    pub fn keeps(&self, a: &AlertView) -> bool {
        let is = |filter: &str, value: &str| filter.is_empty() || filter == value;
        let clinic = self.cabinet.trim();
        (is(clinic, &a.clinic_id)
            || a.clinic_name
                .to_lowercase()
                .contains(&clinic.to_lowercase()))
            && is(&self.contrat, &a.tier)
            && is(&self.gravite, &a.severity)
            && is(&self.categorie, &a.category)
            && match self.etat.as_str() {
                "" => a.state != "resolved",
                "all" => true,
                state => a.state == state,
            }
    }

    /// The query string back, for links and the forms' way back.
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("cabinet", &self.cabinet),
            ("contrat", &self.contrat),
            ("gravite", &self.gravite),
            ("etat", &self.etat),
            ("categorie", &self.categorie),
        ] {
            if !value.is_empty() {
                parts.push(format!("{key}={}", urlencode(value)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct AlertsPage<'a> {
    pub filters: &'a Filters,
    pub alerts: &'a [AlertView],
    pub clinics: &'a [Clinic],
    pub agents: &'a [AgentRecord],
    pub windows: &'a [MaintenanceWindow],
    pub now: jiff::Timestamp,
}

fn select(id: &str, label: &str, current: &str, options: &[(String, String)], any: &str) -> Markup {
    html! {
        p {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                option value="" selected[current.is_empty()] { (any) }
                @for (value, text) in options {
                    option value=(value) selected[current == value] { (text) }
                }
            }
        }
    }
}

pub fn render(viewer: &Viewer, refresh: u64, p: &AlertsPage<'_>) -> Markup {
    let f = p.filters;
    let back = format!("/alertes{}", f.query());
    let shown: Vec<&AlertView> = p.alerts.iter().filter(|a| f.keeps(a)).collect();
    let clinic_options: Vec<(String, String)> = p
        .clinics
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    let own = |v: &[&str], label: fn(&str) -> &'static str| -> Vec<(String, String)> {
        v.iter()
            .map(|s| ((*s).to_owned(), label(s).to_owned()))
            .collect()
    };
    let tiers: Vec<(String, String)> = TIERS
        .iter()
        .map(|t| (t.as_str().to_owned(), tier_short(t.as_str())))
        .collect();
    frame(
        "Alertes",
        Some(viewer),
        Nav::Alerts,
        refresh,
        html! {
            form class="filters" method="get" action="/alertes" aria-label="Filtrer les alertes" {
                (clinic_field("cabinet", "Cabinet", &f.cabinet, &clinic_options, "tous", false))
                (select("contrat", "Contrat", &f.contrat, &tiers, "tous"))
                (select("gravite", "Gravité", &f.gravite, &own(&["critical", "major", "warning"], severity_label), "toutes"))
                (select("etat", "État", &f.etat, &[
                    ("open".into(), "ouvertes".into()),
                    ("acknowledged".into(), "acquittées".into()),
                    ("resolved".into(), "résolues".into()),
                    ("all".into(), "toutes".into()),
                ], "en cours"))
                (select("categorie", "Catégorie", &f.categorie, &own(&["backup", "preventive"], category_label), "toutes"))
                p { button type="submit" { "Filtrer" } }
            }
            div id="alerts-live" data-live {
                p { (shown.len()) " alerte(s)"
                    @if shown.len() > MAX_ROWS { ", les " (MAX_ROWS) " premières affichées : affinez les filtres" } }
                @if !shown.is_empty() {
                    table class="alerts" {
                        caption class="visually-hidden" { "Alertes, les plus graves d'abord" }
                        thead { tr {
                            th scope="col" { "N°" } th scope="col" { "Gravité" } th scope="col" { "État" }
                            th scope="col" { "Cabinet" } th scope="col" { "Poste" } th scope="col" { "Alerte" }
                            th scope="col" { "Depuis" } th scope="col" { "Action" }
                        } }
                        tbody {
                            @for a in shown.iter().take(MAX_ROWS) {
                                (row(viewer, a, &back))
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-windows" {
                h2 id="h-windows" { "Fenêtres de maintenance" }
                p class="muted" { "Pendant une fenêtre, les alertes sont enregistrées et marquées, mais n'ouvrent pas de ticket." }
                div id="windows-live" data-live {
                    @let current: Vec<&MaintenanceWindow> = p.windows.iter().filter(|w| w.is_active(p.now)).collect();
                    @if current.is_empty() {
                        p { "Aucune fenêtre en cours." }
                    } @else {
                        table {
                            thead { tr { th scope="col" { "N°" } th scope="col" { "Portée" } th scope="col" { "Fin" } th scope="col" { "Motif" } th scope="col" { "Par" } th scope="col" { "Action" } } }
                            tbody {
                                @for w in current {
                                    tr id={ "window-" (w.id) } {
                                        td { (w.id) }
                                        td { (scope_text(&w.scope, p.clinics, p.agents)) }
                                        td { (when(Some(w.ends_at))) }
                                        td { (w.reason) }
                                        td { (w.created_by) }
                                        td {
                                            form method="post" action={ "/maintenance/" (w.id) "/fin" } data-inline {
                                                (csrf_field(viewer))
                                                input type="hidden" name="retour" value=(back);
                                                button type="submit" { "Terminer" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h3 { "Nouvelle fenêtre" }
                form class="window" method="post" action="/maintenance" {
                    (csrf_field(viewer))
                    input type="hidden" name="retour" value=(back);
                    (clinic_field("window-clinic", "Cabinet", "", &clinic_options, "choisir un cabinet", true))
                    p {
                        label for="window-end" { "Fin (heure de La Réunion)" }
                        input id="window-end" name="fin" type="datetime-local" required;
                    }
                    p {
                        label for="window-reason" { "Motif" }
                        input id="window-reason" name="motif" type="text" required maxlength="1000";
                    }
                    p { button type="submit" { "Ouvrir la fenêtre" } }
                }
            }
        },
    )
}

/// A clinic: chosen from a list when there are few, typed (id or name) when there are many.
fn clinic_field(
    id: &str,
    label: &str,
    current: &str,
    options: &[(String, String)],
    any: &str,
    required: bool,
) -> Markup {
    if options.len() <= CLINIC_CHOICES {
        return select(id, label, current, options, any);
    }
    html! {
        p {
            label for=(id) { (label) " (nom ou identifiant)" }
            input id=(id) name=(id) type="text" value=(current) required[required];
        }
    }
}

fn scope_text(scope: &MaintenanceScope, clinics: &[Clinic], agents: &[AgentRecord]) -> String {
    match scope {
        MaintenanceScope::Clinic(id) => clinics
            .iter()
            .find(|c| &c.id == id)
            .map_or(format!("cabinet {id}"), |c| format!("cabinet {}", c.name)),
        MaintenanceScope::Agent(id) => agents
            .iter()
            .find(|a| &a.id == id)
            .map_or(format!("poste {id}"), |a| format!("poste {}", a.hostname)),
    }
}

fn severity_class(severity: &str) -> &'static str {
    match severity {
        "critical" => "sev-critical",
        "major" => "sev-major",
        _ => "sev-warning",
    }
}

/// One alert: its facts, and when it is still active, a note and two buttons.
pub fn row(viewer: &Viewer, a: &AlertView, back: &str) -> Markup {
    let note_id = format!("note-{}", a.id);
    html! {
        tr id={ "alert-" (a.id) } data-state=(a.state) {
            td { "#" (a.id) }
            td { (badge(severity_class(&a.severity), severity_label(&a.severity))) }
            td class="state" {
                (badge(&format!("state-{}", a.state), state_label(&a.state)))
                @if a.silenced { " " (badge("state-window", "en maintenance")) }
                @if a.flapping { " " (badge("state-window", "instable")) }
            }
            td { a href={ "/cabinets/" (a.clinic_id) } { (a.clinic_name) } " " span class="muted" { (tier_short(&a.tier)) } }
            td {
                a href={ "/postes/" (a.agent_id) } { (a.hostname) }
                @if let Some(device) = &a.device { " · " (device) }
            }
            td {
                (a.summary)
                " " span class="muted" { "(" (category_label(&a.category)) ")" }
                @if !a.detail.is_empty() { br; span class="detail" { (a.detail) } }
                @if let Some(last) = a.history.iter().rev().find(|h| h.action == "acknowledged" || h.action == "resolved") {
                    br; span class="muted" { (last.by) " : " (last.note) }
                }
            }
            td { (when_text(a.since.as_deref().or(a.first_seen.as_deref()))) }
            td {
                @if a.state != "resolved" {
                    form class="act" method="post" action={ "/alertes/" (a.id) "/acquitter" } data-inline {
                        (csrf_field(viewer))
                        input type="hidden" name="retour" value=(back);
                        label for=(note_id) class="visually-hidden" { "Note pour l'alerte " (a.id) }
                        input id=(note_id) name="note" type="text" maxlength="1000" placeholder="note";
                        @if a.state == "open" { button type="submit" name="action" value="ack" { "Acquitter" } }
                        button type="submit" formaction={ "/alertes/" (a.id) "/resoudre" } { "Résoudre" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(clinic: &str, name: &str, severity: &str, state: &str) -> AlertView {
        let text = |t: &str| t.to_owned();
        AlertView {
            id: 1,
            clinic_id: text(clinic),
            clinic_name: text(name),
            tier: text("cmp3"),
            agent_id: text("a"),
            hostname: text("pc"),
            device: None,
            rule: text("backup_failed"),
            category: text("backup"),
            family: text("backup"),
            subject: text("nas"),
            severity: text(severity),
            state: text(state),
            summary: String::new(),
            detail: String::new(),
            since: None,
            first_seen: None,
            last_seen: None,
            count: 1,
            silenced: false,
            flapping: false,
            previous_id: None,
            resolved_at: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn filters_pick_by_clinic_id_or_name_severity_and_state() {
        let open = alert("c1", "Cabinet du Port", "critical", "open");
        let resolved = alert("c2", "Cabinet de Cilaos", "warning", "resolved");
        let keeps = |f: Filters| (f.keeps(&open), f.keeps(&resolved));
        assert_eq!(keeps(Filters::default()), (true, false), "resolved hidden");
        let all = |f: Filters| Filters {
            etat: "all".into(),
            ..f
        };
        assert_eq!(
            keeps(all(Filters {
                cabinet: "c2".into(),
                ..Default::default()
            })),
            (false, true)
        );
        assert_eq!(
            keeps(all(Filters {
                cabinet: "port".into(),
                ..Default::default()
            })),
            (true, false)
        );
        assert_eq!(
            keeps(all(Filters {
                gravite: "warning".into(),
                ..Default::default()
            })),
            (false, true)
        );
        assert_eq!(
            keeps(Filters {
                etat: "resolved".into(),
                ..Default::default()
            }),
            (false, true)
        );
        assert_eq!(
            Filters {
                gravite: "major".into(),
                cabinet: "a b".into(),
                ..Default::default()
            }
            .query(),
            "?cabinet=a%20b&gravite=major"
        );
    }
}
