//! Windows Update Agent: pending updates (with classification; security and critical counted
//! apart; superseded ones left out) and the last successful install, from a PowerShell script
//! over `Microsoft.Update.Session` that prints JSON; reboot pending from the registry.
//!
//! The search runs offline against the result of Windows' own last scan: the agent never makes
//! the PC contact Windows Update itself.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;

use super::{Classification, Pending, PendingUpdate};
use crate::facts::ps_json::{self, PsJsonError};

/// Prints `{"Updates": [...], "LastInstall": "2024-03-06T08:00:00Z" | null}`. History dates
/// are UTC in the WUA API; category ids are language-independent (names are translated).
pub const SCRIPT: &str = r#"
$session = New-Object -ComObject Microsoft.Update.Session
$searcher = $session.CreateUpdateSearcher()
$searcher.Online = $false
$result = $searcher.Search('IsInstalled=0 and IsHidden=0')
$updates = @(foreach ($u in $result.Updates) {
  [pscustomobject]@{
    Title = $u.Title
    UpdateID = $u.Identity.UpdateID
    KBArticleIDs = @($u.KBArticleIDs)
    MsrcSeverity = $u.MsrcSeverity
    Categories = @(foreach ($c in $u.Categories) { [pscustomobject]@{ Name = $c.Name; Type = $c.Type; CategoryID = $c.CategoryID } })
    SupersededUpdateIDs = @($u.SupersededUpdateIDs)
  }
})
$last = $null
$count = $searcher.GetTotalHistoryCount()
if ($count -gt 0) {
  foreach ($h in $searcher.QueryHistory(0, [Math]::Min($count, 200))) {
    if ($h.Operation -eq 1 -and ($h.ResultCode -eq 2 -or $h.ResultCode -eq 3)) {
      if ($null -eq $last -or $h.Date -gt $last) { $last = $h.Date }
    }
  }
}
$lastText = $null
if ($null -ne $last) { $lastText = $last.ToString('yyyy-MM-ddTHH:mm:ssZ') }
ConvertTo-Json -Depth 5 -Compress -InputObject ([pscustomobject]@{ Updates = $updates; LastInstall = $lastText })
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SearchOutput {
    #[serde(deserialize_with = "ps_json::one_or_many")]
    updates: Vec<WuaUpdate>,
    #[serde(deserialize_with = "ps_json::date")]
    last_install: Option<Timestamp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WuaUpdate {
    #[serde(deserialize_with = "ps_json::text")]
    title: String,
    #[serde(rename = "UpdateID", deserialize_with = "ps_json::text")]
    update_id: String,
    #[serde(rename = "KBArticleIDs", deserialize_with = "ps_json::one_or_many")]
    kb_article_ids: Vec<serde_json::Value>,
    #[serde(deserialize_with = "ps_json::text")]
    msrc_severity: String,
    #[serde(deserialize_with = "ps_json::one_or_many")]
    categories: Vec<Category>,
    #[serde(
        rename = "SupersededUpdateIDs",
        deserialize_with = "ps_json::one_or_many"
    )]
    superseded_update_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Category {
    #[serde(deserialize_with = "ps_json::text")]
    name: String,
    #[serde(deserialize_with = "ps_json::text")]
    r#type: String,
    #[serde(rename = "CategoryID", deserialize_with = "ps_json::text")]
    category_id: String,
}

/// What the script found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsUpdates {
    pub pending: Pending,
    pub last_install_at: Option<Timestamp>,
}

/// Parses the script's JSON. An update whose id another pending update lists in
/// `SupersededUpdateIDs` is superseded: installing the newer one is enough, so it is not
/// counted.
pub fn parse(text: &str) -> Result<WindowsUpdates, PsJsonError> {
    let output: SearchOutput = ps_json::parse_one(text)?;
    let superseded: HashSet<String> = output
        .updates
        .iter()
        .flat_map(|u| u.superseded_update_ids.iter())
        .map(|id| id.to_ascii_lowercase())
        .collect();
    let mut pending = Pending::default();
    for update in &output.updates {
        if !update.update_id.is_empty()
            && superseded.contains(&update.update_id.to_ascii_lowercase())
        {
            continue;
        }
        let kb = update
            .kb_article_ids
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .find(|kb| !kb.is_empty());
        pending.push(PendingUpdate {
            title: update.title.clone(),
            classification: classify(update),
            id: kb.map_or_else(|| update.update_id.clone(), |kb| format!("KB{kb}")),
        });
    }
    Ok(WindowsUpdates {
        pending,
        last_install_at: output.last_install,
    })
}

/// The update classification category, by its fixed id (names are translated: "Mises à jour
/// de la sécurité"), then by English name; an MSRC severity alone makes it a security update.
fn classify(update: &WuaUpdate) -> Classification {
    let by_category = update
        .categories
        .iter()
        .filter(|c| c.r#type.is_empty() || c.r#type.eq_ignore_ascii_case("UpdateClassification"))
        .find_map(|c| {
            classification_by_id(&c.category_id).or_else(|| classification_by_name(&c.name))
        });
    match by_category {
        Some(class) => class,
        None if !update.msrc_severity.is_empty() => Classification::Security,
        None => Classification::Other,
    }
}

/// Windows Update classification category ids (the same in every language).
fn classification_by_id(id: &str) -> Option<Classification> {
    Some(match id.to_ascii_lowercase().as_str() {
        "0fa1201d-4330-4fa8-8ae9-b877473b6441" => Classification::Security,
        "e6cf1350-c01b-414d-a61f-263d14d133b4" => Classification::Critical,
        "e0789628-ce08-4437-be74-2495b842f43b" => Classification::Definition,
        "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0" => Classification::Driver,
        "b54e7d24-7add-428f-8b75-90a396fa584f"
        | "68c5b0a3-d1a6-4553-ae49-01d3a7827828"
        | "3689bdc8-b205-4af4-8d4a-a63924c5e9d5" => Classification::Feature,
        "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83"
        | "28bc880e-0592-4cbf-8f95-c79b17911d5f"
        | "b4832bd8-e735-4761-8daf-37f882276dab" => Classification::Other,
        _ => return None,
    })
}

fn classification_by_name(name: &str) -> Option<Classification> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "security updates" => Classification::Security,
        "critical updates" => Classification::Critical,
        "definition updates" => Classification::Definition,
        "drivers" => Classification::Driver,
        "feature packs" | "service packs" | "upgrades" => Classification::Feature,
        "updates" | "update rollups" | "tools" => Classification::Other,
        _ => return None,
    })
}

#[cfg(windows)]
pub fn collect(config: &crate::facts::updates::config::UpdatesConfig) -> Vec<crate::facts::Fact> {
    use super::{OsUpdateStatus, RebootStatus, failure, reboot};
    use crate::command::{ExternalCommand, powershell};
    use crate::facts::Fact;

    let mut facts = Vec::new();
    let found = powershell(SCRIPT)
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())
        .and_then(|out| {
            if out.success() {
                parse(&out.stdout_text()).map_err(|e| format!("Windows Update search: {e}"))
            } else {
                Err(format!("Windows Update search: {}", out.failure_summary()))
            }
        });
    let found = match found {
        Ok(found) => found,
        Err(error) => return vec![failure("windows_update", error)],
    };
    let mut reasons = Vec::new();
    for marker in reboot::WINDOWS_MARKERS {
        let mut query = ExternalCommand::new("reg.exe").args(["query", marker.key]);
        if let Some(value) = marker.value {
            query = query.args(["/v", value]);
        }
        // Short: the three queries and the search must fit in the check's deadline.
        match query.timeout(std::time::Duration::from_secs(5)).run() {
            Ok(out) => {
                if reboot::marker_present(marker, out.code, &out.stdout_text()) {
                    reasons.push(marker.reason.to_owned());
                }
            }
            Err(error) => {
                facts.push(failure("reboot", error));
                break;
            }
        }
    }
    let mut status =
        OsUpdateStatus::new("windows_update", found.pending).with_reboot(RebootStatus {
            reasons,
            since: None,
        });
    status.last_install_at = found.last_install_at;
    facts.insert(0, Fact::OsUpdates(status));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/updates/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).expect(&path)
    }

    /// (pending, security incl. critical, ids listed, last install) or error start.
    type Expected<'a> = Result<(u32, u32, Vec<&'a str>, Option<&'a str>), &'a str>;

    fn check(input: &[u8], expected: Expected<'_>) {
        let text = crate::text::decode(input);
        let got = parse(&text).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(got), Ok((count, security, ids, last))) => {
                let got_ids: Vec<&str> = got.pending.listed.iter().map(|u| u.id.as_str()).collect();
                assert_eq!(
                    (got.pending.count, got.pending.security, got_ids),
                    (count, security, ids)
                );
                assert_eq!(got.last_install_at.map(|t| t.to_string()).as_deref(), last);
            }
            (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got:?}"),
            (got, expected) => panic!("{got:?} != {expected:?}"),
        }
    }

    #[test]
    fn search_results() {
        // The older cumulative update is superseded by the newer one, so not counted; the
        // French category names are classified by id.
        check(
            &fixture("wua-search.json"),
            Ok((
                4,
                2,
                vec!["KB5035845", "KB2267602", "KB5034441", "KB5001716"],
                Some("2024-03-06T08:00:00Z"),
            )),
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                String::from_utf8(fixture("wua-search.json"))
                    .expect("utf-8 fixture")
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        check(
            &utf16,
            Ok((
                4,
                2,
                vec!["KB5035845", "KB2267602", "KB5034441", "KB5001716"],
                Some("2024-03-06T08:00:00Z"),
            )),
        );
        check(
            br#"{"Updates":[],"LastInstall":null}"#,
            Ok((0, 0, vec![], None)),
        );
        check(
            br#"{"Updates":{"Title":"Pilote","UpdateID":"x","KBArticleIDs":null,"MsrcSeverity":"Important"}}"#,
            Ok((1, 1, vec!["x"], None)),
        );
        check(br#"{"Updates":[{"Title":"#, Err("invalid JSON"));
        check(b"", Err("no JSON"));
        check(b"\x00\x9f\x92\x96", Err("invalid JSON"));
        check(b"[1,2]", Err("invalid JSON"));
    }
}
