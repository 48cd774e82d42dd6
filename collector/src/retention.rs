//! `[retention]`: how long the collector keeps what agents sent and what alerts left behind,
//! and the task `serve` starts to prune the rest (`storage/retention.rs` does the pruning).
//! The defaults keep months: a year of reports and resolved alerts plus a month to compare
//! with, three months of alert events after the escalation queue took them into account.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alerts::clock::Clock;
use crate::group_commit::GroupCommit;
use crate::storage::{Cutoffs, Storage, StorageError};

pub const DEFAULT_REPORTS_DAYS: u32 = 400;
pub const DEFAULT_ALERT_EVENTS_DAYS: u32 = 90;
pub const DEFAULT_RESOLVED_ALERTS_DAYS: u32 = 400;
pub const DEFAULT_PRUNE_EVERY_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Reports as received, by the time in their id (when the agent made them), and backup
    /// runs by their end (each job's newest run is always kept). Default 400; at least 1.
    pub reports_days: u32,
    /// Alert events, counted from when they were written, once the escalation queue has
    /// taken them into account (with no ticket sink configured, nothing waits for them).
    /// Default 90; 0 prunes them as soon as the queue has them.
    pub alert_events_days: u32,
    /// Resolved alerts whose tickets are finished, with their ticket records. Default 400;
    /// at least 1.
    pub resolved_alerts_days: u32,
    /// How often pruning runs (also once at start). Default 3600.
    pub prune_every_seconds: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            reports_days: DEFAULT_REPORTS_DAYS,
            alert_events_days: DEFAULT_ALERT_EVENTS_DAYS,
            resolved_alerts_days: DEFAULT_RESOLVED_ALERTS_DAYS,
            prune_every_seconds: DEFAULT_PRUNE_EVERY_SECONDS,
        }
    }
}

impl RetentionConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.reports_days == 0 {
            problems.push("retention.reports_days must be at least 1".to_owned());
        }
        if self.resolved_alerts_days == 0 {
            problems.push("retention.resolved_alerts_days must be at least 1".to_owned());
        }
        if self.prune_every_seconds == 0 {
            problems.push("retention.prune_every_seconds must be at least 1".to_owned());
        }
        problems
    }

    /// The cut-off times at `now`; `escalation_cursor` as in [`Cutoffs`].
    pub fn cutoffs(&self, now: Timestamp, escalation_cursor: u64) -> Cutoffs {
        let ago = |days: u32| {
            now.checked_sub(SignedDuration::from_hours(i64::from(days) * 24))
                .unwrap_or(Timestamp::MIN)
        };
        Cutoffs {
            reports: ago(self.reports_days),
            alert_events: ago(self.alert_events_days),
            resolved_alerts: ago(self.resolved_alerts_days),
            escalation_cursor,
        }
    }
}

/// One pass: prunes, logs what went, makes it durable.
fn prune_once(
    storage: &Storage,
    config: &RetentionConfig,
    now: Timestamp,
    escalates: bool,
) -> Result<crate::storage::Pruned, StorageError> {
    let cursor = if escalates {
        storage.escalation_cursor()?
    } else {
        u64::MAX
    };
    storage.prune(&config.cutoffs(now, cursor))
}

/// Starts the pruning task: once now, then every `prune_every_seconds`, until `stop`.
/// `escalates`: whether a ticket sink is configured (then events wait for its cursor).
pub fn spawn(
    storage: Storage,
    commit: GroupCommit,
    config: RetentionConfig,
    clock: Arc<dyn Clock>,
    escalates: bool,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = Duration::from_secs(config.prune_every_seconds.max(1));
    tokio::spawn(async move {
        loop {
            let (s, c, now) = (storage.clone(), config.clone(), clock.now());
            match tokio::task::spawn_blocking(move || prune_once(&s, &c, now, escalates)).await {
                Ok(Ok(pruned)) if pruned.is_empty() => {
                    tracing::debug!("retention: nothing to prune")
                }
                Ok(Ok(p)) => {
                    tracing::info!(
                        reports = p.reports,
                        alert_events = p.alert_events,
                        alerts = p.alerts,
                        escalations = p.escalations,
                        series = p.series,
                        backup_runs = p.backup_runs,
                        report_log_files = p.report_log_files,
                        reports_days = config.reports_days,
                        alert_events_days = config.alert_events_days,
                        resolved_alerts_days = config.resolved_alerts_days,
                        "retention: pruned"
                    );
                    if let Err(error) = commit.durable().await {
                        tracing::error!(%error, "retention: pruning not flushed");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "retention: pruning failed"),
                Err(error) => tracing::error!(%error, "retention: pruning task failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_to_the_defaults() {
        let text = include_str!("../../deploy/collector-retention.toml");
        let config = crate::config::CollectorConfig::from_toml(text, std::path::Path::new("x"))
            .expect("example parses");
        assert_eq!(config.retention, RetentionConfig::default());
    }

    #[test]
    fn defaults_keep_months_and_zero_is_refused_where_it_would_erase_everything() {
        let config = RetentionConfig::default();
        assert!(config.problems().is_empty());
        assert!(config.reports_days >= 365 && config.alert_events_days >= 60);
        let now = Timestamp::from_second(1_800_000_000).expect("ts");
        let cut = config.cutoffs(now, 7);
        assert_eq!(
            now.duration_since(cut.reports),
            SignedDuration::from_hours(400 * 24)
        );
        assert_eq!(cut.escalation_cursor, 7);
        let bad = RetentionConfig {
            reports_days: 0,
            resolved_alerts_days: 0,
            prune_every_seconds: 0,
            alert_events_days: 0,
        };
        assert_eq!(bad.problems().len(), 3);
    }
}
