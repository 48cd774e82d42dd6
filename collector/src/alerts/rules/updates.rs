//! OS update rules (preventive): updates pending too long (security ones sooner) and a reboot
//! pending too long. "Pending since" is derived from successive reports (`facts.rs`).

use jiff::Timestamp;

use super::{AgentFacts, Condition, days, older_than};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::OsUpdateThresholds;

pub fn evaluate(now: Timestamp, facts: &AgentFacts, t: &OsUpdateThresholds) -> Vec<Condition> {
    let Some(status) = &facts.os_updates else {
        return Vec::new();
    };
    let (at, u) = (status.collected_at, &status.value);
    let mut out = Vec::new();
    if let Some(since) = u.security_pending_since
        && u.security_count > 0
        && older_than(now, since, days(t.security_pending_days))
    {
        out.push(
            Condition::new(
                Rule::SecurityUpdatesPending,
                "",
                Severity::Major,
                format!("{} mise(s) à jour de sécurité en attente", u.security_count),
            )
            .since(Some(since))
            .evidence(at),
        );
    }
    if let Some(since) = u.pending_since
        && u.pending_count > 0
        && older_than(now, since, days(t.pending_days))
    {
        out.push(
            Condition::new(
                Rule::OsUpdatesPending,
                "",
                Severity::Warning,
                format!("{} mise(s) à jour système en attente", u.pending_count),
            )
            .since(Some(since))
            .evidence(at),
        );
    }
    if let Some(since) = u.reboot_required_since
        && u.reboot_required
        && older_than(now, since, days(t.reboot_pending_days))
    {
        out.push(
            Condition::new(
                Rule::RebootPending,
                "",
                Severity::Warning,
                "Redémarrage en attente".to_owned(),
            )
            .since(Some(since))
            .detail(&u.reboot_reasons.join(", "))
            .evidence(at),
        );
    }
    out
}
