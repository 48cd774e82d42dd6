//! The watch list: which installed programs are reported. A pattern is a case-insensitive glob
//! (`*` any run, `?` one character) over the whole installed name: enough for "weda*" or
//! "*sesam*vitale*", and small enough to need no crate.

use super::{Installed, InstalledSoftware, SoftwareInventory};
use crate::facts::software::config::WatchEntry;

/// Whether `name` matches `pattern`, ignoring case.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.trim().to_lowercase().chars().collect();
    let name: Vec<char> = name.trim().to_lowercase().chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never recursive.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Keeps the installed programs the watch list names, under every entry they match; the same
/// program listed twice (64- and 32-bit registry views) is reported once per entry.
pub fn filter(installed: &[Installed], watch: &[WatchEntry]) -> SoftwareInventory {
    let mut items: Vec<InstalledSoftware> = Vec::new();
    let mut not_found = Vec::new();
    for entry in watch {
        let before = items.len();
        for program in installed {
            if !glob_match(&entry.pattern, &program.name) {
                continue;
            }
            let seen = items[before..]
                .iter()
                .any(|i| i.name == program.name && i.version == program.version);
            if !seen {
                items.push(InstalledSoftware {
                    watch_name: entry.name.clone(),
                    name: program.name.clone(),
                    version: program.version.clone(),
                    publisher: program.publisher.clone(),
                });
            }
        }
        if items.len() == before {
            not_found.push(entry.name.clone());
        }
    }
    SoftwareInventory { items, not_found }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let check = |pattern: &str, name: &str, expected: bool| {
            assert_eq!(
                glob_match(pattern, name),
                expected,
                "{pattern:?} ~ {name:?}"
            );
        };
        check("weda*", "Weda Connect 3", true);
        check("weda*", "Logiciel Weda", false);
        check("*sesam*vitale*", "Module SESAM-Vitale 1.40", true);
        check("*sesam*vitale*", "Sesam", false);
        check("crossway", "CrossWay", true);
        check("crossway", "CrossWay 2", false);
        check("?ega", "Mega", true);
        check("", "", true);
        check("*", "", true);
        check("", "x", false);
        check("*é*", "Médecin", true);
        check("**a**b**", "xxaxxbxx", true);
        check("a*a*a*a*a*b", &"a".repeat(200), false);
    }

    fn installed(name: &str, version: &str) -> Installed {
        Installed {
            name: name.to_owned(),
            version: version.to_owned(),
            publisher: String::new(),
        }
    }

    fn entry(name: &str, pattern: &str) -> WatchEntry {
        WatchEntry {
            name: name.to_owned(),
            pattern: pattern.to_owned(),
        }
    }

    #[test]
    fn filtering() {
        let programs = [
            installed("Weda Connect", "3.2.1"),
            installed("Weda Connect", "3.2.1"),
            installed("Module SESAM-Vitale", "1.40.14"),
            installed("Google Chrome", "122.0"),
        ];
        let watch = [
            entry("Weda", "weda*"),
            entry("Sesam-Vitale", "*sesam*vitale*"),
            entry("Any Sesam", "*sesam*"),
            entry("Orthanc", "orthanc*"),
        ];
        let inv = filter(&programs, &watch);
        let items: Vec<_> = inv
            .items
            .iter()
            .map(|i| (i.watch_name.as_str(), i.name.as_str(), i.version.as_str()))
            .collect();
        assert_eq!(
            items,
            [
                ("Weda", "Weda Connect", "3.2.1"),
                ("Sesam-Vitale", "Module SESAM-Vitale", "1.40.14"),
                ("Any Sesam", "Module SESAM-Vitale", "1.40.14"),
            ]
        );
        assert_eq!(inv.not_found, ["Orthanc"]);
        assert_eq!(filter(&[], &[]), SoftwareInventory::default());
    }
}
