//! dnf (Fedora, RHEL, Rocky, Alma): pending updates from `dnf check-update` (exit 100 when
//! there are some), security ones from `dnf updateinfo list --security`, the last successful
//! install from `dnf history list`, and `needs-restarting -r`. dnf runs with `-C` (cache only):
//! the system's makecache timer refreshes metadata, the agent never downloads it.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{Classification, OsUpdateStatus, Pending, PendingUpdate, failure, reboot};
use crate::command::ExternalCommand;
use crate::facts::Fact;
use crate::facts::updates::config::UpdatesConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnfError {
    #[error("dnf check-update failed ({0})")]
    CheckUpdate(String),
}

/// `dnf check-update` output with its exit code: 0 = none, 100 = the listed ones, anything
/// else an error. Package lines are `name.arch  version  repo`; the "Obsoleting Packages"
/// section that may follow repeats packages and is skipped. `security` holds the package
/// names `updateinfo` flagged.
pub fn parse_check_update(
    code: Option<i32>,
    text: &str,
    security: &HashSet<String>,
) -> Result<Pending, DnfError> {
    match code {
        Some(0) => return Ok(Pending::default()),
        Some(100) => {}
        _ => {
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            let code = code.map_or("signal".to_owned(), |c| format!("exit {c}"));
            return Err(DnfError::CheckUpdate(match first {
                Some(line) => format!("{code}: {}", line.chars().take(200).collect::<String>()),
                None => code,
            }));
        }
    }
    let mut pending = Pending::default();
    let mut wrapped: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with("Obsoleting") {
            break;
        }
        let mut cols: Vec<&str> = line.split_whitespace().collect();
        // A long name wraps the other two columns onto the next line.
        match (wrapped.take(), cols.len()) {
            (None, 1) => {
                wrapped = cols.first().copied();
                continue;
            }
            (Some(name), 2) => cols.insert(0, name),
            _ => {}
        }
        let [name_arch, version, _repo] = cols[..] else {
            continue;
        };
        let Some((name, _arch)) = name_arch.rsplit_once('.') else {
            continue;
        };
        if name.is_empty() || !version.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        pending.push(PendingUpdate {
            title: format!("{name} {version}"),
            classification: if security.contains(name) {
                Classification::Security
            } else {
                Classification::Other
            },
            id: name.to_owned(),
        });
    }
    Ok(pending)
}

/// Package names in `dnf updateinfo list --security` output:
/// `FEDORA-2024-1a2b3c4d5e Important/Sec. openssl-libs-1:3.1.1-4.fc39.x86_64`.
pub fn parse_updateinfo(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [_advisory, kind, nevra] = cols[..] else {
                return None;
            };
            if !kind.ends_with("/Sec.") && !kind.eq_ignore_ascii_case("security") {
                return None;
            }
            package_name(nevra)
        })
        .collect()
}

/// `openssl-libs-1:3.1.1-4.fc39.x86_64` → `openssl-libs`: drop `.arch`, then release and
/// version (the last two dash-separated parts).
fn package_name(nevra: &str) -> Option<String> {
    let (nvr, _arch) = nevra.rsplit_once('.')?;
    let mut parts = nvr.rsplitn(3, '-');
    let _release = parts.next()?;
    let _version = parts.next()?;
    let name = parts.next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// Most recent `dnf history list` row whose actions installed or upgraded something:
///
/// ```text
/// ID     | Command line             | Date and time    | Action(s)      | Altered
/// -------------------------------------------------------------------------------
///     12 | upgrade -y               | 2024-03-02 10:11 | Upgrade        |   25
///     11 | install vim              | 2024-02-01 09:00 | I, U           |    3 EE
/// ```
///
/// Rows flagged `E` (errors) in the Altered column are not successful.
pub fn parse_history(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let [id, _command, date, actions, altered] = cols[..] else {
                return None;
            };
            id.parse::<u64>().ok()?;
            let changed = actions
                .split(',')
                .map(str::trim)
                .any(|a| matches!(a, "I" | "U" | "Install" | "Upgrade" | "Update"));
            let failed = altered.contains('E');
            if !changed || failed {
                return None;
            }
            let civil: DateTime = date.replace(' ', "T").parse().ok()?;
            tz.to_timestamp(civil).ok()
        })
        .max()
}

pub fn collect(config: &UpdatesConfig) -> Vec<Fact> {
    let mut facts = Vec::new();
    let dnf = |args: &[&str]| {
        ExternalCommand::new("dnf")
            .args(["-C", "-q", "--noplugins"])
            .args(args)
            .env("LC_ALL", "C")
            .timeout(config.command_timeout)
            .run()
    };
    let security = match dnf(&["updateinfo", "list", "--security"]) {
        Ok(out) if out.success() => parse_updateinfo(&out.stdout_text()),
        Ok(out) => {
            facts.push(failure("dnf_updateinfo", out.failure_summary()));
            HashSet::new()
        }
        Err(e) => {
            facts.push(failure("dnf_updateinfo", e));
            HashSet::new()
        }
    };
    let pending = match dnf(&["check-update"]) {
        Ok(out) => parse_check_update(out.code, &out.stdout_text(), &security)
            .map_err(|e| format!("{e}; {}", out.failure_summary())),
        Err(e) => Err(e.to_string()),
    };
    let pending = match pending {
        Ok(pending) => pending,
        Err(error) => {
            facts.push(failure("dnf", error));
            return facts;
        }
    };
    let mut status = OsUpdateStatus::new("dnf", pending);
    match dnf(&["history", "list"]) {
        Ok(out) if out.success() => {
            status.last_install_at = parse_history(&out.stdout_text(), &TimeZone::system());
        }
        Ok(out) => facts.push(failure("dnf_history", out.failure_summary())),
        Err(e) => facts.push(failure("dnf_history", e)),
    }
    let reboot = ExternalCommand::new("needs-restarting")
        .arg("-r")
        .env("LC_ALL", "C")
        .timeout(config.command_timeout)
        .run();
    let reboot = match reboot {
        Ok(out) => parse_needs_restarting_output(&out),
        Err(e) => Err(e.to_string()),
    };
    match reboot {
        Ok(r) => status = status.with_reboot(r),
        Err(error) => facts.push(failure("reboot", error)),
    }
    facts.insert(0, Fact::OsUpdates(status));
    facts
}

fn parse_needs_restarting_output(
    out: &crate::command::Output,
) -> Result<super::RebootStatus, String> {
    reboot::parse_needs_restarting(out.code, &out.stdout_text())
        .ok_or_else(|| format!("needs-restarting -r: {}", out.failure_summary()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/updates/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::text::decode(&std::fs::read(&path).expect(&path))
    }

    /// (pending, security) or the error's start.
    fn check(code: Option<i32>, input: &str, expected: Result<(u32, u32), &str>) {
        let security = parse_updateinfo(&fixture("dnf-updateinfo-security.txt"));
        let got = parse_check_update(code, input, &security)
            .map(|p| (p.count, p.security))
            .map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "input {input:?}"),
            (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got:?}"),
            (got, expected) => panic!("{got:?} != {expected:?} for {input:?}"),
        }
    }

    #[test]
    fn check_update() {
        check(Some(100), &fixture("dnf-check-update.txt"), Ok((7, 3)));
        check(Some(0), "", Ok((0, 0)));
        check(Some(100), "", Ok((0, 0)));
        check(Some(100), "kernel.x86_64 6.7.", Ok((0, 0)));
        check(Some(100), "\u{0}\u{FFFD} a b", Ok((0, 0)));
        check(
            Some(1),
            "Error: Cache-only enabled but no cache for 'fedora'\n",
            Err("dnf check-update failed (exit 1: Error: Cache-only"),
        );
        check(None, "", Err("dnf check-update failed (signal)"));
    }

    #[test]
    fn updateinfo_names() {
        let names = parse_updateinfo(&fixture("dnf-updateinfo-security.txt"));
        let mut names: Vec<_> = names.into_iter().collect();
        names.sort();
        assert_eq!(names, ["kernel", "kernel-core", "openssl-libs"]);
        assert!(parse_updateinfo("").is_empty());
        assert!(parse_updateinfo("X Important/Sec. nodash.x86_64").is_empty());
    }

    fn check_history(input: &str, expected: Option<&str>) {
        let got = parse_history(input, &TimeZone::fixed(jiff::tz::offset(4)));
        assert_eq!(got.map(|t| t.to_string()).as_deref(), expected, "{input:?}");
    }

    #[test]
    fn history() {
        // Row 14 failed (E), 13 only removed; 12 upgraded.
        check_history(
            &fixture("dnf-history-list.txt"),
            Some("2024-03-02T06:11:00Z"),
        );
        check_history("", None);
        check_history("ID | a | b | c | d\n--|--", None);
        check_history("   1 | x | 2024-99-01 10:00 | Install | 1", None);
    }
}
