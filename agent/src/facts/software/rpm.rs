//! Fedora, RHEL and derivatives: installed packages from `rpm -qa --queryformat`.

use super::Installed;
use crate::command::ExternalCommand;
use crate::facts::software::config::SoftwareConfig;

/// Name, version-release (epoch left out, as people write versions), vendor.
pub const QUERY_FORMAT: &str = "%{NAME}\t%{VERSION}-%{RELEASE}\t%{VENDOR}\n";

/// One package per line; `(none)` is rpm's word for an empty tag.
pub fn parse(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?.trim();
            let version = cols.next()?.trim();
            let vendor = cols.next().unwrap_or("").trim();
            if name.is_empty() {
                return None;
            }
            Some(Installed {
                name: name.to_owned(),
                version: version.to_owned(),
                publisher: if vendor == "(none)" { "" } else { vendor }.to_owned(),
            })
        })
        .collect()
}

pub fn collect(config: &SoftwareConfig) -> Result<Vec<Installed>, String> {
    let out = ExternalCommand::new("rpm")
        .args(["-qa", "--queryformat", QUERY_FORMAT])
        .env("LC_ALL", "C")
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("rpm -qa: {}", out.failure_summary()));
    }
    Ok(parse(&out.stdout_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[(&str, &str, &str)]) {
        let got: Vec<(String, String, String)> = parse(input)
            .into_iter()
            .map(|i| (i.name, i.version, i.publisher))
            .collect();
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(n, v, p)| (n.to_string(), v.to_string(), p.to_string()))
            .collect();
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn rpm_qa() {
        let fixture = include_str!("../../../tests/fixtures/software/rpm-qa.txt");
        check(
            fixture,
            &[
                ("bash", "5.2.26-1.fc39", "Fedora Project"),
                ("gpg-pubkey", "18b8e74c-62f2920f", ""),
                ("orthanc", "1.12.1-1.fc39", "Fedora Project"),
            ],
        );
        check("", &[]);
        check("lonely", &[]);
        check("\tx\ty", &[]);
        check("\u{0}\t\u{FFFD}", &[("\u{0}", "\u{FFFD}", "")]);
    }
}
