//! Business software rule (preventive): an installed version below the reference version the
//! collector config lists for it (validated by the vendor). Newer is never an alert.

use std::cmp::Ordering;

use super::{AgentFacts, Condition};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::SoftwareReference;

pub fn evaluate(facts: &AgentFacts, references: &[SoftwareReference]) -> Vec<Condition> {
    let Some(inventory) = &facts.software else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &inventory.value.items {
        let Some(reference) = references
            .iter()
            .find(|r| glob(&r.pattern, &item.watch_name) || glob(&r.pattern, &item.name))
        else {
            continue;
        };
        if compare_versions(&item.version, &reference.min_version) == Ordering::Less {
            let subject = if item.watch_name.is_empty() {
                &item.name
            } else {
                &item.watch_name
            };
            out.push(
                Condition::new(
                    Rule::SoftwareOutdated,
                    subject,
                    Severity::Warning,
                    format!(
                        "{} {} sous la version de référence {}",
                        item.name, item.version, reference.min_version
                    ),
                )
                .evidence(format!("{}@{}", item.version, inventory.collected_at)),
            );
        }
    }
    out
}

/// Case-insensitive match with `*` standing for any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.trim().to_lowercase().chars().collect();
    let t: Vec<char> = text.trim().to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p.get(pi) != Some(&'*') && p.get(pi) == t.get(ti) {
            pi += 1;
            ti += 1;
        } else if p.get(pi) == Some(&'*') {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Dotted versions compared part by part, numerically where both parts are numbers
/// ("4.10" > "4.9"); a missing part counts as 0.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<String> {
        v.trim()
            .split(['.', '-', '_', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).map_or("0", String::as_str);
        let y = b.get(i).map_or("0", String::as_str);
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_patterns() {
        assert_eq!(compare_versions("4.10", "4.9"), Ordering::Greater);
        assert_eq!(compare_versions("4.2", "4.2.0"), Ordering::Equal);
        assert_eq!(compare_versions("1.0.3", "1.1"), Ordering::Less);
        assert!(glob("weda*", "WEDA Connect"));
        assert!(glob("*vitale*", "Sesam-Vitale"));
        assert!(!glob("weda", "weda connect"));
    }
}
