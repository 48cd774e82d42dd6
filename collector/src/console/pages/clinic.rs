//! Cabinets (the list) and one cabinet: its agents, LAN devices, each backup job with a
//! 30-day strip coloured by result and its last integrity check, its tickets, its tier (an
//! admin may change it) and its opening hours.

use jiff::Timestamp;
use jiff::civil::Date;
use maud::{Markup, html};

use super::{
    Nav, TIERS, Viewer, badge, csrf_field, frame, severity_label, state_label, ticket_state_label,
    tier_label, tier_short, when, when_text,
};
use crate::alert_output::AlertView;
use crate::alerts::opening_hours::clinic_zone;
use crate::console::data::{Presence, presence};
use crate::facts::{
    BackupRun, BackupStatus, DeclaredJobRecord, DeviceRecord, DeviceState, RunKind,
};
use crate::model::{AgentRecord, Clinic};
use crate::ticket_output::TicketView;

/// Days the backup strip covers.
pub const STRIP_DAYS: i64 = 30;
/// Clinics per page of the list.
pub const PER_PAGE: usize = 100;

/// One backup job of one agent.
pub struct JobStrip {
    pub agent_id: String,
    pub hostname: String,
    pub job: String,
    /// Backup runs (not checks), oldest first.
    pub runs: Vec<BackupRun>,
    pub last_check: Option<BackupRun>,
    pub declared: Option<DeclaredJobRecord>,
}

pub struct ClinicPage<'a> {
    pub clinic: &'a Clinic,
    pub agents: &'a [AgentRecord],
    pub devices: &'a [(String, DeviceRecord)],
    pub jobs: &'a [JobStrip],
    pub tickets: &'a [TicketView],
    pub alerts: &'a [AlertView],
    pub now: Timestamp,
    /// `[clinic]` of its central configuration: its own opening hours and time zone.
    pub hours: Option<String>,
}

/// The worst result of a day: failure before warning before success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DayResult {
    None,
    Success,
    Unknown,
    Warning,
    Failed,
}

impl DayResult {
    fn of(status: BackupStatus) -> Self {
        match status {
            BackupStatus::Success => DayResult::Success,
            BackupStatus::Warning => DayResult::Warning,
            BackupStatus::Failed => DayResult::Failed,
            BackupStatus::Unknown => DayResult::Unknown,
        }
    }

    fn class(self) -> &'static str {
        match self {
            DayResult::None => "day-none",
            DayResult::Success => "day-ok",
            DayResult::Unknown => "day-unknown",
            DayResult::Warning => "day-warning",
            DayResult::Failed => "day-failed",
        }
    }

    fn label(self) -> &'static str {
        match self {
            DayResult::None => "aucune sauvegarde",
            DayResult::Success => "réussie",
            DayResult::Unknown => "résultat inconnu",
            DayResult::Warning => "avec avertissement",
            DayResult::Failed => "en échec",
        }
    }
}

/// The last [`STRIP_DAYS`] local days ending `today`, each with its worst backup result.
pub fn strip_days(runs: &[BackupRun], today: Date) -> Vec<(Date, DayResult)> {
    let zone = clinic_zone();
    (0..STRIP_DAYS)
        .rev()
        .filter_map(|back| today.checked_sub(jiff::Span::new().days(back)).ok())
        .map(|day| {
            let worst = runs
                .iter()
                .filter(|r| r.kind == RunKind::Backup)
                .filter(|r| r.finished_at.to_zoned_datetime(zone.clone()).date() == day)
                .map(|r| DayResult::of(r.status))
                .max()
                .unwrap_or(DayResult::None);
            (day, worst)
        })
        .collect()
}

fn strip(job: &JobStrip, now: Timestamp) -> Markup {
    let today = now.to_zoned_datetime(clinic_zone()).date();
    let days = strip_days(&job.runs, today);
    let failed = days.iter().filter(|(_, r)| *r == DayResult::Failed).count();
    let ok = days
        .iter()
        .filter(|(_, r)| *r == DayResult::Success)
        .count();
    let label = format!(
        "{} derniers jours de « {} » : {ok} réussis, {failed} en échec",
        STRIP_DAYS, job.job
    );
    html! {
        svg class="strip" role="img" aria-label=(label) viewBox="0 0 300 24" width="300" height="24" {
            title { (label) }
            @for (i, (day, result)) in days.iter().enumerate() {
                rect class=(result.class()) x=(i * 10) y="2" width="9" height="20" {
                    title { (day.strftime("%d/%m")) " : " (result.label()) }
                }
            }
        }
    }
}

fn device_state(state: DeviceState) -> Markup {
    match state {
        DeviceState::Up => badge("ok", "joignable"),
        DeviceState::Degraded => badge("sev-warning", "dégradé"),
        DeviceState::Down => badge("sev-critical", "injoignable"),
        DeviceState::Unknown => badge("state-window", "inconnu"),
    }
}

fn run_status(status: BackupStatus) -> Markup {
    match status {
        BackupStatus::Success => badge("ok", "réussie"),
        BackupStatus::Warning => badge("sev-warning", "avertissement"),
        BackupStatus::Failed => badge("sev-critical", "échec"),
        BackupStatus::Unknown => badge("state-window", "inconnu"),
    }
}

pub fn presence_badge(last_seen: Option<Timestamp>, now: Timestamp) -> Markup {
    match presence(last_seen, now) {
        Presence::Online => badge("ok", "en ligne"),
        Presence::Silent => badge("sev-major", "silencieux"),
        Presence::Never => badge("state-window", "jamais vu"),
    }
}

/// The month before `now`'s, in Réunion time: the report a clinic asks for.
fn last_month(now: Timestamp) -> String {
    crate::report::Month::containing(now, &clinic_zone())
        .previous()
        .to_string()
}

pub fn render(viewer: &Viewer, refresh: u64, p: &ClinicPage<'_>) -> Markup {
    let c = p.clinic;
    frame(
        &c.name,
        Some(viewer),
        Nav::Clinics,
        refresh,
        html! {
            section aria-labelledby="h-contract" {
                h2 id="h-contract" { "Contrat et horaires" }
                p id="clinic-tier" { "Contrat : " strong { (tier_label(c.tier.as_str())) } }
                @match &p.hours {
                    Some(hours) => { p id="clinic-hours" { "Horaires d'ouverture : " (hours) } }
                    None => { p id="clinic-hours" { "Horaires d'ouverture (heure de La Réunion, par défaut) : du lundi au vendredi 07:30–19:00, le samedi 08:00–12:00 ; fermé le dimanche et les jours fériés." } }
                }
                form class="report" method="get" action={ "/cabinets/" (c.id) "/rapport" } {
                    p {
                        label for="report-month" { "Rapport mensuel (PDF)" }
                        " " input id="report-month" type="month" name="mois" value=(last_month(p.now));
                        " " button type="submit" { "Télécharger" }
                    }
                }
                @if viewer.is_admin() {
                    form class="tier" method="post" action={ "/cabinets/" (c.id) "/contrat" } {
                        (csrf_field(viewer))
                        p {
                            label for="tier" { "Changer le contrat" }
                            select id="tier" name="contrat" {
                                @for tier in TIERS {
                                    option value=(tier.as_str()) selected[tier == c.tier] { (tier_label(tier.as_str())) }
                                }
                            }
                            " " button type="submit" { "Enregistrer" }
                        }
                    }
                } @else {
                    p class="muted" { "Seul un administrateur peut changer le contrat." }
                }
            }
            div id="clinic-live" data-live {
                section aria-labelledby="h-alerts" {
                    h2 id="h-alerts" { "Alertes en cours" }
                    @if p.alerts.is_empty() { p { "Aucune alerte en cours." } } @else {
                        ul {
                            @for a in p.alerts {
                                li id={ "clinic-alert-" (a.id) } {
                                    a href={ "/alertes?cabinet=" (c.id) } { "#" (a.id) } " "
                                    (severity_label(&a.severity)) ", " (state_label(&a.state)) " : " (a.summary)
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-backups" {
                    h2 id="h-backups" { "Sauvegardes" }
                    @if p.jobs.is_empty() { p { "Aucune tâche de sauvegarde connue." } } @else {
                        table class="backups" {
                            thead { tr {
                                th scope="col" { "Poste" } th scope="col" { "Tâche" } th scope="col" { "Dernier résultat" }
                                th scope="col" { (STRIP_DAYS) " derniers jours" } th scope="col" { "Dernière vérification d'intégrité" }
                            } }
                            tbody {
                                @for job in p.jobs {
                                    tr {
                                        td { a href={ "/postes/" (job.agent_id) } { (job.hostname) } }
                                        td { (job.job) }
                                        td {
                                            @if let Some(last) = job.runs.last() {
                                                (run_status(last.status)) " " (when(Some(last.finished_at)))
                                                @if !last.message.is_empty() { br; span class="detail" { (last.message) } }
                                            } @else { span class="muted" { "jamais exécutée" } }
                                        }
                                        td { (strip(job, p.now)) }
                                        td {
                                            @if let Some(check) = &job.last_check {
                                                (run_status(check.status)) " " (when(Some(check.finished_at)))
                                            } @else if job.declared.as_ref().is_some_and(|d| d.job.check_every_seconds > 0) {
                                                (badge("sev-major", "attendue, jamais reçue"))
                                            } @else { span class="muted" { "aucune" } }
                                        }
                                    }
                                }
                            }
                        }
                        p class="legend" {
                            (badge("ok", "réussie")) " " (badge("sev-warning", "avertissement")) " "
                            (badge("sev-critical", "échec")) " " (badge("state-window", "aucune"))
                        }
                    }
                }
                section aria-labelledby="h-agents" {
                    h2 id="h-agents" { "Postes" }
                    @if p.agents.is_empty() { p { "Aucun poste inscrit." } } @else {
                        table {
                            thead { tr { th scope="col" { "Poste" } th scope="col" { "Rôle" } th scope="col" { "Système" } th scope="col" { "État" } th scope="col" { "Dernier rapport" } } }
                            tbody {
                                @for a in p.agents {
                                    tr {
                                        td { a href={ "/postes/" (a.id) } { (a.hostname) } }
                                        td { (a.role.as_str()) }
                                        td { (a.os) }
                                        td { @if a.revoked { (badge("state-window", "révoqué")) } @else { (presence_badge(a.last_seen, p.now)) } }
                                        td { (when(a.last_seen)) }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-devices" {
                    h2 id="h-devices" { "Appareils du réseau local" }
                    @if p.devices.is_empty() { p { "Aucun appareil surveillé." } } @else {
                        table {
                            thead { tr { th scope="col" { "Appareil" } th scope="col" { "Type" } th scope="col" { "Adresse" } th scope="col" { "État" } th scope="col" { "Vu par" } th scope="col" { "Depuis" } } }
                            tbody {
                                @for (host, d) in p.devices {
                                    tr {
                                        td { (d.device.name) }
                                        td { (d.device.kind) }
                                        td { (d.device.address) }
                                        td { (device_state(d.device.state))
                                            @if !d.device.error.is_empty() { br; span class="detail" { (d.device.error) } } }
                                        td { (host) }
                                        td { @if let Some(since) = d.down_since { "injoignable depuis " (when(Some(since))) } @else { (when(Some(d.reported_at))) } }
                                    }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="h-tickets" {
                    h2 id="h-tickets" { "Tickets" }
                    @if p.tickets.is_empty() { p { "Aucun ticket." } } @else {
                        ul {
                            @for t in p.tickets {
                                li { "Alerte #" (t.alert_id) " → " (t.sink) " : " (ticket_state_label(&t.state))
                                    @if let Some(id) = &t.ticket_id { " (ticket " (id) ")" }
                                    " · échéance " (when_text(t.response_due.as_deref())) }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub struct ClinicsPage<'a> {
    pub clinics: &'a [Clinic],
    pub open_alerts: &'a std::collections::HashMap<String, usize>,
    pub tier: &'a str,
    pub search: &'a str,
    pub page: usize,
}

pub fn render_list(viewer: &Viewer, refresh: u64, p: &ClinicsPage<'_>) -> Markup {
    let needle = p.search.trim().to_lowercase();
    let matching: Vec<&Clinic> = p
        .clinics
        .iter()
        .filter(|c| p.tier.is_empty() || c.tier.as_str() == p.tier)
        .filter(|c| needle.is_empty() || c.name.to_lowercase().contains(&needle))
        .collect();
    let pages = matching.len().div_ceil(PER_PAGE).max(1);
    let page = p.page.clamp(1, pages);
    let link = |n: usize| {
        format!(
            "/cabinets?contrat={}&recherche={}&page={n}",
            p.tier,
            p.search.replace(['&', '#', '?', ' '], "+")
        )
    };
    frame(
        "Cabinets",
        Some(viewer),
        Nav::Clinics,
        refresh,
        html! {
            form class="filters" method="get" action="/cabinets" aria-label="Chercher un cabinet" {
                p { label for="recherche" { "Nom" } input id="recherche" name="recherche" type="search" value=(p.search); }
                p { label for="contrat" { "Contrat" }
                    select id="contrat" name="contrat" {
                        option value="" selected[p.tier.is_empty()] { "tous" }
                        @for tier in TIERS { option value=(tier.as_str()) selected[p.tier == tier.as_str()] { (tier_short(tier.as_str())) } }
                    }
                }
                p { button type="submit" { "Chercher" } }
            }
            p { (matching.len()) " cabinet(s), page " (page) " sur " (pages) }
            table {
                thead { tr { th scope="col" { "Cabinet" } th scope="col" { "Contrat" } th scope="col" { "Alertes ouvertes" } } }
                tbody {
                    @for c in matching.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
                        tr {
                            td { a href={ "/cabinets/" (c.id) } { (c.name) } }
                            td { (tier_short(c.tier.as_str())) }
                            td { (p.open_alerts.get(&c.id).copied().unwrap_or(0)) }
                        }
                    }
                }
            }
            nav aria-label="Pages" {
                @if page > 1 { a href=(link(page - 1)) { "Page précédente" } " " }
                @if page < pages { a href=(link(page + 1)) { "Page suivante" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(day: &str, status: BackupStatus) -> BackupRun {
        let at: Timestamp = format!("{day}T20:00:00Z").parse().expect("ts");
        BackupRun {
            job: "nas".into(),
            kind: RunKind::Backup,
            source: "command".into(),
            status,
            started_at: None,
            finished_at: at,
            bytes: None,
            files: None,
            target: String::new(),
            message: String::new(),
            cause: String::new(),
            code: None,
            failed_items: None,
        }
    }

    #[test]
    fn the_strip_keeps_the_worst_result_of_each_local_day() {
        // 20:00 UTC is midnight in La Réunion: these runs count for the next local day.
        let runs = [
            run("2026-11-28", BackupStatus::Success),
            run("2026-11-29", BackupStatus::Success),
            run("2026-11-29", BackupStatus::Failed),
            run("2026-11-30", BackupStatus::Warning),
        ];
        let days = strip_days(&runs, jiff::civil::date(2026, 12, 1));
        assert_eq!(days.len(), STRIP_DAYS as usize);
        let last: Vec<_> = days.iter().rev().take(4).map(|(_, r)| *r).collect();
        assert_eq!(
            last,
            [
                DayResult::Warning,
                DayResult::Failed,
                DayResult::Success,
                DayResult::None
            ]
        );
        assert_eq!(days[0].0, jiff::civil::date(2026, 11, 2));
    }
}
