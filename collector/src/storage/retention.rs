//! Pruning what is older than the retention (`[retention]`, see `retention.rs`): reports by the
//! UUIDv7 time of their id (`report_counts` kept exact in the same transaction; stored batches
//! lose their old part, see `reports.rs`), alert events
//! the escalation worker has taken into account, resolved alerts with their finished ticket
//! records and spent series, and old backup runs (the newest run of each job always stays, so
//! a job that stopped long ago still looks stopped, not forgotten).

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::{Storage, StorageError, decode, read_counter};
use crate::alerts::alert::{Alert, AlertState, Series, StoredEvent};
use crate::alerts::lifecycle;

/// Keys removed per transaction: bounded so that pruning a year of backlog never holds a huge
/// transaction (or the ingest path) for long.
const BATCH: usize = 1024;

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub reports: u64,
    pub alert_events: u64,
    pub alerts: u64,
    pub escalations: u64,
    pub series: u64,
    pub backup_runs: u64,
    /// Report log segment files deleted (no batch pointed into them any more).
    pub report_log_files: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

/// The cut-off times of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Reports collected before (UUIDv7 time), and backup runs that ended before.
    pub reports: Timestamp,
    /// Alert events written before, once the escalation cursor passed them.
    pub alert_events: Timestamp,
    /// Alerts resolved before.
    pub resolved_alerts: Timestamp,
    /// The last event the escalation queue has taken into account (`u64::MAX` when no sink
    /// is configured: then no queue waits for any event).
    pub escalation_cursor: u64,
}

impl Storage {
    /// One pruning pass.
    pub fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StorageError> {
        let mut pruned = Pruned {
            reports: self.prune_reports(cutoffs.reports)?,
            alert_events: self
                .prune_alert_events(cutoffs.alert_events, cutoffs.escalation_cursor)?,
            backup_runs: self.prune_backup_runs(cutoffs.reports)?,
            ..Pruned::default()
        };
        self.prune_resolved_alerts(cutoffs.resolved_alerts, &mut pruned)?;
        if pruned.reports > 0 {
            // Only once no batch that points into a segment can come back after a crash.
            self.flush_durably()?;
            pruned.report_log_files = self.drop_unused_segments()?.0;
        }
        Ok(pruned)
    }

    /// Removes reports whose UUIDv7 time is before `before`; per agent, one range of keys
    /// (UUIDv7 ids sort by time), the count decremented by exactly what was removed.
    fn prune_reports(&self, before: Timestamp) -> Result<u64, StorageError> {
        let bound = v7_floor(before);
        let mut removed = 0;
        for agent in self.report_counts.iter().keys() {
            let agent = agent?;
            let Ok(agent) = <[u8; 16]>::try_from(agent.as_ref()) else {
                continue;
            };
            let mut low = [0u8; 32];
            low[..16].copy_from_slice(&agent);
            let mut high = low;
            high[16..].copy_from_slice(bound.as_bytes());
            loop {
                let keys: Vec<sled::IVec> = self
                    .reports
                    .range(low..high)
                    .keys()
                    .take(BATCH)
                    .collect::<Result<_, _>>()?;
                if keys.is_empty() {
                    break;
                }
                removed += self.remove_reports(&agent, &keys)?;
            }
            removed += self.prune_report_batches(&agent, &bound, BATCH / 64)?;
        }
        Ok(removed)
    }

    fn remove_reports(&self, agent: &[u8; 16], keys: &[sled::IVec]) -> Result<u64, StorageError> {
        let _turn = self.writing();
        let trees = (&self.reports, &self.report_counts, &self.uninterpreted);
        let result = trees.transaction(|(reports, counts, uninterpreted)| {
            let mut gone = 0u64;
            for key in keys {
                if reports.remove(key)?.is_some() {
                    uninterpreted.remove(key)?;
                    gone += 1;
                }
            }
            if gone > 0 {
                let count = read_counter("report count", counts.get(agent)?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?
                    .unwrap_or(0);
                counts.insert(
                    agent.as_slice(),
                    count.saturating_sub(gone).to_be_bytes().as_slice(),
                )?;
            }
            Ok(gone)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// Removes events up to the escalation cursor written before `before`; events come in
    /// sequence (so time) order, so the pass stops at the first one still needed.
    fn prune_alert_events(&self, before: Timestamp, cursor: u64) -> Result<u64, StorageError> {
        let _turn = self.writing();
        let mut removed = 0;
        loop {
            let mut keys = Vec::new();
            let mut done = true;
            for item in self.alert_events.range(..=cursor.to_be_bytes()) {
                let (key, value) = item?;
                let event: StoredEvent = decode("alert event", &value)?;
                if event.at >= before {
                    break;
                }
                keys.push(key);
                if keys.len() == BATCH {
                    done = false;
                    break;
                }
            }
            for key in &keys {
                self.alert_events.remove(key)?;
            }
            removed += keys.len() as u64;
            if done {
                return Ok(removed);
            }
        }
    }

    /// Removes alerts resolved before `before` whose tickets are finished (no operation left),
    /// their escalation records, and their series when no later occurrence exists.
    fn prune_resolved_alerts(
        &self,
        before: Timestamp,
        pruned: &mut Pruned,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        let mut old = Vec::new();
        for item in self.alerts.iter() {
            let (_, value) = item?;
            let alert: Alert = decode("alert", &value)?;
            if alert.state == AlertState::Resolved
                && alert.resolved_at.is_some_and(|at| at < before)
                && self
                    .escalation_todo
                    .scan_prefix(alert.id.to_be_bytes())
                    .next()
                    .is_none()
            {
                old.push(alert);
            }
        }
        for alert in old {
            for key in self.escalations.scan_prefix(alert.id.to_be_bytes()).keys() {
                self.escalations.remove(key?)?;
                pruned.escalations += 1;
            }
            let key = lifecycle::series_key(
                &alert.agent_id,
                alert.device.as_deref(),
                alert.rule,
                &alert.subject,
            );
            if let Some(value) = self.alert_series.get(key.as_bytes())? {
                let series: Series = decode("alert series", &value)?;
                if series.open.is_none() && series.last == Some(alert.id) {
                    self.alert_series.remove(key.as_bytes())?;
                    pruned.series += 1;
                }
            }
            self.alerts.remove(alert.id.to_be_bytes())?;
            pruned.alerts += 1;
        }
        Ok(())
    }

    /// Removes backup runs that ended before `before`, except each job's newest run.
    fn prune_backup_runs(&self, before: Timestamp) -> Result<u64, StorageError> {
        let _turn = self.writing();
        let limit = (before.as_second() as u64) ^ (1 << 63);
        let mut removed = 0;
        let mut doomed = Vec::new();
        let mut previous: Option<sled::IVec> = None;
        for key in self.backup_runs.iter().keys() {
            let key = key?;
            if let Some(prev) = previous.take() {
                // `prev` is not its job's newest run when `key` is of the same job.
                if same_job(&prev, &key) && run_end(&prev).is_some_and(|end| end < limit) {
                    doomed.push(prev);
                }
            }
            previous = Some(key);
            if doomed.len() >= BATCH {
                for k in doomed.drain(..) {
                    self.backup_runs.remove(k)?;
                    removed += 1;
                }
            }
        }
        for k in doomed {
            self.backup_runs.remove(k)?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// The smallest UUIDv7 of the millisecond `at`: every id below it was made before.
fn v7_floor(at: Timestamp) -> Uuid {
    let ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    Uuid::from_bytes(bytes)
}

/// A backup run key is `agent ␟ job ␟` then 8 bytes of end time.
fn run_end(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[at..].try_into().ok()?))
}

fn same_job(a: &[u8], b: &[u8]) -> bool {
    a.len() >= 8 && b.len() >= 8 && a[..a.len() - 8] == b[..b.len() - 8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::alert::{EventKind, Severity};
    use crate::alerts::policy::Rule;
    use crate::escalation::policy::tests::alert as sample_alert;
    use crate::storage::AlertWrite;

    const AGENT: &str = "0191d5a0-0000-7000-8000-000000000001";

    fn t(days_ago: i64, now: Timestamp) -> Timestamp {
        now - SignedDuration::from_hours(24 * days_ago)
    }

    fn v7(at: Timestamp) -> Uuid {
        let ms = at.as_millisecond() as u64;
        Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            ms / 1000,
            (ms % 1000) as u32 * 1_000_000,
        ))
    }

    use jiff::SignedDuration;

    #[test]
    fn pruning_keeps_what_is_recent_or_still_needed_and_counts_stay_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let now: Timestamp = "2027-06-01T06:00:00Z".parse().expect("ts");
        let agent = Uuid::parse_str(AGENT).expect("uuid").into_bytes();

        // Reports: 3 older than 400 days, 2 recent; written as the ingest path writes them.
        for days in [500, 450, 401, 399, 1] {
            let mut key = agent.to_vec();
            key.extend_from_slice(v7(t(days, now)).as_bytes());
            storage
                .reports
                .insert(key, b"report".as_slice())
                .expect("insert");
        }
        storage
            .report_counts
            .insert(agent, 5u64.to_be_bytes().as_slice())
            .expect("count");

        // Alerts 1..=3 with one event each: 1 resolved 500 days ago, 2 resolved 500 days ago
        // but its ticket still has a solve to send, 3 resolved yesterday. Events 1-2 are old,
        // event 3 recent; the escalation cursor is at 1.
        let resolved = |id: u64, days: i64| {
            let mut a = sample_alert(Rule::BackupFailed, Severity::Critical);
            a.id = id;
            a.subject = format!("job-{id}");
            a.agent_id = AGENT.into();
            a.state = AlertState::Resolved;
            a.resolved_at = Some(t(days, now));
            a
        };
        for (id, days) in [(1, 500), (2, 500), (3, 1)] {
            let alert = resolved(id, days);
            let key = lifecycle::series_key(AGENT, None, alert.rule, &alert.subject);
            let series = Series {
                open: None,
                last: Some(id),
                transitions: vec![],
            };
            let write = AlertWrite {
                alerts: vec![alert],
                series: vec![(key, series)],
                events: vec![(EventKind::Resolved, true, id)],
                next_alert_id: Some(id + 1),
            };
            storage
                .write_alerts(&write, t(if id == 3 { 0 } else { 200 }, now))
                .expect("write");
        }
        let policy = crate::escalation::policy::Policy::new(Default::default());
        let mut open = resolved(2, 500);
        open.state = AlertState::Open;
        let opened = crate::escalation::policy::tests::event(EventKind::Opened, true, &open);
        let clinic = crate::escalation::policy::tests::clinic(vigie_domain::Tier::Cmp1);
        let pending = policy
            .on_event(&opened, Some(&clinic), "glpi", None)
            .expect("a ticket to create");
        storage
            .write_escalations(&[pending], Some(1))
            .expect("escalation");

        // Backup runs: one job with runs 500, 450 and 10 days ago; another job whose only run
        // is 500 days old (it must stay: the job stopped, it is not forgotten).
        for (job, days) in [
            ("nightly", 500),
            ("nightly", 450),
            ("nightly", 10),
            ("old", 500),
        ] {
            let run = crate::facts::BackupRun {
                job: job.into(),
                source: String::new(),
                status: crate::facts::BackupStatus::Success,
                started_at: None,
                finished_at: t(days, now),
                bytes: None,
                files: None,
                target: String::new(),
                message: String::new(),
                kind: crate::facts::RunKind::Backup,
                cause: String::new(),
                code: None,
                failed_items: None,
            };
            storage.put_backup_run(AGENT, &run).expect("run");
        }

        let config = crate::retention::RetentionConfig::default();
        let cursor = storage.escalation_cursor().expect("cursor");
        assert_eq!(cursor, 1);
        let pruned = storage.prune(&config.cutoffs(now, cursor)).expect("prune");
        assert_eq!(pruned.reports, 3);
        assert_eq!(
            storage.report_count(AGENT).expect("count"),
            2,
            "count stays exact"
        );
        assert_eq!(storage.reports.len(), 2);
        assert_eq!(
            pruned.alert_events, 1,
            "event 2 waits for the escalation cursor"
        );
        let left: Vec<u64> = storage
            .alert_events_after(0, 10)
            .expect("events")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, [2, 3]);
        assert_eq!(
            pruned.alerts, 1,
            "alert 2 has a ticket operation left, 3 is recent"
        );
        assert!(storage.alert(1).expect("get").is_none());
        assert!(storage.alert(2).expect("get").is_some());
        assert!(storage.alert(3).expect("get").is_some());
        assert_eq!(pruned.series, 1);
        assert_eq!(pruned.backup_runs, 2);
        let runs = storage.backup_runs(AGENT).expect("runs");
        assert_eq!(runs["nightly"].len(), 1);
        assert_eq!(runs["old"].len(), 1, "a job's newest run always stays");

        // Once the cursor passed it, the old event goes too; a second pass finds nothing else.
        let again = storage.prune(&config.cutoffs(now, 3)).expect("prune");
        assert_eq!(again.alert_events, 1);
        assert_eq!(again.reports + again.alerts + again.backup_runs, 0);
    }

    #[test]
    fn events_of_older_collectors_still_decode_and_prune() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let alert = sample_alert(Rule::BackupFailed, Severity::Critical);
        // The format before compact events: the whole alert in each event.
        let old = serde_json::json!({
            "seq": 1, "at": "2026-01-01T00:00:00Z", "kind": "opened", "notify": true,
            "alert": alert,
        });
        storage
            .alert_events
            .insert(1u64.to_be_bytes(), serde_json::to_vec(&old).expect("json"))
            .expect("insert");
        let events = storage.alert_events_after(0, 10).expect("decode");
        assert_eq!(events[0].alert_id(), alert.id);
        let readable = events[0]
            .clone()
            .with_alert(None)
            .expect("carries its alert");
        assert_eq!(readable.alert, alert);
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("ts");
        let pruned = storage
            .prune(&crate::retention::RetentionConfig::default().cutoffs(now, u64::MAX))
            .expect("prune");
        assert_eq!(pruned.alert_events, 1);
    }

    #[test]
    fn v7_floor_orders_ids_by_time() {
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        let floor = v7_floor(at);
        let before = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_699_999_999,
            999_000_000,
        ));
        let after = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_700_000_000,
            0,
        ));
        assert!(before.as_bytes() < floor.as_bytes());
        assert!(after.as_bytes() >= floor.as_bytes());
    }
}
