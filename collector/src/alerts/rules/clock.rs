//! Clock rule (preventive): the agent's clock against the collector's, as measured on its
//! latest batch. A wrong clock breaks TLS and Kerberos and stamps medical records wrongly.

use jiff::{SignedDuration, Timestamp};

use super::{Condition, hours};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::ClockThresholds;
use crate::model::AgentRecord;

/// A reading older than this says nothing about the clock now (the agent-silent rule covers
/// an agent that stopped talking).
const READING_VALID_HOURS: u64 = 24;

pub fn evaluate(now: Timestamp, agent: &AgentRecord, t: &ClockThresholds) -> Vec<Condition> {
    let Some(reading) = agent.clock else {
        return Vec::new();
    };
    if now.duration_since(reading.measured_at) > hours(READING_VALID_HOURS) {
        return Vec::new();
    }
    let off = reading.offset_seconds.unsigned_abs();
    if off <= t.max_offset_seconds {
        return Vec::new();
    }
    let severity = if off > t.critical_offset_seconds {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let direction = if reading.offset_seconds > 0 {
        "en avance"
    } else {
        "en retard"
    };
    let amount = humanize(SignedDuration::from_secs(
        i64::try_from(off).unwrap_or(i64::MAX),
    ));
    vec![
        Condition::new(
            Rule::ClockSkew,
            "",
            severity,
            format!("Horloge de {} {direction} de {amount}", agent.hostname),
        )
        .detail("Vérifier la synchronisation de l'heure (NTP, pile CMOS) : une heure fausse casse TLS et Kerberos et fausse l'horodatage des dossiers.")
        .since(Some(reading.measured_at)),
    ]
}

fn humanize(d: SignedDuration) -> String {
    let s = d.as_secs();
    match s {
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
    use crate::agent_clock::ClockReading;
    use crate::alerts::rules::fixtures;
    use vigie_domain::AgentRole;

    #[test]
    fn offsets_beyond_the_threshold_alert_and_grow_critical() {
        let now = Timestamp::from_second(1_800_000_000).expect("ts");
        let t = ClockThresholds::default();
        let check = |offset: Option<i64>, measured_hours_ago: i64, expected: Option<Severity>| {
            let mut agent = fixtures::agent(AgentRole::Workstation);
            agent.clock = offset.map(|offset_seconds| ClockReading {
                offset_seconds,
                measured_at: now - SignedDuration::from_hours(measured_hours_ago),
            });
            let got = evaluate(now, &agent, &t).first().map(|c| c.severity);
            assert_eq!(got, expected, "offset {offset:?}");
        };
        check(None, 0, None);
        check(Some(30), 0, None);
        check(Some(-120), 0, None);
        check(Some(600), 0, Some(Severity::Warning));
        check(Some(-600), 0, Some(Severity::Warning));
        check(Some(365 * 86_400), 0, Some(Severity::Critical));
        check(Some(365 * 86_400), 25, None);
    }
}
