//! Reads one clinic's stored facts for a month into a [`MonthInput`] (the only I/O of the
//! figures: `figures.rs` stays pure).

use jiff::Timestamp;

use super::figures::{DeviceInput, MachineInput, MonthInput};
use crate::facts::Stamped;
use crate::model::Clinic;
use crate::storage::{FactKind, HistoryTopic, Storage, StorageError};

/// The fact in force at `at`: from the change log, else (facts stored before the log
/// existed) the latest fact when it is not newer than `at`.
fn in_force<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    agent_id: &str,
    topic: HistoryTopic,
    kind: FactKind,
    at: Timestamp,
) -> Result<Option<Stamped<T>>, StorageError> {
    if let Some(found) = storage.fact_at(agent_id, topic, at)? {
        return Ok(Some(found));
    }
    Ok(storage
        .latest_fact::<T>(agent_id, kind)?
        .filter(|s| s.collected_at <= at))
}

/// The clinic's agents, backups, facts in force at `at` (the month's end, or now if sooner),
/// device histories, alerts and escalations.
pub fn month_input(
    storage: &Storage,
    clinic: &Clinic,
    at: Timestamp,
) -> Result<MonthInput, StorageError> {
    let mut machines = Vec::new();
    for agent in storage.list_agents(Some(&clinic.id))? {
        let id = agent.id.clone();
        let current = storage.devices(&id)?;
        let mut names: Vec<String> = current.iter().map(|d| d.device.name.clone()).collect();
        for name in storage.devices_with_history(&id)? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut devices = Vec::new();
        for name in names {
            let transitions = storage.device_transitions(&id, &name)?;
            devices.push(DeviceInput {
                current: current.iter().find(|d| d.device.name == name).cloned(),
                name,
                transitions,
            });
        }
        machines.push(MachineInput {
            declared: storage.declared_jobs(&id)?,
            runs: storage.backup_runs(&id)?,
            os_updates: in_force(
                storage,
                &id,
                HistoryTopic::OsUpdates,
                FactKind::OsUpdates,
                at,
            )?,
            antivirus: in_force(
                storage,
                &id,
                HistoryTopic::Antivirus,
                FactKind::Antivirus,
                at,
            )?,
            software: in_force(storage, &id, HistoryTopic::Software, FactKind::Software, at)?,
            devices,
            agent,
        });
    }
    let alerts = storage
        .list_alerts()?
        .into_iter()
        .filter(|a| a.clinic_id == clinic.id)
        .collect();
    let escalations = storage
        .list_escalations()?
        .into_iter()
        .filter(|e| e.alert.clinic_id == clinic.id)
        .collect();
    Ok(MonthInput {
        clinic: clinic.clone(),
        machines,
        alerts,
        escalations,
    })
}
