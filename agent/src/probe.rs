//! Finds out why the collector hung up. With TLS 1.3 the client's handshake completes before
//! the server has checked the client certificate, so a refusal often reaches the gRPC layer
//! only as "broken pipe" or "connection closed" (h2 keeps just the text of the error). A bare
//! TLS connection with the same identity, that waits for the server's verdict, tells apart
//! "the collector refuses our certificate" from "the network is down".

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

use crate::pin::split_addr;
use crate::state::Credentials;
use crate::transport::{CallFailure, FailureKind, classify_io};

/// How long the collector has to send its verdict after the handshake.
const VERDICT_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("cannot read the PEM files of the state directory: {0}")]
    Pem(String),
    #[error("cannot set up TLS with the agent certificate")]
    Tls(#[from] rustls::Error),
    #[error("invalid collector address {0:?} (expected HOST:PORT)")]
    BadAddress(String),
}

/// A TLS client configured exactly like the ingest channel.
#[derive(Clone)]
pub struct Probe {
    config: Arc<rustls::ClientConfig>,
    addr: String,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("addr", &self.addr).finish()
    }
}

impl Probe {
    pub fn new(credentials: &Credentials) -> Result<Self, ProbeSetupError> {
        let pem = |e: rustls::pki_types::pem::Error| ProbeSetupError::Pem(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(credentials.ca_pem.as_bytes()) {
            roots.add(ca.map_err(pem)?)?;
        }
        let chain = CertificateDer::pem_slice_iter(credentials.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem)?;
        let key = PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).map_err(pem)?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let addr = credentials.enrollment.collector_addr.clone();
        let server_name = split_addr(&addr)
            .and_then(|(host, _)| ServerName::try_from(host.to_owned()).ok())
            .ok_or_else(|| ProbeSetupError::BadAddress(addr.clone()))?;
        Ok(Probe {
            config: Arc::new(config),
            addr,
            server_name,
        })
    }

    /// Connects, completes the handshake and waits briefly for the collector's verdict.
    /// `Some` when the collector refused us (or we refused it); `None` when it accepted the
    /// connection or could not be reached at all (the original diagnosis then stands).
    pub async fn diagnose(&self, connect_timeout: Duration) -> Option<CallFailure> {
        let failure = |kind, detail: String| {
            Some(CallFailure {
                kind,
                addr: self.addr.clone(),
                detail,
            })
        };
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(&self.addr))
            .await
            .ok()?
            .ok()?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let handshake = connector.connect(self.server_name.clone(), tcp);
        let mut stream = match tokio::time::timeout(connect_timeout, handshake).await {
            Err(_) => return None,
            Ok(Err(error)) => {
                let (kind, detail) = classify_io(&error)?;
                return failure(kind, detail);
            }
            Ok(Ok(stream)) => stream,
        };
        let mut buf = [0u8; 512];
        match tokio::time::timeout(VERDICT_WAIT, stream.read(&mut buf)).await {
            // Silence or the server's first HTTP/2 frames: accepted.
            Err(_) | Ok(Ok(1..)) => None,
            Ok(Ok(0)) => failure(
                FailureKind::CertificateRejected,
                "the collector closed the connection right after the TLS handshake".into(),
            ),
            Ok(Err(error)) => {
                let (kind, detail) = classify_io(&error)?;
                failure(kind, detail)
            }
        }
    }
}
