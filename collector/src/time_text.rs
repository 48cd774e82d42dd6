//! Times as Vigie shows them, in one place for the CLI tables, the console and the reports:
//! RFC 3339 UTC for JSON, La Réunion local time and French durations for technicians.

use jiff::{SignedDuration, Timestamp};

use crate::alerts::opening_hours::clinic_zone;
use crate::server::convert::timestamp_from_proto;

/// For JSON: `2026-11-28T08:49:20Z`.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// For JSON, from the wire: `None` when absent or out of range.
pub fn rfc3339_proto(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.and_then(timestamp_from_proto).map(rfc3339)
}

/// La Réunion local time as the tables show it: `28/11 14:05`.
pub fn local(t: Timestamp) -> String {
    t.to_zoned_datetime(clinic_zone())
        .strftime("%d/%m %H:%M")
        .to_string()
}

/// [`local`] from the wire; empty when absent or out of range.
pub fn local_proto(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_from_proto)
        .map(local)
        .unwrap_or_default()
}

/// [`local`] from RFC 3339 text; text that does not parse is shown as it is.
pub fn local_rfc3339(text: &str) -> String {
    text.parse::<Timestamp>()
        .map(local)
        .unwrap_or_else(|_| text.to_owned())
}

/// La Réunion local time with the year, for what may be months old: `28/11/2026 14:05`.
pub fn local_with_year(t: Timestamp) -> String {
    t.to_zoned_datetime(clinic_zone())
        .strftime("%d/%m/%Y %H:%M")
        .to_string()
}

/// La Réunion local time with the day of the week, for deadlines: `lundi 29/03/2027 10:00`.
pub fn local_with_weekday(t: Timestamp) -> String {
    let day = match t
        .to_zoned_datetime(clinic_zone())
        .weekday()
        .to_monday_zero_offset()
    {
        0 => "lundi",
        1 => "mardi",
        2 => "mercredi",
        3 => "jeudi",
        4 => "vendredi",
        5 => "samedi",
        _ => "dimanche",
    };
    format!("{day} {}", local_with_year(t))
}

/// A duration as a technician says it, rounded down: "5 min", "27 h", "2 jours".
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

/// How long ago `then` was: "il y a 3 h", "à l'instant"; "dans 5 min" for the future (a
/// clock ahead, a deadline).
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let d = now.duration_since(then);
    if d.as_secs().abs() < 60 {
        "à l'instant".to_owned()
    } else if d.is_negative() {
        format!("dans {}", duration(-d))
    } else {
        format!("il y a {}", duration(d))
    }
}

/// A gap in seconds, short and rounded to the nearest unit: "3 s", "5 min", "2 h", "365 j".
pub fn rounded_gap(secs: u64) -> String {
    match secs {
        // Rounded: a year ahead measured a few milliseconds late is still 365 days.
        s if s >= 86_400 => format!("{} j", (s + 43_200) / 86_400),
        s if s >= 3_600 => format!("{} h", (s + 1_800) / 3_600),
        s if s >= 60 => format!("{} min", (s + 30) / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn utc_for_json_local_for_people() {
        let t = at("2026-11-28T08:49:20.5Z");
        assert_eq!(rfc3339(at("2026-11-28T08:49:20Z")), "2026-11-28T08:49:20Z");
        // La Réunion is UTC+4 all year.
        assert_eq!(local(t), "28/11 12:49");
        assert_eq!(local_with_year(t), "28/11/2026 12:49");
        assert_eq!(local_with_weekday(t), "samedi 28/11/2026 12:49");
        // Late evening UTC is already the next day in La Réunion.
        assert_eq!(local(at("2026-12-31T21:30:00Z")), "01/01 01:30");
        assert_eq!(local_rfc3339("2026-11-28T08:49:20.5Z"), "28/11 12:49");
        assert_eq!(local_rfc3339("garbage"), "garbage");
    }

    #[test]
    fn wire_timestamps_absent_or_out_of_range_show_nothing() {
        let ok = prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        let bad = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(
            rfc3339_proto(Some(&ok)).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(local_proto(Some(&ok)), "01/01 04:00");
        assert_eq!(rfc3339_proto(Some(&bad)), None);
        assert_eq!(rfc3339_proto(None), None);
        assert_eq!(local_proto(Some(&bad)), "");
        assert_eq!(local_proto(None), "");
    }

    #[test]
    fn durations_read_naturally() {
        let check = |secs: i64, text: &str| {
            assert_eq!(duration(SignedDuration::from_secs(secs)), text, "{secs}");
        };
        check(-5, "moins d'une minute");
        check(30, "moins d'une minute");
        check(5 * 60, "5 min");
        check(27 * 3600, "27 h");
        check(2 * 86400 + 5, "2 jours");
    }

    #[test]
    fn ages_say_ago_or_ahead() {
        let now = at("2026-11-28T12:00:00Z");
        let check = |then: &str, text: &str| assert_eq!(ago(at(then), now), text, "{then}");
        check("2026-11-28T09:00:00Z", "il y a 3 h");
        check("2026-11-28T11:59:30Z", "à l'instant");
        check("2026-11-28T12:00:30Z", "à l'instant");
        check("2026-11-25T12:00:00Z", "il y a 3 jours");
        check("2026-11-28T12:05:00Z", "dans 5 min");
    }

    #[test]
    fn gaps_round_to_the_nearest_unit() {
        let check = |secs: u64, text: &str| assert_eq!(rounded_gap(secs), text, "{secs}");
        check(3, "3 s");
        check(89, "1 min");
        check(90, "2 min");
        check(7_200, "2 h");
        check(365 * 86_400 - 1, "365 j");
    }
}
