//! Microsoft Defender Antivirus from `Get-MpComputerStatus | ConvertTo-Json`: service and
//! real-time protection, signature version and date, engine version.

use jiff::Timestamp;
use serde::Deserialize;

use super::{AntivirusProduct, SourceResult};
use crate::facts::ps_json::{self, PsJsonError};

pub const SCRIPT: &str = "Get-MpComputerStatus | Select-Object AMServiceEnabled, \
    AntivirusEnabled, RealTimeProtectionEnabled, AntivirusSignatureVersion, \
    AntivirusSignatureLastUpdated, AMEngineVersion, AMProductVersion, AMRunningMode, \
    DefenderSignaturesOutOfDate | ConvertTo-Json -Compress";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[allow(non_snake_case)] // The field names are PowerShell's.
struct MpComputerStatus {
    AMServiceEnabled: Option<bool>,
    AntivirusEnabled: Option<bool>,
    RealTimeProtectionEnabled: Option<bool>,
    #[serde(deserialize_with = "ps_json::text")]
    AntivirusSignatureVersion: String,
    #[serde(deserialize_with = "ps_json::date")]
    AntivirusSignatureLastUpdated: Option<Timestamp>,
    #[serde(deserialize_with = "ps_json::text")]
    AMEngineVersion: String,
    #[serde(deserialize_with = "ps_json::text")]
    AMRunningMode: String,
    /// Only in recent Defender versions.
    DefenderSignaturesOutOfDate: Option<bool>,
}

pub const NAME: &str = "Microsoft Defender Antivirus";

/// The product as `Get-MpComputerStatus` describes it. In passive mode (another antivirus is
/// the active one) Defender is reported as not enabled.
pub fn parse(text: &str) -> Result<AntivirusProduct, PsJsonError> {
    let s: MpComputerStatus = ps_json::parse_one(text)?;
    let passive = s.AMRunningMode.to_ascii_lowercase().contains("passive");
    let service = s.AMServiceEnabled;
    Ok(AntivirusProduct {
        name: NAME.to_owned(),
        source: "defender".to_owned(),
        enabled: service.unwrap_or(false) && s.AntivirusEnabled.unwrap_or(false) && !passive,
        realtime_protection: s.RealTimeProtectionEnabled,
        signatures_up_to_date: s.DefenderSignaturesOutOfDate.map(|out| !out),
        signature_version: s.AntivirusSignatureVersion,
        signatures_updated_at: s.AntivirusSignatureLastUpdated,
        engine_version: s.AMEngineVersion,
        service_running: service,
    })
}

/// Known ways `Get-MpComputerStatus` fails that still answer the question: the Defender
/// service is stopped or disabled (0x800106ba: another antivirus took over), or the cmdlet does
/// not exist (Windows Server without the Defender feature).
pub fn interpret_failure(stderr: &str) -> Option<SourceResult> {
    let lower = stderr.to_lowercase();
    if lower.contains("0x800106ba") {
        return Some(Ok(vec![AntivirusProduct {
            name: NAME.to_owned(),
            source: "defender".to_owned(),
            enabled: false,
            service_running: Some(false),
            ..AntivirusProduct::default()
        }]));
    }
    if lower.contains("commandnotfoundexception") {
        return Some(Ok(Vec::new()));
    }
    None
}

#[cfg(windows)]
pub fn collect(config: &crate::facts::antivirus::config::AntivirusConfig) -> SourceResult {
    let out = crate::command::powershell(SCRIPT)
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return interpret_failure(&out.stderr_text())
            .unwrap_or_else(|| Err(format!("Get-MpComputerStatus: {}", out.failure_summary())));
    }
    parse(&out.stdout_text())
        .map(|p| vec![p])
        .map_err(|e| format!("Get-MpComputerStatus: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/antivirus/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::text::decode(&std::fs::read(&path).expect(&path))
    }

    /// (enabled, realtime, version, updated_at, engine) or the error's start.
    type Expected<'a> = Result<(bool, Option<bool>, &'a str, Option<&'a str>, &'a str), &'a str>;

    fn check(input: &str, expected: Expected<'_>) {
        let got = parse(input).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(p), Ok(expected)) => {
                let updated = p.signatures_updated_at.map(|t| t.to_string());
                let got = (
                    p.enabled,
                    p.realtime_protection,
                    p.signature_version.as_str(),
                    updated.as_deref(),
                    p.engine_version.as_str(),
                );
                assert_eq!(got, expected, "input {input:?}");
            }
            (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got:?}"),
            (got, expected) => panic!("{got:?} != {expected:?} for {input:?}"),
        }
    }

    #[test]
    fn mp_computer_status() {
        check(
            &fixture("get-mpcomputerstatus.json"),
            Ok((
                true,
                Some(true),
                "1.407.412.0",
                Some("2024-03-06T08:00:00Z"),
                "1.1.24010.10",
            )),
        );
        check(
            &fixture("get-mpcomputerstatus-passive.json"),
            Ok((
                false,
                Some(false),
                "1.405.0.0",
                Some("2024-02-01T10:00:00Z"),
                "1.1.23110.2",
            )),
        );
        check("{}", Ok((false, None, "", None, "")));
        check(
            r#"{"AMServiceEnabled":true,"AntivirusEnabled":true,"AntivirusSignatureLastUpdated":"garbage","AntivirusSignatureVersion":7}"#,
            Ok((true, None, "7", None, "")),
        );
        check("", Err("no JSON"));
        check("{\"AMServiceEnabled\":tr", Err("invalid JSON"));
        check("\u{0}\u{FFFD}", Err("invalid JSON"));
    }

    #[test]
    fn known_failures() {
        let stopped = "Get-MpComputerStatus : The service cannot be started... HRESULT 0x800106ba";
        let Some(Ok(products)) = interpret_failure(stopped) else {
            panic!("stopped service is an answer");
        };
        assert_eq!(products[0].service_running, Some(false));
        let missing = "Get-MpComputerStatus : Le terme « Get-MpComputerStatus » n'est pas reconnu\n    + FullyQualifiedErrorId : CommandNotFoundException";
        assert_eq!(interpret_failure(missing), Some(Ok(vec![])));
        assert_eq!(interpret_failure("Access denied"), None);
        assert_eq!(interpret_failure(""), None);
    }
}
