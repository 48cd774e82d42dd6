//! The product table: every backup product Vigie understands, one line each. The config names
//! (`source = "..."` in `[[backup.jobs]]`, `exec --source`), the readers of a product's own
//! output, the verdicts on a wrapped run, the damaged-input harness and the fuzz target all
//! derive from it. Adding a product: one file holding its verdict table, parser and tests,
//! and one line in [`PRODUCTS`].

use super::exec::Outcome;
use super::windows_backup;
use super::{BackupJob, BackupRun, borg, command, restic, robocopy, rsync, spool, veeam};

/// Reads the results of a declared job from the product's own output (a file, an event log).
pub type Reader = fn(&BackupJob) -> Result<Vec<BackupRun>, String>;
/// Judges one run of the product wrapped by `vigie-agent exec`: status, cause, counts.
pub type Judge = fn(&Outcome) -> BackupRun;

/// One backup product.
#[derive(Debug)]
pub struct Product {
    /// The name in the config, on the command line and in `BackupRun.source`.
    pub name: &'static str,
    /// A declared job of this source reads the file named by `path`.
    pub reads_file: bool,
    /// How a declared job reads results; `None` for the spool (scanned on its own) and for
    /// products known only through `exec`.
    pub read: Option<Reader>,
    /// How `exec --source NAME` judges a run; `None` when the product cannot be wrapped.
    pub judge: Option<Judge>,
    /// Every parser of the product on raw bytes: must never panic.
    pub parse_bytes: fn(&[u8]),
}

/// Every product, one line each.
pub static PRODUCTS: &[&Product] = &[
    &spool::PRODUCT,
    &command::PRODUCT,
    &robocopy::PRODUCT,
    &restic::PRODUCT,
    &borg::PRODUCT,
    &rsync::PRODUCT,
    &windows_backup::PRODUCT,
    &veeam::PRODUCT,
];

/// The product of that name.
pub fn named(name: &str) -> Option<&'static Product> {
    PRODUCTS.iter().copied().find(|p| p.name == name)
}

/// Names accepted as `source` of a declared job (the spool, or a reader).
pub fn job_sources() -> Vec<&'static str> {
    PRODUCTS
        .iter()
        .filter(|p| p.name == spool::PRODUCT.name || p.read.is_some())
        .map(|p| p.name)
        .collect()
}

/// Names accepted by `exec --source`.
pub fn exec_sources() -> Vec<&'static str> {
    PRODUCTS
        .iter()
        .filter(|p| p.judge.is_some())
        .map(|p| p.name)
        .collect()
}

/// Runs every product's parsers on `bytes` (the fuzz target and the damaged-input harness).
pub fn parse_all(bytes: &[u8]) {
    for product in PRODUCTS {
        (product.parse_bytes)(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_file_source_has_a_reader() {
        let mut names: Vec<&str> = PRODUCTS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PRODUCTS.len());
        for product in PRODUCTS {
            assert!(
                !product.reads_file || product.read.is_some(),
                "{}",
                product.name
            );
        }
        assert_eq!(
            exec_sources(),
            ["command", "robocopy", "restic", "borg", "rsync"]
        );
        assert!(job_sources().contains(&"windows_server_backup"));
        assert!(!job_sources().contains(&"command"));
    }
}
