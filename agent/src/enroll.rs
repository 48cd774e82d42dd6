//! Enrollment: pin the collector's CA from the token, generate the key pair here, send a CSR
//! with the token, and keep the certificate the collector signs. The private key never leaves
//! this machine and the token is sent only to a collector whose CA matched the pin.

use std::error::Error as _;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tonic::Code;
use vigie_domain::AgentRole;
use vigie_domain::token::{EnrollmentToken, TokenError};
use vigie_proto::v1;

use crate::facts::system;
use crate::pin::{self, PinError};
use crate::state::{Credentials, Enrollment, StateDir, StateError};
use crate::transport::{self, ChannelError, FailureKind, Timeouts};

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    request: Duration::from_secs(30),
};

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(
        "this machine is already enrolled (agent {agent_id} in clinic {clinic_id}, see {path}); \
         use --force to enroll again"
    )]
    AlreadyEnrolled {
        agent_id: String,
        clinic_id: String,
        path: String,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("cannot generate the agent key or certificate request")]
    Key(#[from] rcgen::Error),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("{0}")]
    Refused(String),
    #[error("the collector's answer is unusable: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Enrolls this machine with the collector named in the token and writes the state directory.
pub async fn enroll(
    state: &StateDir,
    token_text: &str,
    role: AgentRole,
    force: bool,
) -> Result<Enrollment, EnrollError> {
    if state.is_enrolled() {
        if !force {
            // Name who this machine is, if agent.json says it; refuse either way.
            let (agent_id, clinic_id) = match state.load() {
                Ok(current) => (current.enrollment.agent_id, current.enrollment.clinic_id),
                Err(_) => ("?".to_owned(), "?".to_owned()),
            };
            return Err(EnrollError::AlreadyEnrolled {
                agent_id,
                clinic_id,
                path: state.path().display().to_string(),
            });
        }
        tracing::warn!(state_dir = %state.path().display(), "enrolling again over an existing enrollment (--force)");
    }
    let token = EnrollmentToken::decode(token_text)?;
    let addr = token.collector_addr.as_str();

    // Pin before anything secret goes out.
    let chain = pin::presented_chain(addr, TIMEOUTS.connect).await?;
    let ca = pin::find_pinned(&chain, &token.ca_sha256, addr)?;
    let ca_pem = pin::to_pem(&ca);
    tracing::info!(collector = addr, ca_sha256 = %token.ca_sha256, "collector CA matches the token");

    let hostname = system::hostname();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;

    let mut client = transport::enrollment_client(addr, &ca_pem, TIMEOUTS)?;
    let request = v1::EnrollRequest {
        token: token_text.trim().to_owned(),
        csr_pem,
        hostname,
        role: proto_role(role) as i32,
        os: system::os_description(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let answer = client
        .enroll(request)
        .await
        .map_err(|status| refused(&status, addr))?
        .into_inner();

    check_answer(&answer, &ca)?;
    let enrollment = Enrollment {
        collector_addr: token.collector_addr.clone(),
        clinic_id: answer.clinic_id,
        agent_id: answer.agent_id,
        role,
        enrolled_at: jiff::Timestamp::now(),
    };
    state.save(&Credentials {
        enrollment: enrollment.clone(),
        key_pem: key.serialize_pem(),
        cert_pem: answer.certificate_pem,
        ca_pem,
    })?;
    tracing::info!(agent_id = %enrollment.agent_id, clinic_id = %enrollment.clinic_id, "enrolled");
    Ok(enrollment)
}

fn proto_role(role: AgentRole) -> v1::AgentRole {
    match role {
        AgentRole::Workstation => v1::AgentRole::Workstation,
        AgentRole::Server => v1::AgentRole::Server,
        AgentRole::Imaging => v1::AgentRole::Imaging,
    }
}

/// The answer must name us and carry a certificate, and its CA must be the one we pinned.
fn check_answer(
    answer: &v1::EnrollResponse,
    pinned: &CertificateDer<'_>,
) -> Result<(), EnrollError> {
    if answer.agent_id.is_empty() || answer.clinic_id.is_empty() {
        return Err(EnrollError::BadAnswer("no agent or clinic id".into()));
    }
    CertificateDer::from_pem_slice(answer.certificate_pem.as_bytes())
        .map_err(|e| EnrollError::BadAnswer(format!("agent certificate: {e}")))?;
    if !answer.ca_certificate_pem.is_empty() {
        let ca = CertificateDer::from_pem_slice(answer.ca_certificate_pem.as_bytes())
            .map_err(|e| EnrollError::BadAnswer(format!("CA certificate: {e}")))?;
        if ca.as_ref() != pinned.as_ref() {
            return Err(EnrollError::BadAnswer(
                "its CA certificate is not the one pinned from the token".into(),
            ));
        }
    }
    Ok(())
}

/// Turns a refused `Enroll` into a sentence a technician can act on.
fn refused(status: &tonic::Status, addr: &str) -> EnrollError {
    let message = status.message();
    let why = match status.code() {
        Code::NotFound => format!("unknown token: {message}"),
        Code::AlreadyExists => format!("token already used: {message}"),
        Code::DeadlineExceeded if !message.is_empty() && status.source().is_none() => {
            format!("this token has expired: {message}")
        }
        Code::Unauthenticated | Code::PermissionDenied | Code::FailedPrecondition => {
            format!("the collector refused the token: {message}")
        }
        Code::InvalidArgument => format!("the collector refused the request: {message}"),
        _ => {
            let failure = transport::classify(status, addr);
            return EnrollError::Refused(match failure.kind {
                FailureKind::Unreachable => format!("enrollment failed: {failure}"),
                _ => format!("enrollment refused: {failure}"),
            });
        }
    };
    EnrollError::Refused(format!(
        "enrollment refused by the collector at {addr}: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_happened_to_the_token() {
        let check = |status: tonic::Status, expected: &str| {
            let text = refused(&status, "c:7443").to_string();
            assert!(text.contains(expected), "{text:?} lacks {expected:?}");
        };
        check(tonic::Status::not_found("no such token"), "unknown token");
        check(tonic::Status::already_exists("used"), "already used");
        check(
            tonic::Status::failed_precondition("token expired"),
            "refused the token: token expired",
        );
        check(
            tonic::Status::unavailable("down"),
            "collector unreachable at c:7443",
        );
    }

    #[tokio::test]
    async fn existing_enrollment_is_kept_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        state
            .save(&Credentials {
                enrollment: Enrollment {
                    collector_addr: "127.0.0.1:1".into(),
                    clinic_id: "c1".into(),
                    agent_id: "a1".into(),
                    role: AgentRole::Server,
                    enrolled_at: jiff::Timestamp::UNIX_EPOCH,
                },
                key_pem: String::new(),
                cert_pem: String::new(),
                ca_pem: String::new(),
            })
            .expect("save");
        let error = enroll(&state, "vigie1_x", AgentRole::Server, false)
            .await
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("already enrolled (agent a1 in clinic c1")
        );
    }

    #[tokio::test]
    async fn unreachable_collector_is_said_so() {
        // Reserve a port, then free it: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let token = EnrollmentToken {
            collector_addr: format!("127.0.0.1:{port}"),
            ca_sha256: "ab".repeat(32),
            secret: "s".into(),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let error = enroll(
            &StateDir::new(dir.path()),
            &token.encode(),
            AgentRole::Workstation,
            false,
        )
        .await
        .expect_err("unreachable");
        assert!(
            error
                .to_string()
                .starts_with("collector unreachable at 127.0.0.1:"),
            "{error}"
        );
        assert!(!StateDir::new(dir.path()).is_enrolled());
    }
}
