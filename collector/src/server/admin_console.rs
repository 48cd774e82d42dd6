//! The console part of the `Admin` service: technician accounts and API tokens. Only the
//! admin certificate reaches it; what it does is written to the console's audit log, with
//! `admin-cli:USER` as who. `admin.rs` routes the RPCs here.

use tonic::{Request, Response, Status};
use vigie_proto::v1;

use super::admin::AdminService;
use super::blocking;
use super::convert::timestamp_to_proto;
use super::identity::require_admin;
use crate::console::auth::{self, AccountError};
use crate::storage::{ApiTokenRecord, ConsoleRole, TechnicianRecord};

fn status(error: AccountError) -> Status {
    match error {
        AccountError::Invalid(why) => Status::invalid_argument(why),
        AccountError::NotFound(what) => Status::not_found(format!("{what} introuvable")),
        AccountError::Exists(what) => Status::already_exists(format!("{what} existe déjà")),
        AccountError::Storage(e) => super::internal(e),
        other => Status::internal(other.to_string()),
    }
}

fn role(text: &str) -> Result<ConsoleRole, Status> {
    ConsoleRole::parse(text)
        .ok_or_else(|| Status::invalid_argument(format!("rôle {text:?} : technician ou admin")))
}

fn who(by: &str) -> String {
    let by: String = by.trim().chars().take(100).collect();
    format!("admin-cli:{}", if by.is_empty() { "admin" } else { &by })
}

pub fn technician_to_proto(t: &TechnicianRecord, now: jiff::Timestamp) -> v1::Technician {
    v1::Technician {
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        disabled: t.disabled,
        created_at: Some(timestamp_to_proto(t.created_at)),
        last_login_at: t.last_login_at.map(timestamp_to_proto),
        locked_until: t
            .locked_until
            .filter(|until| *until > now)
            .map(timestamp_to_proto),
        failed_logins: t.failed_logins,
    }
}

pub fn api_token_to_proto(t: &ApiTokenRecord) -> v1::ApiToken {
    v1::ApiToken {
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        created_at: Some(timestamp_to_proto(t.created_at)),
        revoked: t.revoked,
        last_used_at: t.last_used_at.map(timestamp_to_proto),
    }
}

impl AdminService {
    /// An admin command's action in the console's audit log, as `admin-cli:USER` from `admin`
    /// (the admin listener is on the collector's host).
    pub(super) async fn audit_cli(
        &self,
        by: &str,
        action: &'static str,
        target: String,
        note: String,
    ) -> Result<(), Status> {
        let storage = self.state.storage.clone();
        let by = who(by);
        blocking(move || auth::audit(&storage, &by, "admin", action, &target, &note))
            .await?
            .map_err(super::internal)
    }

    pub(super) async fn do_add_technician(
        &self,
        request: Request<v1::AddTechnicianRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let role = role(&req.role)?;
        let storage = self.state.storage.clone();
        let record = blocking(move || {
            auth::add_technician(&storage, &req.name, role, &req.password, &who(&req.by))
        })
        .await?
        .map_err(status)?;
        self.durable().await?;
        tracing::info!(technician = %record.name, role = record.role.as_str(), "console account added");
        Ok(Response::new(technician_to_proto(
            &record,
            jiff::Timestamp::now(),
        )))
    }

    pub(super) async fn do_list_technicians(
        &self,
        request: Request<v1::ListTechniciansRequest>,
    ) -> Result<Response<v1::ListTechniciansResponse>, Status> {
        require_admin(&request)?;
        let storage = self.state.storage.clone();
        let records = blocking(move || storage.list_technicians())
            .await?
            .map_err(super::internal)?;
        let now = jiff::Timestamp::now();
        Ok(Response::new(v1::ListTechniciansResponse {
            technicians: records
                .iter()
                .map(|t| technician_to_proto(t, now))
                .collect(),
        }))
    }

    pub(super) async fn do_disable_technician(
        &self,
        request: Request<v1::DisableTechnicianRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let storage = self.state.storage.clone();
        let record = blocking(move || auth::disable_technician(&storage, &req.name, &who(&req.by)))
            .await?
            .map_err(status)?;
        self.durable().await?;
        tracing::warn!(technician = %record.name, "console account disabled");
        Ok(Response::new(technician_to_proto(
            &record,
            jiff::Timestamp::now(),
        )))
    }

    pub(super) async fn do_set_technician_password(
        &self,
        request: Request<v1::SetTechnicianPasswordRequest>,
    ) -> Result<Response<v1::Technician>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let storage = self.state.storage.clone();
        let record =
            blocking(move || auth::set_password(&storage, &req.name, &req.password, &who(&req.by)))
                .await?
                .map_err(status)?;
        self.durable().await?;
        tracing::info!(technician = %record.name, "console password changed");
        Ok(Response::new(technician_to_proto(
            &record,
            jiff::Timestamp::now(),
        )))
    }

    pub(super) async fn do_create_api_token(
        &self,
        request: Request<v1::CreateApiTokenRequest>,
    ) -> Result<Response<v1::CreateApiTokenResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let role = role(&req.role)?;
        let storage = self.state.storage.clone();
        let (token, record) =
            blocking(move || auth::create_api_token(&storage, &req.name, role, &who(&req.by)))
                .await?
                .map_err(status)?;
        self.durable().await?;
        tracing::info!(api_token = %record.name, role = record.role.as_str(), "API token created");
        Ok(Response::new(v1::CreateApiTokenResponse {
            token,
            record: Some(api_token_to_proto(&record)),
        }))
    }

    pub(super) async fn do_list_api_tokens(
        &self,
        request: Request<v1::ListApiTokensRequest>,
    ) -> Result<Response<v1::ListApiTokensResponse>, Status> {
        require_admin(&request)?;
        let storage = self.state.storage.clone();
        let records = blocking(move || storage.list_api_tokens())
            .await?
            .map_err(super::internal)?;
        Ok(Response::new(v1::ListApiTokensResponse {
            tokens: records.iter().map(|(_, t)| api_token_to_proto(t)).collect(),
        }))
    }

    pub(super) async fn do_revoke_api_token(
        &self,
        request: Request<v1::RevokeApiTokenRequest>,
    ) -> Result<Response<v1::ApiToken>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let storage = self.state.storage.clone();
        let record = blocking(move || auth::revoke_api_token(&storage, &req.name, &who(&req.by)))
            .await?
            .map_err(status)?;
        self.durable().await?;
        tracing::warn!(api_token = %record.name, "API token revoked");
        Ok(Response::new(api_token_to_proto(&record)))
    }
}
