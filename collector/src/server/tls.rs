//! The TLS accept loop of both listeners. Done here rather than by tonic for one reason: when
//! a client certificate is refused (unknown CA, none where required), the TLS 1.3 client
//! already believes it is connected and has sent its first request; closing the socket with
//! that request unread makes the kernel send a reset that can destroy the alert before the
//! client reads it. Here a refused connection is half-closed and drained briefly instead, so
//! the client reliably learns *why* ("UnknownCA", "CertificateRequired").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::admission::{Admission, Guarded};

/// How long a refused peer gets to read our alert before the socket closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// Connections handed over but not yet picked up by the server.
const BACKLOG: usize = 128;

/// Whether clients must present a certificate from the collector CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Agent listener: Enroll runs without a certificate; Ingest checks for one itself.
    Optional,
    /// Admin listener.
    Required,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("no certificate found in the server certificate file")]
    NoCertificate,
    #[error("cannot read PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The rustls server configuration: our chain and key, clients checked against our CA.
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = match auth {
        ClientAuth::Optional => verifier.allow_unauthenticated(),
        ClientAuth::Required => verifier,
    }
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections until `stop`, runs each TLS handshake on its own task within the
/// budgets of `admission`, and yields the established streams for tonic. The listener closes
/// when the loop ends.
pub fn incoming(
    what: &'static str,
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    admission: Arc<Admission>,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<std::io::Result<Guarded>> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(listener = what, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Beyond the handshake budget the connection is closed at once: its descriptor
            // comes back now, and the client (an agent retries) hears it at once.
            let Ok(handshaking) = admission.admit_handshake(peer) else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let admission = admission.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let timeout = admission.handshake_timeout();
                let Some(tls) = handshake(what, &acceptor, tcp, peer, timeout).await else {
                    return;
                };
                drop(handshaking);
                // rustls verified any certificate against our CA; none means "enrollment only".
                let authenticated = tls.get_ref().1.peer_certificates().is_some();
                let Ok(ticket) = admission.admit_connection(peer, authenticated) else {
                    return;
                };
                let stream = admission.guard(tls, ticket, authenticated);
                // The server is gone when this fails (shutting down): drop the connection.
                let _ = tx.send(Ok(stream)).await;
            });
        }
        tracing::debug!(listener = what, "stopped accepting connections");
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    what: &'static str,
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    let accept = acceptor.accept(tcp).into_fallible();
    match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err((error, tcp))) => {
            tracing::info!(listener = what, %peer, %error, "TLS handshake refused");
            linger(tcp).await;
            None
        }
        Err(_) => {
            tracing::debug!(listener = what, %peer, "TLS handshake timed out");
            None
        }
    }
}

/// Half-closes after the alert and reads whatever the peer still sends, so the close is a FIN
/// the peer sees after our alert, not a reset that may discard it.
async fn linger(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        while let Ok(n) = tcp.read(&mut buf).await {
            total += n;
            if n == 0 || total > 1 << 20 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
}
