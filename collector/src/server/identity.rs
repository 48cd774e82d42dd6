//! Who is calling: the identity in the verified TLS client certificate, never a message field.

use tonic::{Request, Status};
use vigie_domain::identity::CertIdentity;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::parse_x509_certificate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("client certificate required")]
    NoCertificate,
    #[error("client certificate cannot be parsed")]
    Unparsable,
    #[error("client certificate carries no Vigie identity")]
    NoIdentity,
    #[error("client certificate carries more than one Vigie identity")]
    Ambiguous,
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::NoCertificate => Status::unauthenticated(error.to_string()),
            _ => Status::permission_denied(error.to_string()),
        }
    }
}

/// The identity of the peer's leaf certificate. rustls has already verified the chain against
/// the collector CA before any request reaches a service.
pub fn peer_identity<T>(request: &Request<T>) -> Result<CertIdentity, IdentityError> {
    let certs = request.peer_certs().ok_or(IdentityError::NoCertificate)?;
    let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
    identity_of_der(leaf.as_ref())
}

/// The single `urn:vigie:` URI SAN of a DER certificate.
pub fn identity_of_der(der: &[u8]) -> Result<CertIdentity, IdentityError> {
    let (_, cert) = parse_x509_certificate(der).map_err(|_| IdentityError::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparsable)?
        .ok_or(IdentityError::NoIdentity)?;
    let mut identities = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => CertIdentity::from_uri(uri).ok(),
            _ => None,
        });
    let identity = identities.next().ok_or(IdentityError::NoIdentity)?;
    if identities.next().is_some() {
        return Err(IdentityError::Ambiguous);
    }
    Ok(identity)
}

/// For the admin service: only the admin certificate may call it.
pub fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    match peer_identity(request)? {
        CertIdentity::Admin => Ok(()),
        CertIdentity::Agent { agent_id, .. } => Err(Status::permission_denied(format!(
            "agent certificate ({agent_id}) may not use the admin interface"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, first_cert_der};

    #[test]
    fn identity_is_read_from_issued_certificates() {
        let ca = CertificateAuthority::generate().expect("ca");
        let admin = ca.issue_admin().expect("admin");
        let der = first_cert_der(&admin.cert_pem).expect("der");
        assert_eq!(identity_of_der(&der), Ok(CertIdentity::Admin));
        let server = ca.issue_server("localhost").expect("server");
        let der = first_cert_der(&server.cert_pem).expect("der");
        assert_eq!(identity_of_der(&der), Err(IdentityError::NoIdentity));
        assert_eq!(identity_of_der(b"junk"), Err(IdentityError::Unparsable));
    }

    #[test]
    fn no_certificate_is_unauthenticated() {
        let request = Request::new(());
        let status = Status::from(peer_identity(&request).expect_err("no cert"));
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), "client certificate required");
    }
}
