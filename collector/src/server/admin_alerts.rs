//! The alert part of the `Admin` service: listing, acknowledging and resolving alerts,
//! maintenance windows, and clinic tier and rule changes. `admin.rs` routes the RPCs here.

use std::collections::HashMap;
use std::str::FromStr;

use jiff::SignedDuration;
use tonic::{Request, Response, Status};
use vigie_domain::Tier;
use vigie_proto::v1;

use super::admin::AdminService;
use super::convert::{alert_to_proto, maintenance_window_to_proto, policy_to_proto};
use super::identity::require_admin;
use super::{blocking, internal};
use crate::alerts::alert::MaintenanceScope;
use crate::alerts::engine::EngineError;
use crate::alerts::policy::Family;

/// Longest maintenance window accepted: maintenance, not a way to switch alerts off.
pub const MAX_MAINTENANCE_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 31);
/// Longest note or reason kept.
const MAX_NOTE: usize = 1000;

fn status(error: EngineError) -> Status {
    match error {
        EngineError::NotFound(what) => Status::not_found(format!("{what} introuvable")),
        EngineError::Lifecycle(e) => Status::failed_precondition(e.to_string()),
        EngineError::Invalid(why) => Status::invalid_argument(why),
        EngineError::Storage(e) => internal(e),
    }
}

fn who(by: &str) -> String {
    let by = by.trim();
    if by.is_empty() {
        "admin".to_owned()
    } else {
        by.chars().take(100).collect()
    }
}

fn note(text: &str) -> Result<String, Status> {
    if text.chars().count() > MAX_NOTE {
        return Err(Status::invalid_argument(format!(
            "note is longer than {MAX_NOTE} characters"
        )));
    }
    Ok(text.trim().to_owned())
}

fn families(names: &[String]) -> Result<Vec<Family>, Status> {
    names
        .iter()
        .map(|n| Family::from_str(n).map_err(|e| Status::invalid_argument(e.to_string())))
        .collect()
}

impl AdminService {
    pub(super) async fn do_list_alerts(
        &self,
        request: Request<v1::ListAlertsRequest>,
    ) -> Result<Response<v1::ListAlertsResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let (engine, storage) = (self.state.alerts.clone(), self.state.storage.clone());
        let alerts = blocking(move || {
            let filter = req.clinic_id.trim();
            let filter = (!filter.is_empty()).then_some(filter);
            if let Some(id) = filter
                && storage.clinic(id)?.is_none()
            {
                return Err(EngineError::NotFound(format!("cabinet {id}")));
            }
            let clinics: HashMap<_, _> = storage
                .list_clinics()?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect();
            let now = engine.now();
            Ok(engine
                .list(filter, req.all)?
                .iter()
                .map(|a| alert_to_proto(a, clinics.get(&a.clinic_id), now))
                .collect())
        })
        .await?
        .map_err(status)?;
        Ok(Response::new(v1::ListAlertsResponse { alerts }))
    }

    pub(super) async fn do_alert_action(
        &self,
        request: Request<v1::AlertActionRequest>,
        resolve: bool,
    ) -> Result<Response<v1::Alert>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let text = note(&req.note)?;
        let by = who(&req.by);
        let audit = (by.clone(), text.clone());
        let (engine, storage) = (self.state.alerts.clone(), self.state.storage.clone());
        let alert = blocking(move || {
            let alert = if resolve {
                engine.resolve(req.alert_id, &by, &text)?
            } else {
                engine.acknowledge(req.alert_id, &by, &text)?
            };
            let clinic = storage.clinic(&alert.clinic_id)?;
            Ok(alert_to_proto(&alert, clinic.as_ref(), engine.now()))
        })
        .await?
        .map_err(status)?;
        let action = if resolve { "resolve" } else { "acknowledge" };
        self.audit_cli(&audit.0, action, format!("alerte {}", alert.id), audit.1)
            .await?;
        self.durable().await?;
        Ok(Response::new(alert))
    }

    pub(super) async fn do_add_maintenance_window(
        &self,
        request: Request<v1::AddMaintenanceWindowRequest>,
    ) -> Result<Response<v1::MaintenanceWindow>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let scope = match (req.clinic_id.trim(), req.agent_id.trim()) {
            (clinic, "") if !clinic.is_empty() => MaintenanceScope::Clinic(clinic.to_owned()),
            ("", agent) if !agent.is_empty() => MaintenanceScope::Agent(agent.to_owned()),
            _ => {
                return Err(Status::invalid_argument(
                    "une fenêtre de maintenance couvre soit un cabinet, soit un agent",
                ));
            }
        };
        let duration = i64::try_from(req.duration_seconds)
            .map(SignedDuration::from_secs)
            .map_err(|_| {
                Status::invalid_argument("durée de la fenêtre de maintenance hors limites")
            })?;
        if duration > MAX_MAINTENANCE_WINDOW {
            return Err(Status::invalid_argument(format!(
                "une fenêtre de maintenance dure au plus {} jours",
                MAX_MAINTENANCE_WINDOW.as_hours() / 24
            )));
        }
        let reason = note(&req.reason)?;
        let by = who(&req.by);
        let audit = (by.clone(), reason.clone());
        let engine = self.state.alerts.clone();
        let window = blocking(move || {
            let window = engine.add_maintenance_window(scope, duration, &reason, &by)?;
            Ok(maintenance_window_to_proto(&window, engine.now()))
        })
        .await?
        .map_err(status)?;
        let target = format!("{}{}", window.clinic_id, window.agent_id);
        self.audit_cli(&audit.0, "maintenance_add", target, audit.1)
            .await?;
        self.durable().await?;
        Ok(Response::new(window))
    }

    pub(super) async fn do_list_maintenance_windows(
        &self,
        request: Request<v1::ListMaintenanceWindowsRequest>,
    ) -> Result<Response<v1::ListMaintenanceWindowsResponse>, Status> {
        require_admin(&request)?;
        let all = request.into_inner().all;
        let engine = self.state.alerts.clone();
        let windows = blocking(move || {
            let now = engine.now();
            Ok(engine
                .maintenance_windows(all)?
                .iter()
                .map(|s| maintenance_window_to_proto(s, now))
                .collect())
        })
        .await?
        .map_err(status)?;
        Ok(Response::new(v1::ListMaintenanceWindowsResponse {
            windows,
        }))
    }

    pub(super) async fn do_remove_maintenance_window(
        &self,
        request: Request<v1::RemoveMaintenanceWindowRequest>,
    ) -> Result<Response<v1::RemoveMaintenanceWindowResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let by = who(&req.by);
        let (audit_by, id) = (by.clone(), req.window_id);
        let engine = self.state.alerts.clone();
        blocking(move || engine.remove_maintenance_window(req.window_id, &by))
            .await?
            .map_err(status)?;
        self.audit_cli(
            &audit_by,
            "maintenance_end",
            format!("fenêtre {id}"),
            String::new(),
        )
        .await?;
        self.durable().await?;
        Ok(Response::new(v1::RemoveMaintenanceWindowResponse {}))
    }

    pub(super) async fn do_set_clinic_tier(
        &self,
        request: Request<v1::SetClinicTierRequest>,
    ) -> Result<Response<v1::ClinicPolicy>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let tier =
            Tier::from_str(&req.tier).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let by = who(&req.by);
        let (audit_by, clinic_id) = (by.clone(), req.clinic_id.trim().to_owned());
        let engine = self.state.alerts.clone();
        let policy = blocking(move || {
            let (clinic, resolved) = engine.set_tier(req.clinic_id.trim(), tier, &by)?;
            Ok(policy_to_proto(&clinic, resolved))
        })
        .await?
        .map_err(status)?;
        self.audit_cli(
            &audit_by,
            "tier_change",
            clinic_id,
            tier.as_str().to_owned(),
        )
        .await?;
        self.durable().await?;
        Ok(Response::new(policy))
    }

    pub(super) async fn do_set_clinic_rules(
        &self,
        request: Request<v1::SetClinicRulesRequest>,
    ) -> Result<Response<v1::ClinicPolicy>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let (enable, disable, reset) = (
            families(&req.enable)?,
            families(&req.disable)?,
            families(&req.reset)?,
        );
        let by = who(&req.by);
        let changes = !(req.enable.is_empty() && req.disable.is_empty() && req.reset.is_empty());
        let audit = (
            by.clone(),
            req.clinic_id.trim().to_owned(),
            format!(
                "activées : {:?} ; désactivées : {:?} ; par défaut : {:?}",
                req.enable, req.disable, req.reset
            ),
        );
        let engine = self.state.alerts.clone();
        let policy = blocking(move || {
            let (clinic, resolved) =
                engine.set_overrides(req.clinic_id.trim(), &enable, &disable, &reset, &by)?;
            Ok(policy_to_proto(&clinic, resolved))
        })
        .await?
        .map_err(status)?;
        if changes {
            self.audit_cli(&audit.0, "rules_change", audit.1, audit.2)
                .await?;
        }
        self.durable().await?;
        Ok(Response::new(policy))
    }
}
