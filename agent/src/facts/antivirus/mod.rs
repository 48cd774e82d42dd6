//! Antivirus state: Microsoft Defender (`Get-MpComputerStatus`) and the products registered
//! with Windows Security Center on Windows, ClamAV on Linux. Finding none is a fact of its own
//! (`none_found`), but only when some source answered: when every source failed, the failures
//! are the facts and nothing is claimed.

pub mod clamav;
pub mod config;
pub mod defender;
pub mod security_center;

use jiff::Timestamp;
use serde::Serialize;

use crate::facts::antivirus::config::AntivirusConfig;
use crate::facts::{CheckFailure, Fact};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AntivirusStatus {
    pub products: Vec<AntivirusProduct>,
    /// True when the sources that answered found no product at all.
    pub none_found: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AntivirusProduct {
    pub name: String,
    /// `defender`, `security_center` or `clamav`.
    pub source: String,
    pub enabled: bool,
    pub realtime_protection: Option<bool>,
    pub signatures_up_to_date: Option<bool>,
    pub signature_version: String,
    pub signatures_updated_at: Option<Timestamp>,
    pub engine_version: String,
    pub service_running: Option<bool>,
}

/// What one source said: the products it found (maybe none), or why it could not say.
pub type SourceResult = Result<Vec<AntivirusProduct>, String>;

/// Merges the sources' answers into the facts to report.
pub fn merge(sources: Vec<(&str, SourceResult)>) -> Vec<Fact> {
    let mut products = Vec::new();
    let mut failures = Vec::new();
    let mut answered = false;
    for (source, result) in sources {
        match result {
            Ok(found) => {
                answered = true;
                products.extend(found);
            }
            Err(error) => failures.push(Fact::CheckFailure(CheckFailure {
                check: format!("antivirus.{source}"),
                error,
            })),
        }
    }
    let mut facts = Vec::new();
    if answered || !products.is_empty() {
        facts.push(Fact::Antivirus(AntivirusStatus {
            none_found: products.is_empty(),
            products,
        }));
    }
    facts.extend(failures);
    facts
}

/// Every parser of this family on raw bytes; for the robustness test and the fuzz targets.
/// Never panics.
pub fn parse_all(bytes: &[u8]) {
    let text = crate::text::decode(bytes);
    let _ = defender::parse(&text);
    let _ = defender::interpret_failure(&text);
    let _ = security_center::parse(&text);
    let _ = security_center::is_server_without_security_center(&text);
    let _ = clamav::parse_header(bytes);
}

/// Asks every source of this OS. Blocking: run it on the blocking pool.
pub fn collect(config: &AntivirusConfig) -> Vec<Fact> {
    // Side by side: a hung Get-MpComputerStatus must not eat Security Center's time.
    #[cfg(windows)]
    let sources = std::thread::scope(|scope| {
        let defender = scope.spawn(|| defender::collect(config));
        let security_center = security_center::collect(config);
        let defender = defender
            .join()
            .unwrap_or_else(|_| Err("Defender check panicked".to_owned()));
        vec![("defender", defender), ("security_center", security_center)]
    });
    #[cfg(not(windows))]
    let sources = vec![("clamav", clamav::collect(config))];
    merge(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str) -> AntivirusProduct {
        AntivirusProduct {
            name: name.to_owned(),
            ..AntivirusProduct::default()
        }
    }

    /// (antivirus fact present, none_found, number of products, failures).
    fn check(sources: Vec<(&str, SourceResult)>, expected: (bool, bool, usize, Vec<&str>)) {
        let facts = merge(sources);
        let status = facts.iter().find_map(|f| match f {
            Fact::Antivirus(a) => Some(a),
            _ => None,
        });
        let failures: Vec<&str> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::CheckFailure(c) => Some(c.check.as_str()),
                _ => None,
            })
            .collect();
        let got = (
            status.is_some(),
            status.is_some_and(|s| s.none_found),
            status.map_or(0, |s| s.products.len()),
            failures,
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn parsers_never_panic_on_damaged_input() {
        crate::facts::robustness::check_never_panics("antivirus", parse_all);
    }

    #[test]
    fn merging_sources() {
        check(vec![("clamav", Ok(vec![]))], (true, true, 0, vec![]));
        check(
            vec![("clamav", Ok(vec![product("ClamAV")]))],
            (true, false, 1, vec![]),
        );
        check(
            vec![
                ("defender", Err("x".into())),
                ("security_center", Err("y".into())),
            ],
            (
                false,
                false,
                0,
                vec!["antivirus.defender", "antivirus.security_center"],
            ),
        );
        check(
            vec![
                ("defender", Err("no Defender".into())),
                ("security_center", Ok(vec![product("ESET")])),
            ],
            (true, false, 1, vec!["antivirus.defender"]),
        );
        check(
            vec![
                ("defender", Err("no Defender".into())),
                ("security_center", Ok(vec![])),
            ],
            (true, true, 0, vec!["antivirus.defender"]),
        );
    }

    #[test]
    fn proto_keeps_optional_fields() {
        let status = AntivirusStatus {
            products: vec![AntivirusProduct {
                realtime_protection: Some(false),
                signatures_updated_at: Some(Timestamp::from_second(1_709_712_000).expect("ts")),
                ..product("Defender")
            }],
            none_found: false,
        };
        let p = &status.to_proto().products[0];
        assert_eq!(p.realtime_protection, Some(false));
        assert_eq!(p.signatures_up_to_date, None);
        assert_eq!(
            p.signatures_updated_at.as_ref().map(|t| t.seconds),
            Some(1_709_712_000)
        );
    }
}
