//! The pages, one file each, and what they share: the frame (header, navigation, live
//! status), French labels, and small pieces (badges, times). Everything a technician reads
//! here is French; ids and classes are English.

pub mod agent;
pub mod alerts;
pub mod clinic;
pub mod journal;
pub mod login;
pub mod overview;
pub mod tickets;

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};
use vigie_domain::Tier;

use crate::storage::ConsoleRole;
use crate::time_text;

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: ConsoleRole,
    pub csrf: String,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == ConsoleRole::Admin
    }
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Alerts,
    Clinics,
    Tickets,
    Journal,
    None,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Overview, "/", "Vue d'ensemble"),
    (Nav::Alerts, "/alertes", "Alertes"),
    (Nav::Clinics, "/cabinets", "Cabinets"),
    (Nav::Tickets, "/tickets", "Tickets"),
    (Nav::Journal, "/journal", "Journal"),
];

/// The whole document around a page's content. `refresh_seconds` is how often the script
/// fetches the page again to replace its `data-live` parts.
pub fn frame(
    title: &str,
    viewer: Option<&Viewer>,
    nav: Nav,
    refresh_seconds: u64,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Vigie" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body data-refresh=(refresh_seconds) {
                a class="skip" href="#contenu" { "Aller au contenu" }
                header class="top" {
                    p class="brand" { a href="/" { "Vigie" } }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Navigation principale" {
                            ul {
                                @for (entry, href, label) in NAV {
                                    li {
                                        @if entry == nav {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form class="who" method="post" action="/deconnexion" {
                            span { (viewer.name) " (" (viewer.role.label()) ")" }
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Se déconnecter" }
                        }
                    }
                }
                main id="contenu" {
                    h1 { (title) }
                    p id="live-status" class="muted" role="status" aria-live="polite" {}
                    (content)
                }
            }
        }
    }
}

/// A page that only says something (refusal, not found, error).
pub fn message(title: &str, viewer: Option<&Viewer>, text: &str) -> Markup {
    frame(
        title,
        viewer,
        Nav::None,
        3600,
        html! { p class="message" { (text) } p { a href="/" { "Retour à la vue d'ensemble" } } },
    )
}

pub fn tier_label(tier: &str) -> &'static str {
    match tier {
        "cmp0" => "CMP0 · À la carte",
        "cmp1" => "CMP1 · SAV illimité + sauvegarde",
        "cmp3" => "CMP3 · Infogérance Prisme",
        _ => "contrat inconnu",
    }
}

pub fn tier_short(tier: &str) -> String {
    tier.to_uppercase()
}

pub const TIERS: [Tier; 3] = [Tier::Cmp0, Tier::Cmp1, Tier::Cmp3];

pub fn severity_label(severity: &str) -> &'static str {
    match severity {
        "critical" => "critique",
        "major" => "majeure",
        "warning" => "mineure",
        _ => "inconnue",
    }
}

pub fn state_label(state: &str) -> &'static str {
    match state {
        "open" => "ouverte",
        "acknowledged" => "acquittée",
        "resolved" => "résolue",
        _ => "inconnu",
    }
}

pub fn category_label(category: &str) -> &'static str {
    match category {
        "backup" => "sauvegarde",
        "preventive" => "préventif",
        _ => "autre",
    }
}

pub fn ticket_state_label(state: &str) -> &'static str {
    match state {
        "waiting" => "en délai de grâce",
        "pending" => "à envoyer",
        "retrying" => "en échec, nouvel essai prévu",
        "open" => "ouvert",
        "solved" => "résolu",
        "cancelled" => "annulé",
        _ => "inconnu",
    }
}

/// A coloured word; the colour is never the only sign (the word says it).
pub fn badge(class: &str, text: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// A time as RFC 3339 in the markup and Réunion local time on screen.
pub fn when(at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => {
            html! { time datetime=(time_text::rfc3339(at)) { (time_text::local_with_year(at)) } }
        }
        None => html! { span class="muted" { "jamais" } },
    }
}

/// The same, from the views' RFC 3339 text.
pub fn when_text(at: Option<&str>) -> Markup {
    when(at.and_then(|t| t.parse::<Timestamp>().ok()))
}

/// The hidden CSRF field every form that changes something carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

pub fn bytes(n: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let gib = n as f64 / GIB;
    if gib >= 1.0 {
        format!("{gib:.1} Gio")
    } else {
        format!("{:.0} Mio", n as f64 / (1024.0 * 1024.0))
    }
}
