//! The engine with a real (temporary) database and a settable clock: repeats, auto-resolve,
//! new occurrences, flapping, silences, acknowledgement, tier changes, and the event queue.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use vigie_domain::{AgentRole, Tier};

use super::alert::{AlertState, EventKind, MaintenanceScope};
use super::clock::FixedClock;
use super::engine::AlertEngine;
use super::policy::{Family, Rule};
use super::rules::fixtures::{self, run};
use super::thresholds::AlertsConfig;
use crate::facts::{BackupStatus, DeviceState, Fact};
use crate::model::{Clinic, TokenRecord};
use crate::storage::Storage;

struct World {
    _dir: tempfile::TempDir,
    storage: Storage,
    clock: Arc<FixedClock>,
    engine: AlertEngine,
    clinic: String,
    agent: String,
}

impl World {
    fn new(tier: Tier, role: AgentRole) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let clock = Arc::new(FixedClock::new(fixtures::now()));
        let config = AlertsConfig::default();
        let engine = AlertEngine::new(storage.clone(), config, clock.clone());
        let clinic = Clinic {
            id: "clinic-1".into(),
            name: "Cabinet des Lataniers".into(),
            tier,
            created_at: fixtures::now(),
            rule_overrides: Default::default(),
        };
        storage.add_clinic(&clinic).expect("clinic");
        let token = TokenRecord {
            clinic_id: clinic.id.clone(),
            created_at: fixtures::now(),
            expires_at: fixtures::now() + SignedDuration::from_hours(1),
            used: false,
            used_by: None,
        };
        storage.put_token(&[1; 32], &token).expect("token");
        let agent = storage
            .enroll_agent(&[1; 32], fixtures::now(), |t| {
                let mut a = fixtures::agent(role);
                a.clinic_id = t.clinic_id.clone();
                a
            })
            .expect("enroll");
        World {
            _dir: dir,
            storage,
            clock,
            engine,
            clinic: clinic.id,
            agent: agent.id,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now_for_tests()
    }

    fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(SignedDuration::from_mins(minutes));
    }

    /// The agent reports now (keeps it from looking silent).
    fn seen(&self) {
        let now = self.now();
        self.storage
            .update_agent(&self.agent, |a| a.last_seen = Some(now))
            .expect("update");
    }

    fn backup(&self, status: BackupStatus) {
        let mut r = run("nightly-nas", status, 0);
        r.finished_at = self.now();
        r.started_at = Some(self.now() - SignedDuration::from_mins(10));
        let fact = Fact::Backup {
            runs: vec![r],
            declared: vec![],
            cut: Default::default(),
        };
        self.storage
            .record_fact(&self.agent, self.now(), &fact)
            .expect("record");
        self.seen();
    }

    fn device(&self, state: DeviceState) {
        let fact = Fact::Lan(crate::facts::LanFact {
            devices: vec![fixtures::device("pacs", "pacs", state)],
            configured: vec!["pacs".into()],
            cut: Default::default(),
        });
        self.storage
            .record_fact(&self.agent, self.now(), &fact)
            .expect("record");
        self.seen();
    }

    fn evaluate(&self) {
        self.engine.evaluate_agent(&self.agent).expect("evaluate");
    }

    /// (id, rule, state, count) of every alert, oldest first.
    fn alerts(&self) -> Vec<(u64, Rule, AlertState, u64)> {
        let mut all = self.storage.list_alerts().expect("list");
        all.sort_by_key(|a| a.id);
        all.iter()
            .map(|a| (a.id, a.rule, a.state, a.count))
            .collect()
    }
}

impl FixedClock {
    fn now_for_tests(&self) -> Timestamp {
        super::clock::Clock::now(self)
    }
}

use AlertState::*;

#[test]
fn a_failure_opens_one_alert_repeats_count_and_success_resolves_it() {
    let w = World::new(Tier::Cmp1, AgentRole::Server);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    w.evaluate(); // the timer sees the same fact: nothing new
    assert_eq!(w.alerts(), vec![(1, Rule::BackupFailed, Open, 1)]);
    w.advance_minutes(60 * 24);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::BackupFailed, Open, 2)]);
    let alert = w.storage.alert(1).expect("get").expect("alert");
    assert_eq!(
        super::summary::summary(&alert, w.now()),
        "Sauvegarde nightly-nas en échec depuis 24 h"
    );

    // Success: cleared for `clear_evaluations` (2) evaluations, then resolved.
    w.advance_minutes(60);
    w.backup(BackupStatus::Success);
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::BackupFailed, Open, 2)]);
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::BackupFailed, Resolved, 2)]);

    // It fails again: a new occurrence, linked to the first.
    w.advance_minutes(60 * 24);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    assert_eq!(
        w.alerts(),
        vec![
            (1, Rule::BackupFailed, Resolved, 2),
            (2, Rule::BackupFailed, Open, 1)
        ]
    );
    let second = w.storage.alert(2).expect("get").expect("alert");
    assert_eq!(second.previous_id, Some(1));

    let kinds: Vec<EventKind> = w
        .storage
        .alert_events_after(0, 100)
        .expect("events")
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Opened,
            EventKind::Updated,
            EventKind::Resolved,
            EventKind::Opened
        ]
    );
    let tail = w.storage.alert_events_after(3, 100).expect("events");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].seq, 4);
    assert!(tail[0].notify);
}

#[test]
fn reports_stopping_makes_the_backup_missing() {
    let w = World::new(Tier::Cmp3, AgentRole::Workstation);
    w.backup(BackupStatus::Success);
    w.advance_minutes(25 * 60);
    w.evaluate();
    assert!(w.alerts().iter().all(|a| a.1 != Rule::BackupMissing));
    w.advance_minutes(2 * 60);
    w.evaluate();
    assert!(w.alerts().iter().any(|a| a.1 == Rule::BackupMissing));
}

#[test]
fn acknowledged_stays_acknowledged_and_manual_resolve_waits_for_new_facts() {
    let w = World::new(Tier::Cmp1, AgentRole::Server);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    let acked = w.engine.acknowledge(1, "marie", "je regarde").expect("ack");
    assert_eq!(acked.state, Acknowledged);
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::BackupFailed, Acknowledged, 1)]);

    let resolved = w
        .engine
        .resolve(1, "marie", "NAS redémarré")
        .expect("resolve");
    assert_eq!(
        resolved.history.last().map(|h| h.by.as_str()),
        Some("marie")
    );
    assert!(
        w.engine.resolve(1, "marie", "").is_err(),
        "already resolved"
    );
    // Same failed run still the latest fact: no reopening on every evaluation.
    w.evaluate();
    assert_eq!(w.alerts().len(), 1);
    // A new failed run: a new occurrence.
    w.advance_minutes(60);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    assert_eq!(w.alerts().len(), 2);
}

#[test]
fn flapping_device_is_marked_and_not_notified() {
    let w = World::new(Tier::Cmp3, AgentRole::Server);
    let mut engine_config = AlertsConfig::default();
    engine_config.lan.down_after_minutes = 0;
    engine_config.clear_evaluations = 1;
    engine_config.flapping_transitions = 4;
    let engine = AlertEngine::new(w.storage.clone(), engine_config, w.clock.clone());
    for _ in 0..3 {
        w.device(DeviceState::Down);
        engine.evaluate_agent(&w.agent).expect("evaluate");
        w.advance_minutes(2);
        w.device(DeviceState::Up);
        engine.evaluate_agent(&w.agent).expect("evaluate");
        w.advance_minutes(2);
    }
    let alerts = w.storage.list_alerts().expect("list");
    assert_eq!(alerts.len(), 3);
    assert!(!alerts[0].flapping);
    assert!(
        alerts[2].flapping,
        "open, resolve, open, resolve, open: flapping"
    );
    assert_eq!(alerts[2].previous_id, Some(alerts[1].id));
    let opened: Vec<bool> = w
        .storage
        .alert_events_after(0, 100)
        .expect("events")
        .iter()
        .filter(|e| e.kind == EventKind::Opened)
        .map(|e| e.notify)
        .collect();
    assert_eq!(opened, vec![true, true, false]);
}

#[test]
fn silences_mark_alerts_and_end() {
    let w = World::new(Tier::Cmp1, AgentRole::Server);
    let silence = w
        .engine
        .add_maintenance_window(
            MaintenanceScope::Clinic(w.clinic.clone()),
            SignedDuration::from_hours(2),
            "changement du NAS",
            "marie",
        )
        .expect("silence");
    w.backup(BackupStatus::Failed);
    w.evaluate();
    let alert = w.storage.alert(1).expect("get").expect("alert");
    assert!(alert.silenced);
    let events = w.storage.alert_events_after(0, 10).expect("events");
    assert_eq!(events[0].kind, EventKind::Opened);
    assert!(!events[0].notify, "a silenced alert is not escalated");
    assert_eq!(w.engine.maintenance_windows(false).expect("list").len(), 1);

    w.advance_minutes(121);
    w.evaluate();
    let alert = w.storage.alert(1).expect("get").expect("alert");
    assert!(!alert.silenced, "the silence is over");
    let last = w.storage.alert_events_after(1, 10).expect("events");
    assert_eq!(last[0].kind, EventKind::Unsilenced);
    assert!(last[0].notify, "now it is heard");
    assert!(
        w.engine
            .maintenance_windows(false)
            .expect("list")
            .is_empty()
    );
    w.engine
        .remove_maintenance_window(silence.id, "marie")
        .expect("remove");
    assert!(
        w.engine
            .remove_maintenance_window(silence.id, "marie")
            .is_err()
    );
}

#[test]
fn set_tier_resolves_what_the_new_tier_does_not_cover() {
    let w = World::new(Tier::Cmp3, AgentRole::Server);
    w.backup(BackupStatus::Failed);
    w.device(DeviceState::Down);
    w.advance_minutes(11);
    w.seen();
    w.evaluate();
    let rules: Vec<Rule> = w.alerts().iter().map(|a| a.1).collect();
    assert_eq!(rules, vec![Rule::BackupFailed, Rule::LanDeviceDown]);

    let (clinic, resolved) = w
        .engine
        .set_tier(&w.clinic, Tier::Cmp1, "marie")
        .expect("tier");
    assert_eq!(clinic.tier, Tier::Cmp1);
    assert_eq!(resolved, vec![2]);
    let lan = w.storage.alert(2).expect("get").expect("alert");
    assert_eq!(lan.state, Resolved);
    assert_eq!(
        lan.history.last().map(|h| h.note.as_str()),
        Some("contrat passé en CMP1 : catégorie non couverte")
    );
    w.evaluate();
    assert_eq!(w.alerts().iter().filter(|a| a.2 != Resolved).count(), 1);

    // An override brings LAN supervision back for this CMP1 clinic; a new fact reopens it.
    w.engine
        .set_overrides(&w.clinic, &[Family::Lan], &[], &[], "marie")
        .expect("override");
    w.advance_minutes(1);
    w.device(DeviceState::Down);
    w.evaluate();
    assert_eq!(w.alerts().iter().filter(|a| a.2 != Resolved).count(), 2);

    // CMP0: nothing alerts any more.
    let (_, resolved) = w
        .engine
        .set_tier(&w.clinic, Tier::Cmp0, "marie")
        .expect("tier");
    assert_eq!(resolved, vec![1], "the LAN override still holds for CMP0");
    w.engine
        .set_overrides(&w.clinic, &[], &[], &[Family::Lan], "marie")
        .expect("reset");
    assert!(w.alerts().iter().all(|a| a.2 == Resolved));
}

#[test]
fn silent_server_alerts_and_resolves_when_it_reports_again() {
    let w = World::new(Tier::Cmp3, AgentRole::Server);
    w.seen();
    w.advance_minutes(29);
    w.evaluate();
    assert!(w.alerts().is_empty());
    w.advance_minutes(2);
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::AgentSilent, Open, 1)]);
    w.seen();
    w.evaluate();
    w.evaluate();
    assert_eq!(w.alerts(), vec![(1, Rule::AgentSilent, Resolved, 1)]);
}

#[test]
fn event_subscribers_wake_up_with_the_latest_sequence() {
    let w = World::new(Tier::Cmp1, AgentRole::Server);
    let mut events = w.engine.subscribe();
    assert_eq!(*events.borrow_and_update(), 0);
    w.backup(BackupStatus::Failed);
    w.evaluate();
    assert!(events.has_changed().expect("engine alive"));
    assert_eq!(*events.borrow_and_update(), 1);
    w.engine.acknowledge(1, "marie", "").expect("ack");
    assert_eq!(*events.borrow_and_update(), 2);
}
