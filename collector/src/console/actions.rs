//! What pages and API do, in one place: each action checks the actor's right, calls the alert
//! engine, writes the audit entry, and waits for the flush that makes it durable.

use std::str::FromStr as _;

use jiff::{SignedDuration, Timestamp};
use vigie_domain::Tier;

use super::auth::{Actor, audit};
use super::data;
use crate::alert_output::AlertView;
use crate::alerts::alert::MaintenanceScope;
use crate::alerts::engine::EngineError;
use crate::server::CollectorState;
use crate::storage::StorageError;

/// Longest maintenance window: the same bound as the admin command's.
pub const MAX_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 31);
/// Longest note kept.
pub const MAX_NOTE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The alert is not in a state that allows it (already resolved, say).
    #[error("{0}")]
    Conflict(String),
    #[error("erreur de stockage sur le collecteur (voir son journal)")]
    Storage(#[from] StorageError),
    #[error("le collecteur n'a pas pu rendre la modification durable : {0}")]
    Durability(String),
    #[error("tâche interrompue")]
    Task,
}

impl From<EngineError> for ActionError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::NotFound(what) => ActionError::NotFound(format!("{what} introuvable")),
            EngineError::Lifecycle(e) => ActionError::Conflict(e.to_string()),
            EngineError::Invalid(why) => ActionError::Invalid(why),
            EngineError::Storage(e) => ActionError::Storage(e),
        }
    }
}

impl From<data::DataError> for ActionError {
    fn from(error: data::DataError) -> Self {
        match error {
            data::DataError::Storage(e) => ActionError::Storage(e),
            data::DataError::Engine(e) => e.into(),
        }
    }
}

fn note(text: &str) -> Result<String, ActionError> {
    if text.chars().count() > MAX_NOTE {
        return Err(ActionError::Invalid(format!(
            "la note dépasse {MAX_NOTE} caractères"
        )));
    }
    Ok(text.trim().to_owned())
}

async fn run<T: Send + 'static>(
    state: &CollectorState,
    f: impl FnOnce() -> Result<T, ActionError> + Send + 'static,
) -> Result<T, ActionError> {
    let value = tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ActionError::Task)??;
    state
        .commit
        .durable()
        .await
        .map_err(|e| ActionError::Durability(e.to_string()))?;
    Ok(value)
}

/// Acknowledges (`resolve` false) or resolves an alert, with a note.
pub async fn alert_action(
    state: std::sync::Arc<CollectorState>,
    actor: Actor,
    id: u64,
    resolve: bool,
    text: &str,
) -> Result<AlertView, ActionError> {
    let text = note(text)?;
    let inner = state.clone();
    run(&state, move || {
        let by = actor.name.as_str();
        let done = if resolve {
            inner.alerts.resolve(id, by, &text)
        } else {
            inner.alerts.acknowledge(id, by, &text)
        };
        let action = if resolve { "resolve" } else { "acknowledge" };
        let target = format!("alerte {id}");
        match done {
            Ok(_) => audit(&inner.storage, by, &actor.address, action, &target, &text)?,
            Err(error) => {
                audit(
                    &inner.storage,
                    by,
                    &actor.address,
                    "refused",
                    &target,
                    &format!("{action} : {error}"),
                )?;
                return Err(error.into());
            }
        }
        data::alert_view(&inner, id)?
            .ok_or_else(|| ActionError::NotFound(format!("alerte {id} introuvable")))
    })
    .await
}

/// Changes a clinic's tier: admins only (the refusal is audited too).
pub async fn set_tier(
    state: std::sync::Arc<CollectorState>,
    actor: Actor,
    clinic_id: String,
    tier: &str,
) -> Result<Vec<u64>, ActionError> {
    let tier = Tier::from_str(tier).map_err(|e| ActionError::Invalid(e.to_string()))?;
    let inner = state.clone();
    run(&state, move || {
        if !actor.is_admin() {
            audit(
                &inner.storage,
                &actor.name,
                &actor.address,
                "refused",
                &clinic_id,
                &format!(
                    "changement de contrat en {} : réservé aux administrateurs",
                    tier.as_str()
                ),
            )?;
            return Err(ActionError::Forbidden(
                "seul un administrateur peut changer le contrat d'un cabinet".into(),
            ));
        }
        let (clinic, resolved) = inner.alerts.set_tier(&clinic_id, tier, &actor.name)?;
        audit(
            &inner.storage,
            &actor.name,
            &actor.address,
            "tier_change",
            &clinic.id,
            &format!("{} ({})", tier.as_str(), clinic.name),
        )?;
        Ok(resolved)
    })
    .await
}

/// Opens a maintenance window on a clinic until `ends_at`.
pub async fn add_window(
    state: std::sync::Arc<CollectorState>,
    actor: Actor,
    clinic_id: String,
    ends_at: Timestamp,
    reason: &str,
) -> Result<u64, ActionError> {
    let reason = note(reason)?;
    let inner = state.clone();
    run(&state, move || {
        let duration = ends_at.duration_since(inner.alerts.now());
        if duration <= SignedDuration::ZERO {
            return Err(ActionError::Invalid("la fin est déjà passée".into()));
        }
        if duration > MAX_WINDOW {
            return Err(ActionError::Invalid(format!(
                "une fenêtre de maintenance dure au plus {} jours",
                MAX_WINDOW.as_hours() / 24
            )));
        }
        let window = inner.alerts.add_maintenance_window(
            MaintenanceScope::Clinic(clinic_id.clone()),
            duration,
            &reason,
            &actor.name,
        )?;
        audit(
            &inner.storage,
            &actor.name,
            &actor.address,
            "maintenance_add",
            &clinic_id,
            &format!(
                "n° {} jusqu'à {} : {reason}",
                window.id,
                crate::time_text::local_with_year(ends_at)
            ),
        )?;
        Ok(window.id)
    })
    .await
}

pub async fn end_window(
    state: std::sync::Arc<CollectorState>,
    actor: Actor,
    id: u64,
) -> Result<(), ActionError> {
    let inner = state.clone();
    run(&state, move || {
        inner.alerts.remove_maintenance_window(id, &actor.name)?;
        audit(
            &inner.storage,
            &actor.name,
            &actor.address,
            "maintenance_end",
            &format!("fenêtre {id}"),
            "",
        )?;
        Ok(())
    })
    .await
}
