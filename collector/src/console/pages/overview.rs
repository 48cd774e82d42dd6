//! Vue d'ensemble: clinics by tier, open alerts by severity, agents online or silent.

use std::collections::HashMap;

use jiff::Timestamp;
use maud::{Markup, html};

use super::{Nav, TIERS, Viewer, frame, severity_label, tier_label, when};
use crate::alert_output::AlertView;
use crate::console::data::{Presence, presence};
use crate::model::{AgentRecord, Clinic};

/// Names listed per tier and silent agents listed; the rest is a count and a link.
const LISTED: usize = 25;

pub struct Overview<'a> {
    pub clinics: &'a [Clinic],
    pub alerts: &'a [AlertView],
    pub agents: &'a [AgentRecord],
    pub now: Timestamp,
}

pub fn render(viewer: &Viewer, refresh: u64, o: &Overview<'_>) -> Markup {
    let names: HashMap<&str, &str> = o
        .clinics
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let mut open_by_clinic: HashMap<&str, usize> = HashMap::new();
    for a in o.alerts.iter().filter(|a| a.state == "open") {
        *open_by_clinic.entry(a.clinic_id.as_str()).or_default() += 1;
    }
    let live: Vec<&AgentRecord> = o.agents.iter().filter(|a| !a.revoked).collect();
    let count = |p: Presence| {
        live.iter()
            .filter(|a| presence(a.last_seen, o.now) == p)
            .count()
    };
    let silent: Vec<&&AgentRecord> = live
        .iter()
        .filter(|a| presence(a.last_seen, o.now) != Presence::Online)
        .collect();
    frame(
        "Vue d'ensemble",
        Some(viewer),
        Nav::Overview,
        refresh,
        html! {
            div id="overview-live" data-live {
                section aria-labelledby="h-alerts" {
                    h2 id="h-alerts" { "Alertes en cours par gravité" }
                    table {
                        thead { tr { th scope="col" { "Gravité" } th scope="col" { "Ouvertes" } th scope="col" { "Acquittées" } } }
                        tbody {
                            @for severity in ["critical", "major", "warning"] {
                                @let of = |state: &str| o.alerts.iter().filter(|a| a.severity == severity && a.state == state).count();
                                tr {
                                    th scope="row" {
                                        a href={ "/alertes?gravite=" (severity) } { (severity_label(severity)) }
                                    }
                                    td { (of("open")) }
                                    td { (of("acknowledged")) }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-agents" {
                    h2 id="h-agents" { "Postes" }
                    p {
                        strong { (count(Presence::Online)) } " en ligne · "
                        strong { (count(Presence::Silent)) } " silencieux · "
                        strong { (count(Presence::Never)) } " jamais vus"
                        " (en ligne : rapport reçu dans les 15 dernières minutes)"
                    }
                    @if !silent.is_empty() {
                        h3 { "Postes silencieux" }
                        ul {
                            @for agent in silent.iter().take(LISTED) {
                                li {
                                    a href={ "/postes/" (agent.id) } { (agent.hostname) }
                                    " · " (names.get(agent.clinic_id.as_str()).copied().unwrap_or("cabinet inconnu"))
                                    " · dernier rapport " (when(agent.last_seen))
                                }
                            }
                        }
                        @if silent.len() > LISTED { p { "… et " (silent.len() - LISTED) " autres." } }
                    }
                }
                section aria-labelledby="h-clinics" {
                    h2 id="h-clinics" { "Cabinets par contrat" }
                    @for tier in TIERS {
                        @let of_tier: Vec<&Clinic> = o.clinics.iter().filter(|c| c.tier == tier).collect();
                        h3 { (tier_label(tier.as_str())) " : " (of_tier.len()) }
                        @if !of_tier.is_empty() {
                            ul class="columns" {
                                @for clinic in of_tier.iter().take(LISTED) {
                                    li {
                                        a href={ "/cabinets/" (clinic.id) } { (clinic.name) }
                                        @if let Some(n) = open_by_clinic.get(clinic.id.as_str()) {
                                            " · " (n) " alerte(s) ouverte(s)"
                                        }
                                    }
                                }
                            }
                            @if of_tier.len() > LISTED {
                                p { a href={ "/cabinets?contrat=" (tier.as_str()) } { "Voir les " (of_tier.len()) " cabinets " (tier.as_str().to_uppercase()) } }
                            }
                        }
                    }
                }
            }
        },
    )
}
