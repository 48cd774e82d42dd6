//! Agent-silent rule (preventive): servers and imaging machines are always on, so silence
//! beyond a threshold is an incident; workstations are off at night, on Sundays and public
//! holidays, so only silence during the clinic's opening hours counts.

use jiff::Timestamp;
use vigie_domain::AgentRole;

use super::{Condition, minutes, older_than};
use crate::alerts::alert::Severity;
use crate::alerts::opening_hours::OpeningHours;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::SilenceThresholds;
use crate::model::AgentRecord;

pub fn evaluate(
    now: Timestamp,
    agent: &AgentRecord,
    hours: &OpeningHours,
    t: &SilenceThresholds,
) -> Vec<Condition> {
    let last = agent.last_seen.unwrap_or(agent.enrolled_at);
    let host = &agent.hostname;
    let condition = match agent.role {
        AgentRole::Server | AgentRole::Imaging => {
            if !older_than(now, last, minutes(t.server_after_minutes)) {
                return Vec::new();
            }
            let what = if agent.role == AgentRole::Server {
                "Serveur"
            } else {
                "Poste d'imagerie"
            };
            Condition::new(
                Rule::AgentSilent,
                "",
                Severity::Major,
                format!("{what} {host} silencieux"),
            )
            .evidence(last)
        }
        AgentRole::Workstation => {
            let Some(opened) = hours.open_since(now) else {
                return Vec::new();
            };
            // Only the silence since this opening counts: yesterday evening does not.
            if !older_than(now, last.max(opened), minutes(t.workstation_after_minutes)) {
                return Vec::new();
            }
            Condition::new(
                Rule::AgentSilent,
                "",
                Severity::Warning,
                format!("Poste {host} silencieux"),
            )
            // A new opening period is a new occurrence, not the one resolved at closing.
            .evidence(format!("{last}@{opened}"))
        }
    };
    vec![condition.since(Some(last))]
}
