//! Antivirus products registered with Windows Security Center (`root/SecurityCenter2`,
//! `AntiVirusProduct`), third-party ones included, with `productState` decoded. Windows
//! Server has no Security Center: there the source answers "no product registered".

use serde::Deserialize;

use super::AntivirusProduct;
use crate::facts::ps_json::{self, PsJsonError};

/// `-InputObject @(...)` so that zero or one product still prints a JSON array.
pub const SCRIPT: &str = "ConvertTo-Json -Compress -InputObject @(Get-CimInstance \
    -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct | Select-Object displayName, \
    productState, pathToSignedProductExe)";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WscProduct {
    #[serde(deserialize_with = "ps_json::text")]
    display_name: String,
    product_state: Option<serde_json::Value>,
}

/// `productState` decoded: the second byte's 0x10 bit is "on" (0x10, 0x11 on; 0x00, 0x01
/// off), the low byte is 0x00 when signatures are up to date and 0x10 when out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductState {
    pub enabled: bool,
    pub up_to_date: bool,
}

pub fn decode_state(state: u32) -> ProductState {
    ProductState {
        enabled: state & 0x1000 != 0,
        up_to_date: state & 0x10 == 0,
    }
}

/// The registered products. A product whose state cannot be read is still listed, as not
/// enabled and with unknown signatures.
pub fn parse(text: &str) -> Result<Vec<AntivirusProduct>, PsJsonError> {
    let products: Vec<WscProduct> = ps_json::parse_list(text)?;
    Ok(products
        .into_iter()
        .filter(|p| !p.display_name.trim().is_empty())
        .map(|p| {
            let state = p
                .product_state
                .as_ref()
                .and_then(|v| match v {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .and_then(|n| u32::try_from(n).ok())
                .map(decode_state);
            AntivirusProduct {
                name: p.display_name.trim().to_owned(),
                source: "security_center".to_owned(),
                enabled: state.is_some_and(|s| s.enabled),
                signatures_up_to_date: state.map(|s| s.up_to_date),
                ..AntivirusProduct::default()
            }
        })
        .collect())
}

/// "Invalid namespace" (0x8004100e) is Windows Server, which has no Security Center.
pub fn is_server_without_security_center(stderr: &str) -> bool {
    let lower = stderr.to_lowercase();
    lower.contains("0x8004100e") || lower.contains("invalid namespace")
}

#[cfg(windows)]
pub fn collect(config: &crate::facts::antivirus::config::AntivirusConfig) -> super::SourceResult {
    let out = crate::command::powershell(SCRIPT)
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        if is_server_without_security_center(&out.stderr_text()) {
            tracing::debug!("no Security Center on this machine (Windows Server)");
            return Ok(Vec::new());
        }
        return Err(format!("SecurityCenter2: {}", out.failure_summary()));
    }
    parse(&out.stdout_text()).map_err(|e| format!("SecurityCenter2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_states() {
        let check = |state: u32, expected: (bool, bool)| {
            let s = decode_state(state);
            assert_eq!((s.enabled, s.up_to_date), expected, "{state:#x}");
        };
        check(397_568, (true, true)); // 0x061100 Windows Defender, on
        check(397_584, (true, false)); // 0x061110 on, out of date
        check(393_472, (false, true)); // 0x060100 off (Defender behind another product)
        check(266_240, (true, true)); // 0x041000
        check(266_256, (true, false)); // 0x041010
        check(262_144, (false, true)); // 0x040000
        check(393_216, (false, true)); // 0x060000
        check(0, (false, true));
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/antivirus/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::text::decode(&std::fs::read(&path).expect(&path))
    }

    /// (name, enabled, up to date) per product, or the error's start.
    type Expected<'a> = Result<Vec<(&'a str, bool, Option<bool>)>, &'a str>;

    fn check(input: &str, expected: Expected<'_>) {
        let got = parse(input).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(products), Ok(expected)) => {
                let got: Vec<_> = products
                    .iter()
                    .map(|p| (p.name.as_str(), p.enabled, p.signatures_up_to_date))
                    .collect();
                assert_eq!(got, expected, "input {input:?}");
            }
            (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got:?}"),
            (got, expected) => panic!("{got:?} != {expected:?} for {input:?}"),
        }
    }

    #[test]
    fn registered_products() {
        check(
            &fixture("securitycenter2-antivirusproduct.json"),
            Ok(vec![
                ("Windows Defender", false, Some(true)),
                ("ESET Sécurité", true, Some(false)),
            ]),
        );
        check(
            r#"{"displayName":"Kaspersky Endpoint Security","productState":"266240"}"#,
            Ok(vec![("Kaspersky Endpoint Security", true, Some(true))]),
        );
        check("[]", Ok(vec![]));
        check(
            r#"[{"displayName":"X","productState":null},{"displayName":""}]"#,
            Ok(vec![("X", false, None)]),
        );
        check(
            r#"[{"displayName":"X","productState":-5}]"#,
            Ok(vec![("X", false, None)]),
        );
        check("", Err("no JSON"));
        check("[{\"displayName\":", Err("invalid JSON"));
    }

    #[test]
    fn server_has_no_security_center() {
        assert!(is_server_without_security_center(
            "Get-CimInstance : Espace de noms non valide \n HRESULT 0x8004100e"
        ));
        assert!(!is_server_without_security_center("Access denied"));
    }
}
