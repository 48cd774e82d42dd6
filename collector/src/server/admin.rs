//! The `Admin` service: clinics, enrollment tokens, agents. Reached only over the loopback
//! admin listener with the admin certificate, checked again on every call.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use ring::rand::{SecureRandom, SystemRandom};
use tonic::{Request, Response, Status};
use uuid::Uuid;
use vigie_domain::Tier;
use vigie_domain::token::EnrollmentToken;
use vigie_proto::v1;
use vigie_proto::v1::admin_server::Admin;
use vigie_proto::v1::{
    AddClinicRequest, Clinic as WireClinic, CreateTokenRequest, CreateTokenResponse,
    ListAgentsRequest, ListAgentsResponse, ListClinicsRequest, ListClinicsResponse,
    RevokeAgentRequest, RevokeAgentResponse,
};

use super::convert::{agent_to_proto, clinic_to_proto, timestamp_to_proto};
use super::enrollment::secret_hash;
use super::identity::require_admin;
use super::{CollectorState, blocking, internal};
use crate::model::{Clinic, TokenRecord};

/// Token lifetime when the request says 0.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest token lifetime accepted: a token is a credential, it should not linger.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest clinic name accepted.
const MAX_NAME: usize = 200;

#[derive(Debug, Clone)]
pub struct AdminService {
    pub(super) state: Arc<CollectorState>,
    pub(super) backup_slot: super::admin_backup::BackupSlot,
}

impl AdminService {
    pub fn new(state: Arc<CollectorState>) -> Self {
        AdminService {
            state,
            backup_slot: Default::default(),
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    type BackupStream = super::admin_backup::BackupStream;

    async fn add_clinic(
        &self,
        request: Request<AddClinicRequest>,
    ) -> Result<Response<WireClinic>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let name = req.name.trim().to_owned();
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "le nom du cabinet ne peut pas être vide",
            ));
        }
        if name.chars().count() > MAX_NAME {
            return Err(Status::invalid_argument(format!(
                "clinic name is longer than {MAX_NAME} characters"
            )));
        }
        let tier =
            Tier::from_str(&req.tier).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let clinic = Clinic {
            id: Uuid::now_v7().to_string(),
            name,
            tier,
            created_at: Timestamp::now(),
            rule_overrides: Default::default(),
            contact_email: None,
        };
        let storage = self.state.storage.clone();
        let record = clinic.clone();
        blocking(move || storage.add_clinic(&record))
            .await?
            .map_err(internal)?;
        self.durable().await?;
        tracing::info!(clinic_id = %clinic.id, name = %clinic.name, tier = %clinic.tier, "clinic added");
        Ok(Response::new(clinic_to_proto(&clinic)))
    }

    async fn list_clinics(
        &self,
        request: Request<ListClinicsRequest>,
    ) -> Result<Response<ListClinicsResponse>, Status> {
        require_admin(&request)?;
        let storage = self.state.storage.clone();
        let clinics = blocking(move || {
            storage
                .list_clinics()?
                .iter()
                .map(|clinic| {
                    let mut proto = clinic_to_proto(clinic);
                    let latest = storage.latest_config(
                        &crate::central_config::ConfigScope::Clinic(clinic.id.clone()),
                    )?;
                    crate::central_config::fill_clinic(&mut proto, latest.as_ref());
                    Ok(proto)
                })
                .collect::<Result<Vec<_>, crate::storage::StorageError>>()
        })
        .await?
        .map_err(internal)?;
        Ok(Response::new(ListClinicsResponse { clinics }))
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let ttl = match req.ttl_seconds {
            0 => DEFAULT_TOKEN_TTL,
            secs => Duration::from_secs(secs),
        };
        if ttl > MAX_TOKEN_TTL {
            return Err(Status::invalid_argument(format!(
                "token lifetime {} is longer than the maximum {}",
                humantime::format_duration(ttl),
                humantime::format_duration(MAX_TOKEN_TTL)
            )));
        }
        let clinic_id = req.clinic_id.trim().to_owned();
        let storage = self.state.storage.clone();
        let id = clinic_id.clone();
        if blocking(move || storage.clinic(&id))
            .await?
            .map_err(internal)?
            .is_none()
        {
            return Err(Status::not_found(format!(
                "cabinet {clinic_id} introuvable"
            )));
        }

        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| Status::internal("the system random generator failed"))?;
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let now = Timestamp::now();
        let ttl =
            SignedDuration::try_from(ttl).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let expires_at = now
            .checked_add(ttl)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let record = TokenRecord {
            clinic_id: clinic_id.clone(),
            created_at: now,
            expires_at,
            used: false,
            used_by: None,
        };
        let hash = secret_hash(&secret);
        let storage = self.state.storage.clone();
        blocking(move || storage.put_token(&hash, &record))
            .await?
            .map_err(internal)?;
        self.durable().await?;
        let token = EnrollmentToken {
            collector_addr: self.state.config.public_addr(),
            ca_sha256: self.state.ca.fingerprint(),
            secret,
        };
        tracing::info!(clinic_id = %clinic_id, expires_at = %expires_at, "enrollment token created");
        Ok(Response::new(CreateTokenResponse {
            token: token.encode(),
            expires_at: Some(timestamp_to_proto(expires_at)),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        require_admin(&request)?;
        let filter = request.into_inner().clinic_id.trim().to_owned();
        let storage = self.state.storage.clone();
        let agents = blocking(move || {
            let filter = (!filter.is_empty()).then_some(filter.as_str());
            storage
                .list_agents(filter)?
                .into_iter()
                .map(|agent| {
                    let reports = storage.report_count(&agent.id)?;
                    let uninterpreted = storage.uninterpreted_count(&agent.id)?;
                    let cuts = storage.fact_cuts(&agent.id)?;
                    let mut proto = agent_to_proto(&agent, reports, uninterpreted, cuts);
                    let expected = super::admin_config::delivery_of(&storage, &agent)?.version;
                    crate::central_config::fill_agent(&mut proto, &agent, expected);
                    Ok(proto)
                })
                .collect::<Result<Vec<_>, crate::storage::StorageError>>()
        })
        .await?
        .map_err(internal)?;
        Ok(Response::new(ListAgentsResponse { agents }))
    }

    async fn revoke_agent(
        &self,
        request: Request<RevokeAgentRequest>,
    ) -> Result<Response<RevokeAgentResponse>, Status> {
        require_admin(&request)?;
        let agent_id = request.into_inner().agent_id.trim().to_owned();
        let storage = self.state.storage.clone();
        let id = agent_id.clone();
        let revoked = blocking(move || storage.revoke_agent(&id, Timestamp::now()))
            .await?
            .map_err(internal)?;
        let Some(agent) = revoked else {
            return Err(Status::not_found(format!("agent {agent_id} introuvable")));
        };
        self.durable().await?;
        tracing::warn!(agent_id = %agent.id, clinic_id = %agent.clinic_id, "agent revoked");
        // Its alerts resolve themselves: a revoked agent has no rules.
        self.state.evaluator.request(&agent.id);
        // Its configuration stream, woken, finds it revoked and ends.
        self.state.config_changes.send_modify(|_| {});
        Ok(Response::new(RevokeAgentResponse {}))
    }

    async fn list_alerts(
        &self,
        request: Request<v1::ListAlertsRequest>,
    ) -> Result<Response<v1::ListAlertsResponse>, Status> {
        self.do_list_alerts(request).await
    }

    async fn acknowledge_alert(
        &self,
        request: Request<v1::AlertActionRequest>,
    ) -> Result<Response<v1::Alert>, Status> {
        self.do_alert_action(request, false).await
    }

    async fn resolve_alert(
        &self,
        request: Request<v1::AlertActionRequest>,
    ) -> Result<Response<v1::Alert>, Status> {
        self.do_alert_action(request, true).await
    }

    async fn add_maintenance_window(
        &self,
        request: Request<v1::AddMaintenanceWindowRequest>,
    ) -> Result<Response<v1::MaintenanceWindow>, Status> {
        self.do_add_maintenance_window(request).await
    }

    async fn list_maintenance_windows(
        &self,
        request: Request<v1::ListMaintenanceWindowsRequest>,
    ) -> Result<Response<v1::ListMaintenanceWindowsResponse>, Status> {
        self.do_list_maintenance_windows(request).await
    }

    async fn remove_maintenance_window(
        &self,
        request: Request<v1::RemoveMaintenanceWindowRequest>,
    ) -> Result<Response<v1::RemoveMaintenanceWindowResponse>, Status> {
        self.do_remove_maintenance_window(request).await
    }

    async fn set_clinic_tier(
        &self,
        request: Request<v1::SetClinicTierRequest>,
    ) -> Result<Response<v1::ClinicPolicy>, Status> {
        self.do_set_clinic_tier(request).await
    }

    async fn set_clinic_rules(
        &self,
        request: Request<v1::SetClinicRulesRequest>,
    ) -> Result<Response<v1::ClinicPolicy>, Status> {
        self.do_set_clinic_rules(request).await
    }

    async fn list_escalations(
        &self,
        request: Request<v1::ListEscalationsRequest>,
    ) -> Result<Response<v1::ListEscalationsResponse>, Status> {
        self.do_list_escalations(request).await
    }

    async fn test_escalation(
        &self,
        request: Request<v1::TestEscalationRequest>,
    ) -> Result<Response<v1::TestEscalationResponse>, Status> {
        self.do_test_escalation(request).await
    }

    async fn backup(
        &self,
        request: Request<v1::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        self.do_backup(request).await
    }

    async fn monthly_report(
        &self,
        request: Request<v1::MonthlyReportRequest>,
    ) -> Result<Response<v1::MonthlyReportResponse>, Status> {
        self.do_monthly_report(request).await
    }

    async fn set_clinic_contact(
        &self,
        request: Request<v1::SetClinicContactRequest>,
    ) -> Result<Response<v1::Clinic>, Status> {
        self.do_set_clinic_contact(request).await
    }

    async fn show_config(
        &self,
        request: Request<v1::ShowConfigRequest>,
    ) -> Result<Response<v1::ShowConfigResponse>, Status> {
        self.do_show_config(request).await
    }

    async fn set_config(
        &self,
        request: Request<v1::SetConfigRequest>,
    ) -> Result<Response<v1::SetConfigResponse>, Status> {
        self.do_set_config(request).await
    }

    async fn config_history(
        &self,
        request: Request<v1::ConfigHistoryRequest>,
    ) -> Result<Response<v1::ConfigHistoryResponse>, Status> {
        self.do_config_history(request).await
    }

    // Technician console (issue 14): `admin_console.rs`.
    async fn add_technician(
        &self,
        request: Request<v1::AddTechnicianRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        self.do_add_technician(request).await
    }

    async fn list_technicians(
        &self,
        request: Request<v1::ListTechniciansRequest>,
    ) -> Result<Response<v1::ListTechniciansResponse>, Status> {
        self.do_list_technicians(request).await
    }

    async fn disable_technician(
        &self,
        request: Request<v1::DisableTechnicianRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        self.do_disable_technician(request).await
    }

    async fn set_technician_password(
        &self,
        request: Request<v1::SetTechnicianPasswordRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        self.do_set_technician_password(request).await
    }

    async fn create_api_token(
        &self,
        request: Request<v1::CreateApiTokenRequest>,
    ) -> Result<Response<v1::CreateApiTokenResponse>, Status> {
        self.do_create_api_token(request).await
    }

    async fn list_api_tokens(
        &self,
        request: Request<v1::ListApiTokensRequest>,
    ) -> Result<Response<v1::ListApiTokensResponse>, Status> {
        self.do_list_api_tokens(request).await
    }

    async fn revoke_api_token(
        &self,
        request: Request<v1::RevokeApiTokenRequest>,
    ) -> Result<Response<v1::ApiToken>, Status> {
        self.do_revoke_api_token(request).await
    }
}

impl AdminService {
    pub(super) async fn durable(&self) -> Result<(), Status> {
        self.state
            .commit
            .durable()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}
