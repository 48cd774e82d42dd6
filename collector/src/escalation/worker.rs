//! The escalation worker: takes alert events after its durable cursor into account (the
//! policy decides; records and cursor move in one transaction), then does the due ticket
//! operations, oldest alert first, recording each result durably before the next.
//!
//! Exactly-once in effect: "a create was sent" is flushed to disk before the request leaves;
//! the ticket id is flushed as soon as it is known. After a crash or an unknown outcome, the
//! next attempt first looks the ticket up by its tag (or, for a sink that cannot search,
//! sends the same create with the same idempotency key). A failing sink is retried with
//! backoff, for hours if need be; its other records wait for the same round.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::EscalationError;
use super::config::EscalationConfig;
use super::policy::Policy;
use super::queue::{Escalation, EscalationState, TicketOp, backoff};
use super::sinks::{Lookup, Sink, SinkError, TicketSink};
use super::ticket::{self, TicketAlert, TicketNote};
use crate::alerts::engine::AlertEngine;
use crate::group_commit::GroupCommit;
use crate::model::Clinic;
use crate::storage::{Storage, StorageError};

/// Alert events taken per transaction.
const EVENTS_PER_BATCH: usize = 256;

/// The escalation queue's owner: policy, sinks, storage. Shared with the admin service.
#[derive(Debug)]
pub struct Escalator {
    storage: Storage,
    commit: GroupCommit,
    engine: Arc<AlertEngine>,
    policy: Policy,
    sinks: Vec<(String, Sink)>,
}

impl Escalator {
    pub fn new(
        config: &EscalationConfig,
        storage: Storage,
        commit: GroupCommit,
        engine: Arc<AlertEngine>,
    ) -> Result<Self, EscalationError> {
        let mut sinks = Vec::new();
        for sink in &config.sinks {
            let built = Sink::from_config(sink).map_err(|source| EscalationError::Sink {
                sink: sink.name.clone(),
                source,
            })?;
            sinks.push((sink.name.clone(), built));
        }
        Ok(Escalator {
            storage,
            commit,
            engine,
            policy: Policy::new(config.clone()),
            sinks,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> Timestamp {
        self.engine.now()
    }

    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.iter().map(|(n, _)| n.clone()).collect()
    }

    fn sink(&self, name: &str) -> Option<&Sink> {
        self.sinks.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Every escalation, active ones first, then by alert.
    pub fn list(&self) -> Result<Vec<Escalation>, StorageError> {
        let mut all = self.storage.list_escalations()?;
        all.sort_by_key(|e| {
            (
                e.state != EscalationState::Active,
                e.alert_id,
                e.sink.clone(),
            )
        });
        Ok(all)
    }

    /// Takes the alert events after the cursor into account; returns how many. Blocking.
    pub fn consume(&self) -> Result<usize, StorageError> {
        let mut total = 0;
        loop {
            let cursor = self.storage.escalation_cursor()?;
            let events = self.storage.alert_events_after(cursor, EVENTS_PER_BATCH)?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(total);
            };
            let taken = events.len();
            let mut clinics: HashMap<String, Option<Clinic>> = HashMap::new();
            let mut changed: BTreeMap<(u64, String), Escalation> = BTreeMap::new();
            for stored in events {
                let id = stored.alert_id();
                let current = if stored.alert.is_some() {
                    None
                } else {
                    self.storage.alert(id)?
                };
                let Some(event) = stored.with_alert(current) else {
                    tracing::warn!(
                        alert_id = id,
                        "alert event about an alert that no longer exists: skipped"
                    );
                    continue;
                };
                let event = &event;
                let clinic_id = &event.alert.clinic_id;
                if !clinics.contains_key(clinic_id) {
                    clinics.insert(clinic_id.clone(), self.storage.clinic(clinic_id)?);
                }
                let clinic = clinics.get(clinic_id).and_then(Option::as_ref);
                for (name, _) in &self.sinks {
                    let key = (event.alert.id, name.clone());
                    // A record changed earlier in this batch is the latest one.
                    let batched = changed.remove(&key);
                    let unchanged = batched.clone();
                    let existing = match batched {
                        Some(record) => Some(record),
                        None => self.storage.escalation(event.alert.id, name)?,
                    };
                    if let Some(record) = self
                        .policy
                        .on_event(event, clinic, name, existing)
                        .or(unchanged)
                    {
                        changed.insert(key, record);
                    }
                }
            }
            let records: Vec<Escalation> = changed.into_values().collect();
            for r in &records {
                tracing::debug!(alert_id = r.alert_id, sink = %r.sink, pending = r.pending.len(), "escalation updated");
            }
            self.storage.write_escalations(&records, Some(last))?;
            total += taken;
        }
    }

    async fn save(&self, record: &Escalation) -> Result<(), EscalationError> {
        let storage = self.storage.clone();
        let copy = record.clone();
        tokio::task::spawn_blocking(move || storage.write_escalations(&[copy], None))
            .await
            .map_err(|_| EscalationError::Task)??;
        self.commit
            .durable()
            .await
            .map_err(|e| EscalationError::Durability(e.to_string()))
    }

    /// Does every due ticket operation; returns when something is next due.
    pub async fn deliver(&self) -> Result<Option<Timestamp>, EscalationError> {
        let storage = self.storage.clone();
        let records = tokio::task::spawn_blocking(move || storage.escalations_with_work())
            .await
            .map_err(|_| EscalationError::Task)??;
        let mut failing: HashSet<String> = HashSet::new();
        let mut used: HashSet<String> = HashSet::new();
        let mut next: Option<Timestamp> = None;
        let mut later = |at: Timestamp| next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
        for mut record in records {
            if !record.has_work() {
                continue;
            }
            let Some(sink) = self.sink(&record.sink) else {
                continue;
            };
            let Some(due) = record.due_at() else {
                continue;
            };
            if failing.contains(&record.sink) {
                // Its sink just failed: try again with the next round, not now.
                later(due.max(self.now() + SignedDuration::from_secs(1)));
                continue;
            }
            if due > self.now() {
                later(due);
                continue;
            }
            used.insert(record.sink.clone());
            if let Err(error) = self.work(&mut record, sink).await {
                failing.insert(record.sink.clone());
                let retry_at = record.next_attempt_at.unwrap_or_else(|| self.now());
                tracing::warn!(
                    alert_id = record.alert_id,
                    sink = %record.sink,
                    attempts = record.attempts,
                    retry_at = %retry_at,
                    %error,
                    "ticket operation failed; will retry"
                );
                later(retry_at);
            } else if let Some(due) = record.due_at() {
                later(due);
            }
        }
        for name in used {
            if let Some(sink) = self.sink(&name) {
                sink.end_round().await;
            }
        }
        Ok(next)
    }

    /// Does the record's pending operations in order, saving after each.
    async fn work(&self, record: &mut Escalation, sink: &Sink) -> Result<(), SinkError> {
        while let Some(op) = record.pending.front().cloned() {
            let outcome = match &op {
                TicketOp::Create => self.create(record, sink).await,
                TicketOp::FollowUp { text } => self.note(record, sink, text, false).await,
                TicketOp::Solve { text } => self.note(record, sink, text, true).await,
            };
            match outcome {
                Ok(()) => {
                    record.pending.pop_front();
                    record.attempts = 0;
                    record.next_attempt_at = None;
                    record.last_error = None;
                    if matches!(op, TicketOp::Solve { .. }) {
                        record.state = EscalationState::Solved;
                        record.pending.clear();
                    }
                    record.note = format!("{} done", op.name());
                    record.updated_at = self.now();
                    self.save_or_log(record).await;
                }
                Err(error) => {
                    record.attempts += 1;
                    let config = &self.policy.config;
                    let wait = backoff(
                        record.attempts,
                        SignedDuration::from_secs(secs(config.retry_first_seconds)),
                        SignedDuration::from_secs(secs(config.retry_max_seconds)),
                    );
                    record.next_attempt_at = Some(self.now() + wait);
                    record.last_error = Some(error.to_string());
                    self.save_or_log(record).await;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    async fn save_or_log(&self, record: &Escalation) {
        if let Err(error) = self.save(record).await {
            tracing::error!(alert_id = record.alert_id, sink = %record.sink, %error, "escalation record not saved");
        }
    }

    async fn create(&self, record: &mut Escalation, sink: &Sink) -> Result<(), SinkError> {
        if record.ticket_id.is_some() {
            return Ok(());
        }
        let draft = ticket::draft(record, &self.policy.calendar);
        // Whether an earlier create may have made a ticket that nobody can look up.
        let mut may_exist = false;
        if record.create_sent {
            // A previous create may have gone through: never a second ticket.
            match sink.find(&draft).await? {
                Lookup::Found(id) => {
                    tracing::info!(alert_id = record.alert_id, sink = %record.sink, ticket_id = %id, "ticket found by its tag after an unknown outcome");
                    record.ticket_id = Some(id);
                    return Ok(());
                }
                Lookup::NotFound => {}
                Lookup::Unsupported => may_exist = true,
            }
        } else {
            record.create_sent = true;
            self.save(record)
                .await
                .map_err(|e| SinkError::Transient(format!("not sent, queue not saved: {e}")))?;
        }
        let id = match sink.create(&draft).await {
            Ok(id) => id,
            // The sink answered that it created nothing (refused connection, 5xx, 4xx): unless
            // an earlier attempt may have, the create is unsent again, so an alert that ends
            // before the retry gets no ticket.
            Err(
                error @ (SinkError::Transient(_) | SinkError::Refused(_) | SinkError::Config(_)),
            ) => {
                record.create_sent = may_exist;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        tracing::info!(
            alert_id = record.alert_id,
            sink = %record.sink,
            ticket_id = %id,
            priority = record.priority.0,
            response_due = %record.response_due,
            "ticket created"
        );
        record.ticket_id = Some(id);
        Ok(())
    }

    async fn note(
        &self,
        record: &mut Escalation,
        sink: &Sink,
        text: &str,
        solves: bool,
    ) -> Result<(), SinkError> {
        let Some(ticket_id) = record.ticket_id.clone() else {
            // Cannot happen (a create comes first); drop rather than block the queue.
            return Ok(());
        };
        let note = TicketNote {
            key: format!("vigie-{}-n{}", record.alert_id, record.notes_sent + 1),
            tag: ticket::tag(record.alert_id),
            text: text.to_owned(),
            solves,
            alert: TicketAlert::from(&record.alert),
        };
        sink.add_note(&ticket_id, &note).await?;
        record.notes_sent += 1;
        tracing::info!(
            alert_id = record.alert_id,
            sink = %record.sink,
            ticket_id = %ticket_id,
            solved = solves,
            "ticket updated"
        );
        Ok(())
    }

    /// Sends a test ticket through one sink; returns its id there.
    pub async fn send_test(&self, name: &str) -> Result<String, EscalationError> {
        let sink = self
            .sink(name)
            .ok_or_else(|| EscalationError::UnknownSink {
                name: name.to_owned(),
                configured: self.sink_names(),
            })?;
        let draft = ticket::test_draft(name, self.now(), &self.policy.calendar);
        let result = sink.create(&draft).await;
        sink.end_round().await;
        let id = result.map_err(|source| EscalationError::Sink {
            sink: name.to_owned(),
            source,
        })?;
        tracing::info!(sink = name, ticket_id = %id, "test ticket sent");
        Ok(id)
    }
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Starts the worker if any sink is configured; it stops when `stop` turns true.
pub fn spawn(
    escalator: Arc<Escalator>,
    mut events: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if escalator.sinks.is_empty() {
        return None;
    }
    let tick = Duration::from_secs(escalator.policy.config.tick_seconds.max(1));
    Some(tokio::spawn(async move {
        tracing::info!(sinks = ?escalator.sink_names(), "escalation worker started");
        loop {
            let consumer = escalator.clone();
            match tokio::task::spawn_blocking(move || consumer.consume()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::debug!(events = n, "alert events taken into account");
                    if let Err(error) = escalator.commit.durable().await {
                        tracing::error!(%error, "escalation queue not flushed");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "alert events not taken into account"),
                Err(error) => tracing::error!(%error, "escalation task failed"),
            }
            let wait = match escalator.deliver().await {
                Ok(Some(at)) => {
                    let secs = at.duration_since(escalator.now()).as_secs_f64().max(0.05);
                    Duration::from_secs_f64(secs).min(tick)
                }
                Ok(None) => tick,
                Err(error) => {
                    tracing::error!(%error, "escalation round failed");
                    tick
                }
            };
            tokio::select! {
                _ = events.changed() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        tracing::debug!("escalation worker stopped");
    }))
}
