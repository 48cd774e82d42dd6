//! Windows: installed programs from the uninstall registry keys, 64-bit and 32-bit
//! (`WOW6432Node`) views, read by PowerShell as JSON. Only the display name, version and
//! publisher are read.

use serde::Deserialize;

use super::Installed;
use crate::facts::ps_json::{self, PsJsonError};

/// `-InputObject @(...)` so that zero or one program still prints a JSON array; a view that
/// does not exist (32-bit Windows has no `WOW6432Node`) is skipped.
pub const SCRIPT: &str = r#"
$paths = @('HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*', 'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\*')
$items = @(Get-ItemProperty -Path $paths -ErrorAction SilentlyContinue | Where-Object { $_.DisplayName } | Select-Object DisplayName, DisplayVersion, Publisher)
ConvertTo-Json -Compress -InputObject $items
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct UninstallEntry {
    #[serde(deserialize_with = "ps_json::text")]
    display_name: String,
    #[serde(deserialize_with = "ps_json::text")]
    display_version: String,
    #[serde(deserialize_with = "ps_json::text")]
    publisher: String,
}

/// The programs with a display name (entries without one are hidden components).
pub fn parse(text: &str) -> Result<Vec<Installed>, PsJsonError> {
    let entries: Vec<UninstallEntry> = ps_json::parse_list(text)?;
    Ok(entries
        .into_iter()
        .filter(|e| !e.display_name.trim().is_empty())
        .map(|e| Installed {
            name: e.display_name.trim().to_owned(),
            version: e.display_version.trim().to_owned(),
            publisher: e.publisher.trim().to_owned(),
        })
        .collect())
}

#[cfg(windows)]
pub fn collect(
    config: &crate::facts::software::config::SoftwareConfig,
) -> Result<Vec<Installed>, String> {
    let out = crate::command::powershell(SCRIPT)
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "uninstall registry keys: {}",
            out.failure_summary()
        ));
    }
    parse(&out.stdout_text()).map_err(|e| format!("uninstall registry keys: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Expected<'a> = Result<Vec<(&'a str, &'a str, &'a str)>, &'a str>;

    fn check(input: &[u8], expected: Expected<'_>) {
        let text = crate::text::decode(input);
        let got = parse(&text).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(items), Ok(expected)) => {
                let got: Vec<_> = items
                    .iter()
                    .map(|i| (i.name.as_str(), i.version.as_str(), i.publisher.as_str()))
                    .collect();
                assert_eq!(got, expected);
            }
            (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got:?}"),
            (got, expected) => panic!("{got:?} != {expected:?}"),
        }
    }

    #[test]
    fn uninstall_keys() {
        let fixture = include_bytes!("../../../tests/fixtures/software/uninstall-registry.json");
        check(
            fixture,
            Ok(vec![
                ("Weda Connect", "3.2.1", "Weda"),
                ("Module SESAM-Vitale", "1.40.14.2", "GIE SESAM-Vitale"),
                ("Cryptolib CPS v5", "5.2.6", "ANS"),
                ("Weasis", "4.3.0", "Équipe Weasis"),
                ("7-Zip 23.01 (x64)", "23.01", "Igor Pavlov"),
                (
                    "Microsoft Visual C++ 2015-2022 Redistributable (x86)",
                    "14.38.33130",
                    "Microsoft Corporation",
                ),
            ]),
        );
        check(
            br#"{"DisplayName":"Solo","DisplayVersion":2,"Publisher":null}"#,
            Ok(vec![("Solo", "2", "")]),
        );
        check(b"[]", Ok(vec![]));
        check(b"", Err("no JSON"));
        check(b"[{\"DisplayName\":\"Trunc", Err("invalid JSON"));
        check(b"\x00\x00\xff\xff\xfe", Err("invalid JSON"));
    }
}
