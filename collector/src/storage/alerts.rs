//! Alerts and what they are made of (JSON): `alerts` (id → Alert), `alert_series` (series key →
//! Series), `alert_events` (sequence → StoredEvent: the alert id and what changed, written in the same
//! transaction as the alert change it describes), `silences` (id → MaintenanceWindow: the tree keeps its first name so existing data reads), and the `counters` that number them.

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Storage, StorageError, decode, encode, read_counter};
use crate::alerts::alert::{Alert, EventKind, MaintenanceWindow, Series, StoredEvent};

/// One batch of alert changes, written atomically with their events.
#[derive(Debug, Clone, Default)]
pub struct AlertWrite {
    pub alerts: Vec<Alert>,
    pub series: Vec<(String, Series)>,
    /// (kind, notify, alert id): the event carries that alert as written here.
    pub events: Vec<(EventKind, bool, u64)>,
    /// The next alert id, when new alerts were numbered.
    pub next_alert_id: Option<u64>,
}

impl Storage {
    // ---- alerts ----

    pub fn alert(&self, id: u64) -> Result<Option<Alert>, StorageError> {
        self.alerts
            .get(id.to_be_bytes())?
            .map(|v| decode("alert", &v))
            .transpose()
    }

    /// Every alert, oldest first.
    pub fn list_alerts(&self) -> Result<Vec<Alert>, StorageError> {
        self.alerts
            .iter()
            .map(|item| decode("alert", &item?.1))
            .collect()
    }

    pub fn series(&self, key: &str) -> Result<Option<Series>, StorageError> {
        self.alert_series
            .get(key.as_bytes())?
            .map(|v| decode("alert series", &v))
            .transpose()
    }

    /// The series whose key starts with `prefix` (one agent's: see `lifecycle::agent_prefix`).
    pub fn series_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<std::collections::BTreeMap<String, Series>, StorageError> {
        self.alert_series
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (k, v) = item?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode("alert series", &v)?,
                ))
            })
            .collect()
    }

    /// The number the next new alert gets (ids start at 1).
    pub fn next_alert_id(&self) -> Result<u64, StorageError> {
        let next = self.counters.get("alert")?;
        Ok(read_counter("alert", next.as_deref())?.unwrap_or(1).max(1))
    }

    /// Moves the next alert number `by` further (after a restore: see `archive.rs`).
    pub fn skip_alert_numbers(&self, by: u64) -> Result<u64, StorageError> {
        let _turn = self.writing();
        let next = self.next_alert_id()?.saturating_add(by);
        self.counters
            .insert("alert", next.to_be_bytes().as_slice())?;
        Ok(next)
    }

    /// Writes alert changes and their events in one transaction: an event exists if and only
    /// if its change does. Returns the sequence number of the last event written.
    pub fn write_alerts(
        &self,
        write: &AlertWrite,
        now: Timestamp,
    ) -> Result<Option<u64>, StorageError> {
        let _turn = self.writing();
        let mut alerts = Vec::with_capacity(write.alerts.len());
        for alert in &write.alerts {
            alerts.push((alert.id.to_be_bytes(), encode("alert", alert)?));
        }
        let mut series = Vec::with_capacity(write.series.len());
        for (key, s) in &write.series {
            series.push((key.as_bytes().to_vec(), encode("alert series", s)?));
        }
        let mut events = Vec::with_capacity(write.events.len());
        for &(kind, notify, id) in &write.events {
            let Some(alert) = write.alerts.iter().find(|a| a.id == id) else {
                continue;
            };
            events.push((kind, notify, alert));
        }
        let result = (
            &self.alerts,
            &self.alert_series,
            &self.alert_events,
            &self.counters,
        )
            .transaction(|(alert_tree, series_tree, event_tree, counters)| {
                for (key, value) in &alerts {
                    alert_tree.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &series {
                    series_tree.insert(key.as_slice(), value.as_slice())?;
                }
                let mut seq = read_counter("event", counters.get("event")?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?
                    .unwrap_or(1)
                    .max(1);
                for (kind, notify, alert) in &events {
                    let event = StoredEvent::new(seq, now, *kind, *notify, alert);
                    let bytes = serde_json::to_vec(&event).map_err(|e| {
                        ConflictableTransactionError::Abort(StorageError::Encode {
                            what: "alert event",
                            source: e,
                        })
                    })?;
                    event_tree.insert(seq.to_be_bytes().as_slice(), bytes)?;
                    seq += 1;
                }
                counters.insert("event", seq.to_be_bytes().as_slice())?;
                if let Some(next) = write.next_alert_id {
                    counters.insert("alert", next.to_be_bytes().as_slice())?;
                }
                Ok((!events.is_empty()).then(|| seq - 1))
            });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// Alert events with a sequence number above `after`, oldest first, at most `limit`: what
    /// a ticket sink reads from its last processed number on.
    pub fn alert_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        self.alert_events
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|item| decode("alert event", &item?.1))
            .collect()
    }

    // ---- maintenance windows (tree "silences", counter "silence") ----

    /// Stores a new maintenance window under the next number, and returns it.
    pub fn add_maintenance_window(
        &self,
        make: impl Fn(u64) -> MaintenanceWindow,
    ) -> Result<MaintenanceWindow, StorageError> {
        let _turn = self.writing();
        let result =
            (&self.maintenance_windows, &self.counters).transaction(|(windows, counters)| {
                let id = read_counter("silence", counters.get("silence")?.as_deref())
                    .map_err(ConflictableTransactionError::Abort)?
                    .unwrap_or(1)
                    .max(1);
                let window = make(id);
                let bytes = serde_json::to_vec(&window).map_err(|e| {
                    ConflictableTransactionError::Abort(StorageError::Encode {
                        what: "maintenance window",
                        source: e,
                    })
                })?;
                windows.insert(id.to_be_bytes().as_slice(), bytes)?;
                counters.insert("silence", (id + 1).to_be_bytes().as_slice())?;
                Ok(window)
            });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    pub fn list_maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, StorageError> {
        self.maintenance_windows
            .iter()
            .map(|item| decode("maintenance window", &item?.1))
            .collect()
    }

    /// Removes a maintenance window; `false` if there was none with that id.
    pub fn remove_maintenance_window(&self, id: u64) -> Result<bool, StorageError> {
        let _turn = self.writing();
        Ok(self.maintenance_windows.remove(id.to_be_bytes())?.is_some())
    }
}
