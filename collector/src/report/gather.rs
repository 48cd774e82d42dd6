//! Reads one clinic's stored facts for a month into a [`MonthInput`] (the only I/O of the
//! figures: `figures.rs` stays pure).

use jiff::Timestamp;

use super::figures::{DeviceInput, MachineInput, MonthInput};
use crate::model::Clinic;
use crate::storage::{HistoryTopic, Storage, StorageError};

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
            os_updates: storage.fact_at(&id, HistoryTopic::OsUpdates, at)?,
            antivirus: storage.fact_at(&id, HistoryTopic::Antivirus, at)?,
            software: storage.fact_at(&id, HistoryTopic::Software, at)?,
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
