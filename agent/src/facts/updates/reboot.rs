//! Is a reboot pending to finish installing updates? Debian's `/var/run/reboot-required` flag
//! (and the `.pkgs` list beside it), `needs-restarting -r` on dnf systems (exit 1 = needed), and
//! on Windows the usual registry keys read through `reg query`. Only the reason's name is
//! reported: `PendingFileRenameOperations` holds file paths, which may name patient files.

use std::path::Path;

use jiff::Timestamp;

use super::RebootStatus;

pub const REBOOT_REQUIRED: &str = "/var/run/reboot-required";
/// Packages named in the reason, at most.
const MAX_PACKAGES_NAMED: usize = 10;

/// `reboot-required` is present: reason names the packages from `.pkgs`, since = its mtime.
pub fn debian_flag(path: &Path) -> RebootStatus {
    let Ok(meta) = std::fs::metadata(path) else {
        return RebootStatus::default();
    };
    let since = meta
        .modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    let pkgs_path = path.with_extension("pkgs");
    let pkgs = std::fs::read(&pkgs_path)
        .map(|b| crate::text::decode(&b))
        .unwrap_or_default();
    RebootStatus {
        reasons: vec![debian_reason(&path.display().to_string(), &pkgs)],
        since,
    }
}

/// `/var/run/reboot-required (libc6, linux-image-6.1.0-18-amd64)` from the `.pkgs` content
/// (one package per line, duplicates common).
pub fn debian_reason(flag: &str, pkgs: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for line in pkgs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !names.contains(&line) {
            names.push(line);
        }
    }
    names.sort_unstable();
    if names.is_empty() {
        return flag.to_owned();
    }
    let more = names.len().saturating_sub(MAX_PACKAGES_NAMED);
    names.truncate(MAX_PACKAGES_NAMED);
    let mut list = names.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    format!("{flag} ({list})")
}

/// `needs-restarting -r`: exit 1 means a reboot is needed; the listed items (`  * kernel`)
/// become the reason. Any other exit is not an answer.
pub fn parse_needs_restarting(code: Option<i32>, text: &str) -> Option<RebootStatus> {
    match code {
        Some(0) => Some(RebootStatus::default()),
        Some(1) => {
            let items: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("* "))
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .take(MAX_PACKAGES_NAMED)
                .collect();
            let reason = if items.is_empty() {
                "needs-restarting".to_owned()
            } else {
                format!("needs-restarting ({})", items.join(", "))
            };
            Some(RebootStatus {
                reasons: vec![reason],
                since: None,
            })
        }
        _ => None,
    }
}

/// A registry key or value whose presence means a reboot is pending on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryMarker {
    /// Reported reason.
    pub reason: &'static str,
    pub key: &'static str,
    /// A value that must exist and be non-empty; `None` when the key's presence is enough.
    pub value: Option<&'static str>,
}

pub const WINDOWS_MARKERS: &[RegistryMarker] = &[
    RegistryMarker {
        reason: "CBS RebootPending",
        key: r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending",
        value: None,
    },
    RegistryMarker {
        reason: "WindowsUpdate RebootRequired",
        key: r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired",
        value: None,
    },
    RegistryMarker {
        reason: "PendingFileRenameOperations",
        key: r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager",
        value: Some("PendingFileRenameOperations"),
    },
];

/// One value line of `reg query KEY /v NAME` output:
///
/// ```text
/// HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Session Manager
///     PendingFileRenameOperations    REG_MULTI_SZ    \??\C:\Temp\a.dll\0\0
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    pub name: String,
    pub kind: String,
    pub data: String,
}

/// The values listed in `reg query` output (indented `name  REG_TYPE  data` lines).
pub fn parse_reg_query(text: &str) -> Vec<RegValue> {
    text.lines()
        .filter(|l| l.starts_with(' ') || l.starts_with('\t'))
        .filter_map(|line| {
            // Columns are separated by runs of spaces (4 in practice); names may hold single
            // spaces, so split on the REG_ type token.
            let line = line.trim();
            let start = line.find("    REG_").map(|i| i + 4)?;
            let name = line[..start].trim().to_owned();
            let rest = &line[start..];
            let (kind, data) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            Some(RegValue {
                name,
                kind: kind.to_owned(),
                data: data.trim().to_owned(),
            })
        })
        .collect()
}

/// Whether `reg query` output shows the marker: for a key, exit 0; for a value, a line naming
/// it with data that is not empty (`\0` alone is an empty REG_MULTI_SZ).
pub fn marker_present(marker: &RegistryMarker, code: Option<i32>, text: &str) -> bool {
    if code != Some(0) {
        return false;
    }
    let Some(value) = marker.value else {
        return true;
    };
    parse_reg_query(text)
        .iter()
        .any(|v| v.name.eq_ignore_ascii_case(value) && !v.data.replace("\\0", "").trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_reasons() {
        let check = |flag: &str, pkgs: &str, expected: &str| {
            assert_eq!(debian_reason(flag, pkgs), expected, "pkgs {pkgs:?}");
        };
        check(REBOOT_REQUIRED, "", "/var/run/reboot-required");
        check(
            REBOOT_REQUIRED,
            "linux-image-6.1.0-18-amd64\nlibc6\nlibc6\n",
            "/var/run/reboot-required (libc6, linux-image-6.1.0-18-amd64)",
        );
        let many: String = (0..15).map(|i| format!("p{i:02}\n")).collect();
        assert!(debian_reason("f", &many).ends_with("p09 and 5 more)"));
    }

    #[test]
    fn debian_flag_reads_the_file_and_its_packages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flag = dir.path().join("reboot-required");
        assert_eq!(debian_flag(&flag), RebootStatus::default());
        std::fs::write(&flag, "*** System restart required ***\n").expect("write");
        std::fs::write(dir.path().join("reboot-required.pkgs"), "libc6\n").expect("write");
        let status = debian_flag(&flag);
        assert_eq!(status.reasons, [format!("{} (libc6)", flag.display())]);
        assert!(status.since.is_some());
    }

    fn check_nr(code: Option<i32>, text: &str, expected: Option<&[&str]>) {
        let got = parse_needs_restarting(code, text).map(|s| s.reasons);
        let expected = expected.map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "code {code:?} text {text:?}");
    }

    #[test]
    fn needs_restarting() {
        let fixture = include_str!("../../../tests/fixtures/updates/needs-restarting-r.txt");
        check_nr(
            Some(1),
            fixture,
            Some(&["needs-restarting (kernel, glibc, systemd)"]),
        );
        check_nr(Some(1), "", Some(&["needs-restarting"]));
        check_nr(
            Some(0),
            "No core libraries or services have been updated since boot-up.\nReboot should not be necessary.\n",
            Some(&[]),
        );
        check_nr(Some(2), "Error: ...", None);
        check_nr(None, "", None);
    }

    #[test]
    fn reg_query_values() {
        let fixture = include_str!("../../../tests/fixtures/updates/reg-query-pfro.txt");
        let values = parse_reg_query(fixture);
        assert_eq!(values.len(), 1, "{values:?}");
        assert_eq!(values[0].name, "PendingFileRenameOperations");
        assert_eq!(values[0].kind, "REG_MULTI_SZ");
        let pfro = WINDOWS_MARKERS[2];
        assert!(marker_present(&pfro, Some(0), fixture));
        let empty = "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\r\n    PendingFileRenameOperations    REG_MULTI_SZ    \r\n\r\n";
        assert!(!marker_present(&pfro, Some(0), empty));
        assert!(!marker_present(&pfro, Some(1), fixture));
        assert!(!marker_present(&pfro, Some(0), ""));
        let cbs = WINDOWS_MARKERS[0];
        assert!(marker_present(
            &cbs,
            Some(0),
            "\r\nHKEY_LOCAL_MACHINE\\...\\RebootPending\r\n"
        ));
        assert!(!marker_present(
            &cbs,
            Some(1),
            "ERREUR : Le système n'a pas trouvé la clé"
        ));
        assert_eq!(parse_reg_query("    \u{0}\u{FFFD}    REG_")[0].kind, "REG_");
        assert_eq!(parse_reg_query("\u{0}    REG_SZ"), Vec::new());
        assert_eq!(
            parse_reg_query("    Dépôt  x    REG_SZ"),
            vec![RegValue {
                name: "Dépôt  x".into(),
                kind: "REG_SZ".into(),
                data: String::new()
            }]
        );
    }
}
