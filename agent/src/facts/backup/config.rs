//! `[backup]` of the agent config: where results come from, how often to rescan, the
//! declared jobs (their fields and checks are in `declared.rs`). Kept with the backup check,
//! so the config file's sections each belong to the check that reads them.

use std::time::Duration;

use serde::Deserialize;

/// Default rescan of the backup spool and sources (a watch on the spool wakes it sooner).
pub const DEFAULT_BACKUP_SCAN_INTERVAL: Duration = Duration::from_secs(60);

/// `[backup]`: where backup results come from; see `facts::backup` (spool format, declared
/// jobs and their sources).
///
/// ```toml
/// [backup]
/// spool_dir = 'C:\ProgramData\Vigie\spool'   # default: STATE_DIR/spool
/// scan_interval = "60s"
/// [[backup.jobs]]
/// name = "nightly-nas"
/// every = "24h"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Folder where scripts drop JSON result files.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Rescan of the spool and of the jobs' sources, the safety net of the spool watch.
    #[serde(with = "crate::duration_text")]
    pub scan_interval: Duration,
    /// The jobs that should exist, their schedule and source.
    pub jobs: Vec<super::BackupJob>,
    /// Not read from the file: set from `--state-dir` (the default spool and the backup ledger
    /// live there).
    #[serde(skip)]
    pub state_dir: Option<std::path::PathBuf>,
    /// Not read from the file: set by `report --json`, which shows the declared jobs every
    /// time (a running agent resends them hourly).
    #[serde(skip)]
    pub preview: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            spool_dir: None,
            scan_interval: DEFAULT_BACKUP_SCAN_INTERVAL,
            jobs: Vec::new(),
            state_dir: None,
            preview: false,
        }
    }
}
