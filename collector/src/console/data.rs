//! What the pages and the API read from storage: the same views the admin CLI prints with
//! `--json` (built by the same conversions), so the API's objects are those of `alerts --json`.
//! Blocking: call from `spawn_blocking`.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::alert_output::AlertView;
use crate::model::{AgentRecord, Clinic};
use crate::output::{AgentView, ClinicView};
use crate::server::CollectorState;
use crate::server::convert::{agent_to_proto, alert_to_proto, clinic_to_proto};
use crate::storage::StorageError;
use crate::ticket_output::TicketView;

/// An agent counts as online when it reported within this long.
pub const ONLINE_WITHIN: SignedDuration = SignedDuration::from_mins(15);

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Engine(#[from] crate::alerts::engine::EngineError),
}

pub fn clinics(state: &CollectorState) -> Result<Vec<Clinic>, DataError> {
    Ok(state.storage.list_clinics()?)
}

pub fn clinic_views(state: &CollectorState) -> Result<Vec<ClinicView>, DataError> {
    Ok(clinics(state)?
        .iter()
        .map(|c| ClinicView::from(&clinic_to_proto(c)))
        .collect())
}

pub fn agent_view(state: &CollectorState, agent: &AgentRecord) -> Result<AgentView, DataError> {
    let storage = &state.storage;
    let wire = agent_to_proto(
        agent,
        storage.report_count(&agent.id)?,
        storage.uninterpreted_count(&agent.id)?,
        storage.fact_cuts(&agent.id)?,
    );
    Ok(AgentView::from(&wire))
}

pub fn agent_views(
    state: &CollectorState,
    clinic: Option<&str>,
) -> Result<Vec<AgentView>, DataError> {
    state
        .storage
        .list_agents(clinic)?
        .iter()
        .map(|a| agent_view(state, a))
        .collect()
}

/// Alerts, most severe first; without `all`, only open and acknowledged ones.
pub fn alert_views(
    state: &CollectorState,
    clinic: Option<&str>,
    all: bool,
) -> Result<Vec<AlertView>, DataError> {
    let clinics: HashMap<String, Clinic> = clinics(state)?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let now = state.alerts.now();
    Ok(state
        .alerts
        .list(clinic, all)?
        .iter()
        .map(|a| AlertView::from(&alert_to_proto(a, clinics.get(&a.clinic_id), now)))
        .collect())
}

pub fn alert_view(state: &CollectorState, id: u64) -> Result<Option<AlertView>, DataError> {
    let Some(alert) = state.storage.alert(id)? else {
        return Ok(None);
    };
    let clinic = state.storage.clinic(&alert.clinic_id)?;
    Ok(Some(AlertView::from(&alert_to_proto(
        &alert,
        clinic.as_ref(),
        state.alerts.now(),
    ))))
}

/// Every escalation (solved and cancelled ones too), active first.
pub fn ticket_views(state: &CollectorState) -> Result<Vec<TicketView>, DataError> {
    let now = state.escalation.now();
    Ok(state
        .escalation
        .list()?
        .iter()
        .map(|e| TicketView::from(&crate::server::escalation_to_proto(e, now)))
        .collect())
}

/// Online, silent (reported once, not lately) or never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Online,
    Silent,
    Never,
}

pub fn presence(last_seen: Option<Timestamp>, now: Timestamp) -> Presence {
    match last_seen {
        None => Presence::Never,
        Some(at) if now.duration_since(at) <= ONLINE_WITHIN => Presence::Online,
        Some(_) => Presence::Silent,
    }
}
