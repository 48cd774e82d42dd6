//! `Enrollment.Enroll`: spends a single-use token and signs the agent's CSR with the identity
//! the collector assigns (never the one the CSR asks for).

use std::sync::Arc;

use jiff::Timestamp;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use vigie_domain::token::EnrollmentToken;
use vigie_proto::v1::enrollment_server::Enrollment;
use vigie_proto::v1::{EnrollRequest, EnrollResponse};

use super::admission::RateLimiter;
use super::{CollectorState, blocking, internal};
use crate::model::AgentRecord;
use crate::pki;
use crate::storage::{EnrollError, TokenRejection};

/// Longest hostname, OS or version text kept from an enrollment request.
const MAX_TEXT: usize = 255;

#[derive(Debug, Clone)]
pub struct EnrollmentService {
    state: Arc<CollectorState>,
    /// `Enroll` calls per source address (`[limits] enroll_per_address_per_minute`).
    rate: Arc<RateLimiter>,
}

impl EnrollmentService {
    pub fn new(state: Arc<CollectorState>) -> Self {
        let rate = Arc::new(RateLimiter::new(
            state.config.limits.enroll_per_address_per_minute,
        ));
        EnrollmentService { state, rate }
    }
}

/// SHA-256 of a token secret: the only form in which the collector keeps it.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

fn rejection_status(rejection: &TokenRejection) -> Status {
    match rejection {
        TokenRejection::Unknown => Status::unauthenticated(rejection.to_string()),
        TokenRejection::Used | TokenRejection::Expired(_) => {
            Status::permission_denied(rejection.to_string())
        }
    }
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let peer = request.remote_addr();
        if let Some(addr) = peer
            && !self.rate.allow(addr.ip(), tokio::time::Instant::now())
        {
            tracing::debug!(%addr, "enrollment refused: too many attempts from this address");
            return Err(Status::resource_exhausted(
                "too many enrollment attempts from this address: retry in a minute",
            ));
        }
        let req = request.into_inner();
        let token = EnrollmentToken::decode(&req.token)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ours = self.state.ca.fingerprint();
        if token.ca_sha256 != ours {
            tracing::warn!(?peer, token_ca = %token.ca_sha256, "enrollment refused: token made for another CA");
            return Err(Status::invalid_argument(format!(
                "enrollment token pins CA fingerprint {} but this collector's CA is {ours}",
                token.ca_sha256
            )));
        }
        let hash = secret_hash(&token.secret);

        // Look first (without spending) to learn the clinic and sign; then spend atomically.
        let storage = self.state.storage.clone();
        let peeked = blocking(move || storage.token(&hash))
            .await?
            .map_err(internal)?;
        let now = Timestamp::now();
        let clinic_id = match peeked {
            None => return Err(rejection_status(&TokenRejection::Unknown)),
            Some(t) if t.used => return Err(rejection_status(&TokenRejection::Used)),
            Some(t) if t.expires_at <= now => {
                return Err(rejection_status(&TokenRejection::Expired(t.expires_at)));
            }
            Some(t) => t.clinic_id,
        };
        // Only a caller holding a live token gets its CSR parsed; checked before the token is
        // spent on it.
        pki::parse_csr(&req.csr_pem).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let agent_id = Uuid::now_v7().to_string();
        let certificate_pem = self
            .state
            .ca
            .sign_agent_csr(&req.csr_pem, &clinic_id, &agent_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;

        let record = AgentRecord {
            id: agent_id.clone(),
            clinic_id: clinic_id.clone(),
            hostname: clip(&req.hostname),
            os: clip(&req.os),
            role: super::convert::role_from_proto(req.role),
            agent_version: clip(&req.agent_version),
            enrolled_at: now,
            last_seen: None,
            revoked: false,
            revoked_at: None,
            outbox_dropped_total: 0,
            outbox_health: Default::default(),
            snapshot: None,
            snapshot_collected_at: None,
            clock: None,
            config: Default::default(),
        };
        let storage = self.state.storage.clone();
        let spent = blocking(move || {
            // Tokens never change clinic, so the record made from the peeked one is right.
            storage.enroll_agent(&hash, now, |_token| record.clone())
        })
        .await?;
        let agent = match spent {
            Ok(agent) => agent,
            Err(EnrollError::Rejected(rejection)) => {
                tracing::warn!(?peer, reason = %rejection, "enrollment refused");
                return Err(rejection_status(&rejection));
            }
            Err(EnrollError::Storage(e)) => return Err(internal(e)),
        };
        // The certificate is only worth handing out once the agent record is on disk.
        self.state
            .commit
            .durable()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tracing::info!(
            agent_id = %agent.id,
            clinic_id = %agent.clinic_id,
            hostname = %agent.hostname,
            role = %agent.role,
            "agent enrolled"
        );
        Ok(Response::new(EnrollResponse {
            clinic_id: agent.clinic_id,
            agent_id: agent.id,
            certificate_pem,
            ca_certificate_pem: self.state.ca.cert_pem().to_owned(),
        }))
    }
}
