//! apt (Debian, Ubuntu): pending and security updates from a simulated `apt-get dist-upgrade`
//! (or Ubuntu's `apt-check` when the simulation fails), and the end of the last successful
//! upgrade or install from `/var/log/apt/history.log`. Nothing is downloaded or changed: the
//! system's own timers refresh the package lists.

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{Classification, OsUpdateStatus, Pending, PendingUpdate, failure, reboot};
use crate::command::ExternalCommand;
use crate::facts::Fact;
use crate::facts::updates::config::UpdatesConfig;

pub const HISTORY_LOG: &str = "/var/log/apt/history.log";
const APT_CHECK: &str = "/usr/lib/update-notifier/apt-check";

/// Pending updates from `apt-get -s dist-upgrade` output: one `Inst` line per package to
/// install or upgrade; security when one of its origins is a `-security` suite.
///
/// ```text
/// Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
/// ```
pub fn parse_simulation(text: &str) -> Pending {
    let mut pending = Pending::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        // "(new-version origin[, origin] [arch])"; absent on a truncated line.
        let target = rest
            .find('(')
            .map(|start| &rest[start + 1..])
            .map(|t| t.split(')').next().unwrap_or(t))
            .unwrap_or("");
        let version = target.split_whitespace().next().unwrap_or("");
        let security = target.to_ascii_lowercase().contains("-security");
        pending.push(PendingUpdate {
            title: if version.is_empty() {
                name.to_owned()
            } else {
                format!("{name} {version}")
            },
            classification: if security {
                Classification::Security
            } else {
                Classification::Other
            },
            id: name.to_owned(),
        });
    }
    pending
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unexpected apt-check output {0:?} (expected \"pending;security\")")]
pub struct AptCheckError(String);

/// Ubuntu's `apt-check` writes `pending;security` on stderr.
pub fn parse_apt_check(text: &str) -> Result<Pending, AptCheckError> {
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty());
    let bad = || AptCheckError(text.chars().take(80).collect());
    let (a, b) = line.and_then(|l| l.split_once(';')).ok_or_else(bad)?;
    let count = a.trim().parse().map_err(|_| bad())?;
    let security = b.trim().parse().map_err(|_| bad())?;
    Ok(Pending {
        count,
        security,
        listed: Vec::new(),
    })
}

/// End of the last entry of `history.log` that upgraded or installed something without an
/// `Error:` line. Times in the log are local, hence `tz`.
///
/// ```text
/// Start-Date: 2024-01-10  06:25:31
/// Commandline: /usr/bin/unattended-upgrade
/// Upgrade: libssl3:amd64 (3.0.11-1~deb12u1, 3.0.11-1~deb12u2)
/// End-Date: 2024-01-10  06:25:40
/// ```
pub fn parse_history(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    let mut last = None;
    let mut changed = false;
    let mut error = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "Start-Date" => {
                changed = false;
                error = false;
            }
            "Upgrade" | "Install" => changed = true,
            "Error" => error = true,
            "End-Date" if changed && !error => {
                if let Some(at) = local_time(value, tz) {
                    last = last.max(Some(at));
                }
            }
            _ => {}
        }
    }
    last
}

/// `2024-01-10  06:25:40` (apt pads with two spaces) in `tz`.
fn local_time(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    let text = text.split_whitespace().collect::<Vec<_>>().join("T");
    let civil: DateTime = text.parse().ok()?;
    tz.to_timestamp(civil).ok()
}

/// Runs the simulation (falling back to `apt-check`), reads the history log and the reboot
/// flag. Only a failure of both pending sources loses the status fact.
pub fn collect(config: &UpdatesConfig) -> Vec<Fact> {
    let mut facts = Vec::new();
    let pending = match simulate(config) {
        Ok(pending) => pending,
        Err(sim_error) => match apt_check(config) {
            Ok(pending) => {
                // Counted by apt-check: the status stands, the simulation's failure is noted.
                facts.push(failure("apt_simulation", sim_error));
                pending
            }
            Err(check_error) => {
                facts.push(failure("apt", format!("{sim_error}; {check_error}")));
                return facts;
            }
        },
    };
    let mut status = OsUpdateStatus::new("apt", pending);
    match read_history(Path::new(HISTORY_LOG)) {
        Ok(at) => status.last_install_at = at,
        Err(error) => facts.push(failure("apt_history", error)),
    }
    let status = status.with_reboot(reboot::debian_flag(Path::new(reboot::REBOOT_REQUIRED)));
    facts.insert(0, Fact::OsUpdates(status));
    facts
}

fn simulate(config: &UpdatesConfig) -> Result<Pending, String> {
    let out = ExternalCommand::new("apt-get")
        .args(["-s", "-q", "-o", "Debug::NoLocking=1", "dist-upgrade"])
        .env("LC_ALL", "C")
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "apt-get -s dist-upgrade: {}",
            out.failure_summary()
        ));
    }
    Ok(parse_simulation(&out.stdout_text()))
}

fn apt_check(config: &UpdatesConfig) -> Result<Pending, String> {
    let out = ExternalCommand::new(APT_CHECK)
        .env("LC_ALL", "C")
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    parse_apt_check(&out.stderr_text()).map_err(|e| e.to_string())
}

/// A missing log (never upgraded, or just rotated) is "unknown", not a failure.
fn read_history(path: &Path) -> Result<Option<Timestamp>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_history(
            &crate::text::decode(&bytes),
            &TimeZone::system(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::updates::MAX_PENDING_LISTED;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/updates/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::text::decode(&std::fs::read(&path).expect(&path))
    }

    /// (pending, security, first listed id).
    fn check_sim(input: &str, expected: (u32, u32, Option<&str>)) {
        let p = parse_simulation(input);
        let got = (p.count, p.security, p.listed.first().map(|u| u.id.as_str()));
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn simulation() {
        check_sim(
            &fixture("apt-get-s-dist-upgrade.txt"),
            (7, 3, Some("base-files")),
        );
        check_sim(
            &fixture("apt-get-s-upgrade-ubuntu.txt"),
            (4, 2, Some("libssl3")),
        );
        check_sim(&fixture("apt-get-s-none.txt"), (0, 0, None));
        check_sim("", (0, 0, None));
        check_sim("Inst", (0, 0, None));
        check_sim(
            "Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian-Secu",
            (1, 0, Some("libc6")),
        );
        check_sim("Inst x (", (1, 0, Some("x")));
        check_sim("\u{0}\u{FFFD}Inst\n\u{1}", (0, 0, None));
        let p = parse_simulation(&fixture("apt-get-s-dist-upgrade.txt"));
        assert_eq!(p.listed[0].title, "base-files 12.4+deb12u5");
        let libssl = p
            .listed
            .iter()
            .find(|u| u.id == "libssl3")
            .expect("libssl3");
        assert_eq!(libssl.classification, Classification::Security);
    }

    #[test]
    fn simulation_listing_is_bounded() {
        let text = "Inst p [1] (2 Debian:12/stable [amd64])\n".repeat(500);
        let p = parse_simulation(&text);
        assert_eq!((p.count, p.listed.len()), (500, MAX_PENDING_LISTED));
    }

    fn check_apt_check(input: &str, expected: Option<(u32, u32)>) {
        let got = parse_apt_check(input).ok().map(|p| (p.count, p.security));
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn apt_check() {
        check_apt_check("12;3", Some((12, 3)));
        check_apt_check("0;0\n", Some((0, 0)));
        check_apt_check("W: warning\n5;0\n", Some((5, 0)));
        check_apt_check("", None);
        check_apt_check("12", None);
        check_apt_check("a;b", None);
        check_apt_check("-1;0", None);
    }

    fn check_history(input: &str, expected: Option<&str>) {
        let got = parse_history(input, &TimeZone::fixed(jiff::tz::offset(4)));
        assert_eq!(
            got.map(|t| t.to_string()).as_deref(),
            expected,
            "input {input:?}"
        );
    }

    #[test]
    fn history() {
        // The last entry is a failed upgrade and the one before only removed a package.
        check_history(&fixture("apt-history.log"), Some("2024-03-05T02:12:09Z"));
        check_history("", None);
        check_history(
            "Start-Date: 2024-01-10  06:25:31\nUpgrade: a (1, 2)\n",
            None,
        );
        check_history(
            "Start-Date: 2024-01-10  06:25:31\nInstall: a (1)\nEnd-Date: 2024-01-10  06:25:40\n",
            Some("2024-01-10T02:25:40Z"),
        );
        check_history(
            "Start-Date: x\nUpgrade: a\nEnd-Date: 2024-13-10  06:25:40\n",
            None,
        );
        check_history("End-Date: 2024-01-10 06:25:40\n", None);
        check_history("\u{FFFD}\u{0}:::\n", None);
    }

    #[test]
    fn history_in_latin1_still_gives_a_date() {
        let mut bytes =
            b"Start-Date: 2024-02-01  10:00:00\nCommandline: apt install caf\xe9\n".to_vec();
        bytes.extend(b"Install: x (1)\nEnd-Date: 2024-02-01  10:00:05\n");
        check_history(&crate::text::decode(&bytes), Some("2024-02-01T06:00:05Z"));
    }
}
