//! What a technician reads, in French: an alert's summary with its duration ("Sauvegarde
//! nightly-nas en échec depuis 2 jours"), severities and states.

use jiff::{SignedDuration, Timestamp};

use super::alert::{Alert, AlertState, Severity};

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

/// A duration as a technician says it: "5 min", "3 h", "2 jours".
pub fn duration(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    match () {
        _ if minutes < 1 => "moins d'une minute".to_owned(),
        _ if hours < 1 => format!("{minutes} min"),
        _ if days < 2 => format!("{hours} h"),
        _ => format!("{days} jours"),
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
    fn durations_read_naturally() {
        let check = |secs: i64, text: &str| {
            assert_eq!(duration(SignedDuration::from_secs(secs)), text);
        };
        check(30, "moins d'une minute");
        check(5 * 60, "5 min");
        check(27 * 3600, "27 h");
        check(2 * 86400 + 5, "2 jours");
    }
}
