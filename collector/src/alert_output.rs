//! What the alert commands print: JSON with English identifiers for scripts and tests, and
//! French text for the technicians, each alert on two lines that fit 80 columns.

use serde::Serialize;
use vigie_proto::v1;

use crate::alerts::alert::{AlertState, Severity};
use crate::alerts::summary;
use crate::output::{fit, table};
use crate::time_text::{local_proto, rfc3339_proto};

/// Width a technician's terminal has.
const WIDTH: usize = 80;

#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub at: Option<String>,
    pub action: String,
    pub by: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub id: u64,
    pub clinic_id: String,
    pub clinic_name: String,
    pub tier: String,
    pub agent_id: String,
    pub hostname: String,
    pub device: Option<String>,
    pub rule: String,
    pub category: String,
    pub family: String,
    pub subject: String,
    pub severity: String,
    pub state: String,
    pub summary: String,
    pub detail: String,
    pub since: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub count: u64,
    pub silenced: bool,
    pub flapping: bool,
    pub previous_id: Option<u64>,
    pub resolved_at: Option<String>,
    pub history: Vec<HistoryView>,
}

impl From<&v1::Alert> for AlertView {
    fn from(a: &v1::Alert) -> Self {
        AlertView {
            id: a.id,
            clinic_id: a.clinic_id.clone(),
            clinic_name: a.clinic_name.clone(),
            tier: a.tier.clone(),
            agent_id: a.agent_id.clone(),
            hostname: a.hostname.clone(),
            device: (!a.device.is_empty()).then(|| a.device.clone()),
            rule: a.rule.clone(),
            category: a.category.clone(),
            family: a.family.clone(),
            subject: a.subject.clone(),
            severity: a.severity.clone(),
            state: a.state.clone(),
            summary: a.summary.clone(),
            detail: a.detail.clone(),
            since: rfc3339_proto(a.since.as_ref()),
            first_seen: rfc3339_proto(a.first_seen.as_ref()),
            last_seen: rfc3339_proto(a.last_seen.as_ref()),
            count: a.count,
            silenced: a.silenced,
            flapping: a.flapping,
            previous_id: a.previous_id,
            resolved_at: rfc3339_proto(a.resolved_at.as_ref()),
            history: a
                .history
                .iter()
                .map(|h| HistoryView {
                    at: rfc3339_proto(h.at.as_ref()),
                    action: h.action.clone(),
                    by: h.by.clone(),
                    note: h.note.clone(),
                })
                .collect(),
        }
    }
}

/// Alerts as the collector sorted them (severity, then age), two lines each:
/// `#12  critique  ouverte    Cabinet Dupont · PC-ACCUEIL`, then the summary.
pub fn alerts_table(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return "Aucune alerte.\n".to_owned();
    }
    let mut out = String::new();
    for a in alerts {
        let severity =
            Severity::parse(&a.severity).map_or(a.severity.as_str(), |s| summary::severity(s));
        let state = AlertState::parse(&a.state).map_or(a.state.as_str(), |s| summary::state(s));
        let mut place = if a.clinic_name.is_empty() {
            a.clinic_id.clone()
        } else {
            a.clinic_name.clone()
        };
        place.push_str(" · ");
        match &a.device {
            Some(device) => place.push_str(&format!("{device} (via {})", a.hostname)),
            None => place.push_str(&a.hostname),
        }
        let mut flags = Vec::new();
        if a.silenced {
            flags.push("en maintenance");
        }
        if a.flapping {
            flags.push("instable");
        }
        if a.count > 1 {
            flags.push("répétée");
        }
        let head = format!("#{:<4} {severity:<8}  {state:<9}  {place}", a.id);
        let mut summary = format!("      {}", a.summary);
        if !flags.is_empty() {
            summary.push_str(&format!(" [{}]", flags.join(", ")));
        }
        out.push_str(&fit(&head, WIDTH));
        out.push('\n');
        out.push_str(&fit(&summary, WIDTH));
        out.push('\n');
    }
    out
}

#[derive(Debug, Serialize)]
pub struct MaintenanceWindowView {
    pub id: u64,
    pub clinic_id: Option<String>,
    pub agent_id: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    #[serde(skip)]
    pub ends_at_local: String,
    pub reason: String,
    pub created_by: String,
    pub active: bool,
}

impl From<&v1::MaintenanceWindow> for MaintenanceWindowView {
    fn from(s: &v1::MaintenanceWindow) -> Self {
        MaintenanceWindowView {
            id: s.id,
            clinic_id: (!s.clinic_id.is_empty()).then(|| s.clinic_id.clone()),
            agent_id: (!s.agent_id.is_empty()).then(|| s.agent_id.clone()),
            starts_at: rfc3339_proto(s.starts_at.as_ref()),
            ends_at: rfc3339_proto(s.ends_at.as_ref()),
            ends_at_local: local_proto(s.ends_at.as_ref()),
            reason: s.reason.clone(),
            created_by: s.created_by.clone(),
            active: s.active,
        }
    }
}

pub fn maintenance_windows_table(windows: &[MaintenanceWindowView]) -> String {
    if windows.is_empty() {
        return "Aucune fenêtre de maintenance en cours.\n".to_owned();
    }
    let rows: Vec<_> = windows
        .iter()
        .map(|s| {
            let scope = match (&s.clinic_id, &s.agent_id) {
                (Some(c), _) => format!("cabinet {}", fit(c, 13)),
                (_, Some(a)) => format!("agent {}", fit(a, 13)),
                _ => String::new(),
            };
            vec![
                s.id.to_string(),
                scope,
                s.ends_at_local.clone(),
                fit(&s.created_by, 10),
                fit(&s.reason, 24),
            ]
        })
        .collect();
    table(&["N°", "PORTÉE", "FIN", "PAR", "MOTIF"], &rows)
}

#[derive(Debug, Serialize)]
pub struct FamilyView {
    pub family: String,
    pub category: String,
    pub alerts: bool,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct PolicyView {
    pub clinic_id: String,
    pub clinic_name: String,
    pub tier: String,
    pub families: Vec<FamilyView>,
    pub resolved_alert_ids: Vec<u64>,
}

impl From<&v1::ClinicPolicy> for PolicyView {
    fn from(p: &v1::ClinicPolicy) -> Self {
        let clinic = p.clinic.clone().unwrap_or_default();
        PolicyView {
            clinic_id: clinic.id,
            clinic_name: clinic.name,
            tier: clinic.tier,
            families: p
                .families
                .iter()
                .map(|f| FamilyView {
                    family: f.family.clone(),
                    category: f.category.clone(),
                    alerts: f.alerts,
                    source: f.source.clone(),
                })
                .collect(),
            resolved_alert_ids: p.resolved_alert_ids.clone(),
        }
    }
}

pub fn policy_table(p: &PolicyView) -> String {
    let mut out = format!(
        "{} ({}) : contrat {}\n",
        p.clinic_name,
        p.clinic_id,
        p.tier.to_uppercase()
    );
    let rows: Vec<_> = p
        .families
        .iter()
        .map(|f| {
            vec![
                f.family.clone(),
                if f.category == "backup" {
                    "sauvegarde"
                } else {
                    "préventif"
                }
                .to_owned(),
                if f.alerts { "oui" } else { "non" }.to_owned(),
                if f.source == "override" {
                    "dérogation"
                } else {
                    "contrat"
                }
                .to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(&["FAMILLE", "CATÉGORIE", "ALERTES", "SELON"], &rows));
    if !p.resolved_alert_ids.is_empty() {
        let ids: Vec<_> = p
            .resolved_alert_ids
            .iter()
            .map(|id| format!("#{id}"))
            .collect();
        out.push_str(&format!("Alertes résolues : {}\n", ids.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(summary: &str) -> AlertView {
        AlertView::from(&v1::Alert {
            id: 12,
            clinic_name: "Cabinet médical des Lataniers".into(),
            hostname: "PC-ACCUEIL-SECRETARIAT".into(),
            severity: "critical".into(),
            state: "open".into(),
            summary: summary.into(),
            count: 3,
            ..v1::Alert::default()
        })
    }

    #[test]
    fn table_is_french_and_fits_80_columns() {
        let out = alerts_table(&[alert(
            "Sauvegarde nightly-nas en échec depuis 2 jours, avec un texte bien trop long pour tenir",
        )]);
        for line in out.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(out.starts_with("#12   critique  ouverte    Cabinet médical des Lataniers"));
        assert!(out.contains("Sauvegarde nightly-nas en échec depuis 2 jours"));
        assert_eq!(alerts_table(&[]), "Aucune alerte.\n");
    }

    #[test]
    fn maintenance_windows_read_in_french_and_local_time() {
        assert_eq!(
            maintenance_windows_table(&[]),
            "Aucune fenêtre de maintenance en cours.\n"
        );
        let window = MaintenanceWindowView::from(&v1::MaintenanceWindow {
            id: 3,
            clinic_id: "c1".into(),
            ends_at: Some(prost_types::Timestamp {
                seconds: 1_796_374_800, // 2026-12-04T09:00:00Z
                nanos: 0,
            }),
            reason: "migration NAS".into(),
            created_by: "marie".into(),
            active: true,
            ..v1::MaintenanceWindow::default()
        });
        let out = maintenance_windows_table(&[window]);
        assert_eq!(
            out,
            "N°  PORTÉE      FIN          PAR    MOTIF\n3   cabinet c1  04/12 13:00  marie  migration NAS\n"
        );
        let mut muted = alert("x");
        muted.silenced = true;
        assert!(alerts_table(&[muted]).contains("[en maintenance, répétée]"));
    }

    #[test]
    fn json_has_the_documented_fields() {
        let json = serde_json::to_value(alert("x")).expect("json");
        for key in [
            "id",
            "clinic_id",
            "tier",
            "agent_id",
            "device",
            "rule",
            "category",
            "severity",
            "state",
            "summary",
            "first_seen",
            "last_seen",
            "count",
            "silenced",
            "flapping",
            "previous_id",
            "history",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["id"], 12);
    }
}
