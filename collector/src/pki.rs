//! The collector's certificate authority: makes the CA, the server and admin certificates at
//! `init`, and signs agent CSRs at enrollment with an identity the collector chooses.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};
use vigie_domain::identity::CertIdentity;

/// CA lifetime: long, because replacing it means re-enrolling every agent.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Server and admin certificates live as long as the CA; they are local to the collector.
const LOCAL_VALIDITY: Duration = Duration::days(3650);
/// Agent certificates: re-enrollment every two years at most.
const AGENT_VALIDITY: Duration = Duration::days(730);
/// Tolerates clocks a little behind ours on agents.
const BACKDATE: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot generate a key or certificate: {0}")]
    Generate(#[source] rcgen::Error),
    #[error("cannot load the CA certificate or key: {0}")]
    LoadCa(#[source] rcgen::Error),
    #[error("certificate signing request is not valid: {0}")]
    BadCsr(#[source] rcgen::Error),
    #[error("the system random generator failed")]
    Random,
    #[error("the CA certificate is not valid PEM")]
    CaPem,
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The collector CA, able to sign.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA valid for ten years.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("Vigie collector CA", None);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key).map_err(PkiError::Generate)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA written by `init`.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(PkiError::LoadCa)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(PkiError::LoadCa)?;
        let cert_der = first_cert_der(cert_pem).ok_or(PkiError::CaPem)?;
        Ok(CertificateAuthority {
            issuer,
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Lower-case hex SHA-256 of the CA certificate (DER): what enrollment tokens pin.
    pub fn fingerprint(&self) -> String {
        fingerprint_der(&self.cert_der)
    }

    /// The TLS server certificate: `server.crt` holds leaf then CA, so clients get the chain.
    pub fn issue_server(&self, public_host: &str) -> Result<IssuedPair, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("Vigie collector", None);
        let mut sans = vec![
            dns_san("localhost")?,
            SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
            SanType::IpAddress(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
        ];
        let host = public_host.trim();
        let extra = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => dns_san(host)?,
        };
        if !host.is_empty() && !sans.contains(&extra) {
            sans.insert(0, extra);
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.finish_leaf(&mut params, LOCAL_VALIDITY)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Generate)?;
        Ok(IssuedPair {
            cert_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// The admin client certificate used by the admin commands (URI SAN `urn:vigie:admin`).
    pub fn issue_admin(&self) -> Result<IssuedPair, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let mut params = client_params(&CertIdentity::Admin, "Vigie admin", None)?;
        self.finish_leaf(&mut params, LOCAL_VALIDITY)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Generate)?;
        Ok(IssuedPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs an agent's CSR. Only the CSR's public key is used: the names and extensions it asks
    /// for are ignored, and the identity is the one the collector assigned.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        clinic_id: &str,
        agent_id: &str,
    ) -> Result<String, PkiError> {
        let csr = parse_csr(csr_pem)?;
        let identity = CertIdentity::agent(clinic_id, agent_id);
        let mut params = client_params(&identity, agent_id, Some(clinic_id))?;
        self.finish_leaf(&mut params, AGENT_VALIDITY)?;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(PkiError::Generate)?;
        Ok(cert.pem())
    }

    fn finish_leaf(
        &self,
        params: &mut CertificateParams,
        validity: Duration,
    ) -> Result<(), PkiError> {
        set_validity(params, validity);
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        Ok(())
    }
}

/// Checks a CSR before anything is spent on it (its signature is verified by the parser).
pub fn parse_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams, PkiError> {
    CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::BadCsr)
}

/// Lower-case hex SHA-256 of a DER certificate.
pub fn fingerprint_der(der: &[u8]) -> String {
    vigie_domain::token::hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// DER of the first `CERTIFICATE` block of a PEM text.
pub fn first_cert_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn client_params(
    identity: &CertIdentity,
    common_name: &str,
    organization: Option<&str>,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name, organization);
    params.subject_alt_names = vec![uri_san(&identity.to_uri())?];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn dns_san(name: &str) -> Result<SanType, PkiError> {
    Ok(SanType::DnsName(
        name.try_into().map_err(PkiError::Generate)?,
    ))
}

fn uri_san(uri: &str) -> Result<SanType, PkiError> {
    Ok(SanType::URI(uri.try_into().map_err(PkiError::Generate)?))
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    // Positive and without a leading zero byte, as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::*;

    fn uris(cert_pem: &str) -> Vec<String> {
        let der = first_cert_der(cert_pem).expect("pem");
        let (_, cert) = parse_x509_certificate(&der).expect("parses");
        cert.subject_alternative_name()
            .expect("valid SAN")
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::URI(uri) => Some((*uri).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn csr_asking_for(names: &[&str]) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .subject_alt_names
            .push(uri_san("urn:vigie:admin").expect("uri"));
        params.distinguished_name = name("evil", Some("other-clinic"));
        params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    #[test]
    fn agent_certificate_carries_assigned_identity_and_ignores_csr_names() {
        let ca = CertificateAuthority::generate().expect("ca");
        let csr = csr_asking_for(&["evil.example"]);
        let cert = ca
            .sign_agent_csr(&csr, "clinic-1", "agent-1")
            .expect("signed");
        assert_eq!(uris(&cert), vec!["urn:vigie:clinic:clinic-1:agent:agent-1"]);
        let der = first_cert_der(&cert).expect("pem");
        let (_, parsed) = parse_x509_certificate(&der).expect("parses");
        let dns: Vec<_> = parsed
            .subject_alternative_name()
            .expect("san")
            .expect("present")
            .value
            .general_names
            .iter()
            .filter(|n| matches!(n, GeneralName::DNSName(_)))
            .collect();
        assert!(dns.is_empty(), "CSR DNS names must not be copied: {dns:?}");
        let cn = parsed.subject().iter_common_name().next();
        assert_eq!(cn.and_then(|c| c.as_str().ok()), Some("agent-1"));
        assert!(parsed.verify_signature(None).is_err(), "not self-signed");
    }

    #[test]
    fn bad_csr_is_refused() {
        let ca = CertificateAuthority::generate().expect("ca");
        assert!(matches!(
            ca.sign_agent_csr("not a csr", "c", "a"),
            Err(PkiError::BadCsr(_))
        ));
    }

    #[test]
    fn fingerprint_is_stable_across_reload() {
        let ca = CertificateAuthority::generate().expect("ca");
        let reloaded = CertificateAuthority::load(ca.cert_pem(), &ca.key_pem()).expect("load");
        assert_eq!(ca.fingerprint(), reloaded.fingerprint());
        assert_eq!(ca.fingerprint().len(), 64);
        // A certificate signed after reload still chains to the same CA name.
        let admin = reloaded.issue_admin().expect("admin");
        assert_eq!(uris(&admin.cert_pem), vec!["urn:vigie:admin"]);
    }

    #[test]
    fn server_certificate_names_public_host_and_loopback() {
        let ca = CertificateAuthority::generate().expect("ca");
        let server = ca.issue_server("collector.example").expect("server");
        assert_eq!(server.cert_pem.matches("BEGIN CERTIFICATE").count(), 2);
        let der = first_cert_der(&server.cert_pem).expect("pem");
        let (_, cert) = parse_x509_certificate(&der).expect("parses");
        let names = &cert
            .subject_alternative_name()
            .expect("san")
            .expect("present")
            .value
            .general_names;
        assert!(names.contains(&GeneralName::DNSName("collector.example")));
        assert!(names.contains(&GeneralName::DNSName("localhost")));
        assert_eq!(
            names
                .iter()
                .filter(|n| matches!(n, GeneralName::IPAddress(_)))
                .count(),
            2
        );
    }
}
