//! Antivirus rules (preventive): no antivirus at all, real-time protection off (critical), or
//! signatures too old. A disabled product is only a problem when no other product protects
//! (Windows lists Defender as off while a third-party antivirus runs).

use jiff::Timestamp;

use super::{AgentFacts, Condition, days, older_than};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::AntivirusThresholds;
use crate::facts::AntivirusProduct;

fn protects(p: &AntivirusProduct) -> bool {
    p.enabled && p.realtime_protection != Some(false)
}

pub fn evaluate(now: Timestamp, facts: &AgentFacts, t: &AntivirusThresholds) -> Vec<Condition> {
    let Some(status) = &facts.antivirus else {
        return Vec::new();
    };
    let at = status.collected_at;
    let av = &status.value;
    if av.none_found || av.products.is_empty() {
        return vec![
            Condition::new(
                Rule::AntivirusMissing,
                "",
                Severity::Major,
                "Aucun antivirus détecté".to_owned(),
            )
            .evidence(at),
        ];
    }
    let protecting: Vec<&AntivirusProduct> = av.products.iter().filter(|p| protects(p)).collect();
    if protecting.is_empty() {
        return av
            .products
            .iter()
            .map(|p| {
                Condition::new(
                    Rule::AntivirusRealtimeOff,
                    &p.name,
                    Severity::Critical,
                    format!("Antivirus {} : protection en temps réel désactivée", p.name),
                )
                .evidence(at)
            })
            .collect();
    }
    let max_age = days(t.signatures_max_age_days);
    protecting
        .into_iter()
        .filter(|p| {
            p.signatures_up_to_date == Some(false)
                || p.signatures_updated_at
                    .is_some_and(|u| older_than(now, u, max_age))
        })
        .map(|p| {
            Condition::new(
                Rule::AntivirusSignaturesStale,
                &p.name,
                Severity::Warning,
                format!("Antivirus {} : signatures pas à jour", p.name),
            )
            .since(p.signatures_updated_at)
            .evidence(at)
        })
        .collect()
}
