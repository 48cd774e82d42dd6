//! What the admin commands print: plain tables for technicians, JSON for scripts and tests.

use serde::Serialize;
use vigie_proto::v1;

use crate::model::SystemSnapshot;
use crate::server::convert::{role_from_proto, snapshot_from_proto};
use crate::time_text::{local_rfc3339, rfc3339_proto, rounded_gap};

#[derive(Debug, Serialize)]
pub struct ClinicView {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AgentView {
    pub id: String,
    pub clinic_id: String,
    pub hostname: String,
    pub os: String,
    pub role: String,
    pub last_seen: Option<String>,
    pub reports: u64,
    pub revoked: bool,
    pub enrolled_at: Option<String>,
    pub agent_version: String,
    pub outbox_dropped_total: u64,
    /// Agent clock minus collector clock at its latest batch (positive: ahead).
    pub clock_offset_seconds: Option<i64>,
    /// Reports stored whole because this collector does not know their kind.
    pub uninterpreted_reports: u64,
    /// Outbox writes or syncs that failed on the agent (disk full, I/O error), cumulative.
    pub outbox_write_failures: u64,
    pub outbox_last_write_error: String,
    /// Reports refused for good, kept in the agent's quarantine now.
    pub outbox_quarantined: u64,
    pub outbox_quarantined_total: u64,
    pub outbox_quarantine_dropped: u64,
    pub outbox_last_quarantine_reason: String,
    pub snapshot: Option<SystemSnapshot>,
    /// What the collector left out of the latest reports (text cut, list items not kept).
    pub truncated: Vec<String>,
}

impl From<&v1::Clinic> for ClinicView {
    fn from(c: &v1::Clinic) -> Self {
        ClinicView {
            id: c.id.clone(),
            name: c.name.clone(),
            tier: c.tier.clone(),
            created_at: rfc3339_proto(c.created_at.as_ref()),
        }
    }
}

impl From<&v1::Agent> for AgentView {
    fn from(a: &v1::Agent) -> Self {
        // A collector older than these fields sends none: zeros.
        let outbox = a.outbox.clone().unwrap_or_default();
        AgentView {
            id: a.id.clone(),
            clinic_id: a.clinic_id.clone(),
            hostname: a.hostname.clone(),
            os: a.os.clone(),
            role: role_from_proto(a.role).as_str().to_owned(),
            last_seen: rfc3339_proto(a.last_seen.as_ref()),
            reports: a.reports,
            revoked: a.revoked,
            enrolled_at: rfc3339_proto(a.enrolled_at.as_ref()),
            agent_version: a.agent_version.clone(),
            outbox_dropped_total: a.outbox_dropped_total,
            clock_offset_seconds: a.clock_offset_seconds,
            uninterpreted_reports: a.uninterpreted_reports,
            outbox_write_failures: outbox.write_failures_total,
            outbox_last_write_error: outbox.last_write_error,
            outbox_quarantined: outbox.quarantined,
            outbox_quarantined_total: outbox.quarantined_total,
            outbox_quarantine_dropped: outbox.quarantine_dropped_total,
            outbox_last_quarantine_reason: outbox.last_quarantine_reason,
            snapshot: a.last_snapshot.as_ref().map(snapshot_from_proto),
            truncated: a.truncated.clone(),
        }
    }
}

/// Left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            out.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()),
            ));
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

pub fn clinics_table(clinics: &[ClinicView]) -> String {
    let rows: Vec<_> = clinics
        .iter()
        .map(|c| vec![c.id.clone(), c.name.clone(), c.tier.clone()])
        .collect();
    table(&["ID", "CABINET", "CONTRAT"], &rows)
}

/// The agents for a technician, in French like the rest of the interface: the clinic by name,
/// the last contact in La Réunion time.
pub fn agents_table(
    agents: &[AgentView],
    clinic_names: &std::collections::HashMap<String, String>,
) -> String {
    let rows: Vec<_> = agents
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                clinic_names
                    .get(&a.clinic_id)
                    .cloned()
                    .unwrap_or_else(|| a.clinic_id.clone()),
                a.hostname.clone(),
                match a.role.as_str() {
                    "server" => "serveur",
                    "imaging" => "imagerie",
                    _ => "poste",
                }
                .to_owned(),
                a.os.clone(),
                a.last_seen
                    .as_deref()
                    .map_or_else(|| "jamais".to_owned(), local_rfc3339),
                a.reports.to_string(),
                clock_label(a.clock_offset_seconds),
                if a.revoked { "révoqué" } else { "actif" }.to_owned(),
                outbox_text(a),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "AGENT",
            "CABINET",
            "MACHINE",
            "RÔLE",
            "SYSTÈME",
            "DERNIER CONTACT",
            "RAPPORTS",
            "HORLOGE",
            "ÉTAT",
            "BOÎTE D'ENVOI",
        ],
        &rows,
    );
    for a in agents.iter().filter(|a| !a.truncated.is_empty()) {
        out.push_str(&format!(
            "\nDonnées tronquées par le collecteur pour {} ({}) :\n",
            a.id, a.hostname
        ));
        for note in &a.truncated {
            out.push_str(&format!("  - {note}\n"));
        }
    }
    for a in agents.iter().filter(|a| a.uninterpreted_reports > 0) {
        out.push_str(&format!(
            "{} : {} rapport(s) d'un type que ce collecteur ne connaît pas, conservés tels quels : mettez le collecteur à jour pour les lire.\n",
            a.hostname, a.uninterpreted_reports
        ));
    }
    out
}

/// The agent's clock for a technician: "ok" within the tolerance, else how far off.
fn clock_label(offset_seconds: Option<i64>) -> String {
    let Some(offset) = offset_seconds else {
        return "?".to_owned();
    };
    if offset.abs() <= crate::agent_clock::TOLERANCE.as_secs() {
        return "ok".to_owned();
    }
    let sign = if offset > 0 { "avance" } else { "retard" };
    let amount = rounded_gap(offset.unsigned_abs());
    format!("{sign} {amount}")
}

/// What went wrong in the agent's outbox, in a few words: reports the collector refused (kept
/// in quarantine on the agent, to look at there), dropped or discarded ones, failed writes.
fn outbox_text(a: &AgentView) -> String {
    let mut parts = Vec::new();
    if a.outbox_quarantined > 0 {
        parts.push(format!(
            "{} en quarantaine ({})",
            a.outbox_quarantined,
            short(&a.outbox_last_quarantine_reason)
        ));
    }
    if a.outbox_quarantine_dropped > 0 {
        parts.push(format!(
            "{} écartés de la quarantaine pleine",
            a.outbox_quarantine_dropped
        ));
    }
    if a.outbox_dropped_total > 0 {
        parts.push(format!("{} écartés (boîte pleine)", a.outbox_dropped_total));
    }
    if a.outbox_write_failures > 0 {
        parts.push(format!(
            "{} échecs d'écriture ({})",
            a.outbox_write_failures,
            short(&a.outbox_last_write_error)
        ));
    }
    if parts.is_empty() {
        "ok".to_owned()
    } else {
        parts.join(" ; ")
    }
}

/// A reason cut for a table cell (`--json` has it whole).
fn short(reason: &str) -> String {
    fit(reason, 60)
}

/// Cuts `text` to `width` characters, marking the cut: a table cell or an 80-column line.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_as_ok_or_how_far_off() {
        assert_eq!(clock_label(None), "?");
        assert_eq!(clock_label(Some(3)), "ok");
        assert_eq!(clock_label(Some(365 * 86_400)), "avance 365 j");
        assert_eq!(clock_label(Some(-7_200)), "retard 2 h");
    }

    #[test]
    fn fit_marks_the_cut() {
        assert_eq!(fit("Cabinet", 7), "Cabinet");
        assert_eq!(fit("Cabinet", 4), "Cab…");
        assert_eq!(fit("éèàç", 3), "éè…");
    }

    #[test]
    fn table_aligns_columns() {
        let out = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "Cabinet A".into()],
                vec!["22".into(), "B".into()],
            ],
        );
        assert_eq!(out, "ID  NAME\n1   Cabinet A\n22  B\n");
    }

    #[test]
    fn agents_table_says_what_the_collector_left_out() {
        let agent = v1::Agent {
            id: "a1".into(),
            clinic_id: "c1".into(),
            hostname: "SRV-PACS".into(),
            truncated: vec!["instantané : 500 disques, 64 pris en compte".into()],
            ..v1::Agent::default()
        };
        let names = [("c1".to_owned(), "Cabinet Prisme".to_owned())].into();
        let out = agents_table(&[AgentView::from(&agent)], &names);
        assert!(
            out.ends_with(
                "\nDonnées tronquées par le collecteur pour a1 (SRV-PACS) :\n  - instantané : 500 disques, 64 pris en compte\n"
            ),
            "{out}"
        );
        let whole = v1::Agent {
            truncated: vec![],
            ..agent
        };
        assert!(!agents_table(&[AgentView::from(&whole)], &names).contains("tronquées"));
    }

    #[test]
    fn agent_json_has_the_documented_fields() {
        let agent = v1::Agent {
            id: "a".into(),
            role: v1::AgentRole::Imaging.into(),
            last_seen: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            reports: 3,
            ..v1::Agent::default()
        };
        let json = serde_json::to_value(AgentView::from(&agent)).expect("json");
        assert_eq!(json["role"], "imaging");
        assert_eq!(json["last_seen"], "1970-01-01T00:00:00Z");
        assert_eq!(json["reports"], 3);
        assert!(json["snapshot"].is_null());
        for key in [
            "id",
            "clinic_id",
            "hostname",
            "os",
            "revoked",
            "enrolled_at",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
