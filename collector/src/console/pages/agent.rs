//! Poste: OS, updates, antivirus, business software against the reference versions, disks
//! with their free-space trend (inline SVG), clock offset, configuration version, outbox.

use jiff::Timestamp;
use maud::{Markup, html};

use super::{Nav, Viewer, badge, bytes, frame, severity_label, state_label, tier_label, when};
use crate::alert_output::AlertView;
use crate::alerts::rules::software::{compare_versions, glob};
use crate::alerts::thresholds::SoftwareReference;
use crate::facts::{Antivirus, OsUpdates, Software, Stamped};
use crate::model::{AgentRecord, Clinic, Disk};
use crate::output::AgentView;

/// Width and height of a disk's trend chart, in SVG units.
const CHART_W: f64 = 300.0;
const CHART_H: f64 = 60.0;

pub struct AgentPage<'a> {
    pub agent: &'a AgentRecord,
    pub view: &'a AgentView,
    pub clinic: Option<&'a Clinic>,
    pub updates: Option<&'a Stamped<OsUpdates>>,
    pub antivirus: Option<&'a Stamped<Antivirus>>,
    pub software: Option<&'a Stamped<Software>>,
    pub references: &'a [SoftwareReference],
    /// System snapshots' disks, oldest first.
    pub disk_history: &'a [(Timestamp, Vec<Disk>)],
    pub alerts: &'a [AlertView],
    pub now: Timestamp,
}

/// The central configuration version the agent runs, and the latest one it refused with why;
/// `None` when it runs on its local file alone.
pub fn config_version(agent: &AgentRecord) -> Option<String> {
    let c = &agent.config;
    if c.running_version == 0 && c.refused_version == 0 {
        return None;
    }
    let mut text = if c.running_version == 0 {
        "aucune version appliquée".to_owned()
    } else {
        format!("v{}", c.running_version)
    };
    if c.refused_version != 0 {
        text.push_str(&format!(
            " (v{} refusée : {})",
            c.refused_version, c.refused_reason
        ));
    }
    Some(text)
}

fn free_percent(d: &Disk) -> f64 {
    if d.total_bytes == 0 {
        0.0
    } else {
        d.available_bytes as f64 * 100.0 / d.total_bytes as f64
    }
}

/// The free-space trend of one mount point as a polyline's points.
pub fn trend_points(history: &[(Timestamp, Vec<Disk>)], mount: &str) -> String {
    let samples: Vec<(i64, f64)> = history
        .iter()
        .filter_map(|(at, disks)| {
            disks
                .iter()
                .find(|d| d.mount_point == mount)
                .map(|d| (at.as_second(), free_percent(d)))
        })
        .collect();
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::new();
    };
    let span = (last.0 - first.0).max(1) as f64;
    samples
        .iter()
        .map(|(t, free)| {
            let x = if samples.len() == 1 {
                CHART_W
            } else {
                (t - first.0) as f64 / span * CHART_W
            };
            let y = CHART_H - free.clamp(0.0, 100.0) / 100.0 * CHART_H;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn disk_chart(history: &[(Timestamp, Vec<Disk>)], disk: &Disk) -> Markup {
    let points = trend_points(history, &disk.mount_point);
    let since = history.first().map(|(at, _)| *at);
    let label = format!(
        "Espace libre de {} : {:.0} % aujourd'hui",
        disk.mount_point,
        free_percent(disk)
    );
    html! {
        svg class="trend" role="img" aria-label=(label) viewBox="0 0 300 60" width="300" height="60" {
            title { (label) }
            rect class="chart-bg" x="0" y="0" width="300" height="60" {}
            line class="chart-grid" x1="0" y1="30" x2="300" y2="30" {}
            polyline class="chart-line" points=(points) {}
            @if let Some((x, y)) = points.rsplit(' ').next().and_then(|p| p.split_once(',')) {
                circle class="chart-dot" cx=(x) cy=(y) r="3" {}
            }
        }
        @if let Some(since) = since { br; span class="muted" { "depuis " (when(Some(since))) ", de 0 % (bas) à 100 % libre (haut)" } }
    }
}

pub fn render(viewer: &Viewer, refresh: u64, p: &AgentPage<'_>) -> Markup {
    let a = p.agent;
    let v = p.view;
    frame(
        &format!("Poste {}", a.hostname),
        Some(viewer),
        Nav::Clinics,
        refresh,
        html! {
            div id="agent-live" data-live {
                section aria-labelledby="h-identity" {
                    h2 id="h-identity" { "Identité" }
                    dl {
                        dt { "Cabinet" }
                        dd { @if let Some(c) = p.clinic { a href={ "/cabinets/" (c.id) } { (c.name) } " · " (tier_label(c.tier.as_str())) } @else { "inconnu" } }
                        dt { "Système" }
                        dd { @if let Some(s) = &a.snapshot { (s.os_label()) " · noyau " (s.kernel_version) } @else { (a.os) } }
                        dt { "Rôle" } dd { (a.role.as_str()) }
                        dt { "Version de l'agent" } dd { (a.agent_version) }
                        dt { "Dernier rapport" } dd { (super::clinic::presence_badge(a.last_seen, p.now)) " " (when(a.last_seen)) }
                        dt { "Décalage d'horloge" }
                        dd { @match v.clock_offset_seconds {
                            Some(s) if s.abs() >= 60 => { (badge("sev-major", &format!("{s:+} s"))) " (l'horloge du poste est décalée)" }
                            Some(s) => { (format!("{s:+} s")) }
                            None => { span class="muted" { "inconnu" } }
                        } }
                        dt { "Version de configuration" }
                        dd id="config-version" { @match config_version(a) {
                            Some(version) => { (version) }
                            None => { span class="muted" { "aucune configuration centrale (fichier local seul)" } }
                        } }
                    }
                }
                section aria-labelledby="h-alerts" {
                    h2 id="h-alerts" { "Alertes en cours" }
                    @if p.alerts.is_empty() { p { "Aucune alerte en cours." } } @else {
                        ul { @for al in p.alerts { li { "#" (al.id) " " (severity_label(&al.severity)) ", " (state_label(&al.state)) " : " (al.summary) } } }
                    }
                }
                section aria-labelledby="h-updates" {
                    h2 id="h-updates" { "Mises à jour du système" }
                    @if let Some(u) = p.updates {
                        p {
                            (u.value.pending_count) " en attente dont " (u.value.security_count) " de sécurité"
                            " (" (u.value.manager) ", relevé " (when(Some(u.collected_at))) ")"
                        }
                        @if u.value.reboot_required { p { (badge("sev-major", "redémarrage requis")) " " (u.value.reboot_reasons.join(", ")) } }
                    } @else { p class="muted" { "Pas encore de relevé." } }
                }
                section aria-labelledby="h-antivirus" {
                    h2 id="h-antivirus" { "Antivirus" }
                    @if let Some(av) = p.antivirus {
                        @if av.value.none_found { p { (badge("sev-critical", "aucun antivirus trouvé")) } }
                        ul {
                            @for product in &av.value.products {
                                li {
                                    (product.name) " : "
                                    @if product.enabled { (badge("ok", "actif")) } @else { (badge("sev-critical", "désactivé")) }
                                    @match product.signatures_up_to_date {
                                        Some(true) => { " signatures à jour" }
                                        Some(false) => { " " (badge("sev-major", "signatures périmées")) }
                                        None => {}
                                    }
                                    @if let Some(at) = product.signatures_updated_at { " (" (when(Some(at))) ")" }
                                }
                            }
                        }
                    } @else { p class="muted" { "Pas encore de relevé." } }
                }
                section aria-labelledby="h-software" {
                    h2 id="h-software" { "Logiciels métier" }
                    @if let Some(sw) = p.software {
                        table {
                            thead { tr { th scope="col" { "Logiciel" } th scope="col" { "Version installée" } th scope="col" { "Version de référence" } th scope="col" { "État" } } }
                            tbody {
                                @for item in &sw.value.items {
                                    @let reference = p.references.iter().find(|r| glob(&r.pattern, &item.watch_name) || glob(&r.pattern, &item.name));
                                    tr {
                                        td { (item.name) }
                                        td { (item.version) }
                                        td { @if let Some(r) = reference { (r.min_version) } @else { span class="muted" { "aucune" } } }
                                        td { @match reference {
                                            Some(r) if compare_versions(&item.version, &r.min_version).is_lt() => { (badge("sev-major", "en retard")) }
                                            Some(_) => { (badge("ok", "à jour")) }
                                            None => { span class="muted" { "non suivi" } }
                                        } }
                                    }
                                }
                            }
                        }
                    } @else { p class="muted" { "Pas encore de relevé." } }
                }
                section aria-labelledby="h-disks" {
                    h2 id="h-disks" { "Disques" }
                    @if let Some(s) = &a.snapshot {
                        table {
                            thead { tr { th scope="col" { "Disque" } th scope="col" { "Libre" } th scope="col" { "Tendance de l'espace libre" } } }
                            tbody {
                                @for d in &s.disks {
                                    tr {
                                        td { (d.mount_point) " " span class="muted" { (d.file_system) } }
                                        td { (format!("{:.0} %", free_percent(d))) " · " (bytes(d.available_bytes)) " sur " (bytes(d.total_bytes)) }
                                        td { (disk_chart(p.disk_history, d)) }
                                    }
                                }
                            }
                        }
                    } @else { p class="muted" { "Pas encore d'instantané." } }
                }
                section aria-labelledby="h-outbox" {
                    h2 id="h-outbox" { "File d'envoi de l'agent" }
                    ul {
                        li { (v.reports) " rapports reçus, " (v.outbox_dropped_total) " écartés par l'agent (file pleine)" }
                        li { (v.outbox_write_failures) " écritures en échec"
                            @if !v.outbox_last_write_error.is_empty() { " (dernière : " (v.outbox_last_write_error) ")" } }
                        li { (v.outbox_quarantined) " en quarantaine (" (v.outbox_quarantined_total) " au total)"
                            @if !v.outbox_last_quarantine_reason.is_empty() { " : " (v.outbox_last_quarantine_reason) } }
                        @if v.uninterpreted_reports > 0 { li { (v.uninterpreted_reports) " rapports d'un type inconnu de ce collecteur" } }
                        @for cut in &v.truncated { li { "coupé : " (cut) } }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(mount: &str, free: u64) -> Disk {
        Disk {
            mount_point: mount.into(),
            file_system: "ext4".into(),
            total_bytes: 100,
            available_bytes: free,
            removable: false,
            kind: "ssd".into(),
        }
    }

    #[test]
    fn the_trend_spans_the_chart_from_first_to_last_sample() {
        let at = |s: i64| Timestamp::from_second(s).expect("ts");
        let history = [
            (at(0), vec![disk("/", 100)]),
            (at(50), vec![disk("/", 50), disk("/data", 10)]),
            (at(100), vec![disk("/", 0)]),
        ];
        assert_eq!(trend_points(&history, "/"), "0.0,0.0 150.0,30.0 300.0,60.0");
        assert_eq!(trend_points(&history, "/data"), "300.0,54.0");
        assert_eq!(trend_points(&history, "/none"), "");
    }
}
