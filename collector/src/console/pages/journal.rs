//! Journal: the audit log, newest first: who did what, from where, when.

use maud::{Markup, html};

use super::{Nav, Viewer, frame, when};
use crate::storage::AuditEntry;

pub fn action_label(action: &str) -> &'static str {
    match action {
        "login" => "connexion",
        "login_failed" => "mot de passe refusé",
        "login_locked" => "connexion refusée (compte verrouillé)",
        "logout" => "déconnexion",
        "acknowledge" => "alerte acquittée",
        "resolve" => "alerte résolue",
        "maintenance_add" => "fenêtre de maintenance ouverte",
        "maintenance_end" => "fenêtre de maintenance terminée",
        "tier_change" => "contrat changé",
        "rules_change" => "règles du cabinet changées",
        "refused" => "action refusée",
        "account_add" => "compte créé",
        "account_disable" => "compte désactivé",
        "account_password" => "mot de passe changé",
        "api_token_create" => "jeton d'API créé",
        "api_token_revoke" => "jeton d'API révoqué",
        _ => "autre action",
    }
}

pub fn render(viewer: &Viewer, refresh: u64, entries: &[AuditEntry]) -> Markup {
    frame(
        "Journal des actions",
        Some(viewer),
        Nav::Journal,
        refresh,
        html! {
            div id="journal-live" data-live {
                p { "Les " (entries.len()) " dernières actions." }
                table {
                    thead { tr { th scope="col" { "Quand" } th scope="col" { "Qui" } th scope="col" { "D'où" } th scope="col" { "Action" } th scope="col" { "Sur" } th scope="col" { "Note" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (when(Some(e.at))) }
                                td { (e.who) }
                                td { (e.address) }
                                td { (action_label(&e.action)) }
                                td { (e.target) }
                                td { (e.note) }
                            }
                        }
                    }
                }
            }
        },
    )
}
