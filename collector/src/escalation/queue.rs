//! The durable escalation queue: one record per (alert, sink) with the ticket id once known
//! and the ticket operations still to do, in order. Stored by `storage.rs` (trees
//! `escalations` and `escalation_meta`, the latter holding the cursor: the last alert event
//! taken into account, moved in the same transaction as the records it produced).

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use vigie_domain::Tier;

use super::policy::Priority;
use crate::alerts::alert::Alert;

/// A ticket operation waiting to be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum TicketOp {
    Create,
    FollowUp { text: String },
    Solve { text: String },
}

impl TicketOp {
    pub fn name(&self) -> &'static str {
        match self {
            TicketOp::Create => "create",
            TicketOp::FollowUp { .. } => "follow_up",
            TicketOp::Solve { .. } => "solve",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationState {
    /// Waiting for its grace, being sent, or open in the ticket system.
    Active,
    /// The alert resolved and the ticket was marked solved.
    Solved,
    /// No ticket after all: resolved or silenced before it was sent.
    Cancelled,
}

/// One alert's ticket in one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub alert_id: u64,
    pub sink: String,
    /// The alert as of the latest event.
    pub alert: Alert,
    pub clinic_name: String,
    pub tier: Tier,
    pub priority: Priority,
    pub response_due: Timestamp,
    #[serde(default)]
    pub response_remote_only: bool,
    /// End of the grace: the ticket is created from then on.
    pub create_after: Timestamp,
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// A create request may have reached the sink: look the ticket up before creating again.
    #[serde(default)]
    pub create_sent: bool,
    #[serde(default)]
    pub pending: VecDeque<TicketOp>,
    pub state: EscalationState,
    /// Why it was cancelled, or the last thing done.
    #[serde(default)]
    pub note: String,
    /// Failed attempts in a row at the first pending operation.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Follow-ups sent so far: numbers the next one's idempotency key.
    #[serde(default)]
    pub notes_sent: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Escalation {
    /// What `tickets` shows: waiting (grace), pending, retrying, open, solved, cancelled.
    pub fn status(&self, now: Timestamp) -> &'static str {
        match self.state {
            EscalationState::Solved => "solved",
            EscalationState::Cancelled => "cancelled",
            EscalationState::Active if self.pending.is_empty() => "open",
            EscalationState::Active if self.last_error.is_some() => "retrying",
            EscalationState::Active if self.ticket_id.is_none() && now < self.create_after => {
                "waiting"
            }
            EscalationState::Active => "pending",
        }
    }

    /// Whether ticket operations are left to do.
    pub fn has_work(&self) -> bool {
        self.state == EscalationState::Active && !self.pending.is_empty()
    }

    /// When the worker should next try this record, if it has anything to do.
    pub fn due_at(&self) -> Option<Timestamp> {
        let first = self.pending.front()?;
        let mut at = self.next_attempt_at.unwrap_or(self.updated_at);
        if *first == TicketOp::Create && self.ticket_id.is_none() {
            at = at.max(self.create_after);
        }
        Some(at)
    }
}

/// Delay before attempt `attempts + 1`: `first`, doubled each time, at most `max`.
pub fn backoff(attempts: u32, first: SignedDuration, max: SignedDuration) -> SignedDuration {
    let factor = 1_i32
        .checked_shl(attempts.saturating_sub(1).min(20))
        .unwrap_or(i32::MAX);
    first.checked_mul(factor).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::alert::{EventKind, Severity};
    use crate::alerts::policy::Rule;
    use crate::escalation::config::EscalationConfig;
    use crate::escalation::policy::Policy;
    use crate::escalation::policy::tests::{alert, clinic, event};
    use crate::storage::Storage;

    #[test]
    fn records_and_cursor_move_together_and_only_work_is_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        assert_eq!(storage.escalation_cursor().expect("cursor"), 0);
        let policy = Policy::new(EscalationConfig::default());
        let a = alert(Rule::BackupFailed, Severity::Critical);
        let c = clinic(Tier::Cmp1);
        let opened = event(EventKind::Opened, true, &a);
        let glpi = policy
            .on_event(&opened, Some(&c), "glpi", None)
            .expect("glpi");
        let hook = policy
            .on_event(&opened, Some(&c), "hook", None)
            .expect("hook");
        storage
            .write_escalations(&[glpi.clone(), hook], Some(5))
            .expect("write");
        assert_eq!(storage.escalation_cursor().expect("cursor"), 5);
        assert_eq!(storage.escalations_with_work().expect("todo").len(), 2);
        let mut done = glpi;
        done.pending.clear();
        done.ticket_id = Some("12".into());
        storage.write_escalations(&[done], None).expect("write");
        assert_eq!(storage.escalation_cursor().expect("cursor"), 5);
        let todo = storage.escalations_with_work().expect("todo");
        assert_eq!(todo.len(), 1);
        assert_eq!(todo[0].sink, "hook");
        let stored = storage
            .escalation(a.id, "glpi")
            .expect("get")
            .expect("present");
        assert_eq!(stored.ticket_id.as_deref(), Some("12"));
        assert_eq!(stored.status(Timestamp::now()), "open");
        assert_eq!(storage.list_escalations().expect("list").len(), 2);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = SignedDuration::from_secs;
        let got: Vec<_> = (1..=8)
            .map(|n| backoff(n, s(30), s(1800)).as_secs())
            .collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1800, 1800]);
        assert_eq!(backoff(1000, s(30), s(1800)), s(1800));
    }
}
