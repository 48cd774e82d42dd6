//! The escalation policy, pure: which alert events open, update or close a ticket, after
//! what grace, with what priority and response deadline. No I/O: the worker feeds it events
//! and the queue's records and stores what it returns.
//!
//! - CMP0 never escalates by itself; a silenced or flapping alert does not escalate.
//! - One ticket per alert and sink; a repeat adds a follow-up only when the observation's
//!   text or detail changed (a mere count does not), or the severity changed.
//! - Acknowledgement → follow-up; resolution → follow-up and solved; resolved or silenced
//!   before the ticket was sent → no ticket at all.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use vigie_domain::Tier;

use super::calendar::SupportCalendar;
use super::config::{DEFAULT_RULE_GRACES, EscalationConfig};
use super::queue::{Escalation, EscalationState, TicketOp};
use super::ticket;
use crate::alerts::alert::{AlertEvent, EventKind, Severity};
use crate::alerts::policy::Rule;
use crate::model::Clinic;

/// Ticket priority, GLPI's scale: 1 very low … 5 very high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub u8);

impl Priority {
    /// By severity, one step up for CMP3 (the "prioritaire" queue), one down for CMP0.
    pub fn of(tier: Tier, severity: Severity) -> Priority {
        let base: u8 = match severity {
            Severity::Critical => 4,
            Severity::Major => 3,
            Severity::Warning => 2,
        };
        Priority(match tier {
            Tier::Cmp3 => base + 1,
            Tier::Cmp1 => base,
            Tier::Cmp0 => base - 1,
        })
    }

    pub fn label(self) -> &'static str {
        match self.0 {
            0 | 1 => "très basse",
            2 => "basse",
            3 => "moyenne",
            4 => "haute",
            _ => "très haute",
        }
    }
}

/// Whether alerts of a tier's clinics become tickets by themselves.
pub fn escalates(tier: Tier) -> bool {
    tier != Tier::Cmp0
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub config: EscalationConfig,
    pub calendar: SupportCalendar,
}

impl Policy {
    pub fn new(config: EscalationConfig) -> Self {
        Policy {
            config,
            calendar: SupportCalendar::default(),
        }
    }

    /// How long an alert stays open before its ticket: the rule's grace, else the severity's.
    pub fn grace(&self, rule: Rule, severity: Severity) -> SignedDuration {
        let minutes = self
            .config
            .rule_grace_minutes
            .get(&rule)
            .copied()
            .or_else(|| {
                DEFAULT_RULE_GRACES
                    .iter()
                    .find(|(r, _)| *r == rule)
                    .map(|(_, m)| *m)
            })
            .unwrap_or(match severity {
                Severity::Critical => self.config.grace_minutes.critical,
                Severity::Major => self.config.grace_minutes.major,
                Severity::Warning => self.config.grace_minutes.warning,
            });
        SignedDuration::from_mins(i64::try_from(minutes).unwrap_or(i64::MAX / 60))
    }

    /// The tier's time to first response, in support hours.
    pub fn sla(&self, tier: Tier) -> SignedDuration {
        let sla = &self.config.response_sla_hours;
        let hours = match tier {
            Tier::Cmp0 => sla.cmp0,
            Tier::Cmp1 => sla.cmp1,
            Tier::Cmp3 => sla.cmp3,
        };
        SignedDuration::from_hours(i64::try_from(hours).unwrap_or(i64::MAX / 3600))
    }

    /// When the response to a ticket sent at `at` is due, and whether remote only.
    pub fn response_due(&self, tier: Tier, at: Timestamp) -> (Timestamp, bool) {
        self.calendar
            .response_due(tier, at, self.sla(tier))
            .map_or((at, false), |due| (due.at, due.remote_only))
    }

    /// What `event` does to the escalation of its alert towards `sink`: the record to store,
    /// or `None` when nothing changes. `clinic` is the alert's clinic now.
    pub fn on_event(
        &self,
        event: &AlertEvent,
        clinic: Option<&Clinic>,
        sink: &str,
        existing: Option<Escalation>,
    ) -> Option<Escalation> {
        match existing {
            None => self.start(event, clinic?, sink),
            Some(record) => self.update(event, record),
        }
    }

    fn start(&self, event: &AlertEvent, clinic: &Clinic, sink: &str) -> Option<Escalation> {
        let alert = &event.alert;
        let wants_ticket = match event.kind {
            EventKind::Opened | EventKind::SeverityChanged | EventKind::Unsilenced => event.notify,
            _ => false,
        };
        if !wants_ticket
            || !escalates(clinic.tier)
            || !alert.state.is_active()
            || alert.silenced
            || alert.flapping
        {
            return None;
        }
        let create_after = event
            .at
            .checked_add(self.grace(alert.rule, alert.severity))
            .unwrap_or(event.at);
        let (response_due, remote_only) = self.response_due(clinic.tier, create_after);
        Some(Escalation {
            alert_id: alert.id,
            sink: sink.to_owned(),
            alert: alert.clone(),
            clinic_name: clinic.name.clone(),
            tier: clinic.tier,
            priority: Priority::of(clinic.tier, alert.severity),
            response_due,
            response_remote_only: remote_only,
            create_after,
            ticket_id: None,
            create_sent: false,
            pending: [TicketOp::Create].into(),
            state: EscalationState::Active,
            note: String::new(),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            notes_sent: 0,
            created_at: event.at,
            updated_at: event.at,
        })
    }

    fn update(&self, event: &AlertEvent, mut record: Escalation) -> Option<Escalation> {
        if record.state != EscalationState::Active {
            return None;
        }
        let alert = &event.alert;
        let before = std::mem::replace(&mut record.alert, alert.clone());
        // Not sent yet: the ticket will say everything when it is created.
        let unsent = record.ticket_id.is_none()
            && !record.create_sent
            && record.pending.front() == Some(&TicketOp::Create);
        record.updated_at = event.at;
        match event.kind {
            EventKind::Opened => {}
            EventKind::Updated => {
                let meaningful = before.text != alert.text || before.detail != alert.detail;
                if meaningful && !unsent {
                    record.pending.push_back(TicketOp::FollowUp {
                        text: ticket::update_text(alert),
                    });
                }
            }
            EventKind::SeverityChanged => {
                record.priority = Priority::of(record.tier, alert.severity);
                if unsent {
                    let sooner = event
                        .at
                        .checked_add(self.grace(alert.rule, alert.severity))
                        .unwrap_or(event.at);
                    if sooner < record.create_after {
                        record.create_after = sooner;
                        let (due, remote) = self.response_due(record.tier, sooner);
                        record.response_due = due;
                        record.response_remote_only = remote;
                    }
                } else {
                    record.pending.push_back(TicketOp::FollowUp {
                        text: ticket::severity_text(before.severity, alert.severity),
                    });
                }
            }
            EventKind::Acknowledged => record.pending.push_back(TicketOp::FollowUp {
                text: ticket::acknowledged_text(alert),
            }),
            EventKind::Resolved => cancel_unsent_or_queue(
                &mut record,
                unsent,
                "alerte résolue avant le ticket",
                TicketOp::Solve {
                    text: ticket::resolved_text(alert),
                },
            ),
            EventKind::Silenced => cancel_unsent_or_queue(
                &mut record,
                unsent,
                "alerte en fenêtre de maintenance avant le ticket",
                TicketOp::FollowUp {
                    text: ticket::silenced_text(),
                },
            ),
            EventKind::Unsilenced => {}
        }
        Some(record)
    }
}

/// An alert that ends (resolved, silenced) before its ticket exists gets no ticket at all;
/// otherwise the ticket hears about it.
fn cancel_unsent_or_queue(record: &mut Escalation, unsent: bool, why: &str, op: TicketOp) {
    if unsent {
        record.pending.clear();
        record.state = EscalationState::Cancelled;
        why.clone_into(&mut record.note);
    } else {
        record.pending.push_back(op);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alerts::alert::{Alert, AlertState};

    pub(crate) fn alert(rule: Rule, severity: Severity) -> Alert {
        let at: Timestamp = "2026-06-01T06:00:00Z".parse().expect("ts");
        Alert {
            id: 7,
            clinic_id: "c".into(),
            agent_id: "a".into(),
            hostname: "PC-ACCUEIL".into(),
            device: None,
            rule,
            subject: "nightly-nas".into(),
            severity,
            state: AlertState::Open,
            text: "Sauvegarde nightly-nas en échec".into(),
            detail: "NAS injoignable".into(),
            since: Some(at),
            evidence: "e1".into(),
            first_seen: at,
            last_seen: at,
            count: 1,
            clear_evaluations: 0,
            silenced: false,
            flapping: false,
            previous_id: None,
            resolved_at: None,
            history: Vec::new(),
            history_dropped: 0,
        }
    }

    pub(crate) fn clinic(tier: Tier) -> Clinic {
        Clinic {
            id: "c".into(),
            name: "Cabinet des Lataniers".into(),
            tier,
            created_at: Timestamp::UNIX_EPOCH,
            rule_overrides: Default::default(),
        }
    }

    pub(crate) fn event(kind: EventKind, notify: bool, alert: &Alert) -> AlertEvent {
        AlertEvent {
            seq: 1,
            at: alert.last_seen,
            kind,
            notify,
            alert: alert.clone(),
        }
    }

    #[test]
    fn priority_puts_cmp3_above_cmp1() {
        for s in [Severity::Critical, Severity::Major, Severity::Warning] {
            assert!(Priority::of(Tier::Cmp3, s) > Priority::of(Tier::Cmp1, s));
            assert!(Priority::of(Tier::Cmp1, s) > Priority::of(Tier::Cmp0, s));
        }
        assert_eq!(Priority::of(Tier::Cmp3, Severity::Critical), Priority(5));
        assert_eq!(Priority::of(Tier::Cmp0, Severity::Warning), Priority(1));
    }

    #[test]
    fn graces_by_rule_then_severity() {
        let policy = Policy::new(EscalationConfig::default());
        let check = |rule, severity, minutes: i64| {
            assert_eq!(
                policy.grace(rule, severity),
                SignedDuration::from_mins(minutes),
                "{rule}"
            );
        };
        check(Rule::BackupFailed, Severity::Critical, 0);
        check(Rule::OsUpdatesPending, Severity::Warning, 24 * 60);
        check(Rule::DiskLow, Severity::Major, 30);
        check(Rule::DiskLow, Severity::Warning, 240);
        let mut config = EscalationConfig::default();
        config.rule_grace_minutes.insert(Rule::DiskLow, 5);
        let policy = Policy::new(config);
        assert_eq!(
            policy.grace(Rule::DiskLow, Severity::Warning),
            SignedDuration::from_mins(5)
        );
    }

    #[test]
    fn who_escalates() {
        let policy = Policy::new(EscalationConfig::default());
        let a = alert(Rule::BackupFailed, Severity::Critical);
        let opened = event(EventKind::Opened, true, &a);
        for (tier, expected) in [(Tier::Cmp0, false), (Tier::Cmp1, true), (Tier::Cmp3, true)] {
            let got = policy.on_event(&opened, Some(&clinic(tier)), "glpi", None);
            assert_eq!(got.is_some(), expected, "{tier}");
        }
        // Silenced or flapping: `notify` is false, no ticket.
        let quiet = event(EventKind::Opened, false, &a);
        assert!(
            policy
                .on_event(&quiet, Some(&clinic(Tier::Cmp3)), "glpi", None)
                .is_none()
        );
        let mut silenced = a.clone();
        silenced.silenced = true;
        let e = event(EventKind::Opened, true, &silenced);
        assert!(
            policy
                .on_event(&e, Some(&clinic(Tier::Cmp3)), "glpi", None)
                .is_none()
        );
        // An ack of an alert that never escalated opens nothing.
        let ack = event(EventKind::Acknowledged, false, &a);
        assert!(
            policy
                .on_event(&ack, Some(&clinic(Tier::Cmp3)), "glpi", None)
                .is_none()
        );
    }

    #[test]
    fn lifecycle_of_one_ticket() {
        let policy = Policy::new(EscalationConfig::default());
        let c = clinic(Tier::Cmp3);
        let mut a = alert(Rule::BackupFailed, Severity::Critical);
        let record = policy
            .on_event(&event(EventKind::Opened, true, &a), Some(&c), "glpi", None)
            .expect("escalates");
        assert_eq!(record.create_after, a.first_seen, "backup failed: at once");
        assert_eq!(record.priority, Priority(5));
        assert_eq!(record.pending, [TicketOp::Create]);
        // 10:00 on a Monday in Réunion + 2 h.
        assert_eq!(record.response_due.to_string(), "2026-06-01T08:00:00Z");
        let mut record = record;
        record.pending.clear();
        record.ticket_id = Some("12".into());

        // A repeat with the same text: count only, no follow-up.
        a.count = 2;
        let record = policy
            .on_event(
                &event(EventKind::Updated, false, &a),
                Some(&c),
                "glpi",
                Some(record),
            )
            .expect("snapshot updated");
        assert!(record.pending.is_empty());
        assert_eq!(record.alert.count, 2);
        // A new detail: meaningful.
        a.detail = "disque plein".into();
        let record = policy
            .on_event(
                &event(EventKind::Updated, false, &a),
                Some(&c),
                "glpi",
                Some(record),
            )
            .expect("follow-up");
        assert!(
            matches!(&record.pending[0], TicketOp::FollowUp { text } if text.contains("disque plein"))
        );
        // Acknowledged, then resolved.
        a.state = AlertState::Acknowledged;
        a.note(a.last_seen, "acknowledged", "marie", "je regarde");
        let record = policy
            .on_event(
                &event(EventKind::Acknowledged, false, &a),
                Some(&c),
                "glpi",
                Some(record),
            )
            .expect("follow-up");
        assert!(
            matches!(&record.pending[1], TicketOp::FollowUp { text } if text.contains("marie") && text.contains("je regarde"))
        );
        a.state = AlertState::Resolved;
        let record = policy
            .on_event(
                &event(EventKind::Resolved, true, &a),
                Some(&c),
                "glpi",
                Some(record),
            )
            .expect("solve");
        assert!(matches!(record.pending[2], TicketOp::Solve { .. }));
    }

    #[test]
    fn resolved_or_silenced_during_grace_cancels() {
        let policy = Policy::new(EscalationConfig::default());
        let c = clinic(Tier::Cmp3);
        let mut a = alert(Rule::OsUpdatesPending, Severity::Warning);
        let record = policy
            .on_event(&event(EventKind::Opened, true, &a), Some(&c), "w", None)
            .expect("escalates");
        assert_eq!(
            record.create_after.duration_since(a.first_seen),
            SignedDuration::from_hours(24)
        );
        a.state = AlertState::Resolved;
        let cancelled = policy
            .on_event(
                &event(EventKind::Resolved, true, &a),
                Some(&c),
                "w",
                Some(record.clone()),
            )
            .expect("cancelled");
        assert_eq!(cancelled.state, EscalationState::Cancelled);
        assert!(cancelled.pending.is_empty());
        a.state = AlertState::Open;
        a.silenced = true;
        let silenced = policy
            .on_event(
                &event(EventKind::Silenced, false, &a),
                Some(&c),
                "w",
                Some(record),
            )
            .expect("cancelled");
        assert_eq!(silenced.state, EscalationState::Cancelled);
        // Nothing more happens to a finished escalation.
        assert!(
            policy
                .on_event(
                    &event(EventKind::Opened, true, &a),
                    Some(&c),
                    "w",
                    Some(silenced)
                )
                .is_none()
        );
    }
}
