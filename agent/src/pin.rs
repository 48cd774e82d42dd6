//! Pinning the collector's CA on first contact (the idea of `kubeadm join
//! --discovery-token-ca-cert-hash`): a TLS handshake that records the chain the collector
//! presents, then a search for the certificate whose SHA-256 the enrollment token carries.
//! Nothing secret is sent on this connection; the token travels only once the CA is pinned.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use vigie_domain::token::hex;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("collector unreachable at {addr}")]
    Unreachable {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("collector unreachable at {addr}: no answer within {}s", .timeout.as_secs())]
    Timeout { addr: String, timeout: Duration },
    #[error("invalid collector address {0:?} in the token (expected HOST:PORT)")]
    BadAddress(String),
    #[error("TLS handshake with the collector at {addr} failed and it presented no certificate")]
    Handshake {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "collector CA fingerprint mismatch: the token pins {pinned} but the collector at {addr} \
         presented CA {presented}; refusing to enroll (wrong collector or token?)"
    )]
    Mismatch {
        pinned: String,
        addr: String,
        presented: String,
    },
}

/// Splits `HOST:PORT` (or `[v6]:PORT`) into the host to name in TLS and the port.
pub fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// SHA-256 of a certificate's DER, lower-case hex.
pub fn fingerprint(cert: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, cert).as_ref())
}

/// Connects to `addr`, completes a TLS handshake accepting any chain, and returns the chain
/// the collector presented (leaf first).
pub async fn presented_chain(
    addr: &str,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, PinError> {
    let (host, _) = split_addr(addr).ok_or_else(|| PinError::BadAddress(addr.to_owned()))?;
    let server_name =
        ServerName::try_from(host.to_owned()).map_err(|_| PinError::BadAddress(addr.to_owned()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        provider: provider.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PinError::Handshake {
            addr: addr.to_owned(),
            source: std::io::Error::other(e),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| PinError::Unreachable {
                addr: addr.to_owned(),
                source,
            })?;
        Ok::<_, PinError>(connector.connect(server_name, tcp).await)
    };
    let result = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| PinError::Timeout {
            addr: addr.to_owned(),
            timeout,
        })??;
    let chain = verifier.take();
    match result {
        Ok(mut stream) => {
            // Polite close; the collector does not care if it fails.
            let _ = stream.shutdown().await;
        }
        // A collector that went on to refuse us still showed its chain: judge that.
        Err(source) if chain.is_empty() => {
            return Err(PinError::Handshake {
                addr: addr.to_owned(),
                source,
            });
        }
        Err(error) => tracing::debug!(%error, "handshake ended after the chain was seen"),
    }
    Ok(chain)
}

/// The certificate of `chain` whose fingerprint is `pinned_hex`, or a mismatch naming what the
/// collector presented (its outermost certificate: the CA in a `[leaf, CA]` chain).
pub fn find_pinned(
    chain: &[CertificateDer<'static>],
    pinned_hex: &str,
    addr: &str,
) -> Result<CertificateDer<'static>, PinError> {
    let pinned = pinned_hex.to_ascii_lowercase();
    if let Some(cert) = chain.iter().find(|c| fingerprint(c) == pinned) {
        return Ok(cert.clone());
    }
    let presented = chain
        .last()
        .map_or_else(|| "nothing".to_owned(), |c| fingerprint(c));
    Err(PinError::Mismatch {
        pinned,
        addr: addr.to_owned(),
        presented,
    })
}

/// PEM text of a DER certificate, as tonic and `ca.crt` want it.
pub fn to_pem(cert: &CertificateDer<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Accepts any chain but records it; still checks the handshake signatures, so the peer
/// proves it holds the leaf's key (a replayed certificate is not enough).
#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    seen: Mutex<Vec<CertificateDer<'static>>>,
}

impl RecordingVerifier {
    fn take(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.clear();
        seen.push(end_entity.clone().into_owned());
        seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_addr("127.0.0.1:7443"), Some(("127.0.0.1", 7443)));
        assert_eq!(
            split_addr("vigie.example:443"),
            Some(("vigie.example", 443))
        );
        assert_eq!(split_addr("[::1]:7443"), Some(("::1", 7443)));
        assert_eq!(split_addr("nohost"), None);
        assert_eq!(split_addr(":7443"), None);
        assert_eq!(split_addr("h:port"), None);
    }

    #[test]
    fn pinned_certificate_is_found_or_mismatch_names_both() {
        let leaf = CertificateDer::from(b"leaf".to_vec());
        let ca = CertificateDer::from(b"ca".to_vec());
        let chain = [leaf, ca.clone()];
        let pin = fingerprint(&ca);
        assert_eq!(
            find_pinned(&chain, &pin.to_uppercase(), "h:1").expect("found"),
            ca
        );
        let other = "ab".repeat(32);
        let error = find_pinned(&chain, &other, "h:1").expect_err("mismatch");
        let text = error.to_string();
        assert!(
            text.starts_with("collector CA fingerprint mismatch"),
            "{text}"
        );
        assert!(text.contains(&other) && text.contains(&pin), "{text}");
        assert!(text.contains("refusing to enroll"), "{text}");
    }

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        let pem = to_pem(&CertificateDer::from(vec![0u8; 100]));
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
