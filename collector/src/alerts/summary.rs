//! What a technician reads, in French: an alert's summary with its duration ("Sauvegarde
//! nightly-nas en échec depuis 2 jours"), severities and states.

use jiff::Timestamp;

use super::alert::{Alert, AlertState, Severity};
use crate::time_text::duration;

/// The alert's text, with "depuis …" when the facts say since when.
pub fn summary(alert: &Alert, now: Timestamp) -> String {
    match alert.since {
        Some(since) => format!(
            "{} depuis {}",
            alert.text,
            duration(now.duration_since(since))
        ),
        None => alert.text.clone(),
    }
}

/// A backup run's cause, as the agent classified it, in a technician's words.
pub fn backup_cause(cause: &str) -> Option<&'static str> {
    Some(match cause {
        "source_missing" => "dossier source introuvable",
        "unreadable_files" => "fichiers source illisibles",
        "wrong_password" => "mot de passe du dépôt refusé",
        "repository_missing" => "dépôt de sauvegarde introuvable",
        "repository_damaged" => "dépôt de sauvegarde endommagé",
        "repository_locked" => "dépôt verrouillé par une autre opération",
        "target_not_writable" => "destination non accessible en écriture",
        "target_full" => "destination pleine",
        "not_found" => "commande de sauvegarde introuvable",
        "not_permitted" => "accès refusé",
        "timeout" => "délai dépassé, sauvegarde arrêtée",
        "killed" => "sauvegarde interrompue avant la fin",
        "output_unreadable" => "résultat illisible",
        "busy" => "une autre opération de sauvegarde était en cours",
        "cancelled" => "sauvegarde annulée",
        "catalog_damaged" => "catalogue de sauvegarde endommagé",
        "bad_clusters" => "secteurs défectueux sur le disque de sauvegarde",
        "network" => "destination injoignable sur le réseau",
        _ => return None,
    })
}

/// "3 fichiers" / "1 fichier".
pub fn files(n: u64) -> String {
    if n > 1 {
        format!("{n} fichiers")
    } else {
        format!("{n} fichier")
    }
}

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critique",
        Severity::Major => "majeure",
        Severity::Warning => "mineure",
    }
}

pub fn state(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "ouverte",
        AlertState::Acknowledged => "acquittée",
        AlertState::Resolved => "résolue",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_the_agent_sends_has_words() {
        for cause in [
            "source_missing",
            "unreadable_files",
            "wrong_password",
            "repository_missing",
            "repository_damaged",
            "repository_locked",
            "target_not_writable",
            "target_full",
            "not_found",
            "not_permitted",
            "timeout",
            "killed",
            "output_unreadable",
            "busy",
            "cancelled",
            "catalog_damaged",
            "bad_clusters",
            "network",
        ] {
            assert!(backup_cause(cause).is_some(), "{cause}");
        }
        assert_eq!(backup_cause("something_new"), None);
        assert_eq!(
            (files(1), files(3)),
            ("1 fichier".to_owned(), "3 fichiers".to_owned())
        );
    }
}
