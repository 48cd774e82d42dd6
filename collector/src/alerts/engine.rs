//! The alert engine: loads an agent's facts and alerts from storage, runs the rules its
//! clinic's policy covers, applies the lifecycle and writes the changes with their events in
//! one transaction. Also the technicians' actions (acknowledge, resolve, maintenance windows, tier and
//! rule changes). Every change goes through one lock, so a technician's acknowledgement is
//! never overwritten by an evaluation that read the alert just before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use vigie_domain::Tier;

use super::alert::{Alert, EventKind, MaintenanceScope, MaintenanceWindow};
use super::clock::Clock;
use super::lifecycle::{self, Book, Changes, LifecycleError, Params, Scope};
use super::opening_hours::OpeningHours;
use super::policy::{Family, covers};
use super::rules::{self, AgentFacts, ClinicContext, minutes};
use super::thresholds::AlertsConfig;
use crate::model::{AgentRecord, Clinic};
use crate::storage::{AlertWrite, FactKind, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0} introuvable")]
    NotFound(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug)]
pub struct AlertEngine {
    storage: Storage,
    config: AlertsConfig,
    clock: Arc<dyn Clock>,
    hours: OpeningHours,
    lock: Mutex<()>,
    /// The sequence number of the latest alert event written (0: none yet this run).
    events: watch::Sender<u64>,
}

impl AlertEngine {
    pub fn new(storage: Storage, config: AlertsConfig, clock: Arc<dyn Clock>) -> Self {
        AlertEngine {
            storage,
            config,
            clock,
            hours: OpeningHours::default(),
            lock: Mutex::new(()),
            events: watch::Sender::new(0),
        }
    }

    /// Wakes up when alert events are written: a ticket sink reads them with
    /// `Storage::alert_events_after(its cursor, …)`. The value is the latest sequence number.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    fn store(&self, write: &AlertWrite, now: Timestamp) -> Result<(), StorageError> {
        if let Some(seq) = self.storage.write_alerts(write, now)? {
            self.events.send_replace(seq);
        }
        Ok(())
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    fn params(&self) -> Params {
        Params {
            clear_evaluations: self.config.clear_evaluations,
            flapping_window: minutes(self.config.flapping_window_minutes),
            flapping_transitions: self.config.flapping_transitions,
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Evaluates one agent; returns how many alerts changed.
    pub fn evaluate_agent(&self, agent_id: &str) -> Result<usize, EngineError> {
        let _guard = self.guard();
        let Some(agent) = self.storage.agent(agent_id)? else {
            return Ok(0);
        };
        let Some(clinic) = self.storage.clinic(&agent.clinic_id)? else {
            return Ok(0);
        };
        let windows = self.storage.list_maintenance_windows()?;
        let hours = self.hours_of(&clinic.id)?;
        self.evaluate_locked(agent, &clinic, &hours, &windows)
    }

    /// The clinic's own opening hours (`[clinic]` of its central configuration), else the
    /// defaults.
    fn hours_of(&self, clinic_id: &str) -> Result<OpeningHours, StorageError> {
        Ok(self
            .storage
            .clinic_section(clinic_id)?
            .map_or_else(|| self.hours.clone(), |c| c.hours()))
    }

    /// Evaluates every agent of every clinic (the timer's job); returns how many alerts
    /// changed. A failure is logged with what it concerns and never stops the round.
    pub fn evaluate_all(&self) -> usize {
        let _guard = self.guard();
        let listed = self.storage.list_maintenance_windows().and_then(|windows| {
            let clinics = self.storage.list_clinics()?;
            Ok((windows, clinics))
        });
        let (windows, clinics) = match listed {
            Ok(listed) => listed,
            Err(error) => {
                tracing::error!(%error, "alert evaluation round failed: cannot list clinics");
                return 0;
            }
        };
        let mut changed = 0;
        for clinic in clinics {
            let agents = match self.storage.list_agents(Some(&clinic.id)) {
                Ok(agents) => agents,
                Err(error) => {
                    tracing::error!(clinic_id = %clinic.id, %error, "alert evaluation of a clinic failed");
                    continue;
                }
            };
            let hours = match self.hours_of(&clinic.id) {
                Ok(hours) => hours,
                Err(error) => {
                    tracing::error!(clinic_id = %clinic.id, %error, "cannot read the clinic's opening hours: using the defaults");
                    self.hours.clone()
                }
            };
            for agent in agents {
                let id = agent.id.clone();
                match self.evaluate_locked(agent, &clinic, &hours, &windows) {
                    Ok(n) => changed += n,
                    Err(error) => {
                        tracing::error!(agent_id = %id, %error, "alert evaluation of an agent failed")
                    }
                }
            }
        }
        changed
    }

    fn facts(&self, agent: AgentRecord) -> Result<AgentFacts, StorageError> {
        let id = agent.id.clone();
        Ok(AgentFacts {
            declared_jobs: self.storage.declared_jobs(&id)?,
            backup_runs: self.storage.backup_runs(&id)?,
            os_updates: self.storage.latest_fact(&id, FactKind::OsUpdates)?,
            antivirus: self.storage.latest_fact(&id, FactKind::Antivirus)?,
            software: self.storage.latest_fact(&id, FactKind::Software)?,
            devices: self.storage.devices(&id)?,
            agent: Some(agent),
        })
    }

    /// The agent's series, with their open and latest alerts.
    fn book(&self, agent_id: &str) -> Result<Book, StorageError> {
        let series = self
            .storage
            .series_with_prefix(&lifecycle::agent_prefix(agent_id))?;
        let mut alerts = BTreeMap::new();
        for s in series.values() {
            for id in [s.open, s.last].into_iter().flatten() {
                if let std::collections::btree_map::Entry::Vacant(slot) = alerts.entry(id)
                    && let Some(alert) = self.storage.alert(id)?
                {
                    slot.insert(alert);
                }
            }
        }
        Ok(Book { series, alerts })
    }

    fn evaluate_locked(
        &self,
        agent: AgentRecord,
        clinic: &Clinic,
        hours: &OpeningHours,
        windows: &[MaintenanceWindow],
    ) -> Result<usize, EngineError> {
        let now = self.now();
        let context = ClinicContext {
            tier: clinic.tier,
            overrides: clinic.rule_overrides.clone(),
            hours: hours.clone(),
        };
        let (agent_id, hostname) = (agent.id.clone(), agent.hostname.clone());
        let silenced = windows
            .iter()
            .any(|s| s.is_active(now) && s.covers(&clinic.id, &agent_id));
        let facts = self.facts(agent)?;
        let conditions = rules::evaluate(now, &context, &facts, &self.config);
        let book = self.book(&agent_id)?;
        let covered = |family: Family| covers(clinic.tier, &clinic.rule_overrides, family);
        let scope = Scope {
            clinic_id: &clinic.id,
            agent_id: &agent_id,
            hostname: &hostname,
            silenced,
            covered: &covered,
        };
        let next_id = self.storage.next_alert_id()?;
        let changes =
            lifecycle::reconcile(now, &scope, &book, &conditions, &self.params(), next_id);
        self.write(changes, now)
    }

    fn write(&self, changes: Changes, now: Timestamp) -> Result<usize, EngineError> {
        if changes.is_empty() {
            return Ok(0);
        }
        for (kind, _, id) in &changes.events {
            if let Some(a) = changes.alerts.get(id) {
                tracing::info!(
                    alert_id = a.id,
                    event = ?kind,
                    clinic_id = %a.clinic_id,
                    agent_id = %a.agent_id,
                    rule = %a.rule,
                    subject = %a.subject,
                    severity = a.severity.as_str(),
                    silenced = a.silenced,
                    flapping = a.flapping,
                    "alert changed"
                );
            }
        }
        let changed = changes.alerts.len();
        let write = AlertWrite {
            alerts: changes.alerts.into_values().collect(),
            series: changes.series.into_iter().collect(),
            events: changes.events,
            next_alert_id: Some(changes.next_id),
        };
        self.store(&write, now)?;
        Ok(changed)
    }

    // ---- technicians' actions ----

    fn alert(&self, id: u64) -> Result<Alert, EngineError> {
        self.storage
            .alert(id)?
            .ok_or_else(|| EngineError::NotFound(format!("alerte {id}")))
    }

    pub fn acknowledge(&self, id: u64, by: &str, note: &str) -> Result<Alert, EngineError> {
        let _guard = self.guard();
        let now = self.now();
        let alert = lifecycle::acknowledge(&self.alert(id)?, now, by, note)?;
        self.store(
            &AlertWrite {
                alerts: vec![alert.clone()],
                events: vec![(EventKind::Acknowledged, false, id)],
                ..AlertWrite::default()
            },
            now,
        )?;
        tracing::info!(alert_id = id, by, "alert acknowledged");
        Ok(alert)
    }

    pub fn resolve(&self, id: u64, by: &str, note: &str) -> Result<Alert, EngineError> {
        let _guard = self.guard();
        let alert = self.alert(id)?;
        let key = lifecycle::series_key(
            &alert.agent_id,
            alert.device.as_deref(),
            alert.rule,
            &alert.subject,
        );
        let series = self.storage.series(&key)?.unwrap_or_default();
        let now = self.now();
        let (alert, series) = lifecycle::resolve(&alert, &series, now, by, note, &self.params())?;
        self.store(
            &AlertWrite {
                alerts: vec![alert.clone()],
                series: vec![(key, series)],
                events: vec![(EventKind::Resolved, true, id)],
                next_alert_id: None,
            },
            now,
        )?;
        tracing::info!(alert_id = id, by, "alert resolved");
        Ok(alert)
    }

    /// Changes a clinic's tier and resolves, with that reason, its alerts of families the new
    /// tier no longer covers. Returns the clinic and the resolved alert ids.
    pub fn set_tier(
        &self,
        clinic_id: &str,
        tier: Tier,
        by: &str,
    ) -> Result<(Clinic, Vec<u64>), EngineError> {
        let _guard = self.guard();
        let clinic = self
            .storage
            .update_clinic(clinic_id, |c| c.tier = tier)?
            .ok_or_else(|| EngineError::NotFound(format!("cabinet {clinic_id}")))?;
        let note = format!(
            "contrat passé en {} : catégorie non couverte",
            tier.as_str().to_uppercase()
        );
        let resolved = self.resolve_uncovered(&clinic, by, &note)?;
        tracing::info!(clinic_id, tier = %tier, resolved = resolved.len(), by, "clinic tier changed");
        Ok((clinic, resolved))
    }

    /// Switches rule families on or off for a clinic against its tier (`reset` goes back to
    /// the tier's default), resolving alerts no longer covered.
    pub fn set_overrides(
        &self,
        clinic_id: &str,
        enable: &[Family],
        disable: &[Family],
        reset: &[Family],
        by: &str,
    ) -> Result<(Clinic, Vec<u64>), EngineError> {
        if let Some(f) = enable
            .iter()
            .find(|f| disable.contains(f) || reset.contains(f))
        {
            return Err(EngineError::Invalid(format!(
                "famille de règles {f} à la fois activée et désactivée ou remise au contrat"
            )));
        }
        let _guard = self.guard();
        let clinic = self
            .storage
            .update_clinic(clinic_id, |c| {
                for f in reset {
                    c.rule_overrides.0.remove(f);
                }
                for f in enable {
                    c.rule_overrides.0.insert(*f, true);
                }
                for f in disable {
                    c.rule_overrides.0.insert(*f, false);
                }
            })?
            .ok_or_else(|| EngineError::NotFound(format!("cabinet {clinic_id}")))?;
        let resolved = self.resolve_uncovered(&clinic, by, "famille de règles désactivée")?;
        tracing::info!(
            clinic_id,
            resolved = resolved.len(),
            by,
            "clinic rule overrides changed"
        );
        Ok((clinic, resolved))
    }

    fn resolve_uncovered(
        &self,
        clinic: &Clinic,
        by: &str,
        note: &str,
    ) -> Result<Vec<u64>, EngineError> {
        let now = self.now();
        let params = self.params();
        let mut write = AlertWrite::default();
        for agent in self.storage.list_agents(Some(&clinic.id))? {
            let book = self.book(&agent.id)?;
            for (key, series) in book.series {
                let Some(alert) = series.open.and_then(|id| book.alerts.get(&id)) else {
                    continue;
                };
                if covers(clinic.tier, &clinic.rule_overrides, alert.rule.family()) {
                    continue;
                }
                let (alert, series) = lifecycle::resolve(alert, &series, now, by, note, &params)?;
                write.events.push((EventKind::Resolved, true, alert.id));
                write.alerts.push(alert);
                write.series.push((key, series));
            }
        }
        let ids = write.alerts.iter().map(|a| a.id).collect();
        if !write.alerts.is_empty() {
            self.store(&write, now)?;
        }
        Ok(ids)
    }

    /// Alerts, most severe first then oldest first; without `all`, only open and acknowledged.
    pub fn list(&self, clinic_id: Option<&str>, all: bool) -> Result<Vec<Alert>, EngineError> {
        let mut alerts: Vec<Alert> = self
            .storage
            .list_alerts()?
            .into_iter()
            .filter(|a| clinic_id.is_none_or(|c| c == a.clinic_id))
            .filter(|a| all || a.state.is_active())
            .collect();
        alerts.sort_by_key(|a| (!a.state.is_active(), a.severity, a.first_seen, a.id));
        Ok(alerts)
    }

    // ---- maintenance windows ----

    pub fn add_maintenance_window(
        &self,
        scope: MaintenanceScope,
        duration: SignedDuration,
        reason: &str,
        by: &str,
    ) -> Result<MaintenanceWindow, EngineError> {
        if reason.trim().is_empty() {
            return Err(EngineError::Invalid(
                "une fenêtre de maintenance demande un motif".into(),
            ));
        }
        if duration <= SignedDuration::ZERO {
            return Err(EngineError::Invalid(
                "une fenêtre de maintenance demande une durée positive".into(),
            ));
        }
        match &scope {
            MaintenanceScope::Clinic(id) if self.storage.clinic(id)?.is_none() => {
                return Err(EngineError::NotFound(format!("cabinet {id}")));
            }
            MaintenanceScope::Agent(id) if self.storage.agent(id)?.is_none() => {
                return Err(EngineError::NotFound(format!("agent {id}")));
            }
            _ => {}
        }
        let now = self.now();
        let ends_at = now
            .checked_add(duration)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let window = self
            .storage
            .add_maintenance_window(|id| MaintenanceWindow {
                id,
                scope: scope.clone(),
                starts_at: now,
                ends_at,
                reason: reason.trim().to_owned(),
                created_by: by.to_owned(),
            })?;
        tracing::info!(window_id = window.id, scope = ?window.scope, ends_at = %ends_at, by, "maintenance window added");
        self.refresh(&scope)?;
        Ok(window)
    }

    /// Maintenance windows, oldest first; without `all`, only those not yet over.
    pub fn maintenance_windows(&self, all: bool) -> Result<Vec<MaintenanceWindow>, EngineError> {
        let now = self.now();
        Ok(self
            .storage
            .list_maintenance_windows()?
            .into_iter()
            .filter(|s| all || s.ends_at > now)
            .collect())
    }

    pub fn remove_maintenance_window(&self, id: u64, by: &str) -> Result<(), EngineError> {
        let Some(window) = self
            .storage
            .list_maintenance_windows()?
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Err(EngineError::NotFound(format!(
                "fenêtre de maintenance {id}"
            )));
        };
        self.storage.remove_maintenance_window(id)?;
        tracing::info!(window_id = id, by, "maintenance window removed");
        self.refresh(&window.scope)
    }

    /// Re-evaluates what a maintenance window covers, so alerts show (un)silenced at once.
    fn refresh(&self, scope: &MaintenanceScope) -> Result<(), EngineError> {
        match scope {
            MaintenanceScope::Agent(id) => {
                self.evaluate_agent(id)?;
            }
            MaintenanceScope::Clinic(id) => {
                for agent in self.storage.list_agents(Some(id))? {
                    self.evaluate_agent(&agent.id)?;
                }
            }
        }
        Ok(())
    }
}
