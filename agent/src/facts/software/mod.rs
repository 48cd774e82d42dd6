//! Business-software versions: the installed-program inventory (Windows uninstall registry
//! keys, 64- and 32-bit; `dpkg-query`; `rpm`) filtered by the watch list in the config, so
//! practice-management, imaging-viewer and Sesam-Vitale / CPS card software versions reach the
//! collector. Only program names, versions and publishers are read: never anything from those
//! programs' data folders.

pub mod config;
pub mod dpkg;
pub mod rpm;
pub mod watch;
pub mod windows_registry;

use serde::Serialize;

use crate::facts::software::config::SoftwareConfig;
use crate::facts::{CheckFailure, Fact};

/// One installed program as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub publisher: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SoftwareInventory {
    pub items: Vec<InstalledSoftware>,
    /// Watch-list entries with no matching installed program.
    pub not_found: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledSoftware {
    /// The watch-list name it matched (e.g. "Weda").
    pub watch_name: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
}

/// The installed programs from this OS's inventory, or why they could not be listed, with the
/// source's name (`software.<source>` in a failure).
fn inventory(config: &SoftwareConfig) -> (&'static str, Result<Vec<Installed>, String>) {
    #[cfg(windows)]
    {
        ("windows_registry", windows_registry::collect(config))
    }
    #[cfg(not(windows))]
    {
        use crate::command::find_program;
        use std::ffi::OsStr;
        if find_program(OsStr::new("dpkg-query")).is_some() {
            ("dpkg", dpkg::collect(config))
        } else if find_program(OsStr::new("rpm")).is_some() {
            ("rpm", rpm::collect(config))
        } else {
            (
                "inventory",
                Err("no package inventory found (dpkg-query, rpm)".to_owned()),
            )
        }
    }
}

/// Every parser of this family on raw bytes; for the robustness test and the fuzz targets.
/// Never panics.
pub fn parse_all(bytes: &[u8]) {
    let text = crate::text::decode(bytes);
    let mut installed = dpkg::parse(&text);
    installed.extend(rpm::parse(&text));
    installed.extend(windows_registry::parse(&text).unwrap_or_default());
    // The text as a pattern too: globs from a config must not blow up either.
    let pattern: String = text.chars().take(64).collect();
    let watch = [crate::facts::software::config::WatchEntry {
        name: "fuzz".to_owned(),
        pattern,
    }];
    let _ = watch::filter(&installed, &watch);
}

/// Lists the installed programs and keeps the watched ones. Blocking: run it on the blocking
/// pool.
pub fn collect(config: &SoftwareConfig) -> Vec<Fact> {
    match inventory(config) {
        (_, Ok(installed)) => {
            tracing::debug!(
                installed = installed.len(),
                watched = config.watch.len(),
                "software inventory read"
            );
            vec![Fact::Software(watch::filter(&installed, &config.watch))]
        }
        (source, Err(error)) => vec![Fact::CheckFailure(CheckFailure {
            check: format!("software.{source}"),
            error,
        })],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parsers_never_panic_on_damaged_input() {
        crate::facts::robustness::check_never_panics("software", super::parse_all);
    }
}
