//! The registry of checks and their schedule. A check is one module under `facts/` that turns
//! what the machine says into [`Fact`]s; adding one means a variant here and a line in each
//! `match`. Every check runs with a deadline and off the async thread when it blocks, so a hung
//! source never holds up the others, and a failure becomes a [`Fact::CheckFailure`] instead of
//! stopping the agent.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::facts::{self, CheckFailure, Fact};

/// Longest a blocking check may take before it is reported as failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(120);

/// What one schedule of a check keeps from one run to the next; a new schedule (a new
/// configuration) starts afresh.
#[derive(Debug, Default)]
pub struct CheckState {
    pub lan: facts::lan::LanRounds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// OS, uptime, load, memory, disks.
    System,
    /// Pending OS updates, last install, reboot pending.
    OsUpdates,
    /// Antivirus products and their state.
    Antivirus,
    /// Watched business software versions.
    Software,
    /// LAN devices: health probes and unknown neighbours.
    Lan,
    /// Backup results: the spool, the products' own logs, declared jobs.
    Backup,
}

impl Check {
    pub const ALL: &'static [Check] = &[
        Check::System,
        Check::OsUpdates,
        Check::Antivirus,
        Check::Software,
        Check::Lan,
        Check::Backup,
    ];

    /// Name used in logs and in [`CheckFailure::check`].
    pub fn name(self) -> &'static str {
        match self {
            Check::System => "system",
            Check::OsUpdates => "os_updates",
            Check::Antivirus => "antivirus",
            Check::Software => "software",
            Check::Lan => "lan",
            Check::Backup => "backup",
        }
    }

    /// How often the check runs, or `None` when the configuration turns it off.
    pub fn interval(self, config: &Config) -> Option<Duration> {
        match self {
            Check::System => Some(config.collection.snapshot_interval),
            Check::OsUpdates => config.updates.enabled.then_some(config.updates.interval),
            Check::Antivirus => config
                .antivirus
                .enabled
                .then_some(config.antivirus.interval),
            Check::Software => (config.software.enabled && !config.software.watch.is_empty())
                .then_some(config.software.interval),
            Check::Lan => config.lan.check_interval(),
            Check::Backup => Some(config.backup.scan_interval),
        }
    }

    /// Something that asks for a run before the next tick: a file dropped in the backup spool.
    pub fn trigger(self, config: &Config) -> Option<facts::backup::SpoolWatch> {
        match self {
            Check::Backup => facts::backup::spool_dir(&config.backup)
                .map(|d| facts::backup::SpoolWatch::start(&d)),
            _ => None,
        }
    }

    /// Runs the check once. Never fails: a failure is a fact for the collector to judge.
    /// `state` belongs to the schedule that runs the check (what the LAN rounds remember).
    pub async fn collect(self, config: Arc<Config>, state: &mut CheckState) -> Vec<Fact> {
        let name = self.name();
        let work = async move {
            match self {
                Check::System => blocking(facts::system::collect)
                    .await
                    .map(|s| vec![Fact::SystemSnapshot(s)]),
                Check::OsUpdates => {
                    let updates = config.updates.clone();
                    blocking(move || facts::updates::collect(&updates)).await
                }
                Check::Antivirus => {
                    let antivirus = config.antivirus.clone();
                    blocking(move || facts::antivirus::collect(&antivirus)).await
                }
                Check::Software => {
                    let software = config.software.clone();
                    blocking(move || facts::software::collect(&software)).await
                }
                Check::Lan => Ok(vec![Fact::Lan(
                    facts::lan::collect(&config.lan, &mut state.lan).await,
                )]),
                Check::Backup => {
                    let backup = config.backup.clone();
                    blocking(move || facts::backup::collect(&backup)).await
                }
            }
        };
        let facts = match tokio::time::timeout(CHECK_DEADLINE, work).await {
            Ok(Ok(facts)) => facts,
            Ok(Err(error)) => vec![failure(name, error)],
            Err(_) => vec![failure(
                name,
                format!("did not finish within {}s", CHECK_DEADLINE.as_secs()),
            )],
        };
        for fact in &facts {
            if let Fact::CheckFailure(f) = fact {
                tracing::warn!(check = %f.check, error = %f.error, "check failed");
            }
        }
        facts
    }
}

/// Every enabled check once, concurrently (`run --once`, `report --json`).
pub async fn collect_all(config: Arc<Config>) -> Vec<Fact> {
    let mut tasks = tokio::task::JoinSet::new();
    for check in Check::ALL {
        if check.interval(&config).is_some() {
            let config = config.clone();
            tasks.spawn(async move { check.collect(config, &mut CheckState::default()).await });
        }
    }
    let mut facts = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(more) => facts.extend(more),
            Err(error) => facts.push(failure("agent", format!("check task failed: {error}"))),
        }
    }
    facts
}

/// Runs a blocking collection on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("check panicked or was cancelled: {e}"))
}

fn failure(check: &str, error: impl Into<String>) -> Fact {
    Fact::CheckFailure(CheckFailure {
        check: check.to_owned(),
        error: error.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_enabled_check_reports_something() {
        let facts = collect_all(Arc::new(Config::default())).await;
        assert!(
            facts.iter().any(|f| matches!(f, Fact::SystemSnapshot(_))),
            "{facts:?}"
        );
    }
}
