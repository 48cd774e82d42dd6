//! Debian and Ubuntu: installed packages from `dpkg-query -W` with a tab-separated format.

use super::Installed;
use crate::command::ExternalCommand;
use crate::facts::software::config::SoftwareConfig;

/// Status, name, version, maintainer: one package per line.
pub const FORMAT: &str = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Maintainer}\n";

/// Installed packages (status `ii`, or any whose second status letter is `i`); lines in other
/// states (`rc`: removed, config left) and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let status = cols.next()?;
            let name = cols.next()?.trim();
            let version = cols.next()?.trim();
            let publisher = cols.next().unwrap_or("").trim();
            if status.chars().nth(1) != Some('i') || name.is_empty() {
                return None;
            }
            Some(Installed {
                name: name.to_owned(),
                version: version.to_owned(),
                publisher: publisher.to_owned(),
            })
        })
        .collect()
}

pub fn collect(config: &SoftwareConfig) -> Result<Vec<Installed>, String> {
    let out = ExternalCommand::new("dpkg-query")
        .args(["-W", "-f", FORMAT])
        .env("LC_ALL", "C")
        .timeout(config.command_timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("dpkg-query: {}", out.failure_summary()));
    }
    Ok(parse(&out.stdout_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[(&str, &str)]) {
        let got: Vec<(String, String)> = parse(input)
            .into_iter()
            .map(|i| (i.name, i.version))
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn dpkg_query() {
        let fixture = include_str!("../../../tests/fixtures/software/dpkg-query.txt");
        check(
            fixture,
            &[
                ("bash", "5.2.15-2+b7"),
                ("clamav", "1.0.5+dfsg-1~deb12u1"),
                ("orthanc", "1.10.1+dfsg-2"),
                ("weasis", "4.3.0-1"),
            ],
        );
        check("", &[]);
        check("ii \tx", &[]);
        check("ii \t\t1.0\t", &[]);
        check("ii \tx\t1\n\u{0}\u{FFFD}\t\t", &[("x", "1")]);
        let publisher = &parse(fixture)[3].publisher;
        assert_eq!(publisher, "Équipe Weasis <weasis@example.org>");
    }
}
