//! Times as the console shows them. A private stand-in until the shared `time_text.rs` helper
//! lands on main; then these two functions call it.

use jiff::Timestamp;

use crate::alerts::opening_hours::clinic_zone;

/// RFC 3339, for `datetime` attributes and JSON.
pub fn rfc3339(at: Timestamp) -> String {
    at.to_string()
}

/// Réunion local time, as technicians read it: "01/12/2026 14:05".
pub fn local(at: Timestamp) -> String {
    at.to_zoned_datetime(clinic_zone())
        .strftime("%d/%m/%Y %H:%M")
        .to_string()
}

/// "il y a 5 min", "il y a 3 h", "il y a 2 j".
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(at.as_second()).max(0);
    match seconds {
        0..60 => "à l'instant".to_owned(),
        60..3600 => format!("il y a {} min", seconds / 60),
        3600..86_400 => format!("il y a {} h", seconds / 3600),
        _ => format!("il y a {} j", seconds / 86_400),
    }
}
